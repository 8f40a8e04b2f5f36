"""Kill a training run with SIGKILL at random moments, checkpoint writes included; restart it each time.

    python experiments/kill_harness.py --workdir DIR [--kills 10] [--seed 0] [-- MAIN_FLAGS...]

First it trains an uninterrupted reference in DIR/reference. Then it starts the same command in
DIR/killed and, ``--kills`` times, waits until the run is making progress again and kills it: at a
random step within the next two checkpoint intervals, or (every other kill) while an orbax
checkpoint is being written, once a new checkpoint has landed since the restart (so the run always
moves on). After the last kill the run is let finish. The final parameters, BN statistics and eval
metrics must be bitwise those of the reference, and metrics.jsonl and TensorBoard (read by its own
loader, which honours the purges a resumed run writes) must show each step of the reference once, each
written by the last process that trained it. It prints one JSON object: kills, restarts, kills that
landed during a checkpoint write, and the time each restart lost (start-up until training moves again,
plus the steps redone since the last checkpoint). Every wait is bounded. Setting
JAX_COMPILATION_CACHE_DIR lets restarts skip recompiling.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments
from experiments import runs  # noqa: E402 (after the repository root is on the path)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.num_train_steps=600",
    "--config.log_every_steps=2",
    "--config.checkpoint_every_steps=25",
    "--config.eval_every_steps=100",
    "--config.synthetic.num_eval_examples=40",
    "--config.block_dropout=0.2",
]
EVAL_KEYS = ("step", "eval/top1", "eval/top5", "eval/loss", "num_eval_examples")


def _start(workdir: Path, flags: list[str], env: dict) -> subprocess.Popen:
    """Start the main command; its log goes to a file (a pipe nobody reads would fill up and block it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *flags]
    with (workdir / "harness.log").open("a") as log:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _failure(workdir: Path, return_code: int) -> RuntimeError:
    """The error for a run that failed on its own, with the end of its log."""
    log = (workdir / "harness.log").read_text()
    return RuntimeError(f"training failed (exit code {return_code}):\n{log[-3000:]}")


def _run_to_end(workdir: Path, flags: list[str], env: dict, timeout_s: float) -> None:
    """Train in ``workdir`` until the run finishes; a failure shows the end of its log."""
    process = _start(workdir, flags, env)
    try:
        return_code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if return_code != 0:
        raise _failure(workdir, return_code)


def _records(workdir: Path) -> list[dict]:
    """Every complete line of metrics.jsonl, in order (a restart first cuts it back to its checkpoint)."""
    metrics = workdir / "metrics.jsonl"
    return runs.metrics_records(metrics.read_text()) if metrics.exists() else []


def _logged_steps(workdir: Path) -> list[int]:
    """The step of every complete line of metrics.jsonl, in order."""
    return [record["step"] for record in _records(workdir)]


def _first_steps_taken(workdir: Path) -> int:
    """How many processes in ``workdir`` trained a step: their "First step after" log lines."""
    log = workdir / "harness.log"
    return log.read_text().count("First step after") if log.exists() else 0


def tensorboard_scalars(workdir: str | os.PathLike, tag: str) -> list[tuple[int, float, float]]:
    """(step, value, wall time) of each ``tag`` point TensorBoard shows for ``workdir``, read by its own loader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(os.fspath(workdir), size_guidance={"scalars": 0})  # 0: every point
    accumulator.Reload()  # purge_orphaned_data (its default) drops what a later file purges
    return [(event.step, event.value, event.wall_time) for event in accumulator.Scalars(tag)]


def _each_step_once(workdir: Path, reference: Path, launches: list[tuple[float, int]]) -> tuple[bool, bool]:
    """(metrics.jsonl, TensorBoard): each train step of the reference once, in order, each TensorBoard point
    written by the last process that trained its step (``launches``: (wall time, checkpoint step) of each)."""
    expected = [record["step"] for record in _records(reference) if "train/loss" in record]
    in_jsonl = [record["step"] for record in _records(workdir) if "train/loss" in record] == expected
    shown = tensorboard_scalars(workdir, "train/loss")

    def trained_by_last(step: int, wall_time: float) -> bool:
        launched = max(when for when, resumed_from in launches if resumed_from < step)
        return wall_time >= launched

    in_tensorboard = [step for step, _, _ in shown] == expected and all(
        trained_by_last(step, wall_time) for step, _, wall_time in shown
    )
    return in_jsonl, in_tensorboard


def _start_steps(workdir: Path) -> list[int]:
    """The first step each process trained, from its start-up record."""
    return [record["step"] for record in _records(workdir) if "startup/total_s" in record]


def _checkpoint_steps(workdir: Path) -> list[int]:
    directory = workdir / "checkpoints"
    return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit()) if directory.exists() else []


def _writing_checkpoint(workdir: Path) -> bool:
    directory = workdir / "checkpoints"
    return directory.exists() and any("tmp" in path.name for path in directory.iterdir())


def _wait(condition, timeout_s: float, what: str, process: subprocess.Popen) -> bool:
    """Poll ``condition`` until true (True) or the process ends (False); raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.005)
    return True


def _final(workdir: Path) -> tuple[dict, dict]:
    from resnet_jax.train import checkpoint

    results = json.loads((workdir / "results.json").read_text())
    return checkpoint.load_tree(workdir), {key: results[key] for key in EVAL_KEYS}


