"""What a run costs besides its train steps, on this machine, for one checkout of the code:

    python experiments/lean_runs_benchmark.py --repo . --data_dir DIR --scratch /tmp/lean > RESULT.json

Runs, each in its own process from ``--repo``: the digits quick start (``configs/digits.py``),
Fashion-MNIST ResNet-20 (``configs/fashion_mnist.py:resnet20,budget``, ``--steps`` steps) and, with
``--synthetic``, the same network at batch 128 on the synthetic dataset at 28x28x3, then the train step
alone (``python -m resnet_jax.benchmark --model cifar_resnet20 --batch_size 128 --image_size 28``;
since one program serves both, the loop's own train program). It reports each run's time to the first
step (its ``startup/*`` record), peak resident memory (the process's ``ru_maxrss``), whether TensorFlow
was imported, and the loop's steady-state examples/s (the median of the log intervals after the first
two) as a ratio to the step alone. ``DIR`` must hold Fashion-MNIST, prepared (TFDS and, for the new
code, its numpy copy).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT_S = 3600
TENSORFLOW_MARK = "imported tensorflow: "
# python -m resnet_jax.main ARGUMENTS, saying on exit whether the process imported TensorFlow.
REPORTING_TENSORFLOW = (
    "import atexit, runpy, sys\n"
    f"atexit.register(lambda: print('{TENSORFLOW_MARK}' + str('tensorflow' in sys.modules), file=sys.stderr))\n"
    "sys.argv = ['resnet_jax.main', *{arguments!r}]\n"
    "runpy.run_module('resnet_jax.main', run_name='__main__', alter_sys=True)\n"
)


def _child(command: list[str], repo: Path) -> tuple[float, int, str, str]:
    """Run ``command`` in ``repo``: (wall seconds, its peak RSS in MiB, stdout, stderr). A wrapper process reads
    the peak of its only child, so no other process's memory mixes in."""
    code = (
        "import resource, subprocess, sys\n"
        "completed = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(completed.stderr)\n"
        "print(completed.stdout)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(completed.returncode)\n"
    )
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code, *command], cwd=repo, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if completed.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    *stdout, peak_kib = completed.stdout.rstrip().splitlines()
    return time.perf_counter() - started, int(peak_kib) // 1024, "\n".join(stdout), completed.stderr


def _run(repo: Path, workdir: Path, config: str, data_dir: str, *flags: str) -> dict:
    """One training run; its start-up record, examples/s per log interval, peak memory and TensorFlow use."""
    arguments = [f"--config={config}", f"--workdir={workdir}", f"--config.data_dir={data_dir}"]
    arguments += ["--config.compilation_cache_dir=none", *flags]
    command = [sys.executable, "-c", REPORTING_TENSORFLOW.format(arguments=arguments)]
    wall, peak_mib, _, stderr = _child(command, repo)
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    startup = next(line for line in lines if "startup/total_s" in line)
    rates = [line["train/examples_per_sec"] for line in lines if "train/examples_per_sec" in line]
    return {
        "command": " ".join(["python -m resnet_jax.main", *arguments]),
        "startup_s": {key.removeprefix("startup/"): value for key, value in startup.items() if "startup/" in key},
        "process_wall_s": wall,
        "peak_rss_mib": peak_mib,
        "imported_tensorflow": f"{TENSORFLOW_MARK}True" in stderr,
        "examples_per_sec_steady": statistics.median(rates[2:]) if len(rates) > 2 else None,
    }


def main() -> None:
    """Run the cases and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="the checkout to measure")
    parser.add_argument("--data_dir", required=True, help="TFDS data directory with Fashion-MNIST prepared")
    parser.add_argument("--scratch", required=True, help="a directory for workdirs (emptied first)")
    parser.add_argument("--steps", type=int, default=300, help="Fashion-MNIST (and synthetic) train steps")
    parser.add_argument("--synthetic", action="store_true", help="also time the loop on the synthetic dataset")
    args = parser.parse_args()
    repo, scratch = Path(args.repo).resolve(), Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    digits = _run(repo, scratch / "digits", "configs/digits.py", args.data_dir)
    per_run = [
        f"--config.num_train_steps={args.steps}",
        "--config.log_every_steps=25",
        f"--config.eval_every_steps={args.steps}",
        f"--config.checkpoint_every_steps={args.steps}",
    ]
    fashion_mnist = _run(
        repo,
        scratch / "fashion_mnist",
        "configs/fashion_mnist.py:resnet20,budget",
        args.data_dir,
        *per_run,
    )
    synthetic = None
    if args.synthetic:
        shape = ["--config.model=cifar_resnet20", "--config.batch_size=128", "--config.image_size=28"]
        synthetic = _run(repo, scratch / "synthetic", "configs/default.py", args.data_dir, *shape, *per_run)
    benchmark = [sys.executable, "-m", "resnet_jax.benchmark", "--model", "cifar_resnet20", "--batch_size", "128"]
    benchmark += ["--image_size", "28", "--steps", "30", "--json"]
    _, peak_mib, stdout, _ = _child(benchmark, repo)
    step_alone = json.loads(stdout)
    loop_rate = fashion_mnist["examples_per_sec_steady"]
    report = {
        "repo_commit": commit,
        "host_cpus": os.cpu_count(),
        "digits": digits,
        "fashion_mnist": fashion_mnist,
        "step_alone": {
            "command": " ".join(benchmark[1:]),
            "examples_per_sec": step_alone["examples_per_sec"],
            "peak_rss_mib": peak_mib,
        },
        "loop_over_step_alone": loop_rate / step_alone["examples_per_sec"],
    }
    if synthetic:
        report["synthetic"] = synthetic
        report["synthetic_loop_over_step_alone"] = synthetic["examples_per_sec_steady"] / step_alone["examples_per_sec"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
