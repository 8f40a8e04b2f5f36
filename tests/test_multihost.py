"""Two real processes x 4 simulated CPU devices on loopback (jax.distributed, gloo) against 1 x 8."""

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pytest

from resnet_jax.errors import ExitCode
from resnet_jax.train import checkpoint

pytestmark = [pytest.mark.xdist_group("multihost"), pytest.mark.slow]  # real processes on loopback
REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 400
FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.num_train_steps=20",
    "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10",
    "--config.eval_every_steps=20",
    "--config.synthetic.num_eval_examples=37",  # uneven: padding and masks on both processes
    # Small steps: float reassociation (1e-6) stays at that level instead of growing chaotically, as it
    # does at lr 0.1 (to percents within 20 steps), so a real difference between the runs would show.
    "--config.learning_rate=0.002",
]


def free_port() -> int:
    """A port free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    command: list[str],
    num_processes: int,
    devices_per_process: int,
    while_running: Callable[[list[subprocess.Popen]], None] | None = None,
    exit_code: int = ExitCode.FINISHED,
) -> list[str]:
    """Run ``command`` as ``num_processes`` processes of one job on 127.0.0.1, calling ``while_running``
    with them once started; returns their logs, each process having exited with ``exit_code``. The processes
    learn of each other from the multi-host flags (tests/test_slurm.py runs them under a real SLURM). The
    coordinator binds to 127.0.0.1 only. Waits are bounded."""
    port = free_port()
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}",
        JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
        JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
    )
    flags = [[] for _ in range(num_processes)]
    if num_processes > 1:
        distributed = [f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={num_processes}"]
        flags = [[*distributed, f"--process_id={index}"] for index in range(num_processes)]
    logs = [tempfile.TemporaryFile("w+") for _ in range(num_processes)]  # files: a full pipe would stall a process
    processes = [
        subprocess.Popen(
            [*command, *process_flags],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for log, process_flags in zip(logs, flags, strict=True)
    ]
    deadline = time.monotonic() + TIMEOUT_S
    try:
        if while_running is not None:
            while_running(processes)
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            process.kill()
    outputs = []
    for process, log in zip(processes, logs, strict=True):
        log.seek(0)
        outputs.append(log.read())
        log.close()
        assert process.returncode == exit_code, outputs[-1][-3000:]
    return outputs


def sigterm_once_saved(workdir: Path, step: int, process: int) -> Callable[[list[subprocess.Popen]], None]:
    """For ``launch``: SIGTERM to process ``process`` once checkpoint ``step`` is in ``workdir`` (waits bounded)."""

    def send(processes: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not (workdir / "checkpoints" / str(step)).is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        processes[process].send_signal(signal.SIGTERM)

    return send


def train(workdir: Path, num_processes: int, devices_per_process: int, *extra: str) -> dict:
    launch(
        [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS, *extra],
        num_processes,
        devices_per_process,
    )
    return json.loads((workdir / "results.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The same tiny job as 1 process x 8 devices and as 2 processes x 4 devices."""
    single, multi = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("multi")
    train(single, 1, 8)
    train(multi, 2, 4)
    return single, multi


def test_two_processes_reach_the_eval_metrics_of_one(runs):
    single, multi = (json.loads((workdir / "results.json").read_text()) for workdir in runs)
    assert single["num_eval_examples"] == multi["num_eval_examples"] == 37
    for key in ("eval/top1", "eval/top5"):
        assert multi[key] * 37 == pytest.approx(single[key] * 37, abs=1.01)  # at most one example flips
    assert multi["eval/loss"] == pytest.approx(single["eval/loss"], rel=1e-4)
    states = [checkpoint.load_tree(workdir) for workdir in runs]
    leaves = [jax.tree_util.tree_leaves_with_path(tree) for tree in states]
    assert len(leaves[0]) == len(leaves[1]) > 120  # every parameter, BN statistic and momentum buffer
    for (path, a), (_, b) in zip(*leaves, strict=True):  # float reassociation only: about 1e-4 of each leaf
        scale = max(float(np.abs(a).max()), 1e-30)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * scale, err_msg=jax.tree_util.keystr(path))


