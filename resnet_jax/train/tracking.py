"""Weights & Biases: the run's config, every scalar of ``metrics.jsonl`` at the same steps, and its results.

Asked for with ``--config.wandb_project=NAME``; ``wandb`` (the ``wandb`` extra) is imported only then.
The W&B run id is kept in ``WORKDIR/wandb_run.json``, so a resumed run continues the same W&B run.
Scalars are logged against our own ``step`` (``define_metric``), not W&B's internal counter, so that a
resume that repeats steps after its checkpoint appends rows instead of having them dropped.
W&B is a mirror, never a reason to stop: the first failure (network, quota, a bad key) is logged once,
and the run goes on with ``metrics.jsonl`` and TensorBoard, which hold everything.
"""

import importlib.util
import json
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from absl import logging

from resnet_jax.errors import MissingDependency
from resnet_jax.paths import resolve

RUN_ID_FILE = "wandb_run.json"
STEP = "step"


def require_wandb() -> None:
    """A MissingDependency naming the extra unless ``wandb`` is installed (looked up, not imported)."""
    if importlib.util.find_spec("wandb") is None:
        raise MissingDependency(
            "wandb_project is set, so the run logs to Weights & Biases, but the wandb package is not installed. "
            "Install it with `pip install -e '.[wandb]'` (or `pip install wandb`), or leave wandb_project empty; "
            "metrics.jsonl and TensorBoard record every scalar either way."
        )


def settings(config: Any) -> dict[str, str] | None:
    """The W&B run's project, entity, name and group from the config's ``wandb_*`` fields; None when off."""
    if not config.wandb_project:
        return None
    return {
        "project": config.wandb_project,
        "entity": config.wandb_entity,
        "name": config.wandb_run_name,
        "group": config.wandb_group,
    }


class WandbWriter:
    """Mirrors the metric writers' calls into one W&B run; a failure disables it after one warning."""

    def __init__(self, workdir: str | os.PathLike, settings: Mapping[str, str], config: Mapping[str, Any]):
        self._run = None
        self._call(lambda: self._start(resolve(workdir) / RUN_ID_FILE, settings, config))

    def _start(self, id_file, settings: Mapping[str, str], config: Mapping[str, Any]) -> None:
        import wandb

        run_id = json.loads(id_file.read_text())["id"] if id_file.exists() else secrets.token_hex(4)
        if not id_file.exists():
            id_file.write_text(json.dumps({"id": run_id, **settings}) + "\n")
        self._run = wandb.init(
            project=settings["project"],
            entity=settings["entity"] or None,
            name=settings["name"] or None,
            group=settings["group"] or None,
            id=run_id,
            resume="allow",
            config=dict(config),
        )
        self._run.define_metric(STEP)
        self._run.define_metric("*", step_metric=STEP)
        logging.info("Logging to W&B run %s (id %s, kept in %s).", self._run.name, run_id, id_file)

    def _call(self, action: Callable[[], None]) -> None:
        """Run one W&B action; the first failure is logged once and turns the writer off."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - any W&B failure (network, quota, auth) must not stop training
            logging.warning(
                "W&B logging failed and is off for the rest of this run (%s: %s). Training goes on; "
                "metrics.jsonl and TensorBoard in the workdir hold every scalar.",
                type(error).__name__,
                error,
            )
            self._run = None

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Log one row: ``step`` and every scalar, as ``metrics.jsonl`` holds them."""
        if self._run is not None:
            row = {STEP: int(step), **{name: float(np.asarray(value)) for name, value in scalars.items()}}
            self._call(lambda: self._run.log(row))

    def write_results(self, results: Mapping[str, Any]) -> None:
        """The final results as the run's summary."""
        if self._run is not None:
            self._call(lambda: self._run.summary.update(dict(results)))

    def flush(self) -> None:
        """W&B sends in the background; nothing to flush."""

    def close(self) -> None:
        """Finish the W&B run (it uploads what is pending, or keeps it for ``wandb sync`` offline)."""
        if self._run is not None:
            self._call(self._run.finish)
            self._run = None
