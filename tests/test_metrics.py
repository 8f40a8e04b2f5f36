"""The metric writers on their own: metrics.jsonl cut back to the restored step (torn lines dropped, atomically),
TensorBoard's purge of the later steps as TensorBoard's own loader shows it, and each write in the event file
when it returns."""

import errno
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from etils import epath

from experiments.kill_harness import tensorboard_scalars
from resnet_jax.train import metrics

REPO = Path(__file__).resolve().parents[1]


def jsonl(steps) -> str:
    return "".join(json.dumps({"step": step, "train/loss": 1 / step}) + "\n" for step in steps)


def events(path: Path) -> list:
    """Every event of one file, read by TensorBoard's own loader."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return list(EventFileLoader(str(path)).Load())


def test_the_cut_keeps_the_steps_up_to_the_restored_one_and_drops_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    merged = '{"step": 4, "tr{"step": 3, "train/loss": 0.5}\n'  # an older version appended after a torn line
    path.write_text(jsonl(range(1, 4)) + merged + jsonl(range(4, 11)) + '{"step": 11, "train/lo')  # torn by a kill
    assert metrics.cut_jsonl(path, 6) == 6  # the merged line, steps 7 to 10 and the torn one
    assert path.read_text() == jsonl(range(1, 7))
    assert os.listdir(tmp_path) == ["metrics.jsonl"]  # the temporary file replaced it
    inode = path.stat().st_ino
    assert metrics.cut_jsonl(path, 6) == 0 and path.stat().st_ino == inode  # nothing to drop: left as it was
    assert metrics.cut_jsonl(path, 0) == 6 and path.read_text() == ""
    assert metrics.cut_jsonl(tmp_path / "absent.jsonl", 6) == 0 and not (tmp_path / "absent.jsonl").exists()


def test_a_whole_last_line_without_its_newline_gets_one_before_the_next_append(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(jsonl([1, 2]).rstrip("\n"))
    assert metrics.cut_jsonl(path, 6) == 0
    assert path.read_text() == jsonl([1, 2])


def test_the_cut_is_atomic_a_failed_write_leaves_the_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text(jsonl(range(1, 11)))
    real_write_text = type(epath.Path(tmp_path)).write_text

    def full_disk(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(type(epath.Path(tmp_path)), "write_text", full_disk)
    with pytest.raises(OSError) as failed:
        metrics.cut_jsonl(path, 4)
    assert failed.value.filename == str(tmp_path / "metrics.jsonl.tmp")
    assert path.read_text() == jsonl(range(1, 11))  # whole, as before the cut
    monkeypatch.undo()
    assert metrics.cut_jsonl(path, 4) == 6 and path.read_text() == jsonl(range(1, 5))


def test_a_resumed_writer_shows_each_step_once_the_steps_after_its_checkpoint_its_own(tmp_path):
    killed = metrics.create_writer(tmp_path, 0, restored_step=0)
    for step in range(1, 9):  # logged up to step 8, checkpoint 5 saved, then killed
        killed.write_scalars(step, {"train/loss": step})
    killed.close()
    resumed = metrics.create_writer(tmp_path, 0, restored_step=5)
    for step in range(6, 11):
        resumed.write_scalars(step, {"train/loss": 10 * step})
    resumed.close()

    expected = [(step, step) for step in range(1, 6)] + [(step, 10 * step) for step in range(6, 11)]
    assert [(step, value) for step, value, _ in tensorboard_scalars(tmp_path, "train/loss")] == expected
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(record["step"], record["train/loss"]) for record in records] == expected
    first, second = sorted(tmp_path.glob(metrics.EVENT_FILES))
    assert [event.step for event in events(second) if event.session_log.status == event.session_log.START] == [6]
    assert not [event for event in events(first) if event.HasField("session_log")]  # a fresh workdir: no purge


def test_a_fresh_start_in_a_workdir_with_earlier_metrics_shows_only_its_own(tmp_path):
    earlier = metrics.create_writer(tmp_path, 0, restored_step=0)
    for step in range(1, 4):  # killed before its first checkpoint (or its checkpoints were deleted)
        earlier.write_scalars(step, {"train/loss": step})
    earlier.close()
    fresh = metrics.create_writer(tmp_path, 0, restored_step=0)
    fresh.write_scalars(1, {"train/loss": 100.0})
    fresh.close()
    assert [(step, value) for step, value, _ in tensorboard_scalars(tmp_path, "train/loss")] == [(1, 100.0)]
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1, "train/loss": 100.0}\n'


def test_other_processes_write_and_cut_nothing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(jsonl(range(1, 5)))
    metrics.create_writer(tmp_path, 1, restored_step=2).close()
    assert os.listdir(tmp_path) == ["metrics.jsonl"] and (tmp_path / "metrics.jsonl").read_text() == jsonl(range(1, 5))


def test_each_write_is_in_the_event_file_when_it_returns(tmp_path):
    writer = metrics.TensorBoardWriter(tmp_path)  # tensorboardX writes on its own thread
    for step in range(1, 51):
        writer.write_scalars(step, {"train/loss": float(step), "train/lr": 0.1})
        written = [(event.step, value.tag) for event in events(writer.path) for value in event.summary.value]
        assert len(written) == 2 * step and written[-2:] == [(step, "train/loss"), (step, "train/lr")]
    writer.close()


def test_a_failed_event_write_raises_in_the_callers_thread_naming_the_file(tmp_path):
    writer = metrics.TensorBoardWriter(tmp_path)
    with open("/dev/full", "wb", buffering=0) as full:
        writer._file._file = full  # every write to it fails with ENOSPC, on tensorboardX's thread
        with pytest.raises(OSError) as failed:
            writer.write_scalars(1, {"train/loss": 1.0})
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(writer.path)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch (the torch extra) is not installed")
def test_tensorboardx_is_imported_without_torch_and_torch_still_imports(tmp_path):
    code = (
        "import sys\n"
        "from resnet_jax.train import metrics\n"
        "metrics.TensorBoardWriter(sys.argv[1]).close()\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