def test_only_process_0_writes_metrics_tensorboard_and_results(runs):
    _, multi = runs
    assert len(list(multi.glob("events.out.tfevents.*"))) == 1
    lines = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
    train_steps = [line["step"] for line in lines if "train/loss" in line]
    assert train_steps == [5, 10, 15, 20]  # one writer: no step written twice
    assert (multi / "results.json").exists() and (multi / "config.json").exists()
    assert json.loads((multi / "config.json").read_text())["devices"]["num_processes"] == 2


def test_a_two_process_checkpoint_restores_onto_one_process(runs, tmp_path):
    _, multi = runs
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    for step in ("10", "20"):  # the collective checkpoints, continued by a single process
        os.symlink(multi / "checkpoints" / step, resumed / "checkpoints" / step)
    results = train(resumed, 1, 8, "--config.num_train_steps=30")
    assert results["step"] == 30 and results["num_eval_examples"] == 37
    lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "train/loss" in line] == [25, 30]  # resumed at 20, not from 0


def test_two_processes_agree_to_fall_back_from_a_damaged_checkpoint(runs, tmp_path):
    _, multi = runs
    resumed = tmp_path / "resumed"
    for step in ("10", "20"):
        shutil.copytree(multi / "checkpoints" / step, resumed / "checkpoints" / step)
    for path in (resumed / "checkpoints" / "20").rglob("*"):  # truncate step 20's array data
        if path.is_file() and path.parent.name == "d":
            with path.open("r+b") as file:
                file.truncate(5)
    logs = launch([sys.executable, "-m", "resnet_jax.main", f"--workdir={resumed}", *FLAGS], 2, 4)
    assert all("cannot be read" in log for log in logs)
    assert (resumed / "checkpoints" / "20.corrupt").is_dir()
    lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "train/loss" in line] == [15, 20]  # both resumed from step 10
    assert json.loads((resumed / "results.json").read_text())["num_eval_examples"] == 37


def test_a_signal_to_one_process_stops_both_at_the_same_step_with_a_checkpoint(tmp_path):
    """SIGTERM to process 1 only, once step 10 is saved, with no log step before the last of 300: both
    processes stop at the same step a few steps later (each step's ballot), each exits 75 with one line,
    and the checkpoint holds that step."""
    workdir = tmp_path / "run"
    steps = ["--config.num_train_steps=300", "--config.log_every_steps=300", "--config.eval_every_steps=300"]
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS, *steps]

    logs = launch(command, 2, 4, sigterm_once_saved(workdir, step=10, process=1), ExitCode.RESUME)
    saved = checkpoint.Checkpointer(workdir / "checkpoints").latest_step()
    assert saved is not None and 10 < saved < 300, saved
    for log, reason in zip(logs, ("a stop signal to another process", "SIGTERM"), strict=True):
        stop_lines = [line for line in log.splitlines() if line.startswith("Stopped by")]
        where = f"its checkpoint of step {saved} is in {workdir}; run the same command to resume."
        assert stop_lines == [f"Stopped by {reason} at step {saved}: {where}"], log[-3000:]


