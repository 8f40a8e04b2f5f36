"""What a run writes about itself: config.json's record (the resolved config, versions, devices, derived sizes
and the history of changes made on resuming), written atomically, and the run's wall clock across resumes."""

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import optax
from absl import logging
from etils import epath

from resnet_jax.fields import set_names, value_of
from resnet_jax.paths import RECORD_EXTRAS, RESUME_CHANGES
from resnet_jax.runtime import storage
from resnet_jax.train import checkpoint, recipe, sharding
from resnet_jax.train.settings import default_values


def run_record(
    config: Any, sizes: sharding.BatchSizes, length: recipe.Length, learning_rate: float, num_params: int
) -> dict:
    """The resolved config plus versions, devices and derived sizes, as written to config.json."""
    devices = jax.devices()
    return {
        **config.to_dict(),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
        },
        "devices": {
            "platform": devices[0].platform,
            "device_kind": devices[0].device_kind,
            "num_devices": len(devices),
            "num_processes": jax.process_count(),
        },
        "derived": {
            "per_process_batch": sizes.per_process,
            "per_device_batch": sizes.per_device,
            "per_device_microbatch": sizes.per_device_microbatch,
            "base_learning_rate": learning_rate,
            "num_train_steps": length.num_train_steps,
            "steps_per_epoch": length.steps_per_epoch,
            "num_params": num_params,
        },
    }


def with_resume_history(path: epath.Path, record: dict, step: int) -> dict:
    """``record``, plus the history of config changes made on resuming the run recorded at ``path``.

    A resumed run may change its config (a lower learning rate after a divergence, say); each change
    is logged as a warning and kept in config.json as ``{"step", "changes": {field: [before, now]}}``.
    Fields are compared one by one (``group.field`` inside groups). A field that a newer version added,
    at its default, changes nothing and is only noted; one that no longer exists is a change to None.
    """
    if not path.exists():
        return record
    previous = json.loads(path.read_text())
    now, defaults = (json.loads(json.dumps(x, default=str)) for x in (record, default_values()))
    before, after, default = _fields(previous), _fields(now), _fields(defaults)
    unrecorded = [name for name, value in after.items() if name not in before and value == default.get(name)]
    if unrecorded:
        logging.info("Fields added since this run started take their defaults: %s.", ", ".join(unrecorded))
    changes = {
        name: [before.get(name), after.get(name)]
        for name in [*after, *(name for name in before if name not in after)]
        if name not in unrecorded and before.get(name) != after.get(name)
    }
    history = previous.get(RESUME_CHANGES, [])
    if changes:
        logging.warning(
            "Resuming at step %d with a config that differs from %s: %s", step, path, _describe_changes(changes)
        )
        history = [*history, {"step": step, "changes": changes}]
    return {**record, RESUME_CHANGES: history} if history else record


def _fields(record: dict) -> dict[str, Any]:
    """The config fields of a config.json record by dotted name, without the keys that are not fields."""
    fields = {key: value for key, value in record.items() if key not in RECORD_EXTRAS}
    return {name: value_of(fields, name) for name in set_names(fields)}


def _describe_changes(changes: dict[str, list]) -> str:
    return ", ".join(f"{field} {before!r} -> {now!r}" for field, (before, now) in changes.items())


def write_json(path: epath.Path, record: dict) -> None:
    """Write atomically, so a crash never leaves a half-written file."""
    tmp = path.with_suffix(".tmp")
    with storage.naming(tmp):
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


@dataclasses.dataclass(frozen=True)
class RunClock:
    """Seconds the run has spent in ``train_and_evaluate``: this process's, plus those its checkpoint
    carries from the processes before it (work lost after a killed process's last checkpoint is not counted)."""

    started: float
    earlier_s: float
    now: Callable[[], float] = time.time  # the loop's clock, which tests can stand in for

    def __call__(self) -> float:
        return self.earlier_s + self.now() - self.started

    @classmethod
    def resumed(
        cls, started: float, checkpointer: checkpoint.Checkpointer, step: int, now: Callable[[], float] = time.time
    ) -> "RunClock":
        """The clock of a run that starts, or resumes from the checkpoint of ``step``, read from ``now``."""
        earlier = checkpointer.wall_time_s(step) if step else 0.0
        if earlier is None:
            logging.warning("The checkpoint of step %d predates wall-time records; wall_time_s counts from it.", step)
        return cls(started, earlier or 0.0, now)
