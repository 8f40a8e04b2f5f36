"""Kill-and-resume through the real command line: the final state equals an uninterrupted run's, and
metrics.jsonl and TensorBoard show each step once."""

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

from experiments.kill_harness import tensorboard_scalars
from resnet_jax.errors import ExitCode
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
    "--config.block_dropout=0.2",  # the dropout RNG must resume too
    "--config.ema_decay=0.9",  # and the EMA parameters
]


def start(workdir: Path, num_devices: int = 8) -> subprocess.Popen:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}")
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, exit_code: int = ExitCode.FINISHED) -> str:
    """Wait for a run to end with ``exit_code``; its stderr."""
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == exit_code, stderr[-3000:]
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
    """One metrics.jsonl record; {} for a line a hard kill cut short (the next process drops it)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {}


EVERY_LOGGED_STEP = list(range(2, NUM_STEPS + 1, 2))  # log_every_steps=2


def assert_each_step_once(workdir: Path, restarted: float, resumed_from: int) -> None:
    """metrics.jsonl and what TensorBoard shows hold each logged step once, in order (the step a stop signal saved
    at is logged too); TensorBoard's points after ``resumed_from`` are the run's that restarted at ``restarted``
    (time.time()), those up to it the first's."""
    expected = sorted({*EVERY_LOGGED_STEP, resumed_from})
    assert train_steps_logged(workdir) == expected
    shown = tensorboard_scalars(workdir, "train/loss")
    assert [step for step, _, _ in shown] == expected
    assert all((wall_time >= restarted) == (step > resumed_from) for step, _, wall_time in shown), shown


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
    finish(process, ExitCode.RESUME)
    stopped_at = checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step()
    assert stopped_at is not None and stopped_at < NUM_STEPS, "the run ended before SIGTERM arrived"
    assert not (tmp_path / "results.json").exists()
    assert not (tmp_path / "lease.json").exists()  # a run that ends releases its workdir
    # As if a run on another machine had died holding the workdir ten minutes ago: the restart takes over.
    stale = dict(host="another-node", pid=1, process_started=None, started=0.0, heartbeat=time.time() - 600)
    (tmp_path / "lease.json").write_text(json.dumps({**stale, "token": "theirs"}))

    restarted = time.time()
    stderr = finish(start(tmp_path))  # the same command again
    assert "Taking over the lease" in stderr and "its heartbeat has not moved" in stderr
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step() == NUM_STEPS
    assert starts(tmp_path) == [(1, "init"), (stopped_at + 1, "restore")]  # it resumed, it did not restart
    assert_each_step_once(tmp_path, restarted, stopped_at)  # no step trained twice
    assert_same(final_state(tmp_path), final_state(uninterrupted), relative=0)
    resumed = (tmp_path / "results.json").read_text()
    assert resumed.split('"wall_time_s"')[0] == (uninterrupted / "results.json").read_text().split('"wall_time_s"')[0]


# On one 2-core host (2026-12-07) the state after a restart on 4 devices differs from the 8-device run by 1.1e-3
# to 2.3e-3 of a leaf's largest value, on the last landed commit too (issue 41's note); until that is understood
# it is out of CI. A hard kill's resume on the same device count: test_fault_tolerance; bitwise: test_lean_runs.
@pytest.mark.extended
def test_hard_kill_resumes_from_the_last_checkpoint_on_another_device_count(uninterrupted, tmp_path):
    process = start(tmp_path)
    wait_for(lambda: (tmp_path / "checkpoints" / "20").is_dir(), "the step-20 checkpoint")
    process.kill()
    process.wait(timeout=TIMEOUT_S)
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step() < NUM_STEPS

    killed_at = checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step()
    restarted = time.time()
    stderr = finish(start(tmp_path, num_devices=4))  # at once: the lease's holder is a dead process on this host
    assert f"Taking over the lease {tmp_path}/lease.json of a run that is gone" in stderr
    assert starts(tmp_path) == [(1, "init"), (killed_at + 1, "restore")]
    # The steps the killed run logged after its checkpoint were trained again: each shows once, the new run's.
    assert_each_step_once(tmp_path, restarted, killed_at)
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
    assert second.returncode == ExitCode.USER_ERROR, second.stderr[-3000:]
    (paragraph,) = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert f"another run is using the workdir {tmp_path}: host " in paragraph and f"pid {first.pid}, since" in paragraph
    assert "Traceback" not in second.stderr and "Derived sizes" not in second.stderr  # refused before compiling
    finish(first)
    assert starts(tmp_path) == [(1, "init")]  # one run trained here
    assert_same(final_state(tmp_path), final_state(uninterrupted), relative=0)


# Python with the stop signals at their defaults, whatever this test process inherited (a suite started under
# nohup ignores SIGHUP, and an ignored signal stays ignored across exec): the run meets them as a shell gives them.
WITH_DEFAULT_SIGNALS = [
    sys.executable,
    "-c",
    "import os, signal, sys\n"
    "for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(signum, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
]


def stop_when_logged(workdir: Path, marker: str, signals: list[int], tmp_path: Path) -> tuple[int, str]:
    """Start a fresh run with no compilation cache; send ``signals`` once ``marker`` is logged: (exit code, stderr)."""
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    command = [
        *WITH_DEFAULT_SIGNALS,
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
    assert (returncode, saved) == (ExitCode.RESUME, None)  # the signal landed while compiling: no step ran
    assert "at step 0: it had not started training, so nothing was lost; run the same command to start." in stderr


def test_ctrl_c_twice_during_compilation_exits_at_once(tmp_path):
    returncode, stderr = stop_when_logged(tmp_path / "run", "Derived sizes", [signal.SIGINT, signal.SIGINT], tmp_path)
    assert returncode == 128 + signal.SIGINT
    assert_one_clean_line(stderr, "SIGINT twice")


def test_sigterm_during_start_up_ends_with_one_line(tmp_path):
    returncode, stderr = stop_when_logged(tmp_path / "run", "One process, on", [signal.SIGTERM], tmp_path)
    assert returncode == ExitCode.RESUME  # before the run set up its stop request, or after: nothing was lost
    assert_one_clean_line(stderr, "SIGTERM")


@pytest.mark.parametrize("nohup", [False, True])
def test_sighup_is_a_stop_request_unless_the_process_was_started_with_it_ignored(nohup):
    """A closed terminal or ssh session sends SIGHUP: the run stops as on SIGTERM. ``nohup`` ignores SIGHUP so
    that a run outlives its terminal: then it stays ignored."""
    program = (
        "import os, signal\n"
        "from resnet_jax.runtime.preemption import StopRequest\n"
        "with StopRequest() as request:\n"
        "    os.kill(os.getpid(), signal.SIGHUP)\n"
        "    print(request.signal_name)\n"
    )
    launcher = ["nohup", sys.executable] if nohup else WITH_DEFAULT_SIGNALS
    completed = subprocess.run([*launcher, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout == ("None\n" if nohup else "SIGHUP\n")
