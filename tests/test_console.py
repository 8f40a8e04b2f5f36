"""The main command's console: the run's own lines, not the libraries' INFO chatter."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_jax.console import LibraryInfoFilter, is_late_write_callback

REPO = Path(__file__).resolve().parents[1]


def _record(pathname: str, level: int, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("absl", level, pathname, 1, "message", None, exc_info)


def test_library_info_lines_are_dropped_and_warnings_and_our_lines_kept():
    keep = LibraryInfoFilter().filter
    orbax = "/site-packages/orbax/checkpoint/checkpoint_manager.py"
    assert not keep(_record(orbax, logging.INFO))
    assert keep(_record(orbax, logging.WARNING))
    assert keep(_record(os.path.join(str(REPO), "resnet_jax", "train", "loop.py"), logging.INFO))
    assert not keep(_record("/site-packages/clu/metric_writers/logging_writer.py", logging.INFO))


def test_orbax_tracebacks_are_left_to_the_main_threads_error_and_ours_are_kept():
    keep = LibraryInfoFilter().filter
    try:
        raise ValueError("RESOURCE_EXHAUSTED: No space left on device")
    except ValueError:
        failure = sys.exc_info()
    assert not keep(_record("/site-packages/orbax/checkpoint/_src/futures/future.py", logging.ERROR, failure))
    assert keep(_record("/site-packages/orbax/checkpoint/_src/futures/future.py", logging.ERROR))
    assert keep(_record(os.path.join(str(REPO), "resnet_jax", "train", "loop.py"), logging.ERROR, failure))


def test_asyncio_hides_an_orbax_write_tasks_unretrieved_failure_but_not_ours(tmp_path):
    """asyncio logs a failed task that nobody awaited ("Task exception was never retrieved") with its traceback:
    one that came up through orbax's code (a write of a full disk) is left to the main thread's error."""
    import asyncio
    import gc

    def failing_write(filename: str):
        source = "async def write_fragment():\n    raise OSError(28, 'RESOURCE_EXHAUSTED: No space left on device')\n"
        namespace = {}
        exec(compile(source, filename, "exec"), namespace)  # frames of a file in orbax's tree, or in ours
        return namespace["write_fragment"]

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    try:
        for filename in ("/site-packages/orbax/checkpoint/_src/serialization/tensorstore_utils.py", __file__):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.wait([loop.create_task(failing_write(filename)())]))
            loop.close()
            gc.collect()  # the task, and its unretrieved exception, are collected: asyncio logs it now
    finally:
        asyncio_logger.removeHandler(handler)
    assert [record.getMessage().startswith("Task exception was never retrieved") for record in records] == [True] * 2
    assert [LibraryInfoFilter().filter(record) for record in records] == [False, True]


def test_only_a_callback_into_asyncios_closed_loop_is_a_late_write_callback():
    import asyncio

    loop = asyncio.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError) as late:
        loop.call_soon_threadsafe(print)
    called_from_native_code = late.value.with_traceback(late.value.__traceback__.tb_next)  # no frame of ours
    assert is_late_write_callback(called_from_native_code)
    with pytest.raises(RuntimeError) as ours:
        raise RuntimeError("Event loop is closed")
    assert not is_late_write_callback(ours.value)


def test_a_native_import_banner_is_filtered_and_every_other_line_kept(tmp_path):
    """As TensorFlow 2.21 prints its oneDNN notice from C++ (file descriptor 2), whatever TF_CPP_MIN_LOG_LEVEL says."""
    (tmp_path / "chatty.py").write_text(
        "import os\nos.write(2, b'I0000 port.cc] oneDNN custom operations are on.\\nkept: a real warning\\n')\n"
    )
    script = (
        "import sys; from resnet_jax.console import QuietNativeImport\n"
        "sys.meta_path.insert(0, QuietNativeImport('chatty', ('oneDNN custom operations',)))\n"
        "import importlib.util; assert importlib.util.find_spec('chatty')  # a look does not use the hook up\n"
        "import chatty; print('imported', chatty.__name__)\n"
    )
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == ["kept: a real warning"]
    assert completed.stdout == "imported chatty\n"


@pytest.mark.slow
def test_a_short_digits_run_prints_its_progress_and_results_in_a_few_lines(tmp_path):
    command = [
        sys.executable,
        "-m",
        "resnet_jax.main",
        "--config=configs/digits.py",  # the README's first command, cut to 30 steps
        f"--workdir={tmp_path / 'run'}",
        f"--config.data_dir={tmp_path / 'tfds'}",
        "--config.num_train_steps=30",  # longer than the recipe's 1-epoch (22-step) warm-up
        "--config.log_every_steps=15",
        "--config.eval_every_steps=30",
        "--config.checkpoint_every_steps=15",
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stderr.splitlines()
    assert not [line for line in lines if "orbax" in line or "checkpoint_manager.py" in line]
    progress = [line for line in lines if re.search(r"step \d+/30 \(\d+%\): loss [\d.]+, top-1 [\d.]+%, lr ", line)]
    assert len(progress) == 2 and "examples/s, ETA 0:00:00" in progress[-1]  # one line per log interval
    assert sum("eval at step 30: top-1" in line and "(360 examples)" in line for line in lines) == 1
    assert sum("num_train_steps=30 overrides num_epochs=40" in line for line in lines) == 1
    assert sum("First step after" in line for line in lines) == 1
    assert sum(bool(re.search(r"finished at step 30 in \d+:\d\d:\d\d: test top-1", line)) for line in lines) == 1
    assert not [line for line in lines if "Generating" in line or "Shuffling" in line]  # TFDS's progress bars
    assert len(lines) <= 16, "\n".join(lines)  # before: 80 and more, two thirds of them orbax's
    # Only its own lines: no library's (TFDS's "Variant folder ... has no dataset_info.json" among them), no
    # "Running as a single process (coordinator_address should be defined.)", on stdout only the result.
    modules = "|".join(_own_module_names())
    own = re.compile(rf"^[IW]\d{{4}} [\d:.]+ +\d+ ({modules})\.py:\d+\] ")
    assert [line for line in lines if not own.match(line)] == []
    assert not [line for line in lines if "coordinator_address" in line or "dataset_info.json" in line]
    assert completed.stdout.startswith("{'step': 30, ") and len(completed.stdout.splitlines()) == 1, completed.stdout


def _own_module_names() -> set[str]:
    return {path.stem for path in (REPO / "resnet_jax").rglob("*.py")}


def test_progress_lines_by_hand():
    from resnet_jax.train import progress

    assert [progress.duration(s) for s in (0, 59.6, 3725, float("inf"))] == ["0:00:00", "0:01:00", "1:02:05", "-"]
    values = {"train/loss": 0.69314, "train/top1": 0.75, "train/lr": 0.1, "train/examples_per_sec": 1234.4}
    line = progress.train_line(100, 2344, {**values, "train/eta_seconds": 1817})
    assert line == "step 100/2344 (4%): loss 0.6931, top-1 75.00%, lr 0.1, 1,234 examples/s, ETA 0:30:17"
    results = {"eval/top1": 0.9195, "eval/top5": 0.999, "eval/loss": 0.25, "num_eval_examples": 10000}
    assert progress.eval_lines(7, results) == [
        "eval at step 7: top-1 91.95%, top-5 99.90%, loss 0.2500 (10,000 examples)"
    ]
    summary = progress.summary_line({**results, "step": 2344, "wall_time_s": 1142})
    assert summary == "finished at step 2344 in 0:19:02: test top-1 91.95% (error 8.05%)"
