"""Kill-and-resume through the real command line: the final state equals an uninterrupted run's."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from resnet_jax.train import checkpoint

# One worker runs the shared uninterrupted reference once; every test here starts the real command: slow.
pytestmark = [pytest.mark.xdist_group("resume"), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
NUM_STEPS = 60
TIMEOUT_S = 240
FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    f"--config.num_train_steps={NUM_STEPS}",
    "--config.log_every_steps=2",
    "--config.checkpoint_every_steps=10",
    "--config.eval_every_steps=1000",
    "--config.synthetic.num_eval_examples=40",
    "--config.dropout_rate=0.2",  # the dropout RNG must resume too
    "--config.ema_decay=0.9",  # and the EMA parameters
]


def start(workdir: Path, num_devices: int = 8) -> subprocess.Popen:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}")
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    """Wait for a run to end well; its stderr."""
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def final_state(workdir: Path) -> dict:
    """The whole saved state: step, params, batch_stats, optimizer state, RNG and EMA parameters."""
    tree = checkpoint.load_tree(workdir)
    assert {"step", "params", "batch_stats", "opt_state", "rng", "ema_params"} <= set(tree)
    return tree


def starts(workdir: Path) -> list[tuple[int, str]]:
    """(first step, 'init' or 'restore') of each process that trained in ``workdir``, from metrics.jsonl."""
    records = [_parsed(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [
        (record["step"], "restore" if "startup/restore_s" in record else "init")
        for record in records
        if "startup/total_s" in record
    ]


def train_steps_logged(workdir: Path) -> list[int]:
    records = [_parsed(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [record["step"] for record in records if "train/loss" in record]


def _parsed(line: str) -> dict:
    """One metrics.jsonl record; {} for a line a hard kill cut short (the next process appends after it)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {}


def assert_same(a: dict, b: dict, relative: float) -> None:
    """Every leaf equal to within ``relative`` times that leaf's largest magnitude (0: bitwise)."""
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, atol=relative * np.abs(y).max(), rtol=0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    finish(start(workdir))
    return workdir


def test_sigterm_checkpoints_exits_cleanly_and_resumes_exactly(uninterrupted, tmp_path):
    process = start(tmp_path)
    metrics = tmp_path / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and '"step": 4,' in metrics.read_text(), "training to start")
    process.send_signal(signal.SIGTERM)
    finish(process)
    stopped_at = checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step()
    assert stopped_at is not None and stopped_at < NUM_STEPS, "the run ended before SIGTERM arrived"
    assert not (tmp_path / "results.json").exists()
    assert not (tmp_path / "lease.json").exists()  # a run that ends releases its workdir
    # As if a run on another machine had died holding the workdir ten minutes ago: the restart takes over.
    stale = dict(host="another-node", pid=1, process_started=None, started=0.0, heartbeat=time.time() - 600)
    (tmp_path / "lease.json").write_text(json.dumps({**stale, "token": "theirs"}))

    stderr = finish(start(tmp_path))  # the same command again
    assert "Taking over the lease" in stderr and "its heartbeat has not moved" in stderr
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step() == NUM_STEPS
    assert starts(tmp_path) == [(1, "init"), (stopped_at + 1, "restore")]  # it resumed, it did not restart
    logged = train_steps_logged(tmp_path)
    assert logged == sorted(set(logged)) and logged[-1] == NUM_STEPS  # no step trained twice
    assert_same(final_state(tmp_path), final_state(uninterrupted), relative=0)
    resumed = (tmp_path / "results.json").read_text()
    assert resumed.split('"wall_time_s"')[0] == (uninterrupted / "results.json").read_text().split('"wall_time_s"')[0]


def test_hard_kill_resumes_from_the_last_checkpoint_on_another_device_count(uninterrupted, tmp_path):
    process = start(tmp_path)
    wait_for(lambda: (tmp_path / "checkpoints" / "20").is_dir(), "the step-20 checkpoint")
    process.kill()
    process.wait(timeout=TIMEOUT_S)
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step() < NUM_STEPS

    killed_at = checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step()
    stderr = finish(start(tmp_path, num_devices=4))  # at once: the lease's holder is a dead process on this host
    assert f"Taking over the lease {tmp_path}/lease.json of a run that is gone" in stderr
    assert starts(tmp_path) == [(1, "init"), (killed_at + 1, "restore")]
    # Another device count sums in another order: equal up to float rounding, not bitwise.
    assert_same(final_state(tmp_path), final_state(uninterrupted), relative=1e-3)


def test_a_second_launch_is_refused_before_compiling_and_the_first_ends_as_a_lone_run(uninterrupted, tmp_path):
    first = start(tmp_path)
    wait_for(lambda: (tmp_path / "checkpoints" / "10").is_dir(), "the step-10 checkpoint")
    first.send_signal(signal.SIGSTOP)  # still alive, and still running when the second launch looks
    try:
        second = subprocess.run(
            [sys.executable, "-m", "resnet_jax.main", f"--workdir={tmp_path}", *FLAGS],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1, second.stderr[-3000:]
    (paragraph,) = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert f"another run is using the workdir {tmp_path}: host " in paragraph and f"pid {first.pid}, since" in paragraph
    assert "Traceback" not in second.stderr and "Derived sizes" not in second.stderr  # refused before compiling
    finish(first)
    assert starts(tmp_path) == [(1, "init")]  # one run trained here
    assert_same(final_state(tmp_path), final_state(uninterrupted), relative=0)


def stop_when_logged(workdir: Path, marker: str, signals: list[int], tmp_path: Path) -> tuple[int, str]:
    """Start a fresh run with no compilation cache; send ``signals`` once ``marker`` is logged: (exit code, stderr)."""
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    command = [
        sys.executable,
        "-m",
        "resnet_jax.main",
        f"--workdir={workdir}",
        *FLAGS,
        "--config.compilation_cache_dir=none",
    ]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        wait_for(lambda: marker in log.read_text() or process.poll() is not None, marker)
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.2)
        process.wait(timeout=TIMEOUT_S)
    return process.returncode, log.read_text()


def assert_one_clean_line(stderr: str, signal_name: str) -> None:
    assert "Traceback" not in stderr and "Segmentation fault" not in stderr and "Fatal Python error" not in stderr
    assert sum(line.startswith(f"Stopped by {signal_name}") for line in stderr.splitlines()) == 1, stderr[-3000:]


def test_ctrl_c_during_compilation_stops_before_the_first_step_with_one_line(tmp_path):
    returncode, stderr = stop_when_logged(tmp_path / "run", "Derived sizes", [signal.SIGINT], tmp_path)
    assert_one_clean_line(stderr, "SIGINT")
    saved = checkpoint.Checkpointer(tmp_path / "run" / "checkpoints").latest_step()
    assert (returncode, saved) == (1, None)  # the signal landed while compiling: no step ran, nothing saved
    assert "at step 0: no checkpoint was written yet." in stderr


def test_ctrl_c_twice_during_compilation_exits_at_once(tmp_path):
    returncode, stderr = stop_when_logged(tmp_path / "run", "Derived sizes", [signal.SIGINT, signal.SIGINT], tmp_path)
    assert returncode == 128 + signal.SIGINT
    assert_one_clean_line(stderr, "SIGINT twice")


def test_sigterm_during_start_up_ends_with_one_line(tmp_path):
    returncode, stderr = stop_when_logged(tmp_path / "run", "Running as a single process", [signal.SIGTERM], tmp_path)
    assert returncode in (128 + signal.SIGTERM, 1)  # before the run set up its stop request, or after
    assert_one_clean_line(stderr, "SIGTERM")
