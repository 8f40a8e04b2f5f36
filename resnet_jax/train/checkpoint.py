"""Orbax checkpointing of the train state: periodic, final and on preemption; strict, resharding restore.

The state is saved as a plain nested dict (``flax.serialization.to_state_dict``), so checkpoints
are readable without this package. Restoring takes an abstract target carrying the current mesh's
shardings, so a run can resume on a different number of devices.
"""

import json
import os
from typing import Any

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from flax import traverse_util

from resnet_jax.convert import summarise
from resnet_jax.errors import IncompatibleCheckpoint, MissingFilesError, UserError
from resnet_jax.paths import resolve
from resnet_jax.runtime import processes
from resnet_jax.train.state import TrainState


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """'/'-joined path -> shape for every array leaf of a nested dict."""
    flat = traverse_util.flatten_dict(tree, sep="/") if tree else {}
    return {path: tuple(leaf.shape) for path, leaf in flat.items() if hasattr(leaf, "shape")}


WALL_TIME = "wall_time_s"  # checkpoint metadata: seconds in train_and_evaluate, summed over the processes so far


class NoReadableCheckpoint(UserError, RuntimeError):
    """Checkpoints exist, but none of them can be read."""


RESUME_ADVICE = "Use the config the checkpoint was written with, or start a fresh --workdir."


def check_compatible(saved: Any, target: Any, source: str, advice: str = RESUME_ADVICE) -> None:
    """Raise ``IncompatibleCheckpoint`` naming every missing, unexpected or mis-shaped entry of two trees, then
    ``advice``: what to do."""
    saved_shapes, target_shapes = _shapes(saved), _shapes(target)
    missing = sorted(set(target_shapes) - set(saved_shapes))
    unexpected = sorted(set(saved_shapes) - set(target_shapes))
    mismatched = sorted(
        f"{path} (saved {saved_shapes[path]}, model {shape})"
        for path, shape in target_shapes.items()
        if path in saved_shapes and saved_shapes[path] != shape
    )
    problems = [
        f"{label}: {summarise(items)}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
        if items
    ]
    if problems:
        raise IncompatibleCheckpoint(
            f"{source} does not match this model and optimizer ({'; '.join(problems)}). {advice}"
        )


