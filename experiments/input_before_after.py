"""Input-pipeline throughput of two commits on the same prepared data, alternating, several rounds each.

    python experiments/input_benchmark_data.py --workdir /tmp/input_bench      # the stand-in archives, once
    python experiments/input_before_after.py --before 86f690a --after HEAD --tag rows \\
        --bench configs/imagenet.py:resnet50,64,30 --bench configs/imagenet.py:resnet50,256,10 --rounds 3 \\
        --data_dir /tmp/input_bench/tfds --out experiments/results

Each commit runs from a git worktree of its own, so each measures its own pipeline code. The rounds
alternate before and after, so a machine that slows down mid-way slows both. It writes each round's
``train_examples_per_sec`` (from ``python -m resnet_jax.benchmark --input_config``), the medians and
this command to ``OUT/input_TAG_cpuN.json``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _benchmark(tree: Path, config: str, batch: int, steps: int, data_dir: str) -> dict:
    """One input benchmark report, measured by the code in ``tree``."""
    command = [sys.executable, "-m", "resnet_jax.benchmark", "--input_config", config, "--data_dir", data_dir]
    command += ["--batch_size", str(batch), "--steps", str(steps), "--json"]
    result = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure both commits, alternating, and write the reports and the medians under --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--tag", required=True, help="names the summary file: input_TAG_cpuN.json")
    parser.add_argument("--bench", action="append", required=True, metavar="CONFIG,BATCH,STEPS")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    benches = [(config, int(batch), int(steps)) for config, batch, steps in (b.split(",") for b in args.bench)]
    commits = {
        name: subprocess.check_output(
            ["git", "-C", str(REPO), "rev-parse", "--short", getattr(args, name)], text=True
        ).strip()
        for name in ("before", "after")
    }
    rates = {(name, *bench): [] for name in commits for bench in benches}
    with tempfile.TemporaryDirectory() as scratch:
        trees = {name: Path(scratch) / name for name in commits}
        for name, commit in commits.items():
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "-f", "-q", str(trees[name]), commit], check=True
            )
        try:
            for round_index in range(args.rounds):
                for bench in benches:
                    for name in commits:
                        report = _benchmark(trees[name], *bench, args.data_dir)
                        rates[(name, *bench)].append(report["train_examples_per_sec"])
                        print(
                            f"round {round_index + 1} {name} {commits[name]} {bench}: "
                            f"{report['train_examples_per_sec']:.0f} train examples/s",
                            flush=True,
                        )
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    rows = [
        {
            "commit": commits[name],
            "which": name,
            "config": config,
            "batch_size": batch,
            "steps": steps,
            "train_examples_per_sec": values,
            "median": statistics.median(values),
        }
        for (name, config, batch, steps), values in rates.items()
    ]
    summary = {"command": " ".join(sys.argv), "host_cpus": os.cpu_count(), "data_dir": args.data_dir, "runs": rows}
    out = Path(args.out) / f"input_{args.tag}_cpu{os.cpu_count()}.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
