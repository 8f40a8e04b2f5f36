"""The data-parallel mesh, batch-size arithmetic and host <-> global array movement (jax only).

Every device holds a full replica of the train state; the batch's leading axis is split over the
``data`` axis of a one-dimensional mesh spanning every device of every process.
"""

import collections
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from resnet_jax.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis (``'data'``) mesh over ``devices`` (default: every device of every process).

    ``jax.make_mesh`` orders the devices by the physical topology (TPU slices, NVLink islands), so
    neighbours on the axis are neighbours on the interconnect; the axis is ``Auto``, sharded by jit.
    """
    devices = list(devices) if devices is not None else jax.devices()
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis; other axes whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """A full copy on every device (train state, metrics)."""
    return NamedSharding(mesh, PartitionSpec())


@dataclasses.dataclass(frozen=True)
class BatchSizes:
    """How one global batch divides over processes, devices and gradient-accumulation microbatches."""

    global_batch: int
    per_process: int
    per_device: int
    grad_accum_steps: int
    per_device_microbatch: int


def batch_sizes(
    global_batch: int, num_devices: int, num_processes: int, grad_accum_steps: int = 1, bn_group_size: int = 0
) -> BatchSizes:
    """Derive per-process, per-device and microbatch sizes, or fail with an error saying what to change."""
    if global_batch <= 0:
        raise ConfigError(f"batch_size must be positive, got {global_batch}")
    if grad_accum_steps <= 0:
        raise ConfigError(f"grad_accum_steps must be at least 1, got {grad_accum_steps}")
    if global_batch % num_devices:
        raise ConfigError(
            f"batch_size={global_batch} is not divisible by the {num_devices} devices; use a multiple of "
            f"{num_devices} (e.g. {num_devices * max(1, round(global_batch / num_devices))})."
        )
    per_device = global_batch // num_devices
    if per_device % grad_accum_steps:
        raise ConfigError(
            f"the per-device batch of {per_device} (batch_size={global_batch} over {num_devices} devices) is not "
            f"divisible by grad_accum_steps={grad_accum_steps}; pick grad_accum_steps dividing {per_device}."
        )
    microbatch = per_device // grad_accum_steps
    if bn_group_size < 0 or (bn_group_size and microbatch % bn_group_size):
        raise ConfigError(
            f"bn_group_size={bn_group_size} must be 0 (whole-batch statistics) or divide the per-device "
            f"microbatch of {microbatch} examples (batch_size / devices / grad_accum_steps)."
        )
    return BatchSizes(global_batch, global_batch // num_processes, per_device, grad_accum_steps, microbatch)


def to_global(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble each process's slice of the batch into one global array sharded over the data axis."""
    sharding = batch_sharding(mesh)
    return {name: jax.make_array_from_process_local_data(sharding, value) for name, value in local_batch.items()}


def prefetch_to_device(
    local_batches: Iterator[Mapping[str, np.ndarray]], mesh: Mesh, size: int = 2
) -> Iterator[dict[str, jax.Array]]:
    """Global batches, each sent to the devices ``size`` steps before it is needed.

    Transfers are asynchronous, so copying the next batches overlaps the step that is running.
    """
    queue = collections.deque()
    for local_batch in local_batches:
        queue.append(to_global(local_batch, mesh))
        if len(queue) > size:
            yield queue.popleft()
    yield from queue


def to_host(tree: Any) -> Any:
    """Numpy copies of replicated arrays; works on every process of a multi-host run."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)