class Checkpointer:
    """A ``CheckpointManager`` in ``directory`` keeping the last ``max_to_keep`` saves, asynchronously."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, asynchronous: bool = True):
        self.directory = resolve(directory)
        self._report_unfinished_saves()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=True,
            enable_async_checkpointing=asynchronous,
            cleanup_tmp_directories=True,  # a save interrupted mid-write never blocks the next one
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler()
        )

    def _report_unfinished_saves(self) -> None:
        """Say which half-written saves (a kill, a full disk) the manager is about to remove."""
        if jax.process_index() != 0 or not self.directory.exists():
            return
        for name in sorted(ocp.path.step.tmp_checkpoints(self.directory)):
            logging.warning(
                "Removing %s: a checkpoint save that did not finish; the run resumes from the last complete one.",
                self.directory / name,
            )

    def latest_step(self) -> int | None:
        """The newest saved step, or None for a fresh directory."""
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState, wall_time_s: float) -> None:
        """Start saving ``state`` as ``step``, with the run's ``wall_time_s`` so far (returns before the write
        finishes when asynchronous)."""
        if step in self.manager.all_steps():
            return
        self.manager.save(
            step,
            args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
            custom_metadata={WALL_TIME: wall_time_s},
            force=True,
        )

    def wall_time_s(self, step: int) -> float | None:
        """The training wall time the run had spent when it saved ``step``; None for checkpoints that
        predate the record."""
        return (self.manager.metadata(step).custom_metadata or {}).get(WALL_TIME)

    def restore(self, abstract_state: TrainState, step: int | None = None) -> TrainState:
        """Restore ``step`` (default: latest) onto the shardings in ``abstract_state``; strict about structure."""
        step = self.latest_step() if step is None else step
        target = flax.serialization.to_state_dict(abstract_state)
        check_compatible(self.manager.item_metadata(step).tree, target, f"checkpoint {self.directory}/{step}")
        restored = self.manager.restore(step, args=ocp.args.StandardRestore(target))
        return flax.serialization.from_state_dict(abstract_state, restored)

    def restore_latest(self, abstract_state: TrainState) -> TrainState:
        """The newest checkpoint that reads back on every process; damaged newer ones are set aside with a warning.

        A damaged checkpoint (truncated or missing files) is renamed ``STEP.corrupt`` once an older one
        has restored, so a later save of that step is not skipped. Processes agree on each step before
        accepting it, so all of them resume from the same one. A checkpoint of another model is an
        ``IncompatibleCheckpoint`` error at once; if no checkpoint reads back, ``NoReadableCheckpoint``:
        a run never restarts from scratch silently while checkpoints exist.
        """
        damaged, first_error = [], None
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, error = self.restore(abstract_state, step), None
            except IncompatibleCheckpoint:
                raise
            except Exception as caught:  # noqa: BLE001 (orbax and tensorstore raise many kinds on damaged files)
                state, error = None, f"{type(caught).__name__}: {str(caught)[:300]}"
            if processes.on_every_process(error is None):
                self._set_aside(damaged)
                return state
            logging.warning(
                "Checkpoint %s cannot be read (%s); trying the previous one.",
                self.directory / str(step),
                error or "it failed on another process",
            )
            damaged.append(step)
            first_error = first_error or error or "an error on another process"
        raise NoReadableCheckpoint(
            f"no checkpoint in {self.directory} can be read (steps {damaged}; the newest failed with "
            f"{first_error}). If the files are damaged, delete them to start again or use a fresh --workdir; "
            "if the error is not about the files (memory, permissions), fix that and re-run."
        )

    def _set_aside(self, steps: list[int]) -> None:
        """Rename damaged step folders to ``STEP.corrupt`` (kept for inspection; orbax ignores them)."""
        if not steps:
            return
        if jax.process_index() == 0:
            for step in steps:
                target, attempt = self.directory / f"{step}.corrupt", 0
                while target.exists():  # the same step was damaged before
                    attempt += 1
                    target = self.directory / f"{step}.corrupt{attempt}"
                (self.directory / str(step)).rename(target)
                logging.warning("Set aside damaged checkpoint %s as %s.", self.directory / str(step), target.name)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("checkpoints set aside")
        self.manager.reload()

    def wait_until_finished(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release the manager."""
        self.manager.wait_until_finished()
        self.manager.close()


def find_checkpoint_dir(path: str | os.PathLike) -> tuple[epath.Path, int | None]:
    """Resolve a workdir, a ``checkpoints`` dir or one step's dir to (manager directory, step or None)."""
    path = resolve(path)
    if (path / "checkpoints").is_dir():
        return path / "checkpoints", None
    if path.name.isdigit() and path.parent.is_dir():
        return path.parent, int(path.name)
    if path.is_dir():
        return path, None
    raise MissingFilesError(
        f"no checkpoint at {path}; give a workdir, its checkpoints/ folder or one step's folder (init_from may "
        "also be a torchvision .pth file)"
    )


def recorded_model(path: str | os.PathLike) -> str | None:
    """The model named in the config.json of the run that wrote the checkpoint at ``path``, if there is one."""
    directory, _ = find_checkpoint_dir(path)
    record = directory.parent / "config.json"
    return json.loads(record.read_text()).get("model") if record.exists() else None


def load_tree(path: str | os.PathLike) -> dict:
    """Every array of a checkpoint written by this package (step, params, batch_stats, opt_state, rng,
    EMA), as numpy, whatever topology wrote it."""
    directory, step = find_checkpoint_dir(path)
    manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(read_only=True),
        item_handlers=ocp.StandardCheckpointHandler(),
    )
    step = manager.latest_step() if step is None else step
    if step is None:
        raise MissingFilesError(f"{directory} holds no checkpoints; give the workdir of a run that saved one")
    # Restore onto this process's first device, whatever topology the checkpoint was written on.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree_util.tree_map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), manager.item_metadata(step).tree
    )
    return jax.tree_util.tree_map(np.asarray, manager.restore(step, args=ocp.args.StandardRestore(target)))


def load_variables(path: str | os.PathLike) -> dict:
    """``{'params', 'batch_stats'}`` (numpy) from a checkpoint written by this package, for fine-tuning."""
    tree = load_tree(path)
    return {key: tree.get(key) or {} for key in ("params", "batch_stats")}
