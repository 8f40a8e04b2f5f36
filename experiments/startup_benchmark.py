"""Start-up of the digits quick start, launch to first training step, with and without JAX's
persistent compilation cache, for a fresh run and for a resume after SIGTERM:

    python experiments/startup_benchmark.py --scratch /tmp/startup_bench > experiments/results/startup_cpu2_digits.json

Each case runs ``python -m resnet_jax.main --config=configs/digits.py`` in its own process and reads the
``startup/*`` seconds that process wrote to ``metrics.jsonl`` (launch, data, init or restore, first step).
The dataset is prepared once beforehand, so no case pays for building it.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from resnet_jax.errors import ExitCode

COMMAND = [sys.executable, "-m", "resnet_jax.main", "--config=configs/digits.py"]
TIMEOUT_S = 900


def last_startup(workdir: Path) -> dict:
    """The ``startup/*`` scalars of the last process that trained in ``workdir``."""
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    (last,) = [line for line in lines if "startup/total_s" in line][-1:]
    return {key.removeprefix("startup/"): value for key, value in last.items() if key.startswith("startup/")}


def run(workdir: Path, cache: str, data_dir: Path, stop_after_first_step: bool = False) -> dict:
    """One run of the digits command; with ``stop_after_first_step``, SIGTERM once its first step is logged."""
    argv = [
        *COMMAND,
        f"--workdir={workdir}",
        f"--config.compilation_cache_dir={cache}",
        f"--config.data_dir={data_dir}",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = workdir / "metrics.jsonl"
    while stop_after_first_step and process.poll() is None and time.perf_counter() - started < TIMEOUT_S:
        if metrics.exists() and "startup/total_s" in metrics.read_text():
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.5)
    returncode = process.wait(timeout=TIMEOUT_S)
    if returncode != (ExitCode.RESUME if stop_after_first_step else ExitCode.FINISHED):
        raise RuntimeError(f"{' '.join(argv)} exited with {returncode}")
    return {**last_startup(workdir), "process_wall_s": time.perf_counter() - started}


def main() -> None:
    """Run the cases in order (each cache case depends on the one before) and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", required=True, help="a directory for workdirs, caches and the dataset")
    scratch = Path(parser.parse_args().scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    data_dir, cache = scratch / "tfds", scratch / "cache"
    subprocess.run(
        [sys.executable, "-m", "resnet_jax.data.prepare", "digits", "--data_dir", str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cases = {}
    for name, setting in (("no_cache", "none"), ("cache", str(cache))):
        cases[f"fresh_{name}"] = run(scratch / f"fresh_{name}", setting, data_dir)
        if name == "cache":  # the first run filled the cache; a second fresh run reads it
            cases["fresh_cache_filled"] = run(scratch / "fresh_cache_filled", setting, data_dir)
        stopped = scratch / f"resumed_{name}"
        run(stopped, setting, data_dir, stop_after_first_step=True)
        cases[f"resume_{name}"] = run(stopped, setting, data_dir)
    print(json.dumps({"command": " ".join(COMMAND), "host_cpus": os.cpu_count(), "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