def test_each_process_feeds_a_disjoint_slice_of_the_global_batch(tmp_path):
    script = REPO / "tests" / "multihost_slices.py"
    outputs = [tmp_path / "one", tmp_path / "two"]
    launch([sys.executable, str(script), str(outputs[0])], 1, 8)
    launch([sys.executable, str(script), str(outputs[1])], 2, 4)
    (global_batch,) = [np.load(path)["image"] for path in sorted(outputs[0].glob("*.npz"))]
    slices = [np.load(path)["image"] for path in sorted(outputs[1].glob("process_*.npz"))]
    assert len(slices) == 2 and all(len(s) == len(global_batch) // 2 for s in slices)
    rows = [{image.tobytes() for image in s} for s in slices]
    assert not rows[0] & rows[1]  # disjoint
    np.testing.assert_array_equal(np.concatenate(slices), global_batch)  # together, the global batch in order


# The device feed's batches on two processes of four devices: test_feed; two real processes train as one on the
# host feed: test_two_processes_reach_the_eval_metrics_of_one above.
@pytest.mark.extended
def test_with_the_dataset_on_the_devices_two_processes_train_as_one(tmp_path):
    """Digits on the devices (gathered, cropped, flipped and erased inside the step): each process places the
    whole split on its devices, and 2 processes x 2 devices end where 1 x 4 does."""
    from resnet_jax.data.sources import named

    data_dir = str(tmp_path / "data")
    named.write_numpy_copy("digits", data_dir)
    flags = [
        "--config=configs/digits.py",
        f"--config.data_dir={data_dir}",
        "--config.batch_size=32",
        "--config.num_train_steps=12",
        "--config.warmup_epochs=0",
        "--config.eval_every_steps=12",
        "--config.checkpoint_every_steps=12",
        "--config.random_erasing.probability=0.5",
        "--config.learning_rate=0.002",  # see FLAGS
    ]
    results = []
    for name, processes, devices in (("single", 1, 4), ("multi", 2, 2)):
        workdir = tmp_path / name
        logs = launch([sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *flags], processes, devices)
        assert all("is on every device" in log for log in logs)
        results.append(json.loads((workdir / "results.json").read_text()))
    single, multi = results
    assert single["num_eval_examples"] == multi["num_eval_examples"] == 360
    assert multi["eval/loss"] == pytest.approx(single["eval/loss"], rel=1e-4)


@dataclasses.dataclass(frozen=True)
class StreamedStop:
    """A streamed run stopped on 2 processes x 2 devices, and the uninterrupted 1 x 4 run it must end as."""

    command: Callable[[Path], list[str]]
    stopped: Path
    stop: int
    uninterrupted: Path


def streamed_log(workdir: Path) -> tuple[list[dict], dict]:
    """A streamed run's train and start-up lines, and its results."""
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "eval/loss" not in line], json.loads((workdir / "results.json").read_text())


@pytest.fixture(scope="module")
def streamed_stop(tmp_path_factory) -> StreamedStop:
    """Photos streamed by tf.data: 2 processes x 2 devices get SIGTERM after step 5's checkpoint."""
    from archives import write_photos

    directory = tmp_path_factory.mktemp("streamed")
    write_photos(directory / "photos", {"train": 6, "test": 2})  # 19 train photos: rows of 1 or 2 per epoch
    flags = [
        f"--config.dataset=folder:{directory / 'photos'}",
        f"--config.data_dir={directory / 'data'}",
        "--config.image_size=16",
        "--config.batch_size=16",
        "--config.shuffle_buffer_size=32",
        "--config.num_train_steps=20",
        "--config.checkpoint_every_steps=5",
        "--config.log_every_steps=5",
        "--config.eval_every_steps=20",
        "--config.learning_rate=0.002",  # see FLAGS
    ]

    def command(workdir: Path) -> list[str]:
        return [sys.executable, "-m", "resnet_jax.main", "--config=configs/default.py", f"--workdir={workdir}", *flags]

    launch(command(directory / "uninterrupted"), 1, 4)  # first: it also builds the photos' records
    stopped = directory / "stopped"
    launch(command(stopped), 2, 2, sigterm_once_saved(stopped, step=5, process=0), ExitCode.RESUME)
    stop = checkpoint.Checkpointer(stopped / "checkpoints").latest_step()
    assert stop is not None and 5 <= stop < 20, stop
    return StreamedStop(command, stopped, stop, directory / "uninterrupted")


