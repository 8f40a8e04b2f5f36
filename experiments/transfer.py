"""The transfer-learning study on real images: does the common fine-tuning advice hold?

    python experiments/transfer.py run --data_dir DIR --root ROOT       # export, pretrain, fine-tune (resumable)
    python experiments/transfer.py report --root ROOT --out experiments/results/transfer_fashion_mnist

1. ``cifar_resnet20`` is pretrained on Fashion-MNIST classes 0-4 (30,000 images, ``configs/fashion_mnist.py``'s
   ``budget`` schedule), read as ``folder:ROOT/folders/pretrain``.
2. Classes 5-9 are exported as folder datasets with N = 10, 100 and 1,000 train images per class and all
   5,000 test images of those classes (``experiments/export_fashion_mnist_folders.py``).
3. Each N is fine-tuned with ``configs/finetune.py``'s five strategies (scratch, probe, discriminative, full,
   last), three seeds each, through ``folder:PATH`` like any user's data.

Every run is ``python -m resnet_jax.main`` in its own workdir under ROOT/runs; a finished run (results.json)
is skipped, an interrupted one resumes, so re-running the same command finishes the study. ``report`` writes
the commands, a JSON of every run's test error and the figure of test error against N.
"""

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from configs.finetune import STRATEGIES  # noqa: E402
from experiments import export_fashion_mnist_folders as export  # noqa: E402
from experiments.runs import load_run  # noqa: E402

SEEDS = (0, 1, 2)
LABELS = {
    "scratch": "(a) from scratch",
    "probe": "(b) linear probe",
    "discriminative": "(c) all layers, pretrained at 0.1x lr",
    "full": "(d) all layers at the full lr",
    "last": "(e) last stage and head",
}


def pretrain_command(root: Path, data_dir: str) -> list[str]:
    """The pretraining run: the budget Fashion-MNIST recipe on the classes 0-4 folder."""
    return [
        sys.executable,
        "-m",
        "resnet_jax.main",
        "--config=configs/fashion_mnist.py:resnet20,budget",
        f"--workdir={root / 'runs' / 'pretrain'}",
        f"--config.dataset=folder:{root / 'folders' / 'pretrain'}",
        f"--config.data_dir={data_dir}",
    ]


def finetune_command(root: Path, data_dir: str, shots: int, strategy: str, seed: int) -> list[str]:
    """One fine-tuning run: a strategy of configs/finetune.py on the N-shot target folder, one seed."""
    command = [
        sys.executable,
        "-m",
        "resnet_jax.main",
        f"--config=configs/finetune.py:{strategy}",
        f"--workdir={finetune_workdir(root, shots, strategy, seed)}",
        f"--config.dataset=folder:{root / 'folders' / f'target_n{shots}'}",
        f"--config.data_dir={data_dir}",
        f"--config.seed={seed}",
    ]
    if strategy != "scratch":
        command.append(f"--config.init_from={root / 'runs' / 'pretrain'}")
    return command


def finetune_workdir(root: Path, shots: int, strategy: str, seed: int) -> Path:
    """Where one fine-tuning run lives."""
    return root / "runs" / f"n{shots}_{strategy}_seed{seed}"


def planned(root: Path, data_dir: str) -> list[list[str]]:
    """Every command of the study, pretraining first; the small N first, so that results land early."""
    commands = [pretrain_command(root, data_dir)]
    for shots in export.SHOTS:
        for seed in SEEDS:
            commands += [finetune_command(root, data_dir, shots, strategy, seed) for strategy in STRATEGIES]
    return commands


def workdir_of(command: list[str]) -> Path:
    """The ``--workdir`` of a command."""
    return Path(next(arg for arg in command if arg.startswith("--workdir=")).split("=", 1)[1])


def run(root: Path, data_dir: str) -> None:
    """Export the folders, then run every command whose workdir has no results.json yet."""
    export.export(data_dir, root / "folders")
    commands = planned(root, data_dir)
    for number, command in enumerate(commands, 1):
        if (workdir_of(command) / "results.json").exists():
            continue
        print(f"[{number}/{len(commands)}] {shlex.join(command[1:])}", flush=True)
        log = workdir_of(command).with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as output:
            finished = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
        if finished.returncode:
            raise SystemExit(f"{workdir_of(command).name} exited with {finished.returncode}; see {log}")


