"""Reading finished (or running) workdirs, local or ``gs://``: config.json, results.json and metrics.jsonl."""

import dataclasses
import json
import os

from etils import epath

from resnet_jax.paths import RECORD_EXTRAS, resolve


@dataclasses.dataclass(frozen=True)
class Run:
    """One workdir: its resolved config (fields only), derived sizes, final results and metric lines."""

    workdir: epath.Path
    config: dict
    derived: dict
    results: dict | None
    metrics: list[dict]

    @property
    def test_error(self) -> float | None:
        """Final test error in percent (100 - top-1), or None if the run has not finished."""
        return None if self.results is None else 100 * (1 - self.results["eval/top1"])

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of every metrics.jsonl line that has ``key``."""
        lines = [line for line in self.metrics if key in line]
        return [line["step"] for line in lines], [line[key] for line in lines]

    def error_curve(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, error in percent) from a top-1 accuracy key such as 'eval/top1' or 'train/top1'."""
        steps, values = self.curve(key)
        return steps, [100 * (1 - value) for value in values]

    @property
    def best_test_error(self) -> tuple[float, int] | None:
        """(lowest test error in percent over every evaluation, its step), or None before the first one."""
        steps, errors = self.error_curve("eval/top1")
        return min(zip(errors, steps, strict=True)) if errors else None

    @property
    def final_train_error(self) -> float | None:
        """Training error in percent over the last logged interval (augmented batches, BN in training mode)."""
        errors = self.error_curve("train/top1")[1]
        return errors[-1] if errors else None


def metrics_records(text: str) -> list[dict]:
    """The complete lines of metrics.jsonl's ``text``, in order: the piece after the last newline may be a line
    a kill cut short (the resume drops it)."""
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def load_run(workdir: str | os.PathLike) -> Run:
    """The records of one workdir (results None and metrics [] where not written yet)."""
    workdir = resolve(workdir)
    record = json.loads((workdir / "config.json").read_text())
    config = {key: value for key, value in record.items() if key not in RECORD_EXTRAS}
    results_path, metrics_path = workdir / "results.json", workdir / "metrics.jsonl"
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    metrics = metrics_records(metrics_path.read_text()) if metrics_path.exists() else []
    return Run(workdir, config, record.get("derived", {}), results, metrics)


def find_runs(root: str | os.PathLike) -> list[Run]:
    """Every workdir (a folder with config.json) under ``root``, in path order."""
    workdirs = []
    for folder, subfolders, files in resolve(root).walk():
        subfolders[:] = [name for name in subfolders if name != "checkpoints"]  # no need to list them (GCS RPCs)
        if "config.json" in files:
            workdirs.append(folder)
    return [load_run(workdir) for workdir in sorted(workdirs, key=os.fspath)]