# Outside CI's 15 minutes: a stream resumed on another process count gives the same batches (test_imagenet), and a
# two-process job stopped by a signal saves and resumes where it stopped (test_slurm, the signal test above).
@pytest.mark.extended
@pytest.mark.parametrize("processes, devices", [(1, 4), (4, 1)], ids=["one", "four"])
def test_a_streamed_run_stopped_on_two_processes_resumes_exactly_on_another_count(
    streamed_stop, processes, devices, tmp_path
):
    """The streamed run resumes to step 20 on another process count and ends where the uninterrupted 1 x 4 run
    does (float reassociation only): every global batch from the stop on held the same examples and crops.
    Every layout has 4 examples per device: at tiny batches the reassociation of other per-device sums grows
    chaotically within 20 steps."""
    resumed, stop = tmp_path / "resumed", streamed_stop.stop
    shutil.copytree(streamed_stop.stopped, resumed)
    launch(streamed_stop.command(resumed), processes, devices)
    (log, results), (expected_log, expected_results) = map(streamed_log, (resumed, streamed_stop.uninterrupted))
    assert [line["step"] for line in log if "startup/total_s" in line] == [1, stop + 1]  # resumed at the stop
    # Steps 16-20's train loss and the eval loss are functions of the examples and crops, and barely of
    # float noise in the weights: other examples or crops in any batch would move them by percents.
    last, expected_last = (next(line for line in lines if line["step"] == 20) for lines in (log, expected_log))
    assert last["train/loss"] == pytest.approx(expected_last["train/loss"], rel=1e-4)
    assert last["train/top1"] == pytest.approx(expected_last["train/top1"], abs=1.01 / (5 * 16))
    assert results["eval/loss"] == pytest.approx(expected_results["eval/loss"], rel=1e-4)
    # The BatchNorm statistics are running means of every batch's own statistics: other examples or crops in
    # any batch move them by percents, float reassociation by about 1e-5. The weights and momentum buffers
    # are compared loosely: at this batch of 16 tiny crops, another device layout alone (2 x 2 against 1 x 4,
    # on the same batches) moves the momentum buffers by up to 2% within 10 steps, and it grows from there.
    expected_state, state = map(checkpoint.load_tree, (streamed_stop.uninterrupted, resumed))
    leaves = [jax.tree_util.tree_leaves_with_path(tree) for tree in (expected_state, state)]
    assert len(leaves[0]) == len(leaves[1]) > 120
    for (path, a), (_, b) in zip(*leaves, strict=True):
        where = f"{processes} x {devices}, stopped at {stop}: {jax.tree_util.keystr(path)}"
        scale = max(float(np.abs(a).max()), 1e-30)
        tolerance = 1e-4 if "batch_stats" in where else 5e-2
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * scale, err_msg=where)


def test_a_process_whose_job_does_not_form_names_the_one_that_did_not_arrive(tmp_path):
    """Process 1 of 2 alone, then process 0 of 2 alone, each giving up after join_timeout_s: one paragraph
    each, naming the missing process, with exit code 1 and no stack trace from JAX's own deadline."""
    port = free_port()
    env = dict(os.environ, JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}")
    for process_id, missing in ((1, "process 0, the coordinator at 127.0.0.1:"), (0, "process 1 did not arrive")):
        flags = [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={process_id}"]
        command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={tmp_path / 'run'}", *FLAGS, *flags]
        started = time.monotonic()
        alone = subprocess.run(
            [*command, "--config.join_timeout_s=3"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert alone.returncode == ExitCode.FAILED, alone.stderr[-3000:]
        errors = [line for line in alone.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and f"process {process_id} of 2 arrived at 127.0.0.1:{port}" in errors[0], errors
        assert missing in errors[0] and "--config.join_timeout_s" in errors[0], errors
        assert "Check failure" not in alone.stderr and time.monotonic() - started < 60
    assert not (tmp_path / "run").exists()


def test_a_pod_of_an_indexed_kubernetes_job_that_jax_cannot_detect_does_not_train_alone(tmp_path):
    """Without JAX's Kubernetes detection (the kubernetes package), a pod of an Indexed Job would train on its
    own: it stops with the paragraph naming the extra instead (exit 2)."""
    if importlib.util.find_spec("kubernetes") is not None:
        pytest.skip("the kubernetes package is installed: JAX would try to detect the pod's job")
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", JOB_COMPLETION_INDEX="1")
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={tmp_path / 'run'}", *FLAGS]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == ExitCode.USER_ERROR and "Traceback" not in completed.stderr, completed.stderr
    (error,) = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert "index 1 of an Indexed Kubernetes Job" in error and 'pip install -e ".[k8s]"' in error
    assert not (tmp_path / "run").exists()
