"""Kill a training run with SIGKILL at random moments, checkpoint writes included; restart it each time.

    python experiments/kill_harness.py --workdir DIR [--kills 10] [--seed 0] [-- MAIN_FLAGS...]

First it trains an uninterrupted reference in DIR/reference. Then it starts the same command in
DIR/killed and, ``--kills`` times, waits until the run is making progress again and kills it: at a
random step within the next two checkpoint intervals, or (every other kill) while an orbax
checkpoint is being written, once a new checkpoint has landed since the restart (so the run always
moves on). After the last kill the run is let finish. The final parameters, BN statistics and eval
metrics must be bitwise those of the reference. It prints one JSON object: kills, restarts, kills
that landed during a checkpoint write, and the time each restart lost (start-up until training moves
again, plus the steps redone since the last checkpoint). Every wait is bounded. Setting
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
    "--config.dropout_rate=0.2",
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
    """Every complete line of metrics.jsonl, in order (restarts repeat steps)."""
    metrics = workdir / "metrics.jsonl"
    lines = metrics.read_text().split("\n")[:-1] if metrics.exists() else []  # the last piece may be partial
    return [json.loads(line) for line in lines if line.strip()]


def _logged_steps(workdir: Path) -> list[int]:
    """The step of every complete line of metrics.jsonl, in order (restarts repeat steps)."""
    return [record["step"] for record in _records(workdir)]


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
    restarts, during_write, lost_startup_s, redone_steps, expected_starts = [], 0, [], [], []
    killed_start = time.monotonic()
    for kill in range(kills):
        lines_before = len(_logged_steps(killed))
        resumed_from = max(_checkpoint_steps(killed), default=0)
        launched = time.monotonic()
        process = _start(killed, flags, env)
        moving = _wait(
            lambda: len(_logged_steps(killed)) > lines_before,  # noqa: B023 (called before the next iteration)
            timeout_s,
            "training to move",
            process,
        )
        lost_startup_s.append(time.monotonic() - launched)
        if moving:  # it trained, so its start-up record is there: one step after the checkpoint it found
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
        expected_starts.append(max(_checkpoint_steps(killed), default=0) + 1)
        _run_to_end(killed, flags, env, timeout_s)
    killed_s = time.monotonic() - killed_start

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
        "eval": killed_eval,
        "reference_wall_s": reference_s,
        "killed_run_wall_s": killed_s,
        "time_lost_per_restart_s": (killed_s - reference_s) / max(1, len(restarts)),
        "startup_until_training_moves_s": float(np.mean(lost_startup_s)) if lost_startup_s else None,
        "steps_redone_per_restart": float(np.mean(redone_steps)) if redone_steps else None,
        "restart_log": restarts,
    }


def passed(figures: dict) -> bool:
    """Every restart resumed at its checkpoint and the killed run ended bitwise equal to the reference."""
    return all(
        figures[key]
        for key in ("every_restart_resumed_at_its_checkpoint", "bitwise_identical_state", "identical_eval_metrics")
    )


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