def _bitwise_equal(a: dict, b: dict) -> bool:
    import jax

    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(leaves_a) == len(leaves_b) and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))


def run_harness(
    workdir: Path, flags: list[str], kills: int, seed: int, env: dict | None = None, timeout_s: float = 300
) -> dict:
    """Reference run, ``kills`` SIGKILLs and restarts, the finished run compared bitwise; returns the figures."""
    env = dict(os.environ if env is None else env)
    rng = random.Random(seed)
    reference, killed = workdir / "reference", workdir / "killed"
    start = time.monotonic()
    _run_to_end(reference, flags, env, timeout_s)
    reference_s = time.monotonic() - start

    record = json.loads((reference / "config.json").read_text())
    total_steps, interval = record["derived"]["num_train_steps"], record["checkpoint_every_steps"]
    restarts, during_write, lost_startup_s, redone_steps, expected_starts, launches = [], 0, [], [], [], []
    killed_start = time.monotonic()
    for kill in range(kills):
        taken_before = _first_steps_taken(killed)
        resumed_from = max(_checkpoint_steps(killed), default=0)
        launched = time.monotonic()
        launches.append((time.time(), resumed_from))
        process = _start(killed, flags, env)
        moving = _wait(
            lambda: _first_steps_taken(killed) > taken_before,  # noqa: B023 (called before the next iteration)
            timeout_s,
            "training to move",
            process,
        )
        lost_startup_s.append(time.monotonic() - launched)
        # It cut metrics.jsonl back to its checkpoint, start-up records of the processes after it included;
        # if it trained, its own is there: one step after the checkpoint it found.
        expected_starts = [step for step in expected_starts if step <= resumed_from]
        if moving:
            expected_starts.append(resumed_from + 1)
        if kill % 2 == 1:  # aim at a checkpoint write: the next one after a new checkpoint has landed
            _wait(lambda: max(_checkpoint_steps(killed), default=0) > resumed_from, timeout_s, "a checkpoint", process)  # noqa: B023
            _wait(lambda: _writing_checkpoint(killed), timeout_s, "a checkpoint write", process)
        elif moving:  # at a random step within the next two checkpoint intervals
            target = rng.randint(resumed_from + 1, min(resumed_from + 2 * interval, total_steps - 1))
            _wait(lambda: max(_logged_steps(killed), default=0) >= target, timeout_s, "a random step", process)  # noqa: B023
        writing = _writing_checkpoint(killed)
        if process.poll() not in (None, 0):  # it crashed by itself (a failed restore, say): that is a failure
            raise _failure(killed, process.returncode)
        process.kill()
        process.wait(timeout=timeout_s)
        if (killed / "results.json").exists():  # it finished before the kill landed: no more kills possible
            break
        last_logged = _logged_steps(killed)[-1]
        restarts.append({"kill": kill + 1, "last_logged_step": last_logged, "during_checkpoint_write": writing})
        during_write += writing
        redone_steps.append(max(0, last_logged - max(_checkpoint_steps(killed), default=0)))
    if not (killed / "results.json").exists():
        resumed_from = max(_checkpoint_steps(killed), default=0)
        expected_starts = [step for step in expected_starts if step <= resumed_from] + [resumed_from + 1]
        launches.append((time.time(), resumed_from))
        _run_to_end(killed, flags, env, timeout_s)
    killed_s = time.monotonic() - killed_start
    once_in_jsonl, once_in_tensorboard = _each_step_once(killed, reference, launches)

    reference_variables, reference_eval = _final(reference)
    killed_variables, killed_eval = _final(killed)
    return {
        "kills": len(restarts),
        "restarts": len(restarts),
        "kills_during_checkpoint_write": during_write,
        "bitwise_identical_state": _bitwise_equal(killed_variables, reference_variables),
        "start_steps": _start_steps(killed),
        "every_restart_resumed_at_its_checkpoint": _start_steps(killed) == expected_starts,
        "identical_eval_metrics": killed_eval == reference_eval,
        "each_step_once_in_metrics_jsonl": once_in_jsonl,
        "each_step_once_in_tensorboard": once_in_tensorboard,
        "eval": killed_eval,
        "reference_wall_s": reference_s,
        "killed_run_wall_s": killed_s,
        "time_lost_per_restart_s": (killed_s - reference_s) / max(1, len(restarts)),
        "startup_until_training_moves_s": float(np.mean(lost_startup_s)) if lost_startup_s else None,
        "steps_redone_per_restart": float(np.mean(redone_steps)) if redone_steps else None,
        "restart_log": restarts,
    }


CHECKS = (
    "every_restart_resumed_at_its_checkpoint",
    "bitwise_identical_state",
    "identical_eval_metrics",
    "each_step_once_in_metrics_jsonl",
    "each_step_once_in_tensorboard",
)


def passed(figures: dict) -> bool:
    """Every restart resumed at its checkpoint, the killed run ended bitwise equal to the reference, and its
    metrics.jsonl and TensorBoard show each step once."""
    return all(figures[key] for key in CHECKS)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the harness, print the JSON figures; exit 1 if anything differed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("main_flags", nargs="*", help="flags for resnet_jax.main (after --); default: a tiny run")
    args = parser.parse_args(argv)
    figures = run_harness(args.workdir, args.main_flags or DEFAULT_FLAGS, args.kills, args.seed)
    print(json.dumps(figures, indent=2))
    sys.exit(0 if passed(figures) else 1)


if __name__ == "__main__":
    main()