def report(root: Path, out: Path) -> dict:
    """Write commands.txt, transfer.json and transfer.png under ``out``; returns the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    data_dir = "DATA_DIR"
    commands = [pretrain_command(root, data_dir), *planned(root, data_dir)[1:]]
    (out / "commands.txt").write_text(
        "# from the repository root; ROOT is the study's directory, DATA_DIR holds the prepared fashion_mnist\n"
        "python experiments/transfer.py run --data_dir DATA_DIR --root ROOT\n"
        + "".join(f"{shlex.join(['python', *c[1:]])}\n" for c in commands).replace(str(root), "ROOT")
    )
    pretrain = load_run(root / "runs" / "pretrain")
    cells = {}
    for shots in export.SHOTS:
        for strategy in STRATEGIES:
            errors = []
            for seed in SEEDS:
                workdir = finetune_workdir(root, shots, strategy, seed)
                if (workdir / "results.json").exists():
                    errors.append(round(load_run(workdir).test_error, 3))
            cells[f"n{shots}_{strategy}"] = {"shots_per_class": shots, "strategy": strategy, "test_errors": errors}
    results = {
        "pretrain": {"test_error": pretrain.test_error, "num_eval_examples": pretrain.results["num_eval_examples"]},
        "cells": cells,
    }
    (out / "transfer.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "transfer.md").write_text(markdown_table(results))
    figure(results, out / "transfer.png")
    return results


def markdown_table(results: dict) -> str:
    """Test error (%) as mean +- std over seeds: one row per strategy, one column per N."""
    header = "| strategy | " + " | ".join(f"N = {shots:,} per class" for shots in export.SHOTS) + " |\n"
    lines = [header, "|---|" + "---:|" * len(export.SHOTS) + "\n"]
    for strategy in STRATEGIES:
        cells = []
        for shots in export.SHOTS:
            errors = results["cells"][f"n{shots}_{strategy}"]["test_errors"]
            mean, spread = mean_and_std(errors) if errors else (None, None)
            cells.append(f"{mean:.2f} +- {spread:.2f} (n={len(errors)})" if errors else "not run")
        lines.append(f"| {LABELS[strategy]} | " + " | ".join(cells) + " |\n")
    return "".join(lines)


def mean_and_std(errors: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(errors) / len(errors)
    spread = (sum((e - mean) ** 2 for e in errors) / (len(errors) - 1)) ** 0.5 if len(errors) > 1 else 0.0
    return mean, spread


def figure(results: dict, path: Path) -> None:
    """Test error against train images per class (log scale), one line per strategy, error bars over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure_, axis = plt.subplots(figsize=(6.4, 4.4))
    for strategy in STRATEGIES:
        cells = [c for c in results["cells"].values() if c["strategy"] == strategy and c["test_errors"]]
        shots = [c["shots_per_class"] for c in cells]
        means, spreads = zip(*(mean_and_std(c["test_errors"]) for c in cells), strict=True) if cells else ((), ())
        axis.errorbar(shots, means, yerr=spreads, marker="o", capsize=3, label=LABELS[strategy])
    axis.set_xscale("log")
    axis.set_xlabel("train images per class (5 classes)")
    axis.set_ylabel("test error (%), 5,000 images")
    axis.set_title("Fine-tuning ResNet-20 from Fashion-MNIST classes 0-4 to classes 5-9", fontsize=10)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure_.tight_layout()
    figure_.savefig(path, dpi=110)
    plt.close(figure_)


def main() -> None:
    """Parse the command line and run or report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument("--root", required=True, type=Path, help="the study's directory (folders/ and runs/)")
    parser.add_argument("--data_dir", default="", help="where fashion_mnist is prepared ('' = TFDS's default)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/transfer_fashion_mnist"))
    args = parser.parse_args()
    root = args.root.expanduser().resolve()
    if args.action == "run":
        run(root, args.data_dir)
    else:
        report(root, args.out)


if __name__ == "__main__":
    main()
