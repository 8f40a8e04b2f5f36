"""How batches reach the jitted steps: sent from the host each step, or made on the devices.

An in-memory dataset small enough for the devices (the default) has its uint8 splits placed on every
device once, at start-up; the train step then gathers and augments its own global batch from its step
number, and the eval step cuts padded, masked batches, so the host only dispatches. Any other dataset
(streamed ImageNet, synthetic, or ``input_placement='host'``) is fed batches made on the host, sent
to the devices a few steps ahead. Both give the steps the same global batches.
"""

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding

from resnet_jax import data as data_lib
from resnet_jax.errors import ConfigError
from resnet_jax.train import sharding

# 'auto' keeps an in-memory dataset on the devices while its splits take at most this share of one
# device's memory, leaving the rest to the model, its activations and the optimizer.
DEVICE_MEMORY_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Feed:
    """The inputs of the train and eval steps, and how the steps turn an input into a global batch.

    Attributes:
      train_inputs: ``start_step -> iterator`` of one train-step input per step.
      eval_inputs: eval split prefix -> iterable of eval-step inputs.
      input_sharding: the sharding of every input (a pytree prefix).
      train_batch: ``(input, step) -> global batch``, traced inside the train step.
      eval_batch: ``input -> global batch with a mask``, traced inside the eval step.
      on_devices: whether the dataset lives on the devices, so that a program can make many steps' batches.
    """

    train_inputs: Callable[[int], Iterator[Any]]
    eval_inputs: Callable[[str], Iterable[Any]]
    input_sharding: NamedSharding
    train_batch: Callable[[Any, jax.Array], dict]
    eval_batch: Callable[[Any], dict]
    on_devices: bool = False


def dataset_bytes(splits: data_lib.InMemorySplits) -> int:
    """Bytes of every split an in-memory dataset places on each device."""
    return sum(values.nbytes for split in (splits.train, *splits.eval.values()) for values in split.values())


def device_memory(device: jax.Device) -> int | None:
    """Bytes one device can hold, or None where the runtime does not say (XLA:CPU)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    return (stats or {}).get("bytes_limit")


def place_on_devices(placement: str, datasets: data_lib.Datasets, memory: int | None) -> bool:
    """Whether the dataset's splits go on the devices, as ``input_placement`` asks and the memory allows.

    'device' on a dataset larger than ``DEVICE_MEMORY_SHARE`` of ``memory`` is refused here, before
    anything compiles, with the sizes and the setting that keeps the data on the host.
    """
    if datasets.in_memory is None or placement == "host":
        return False
    size = dataset_bytes(datasets.in_memory)
    if memory is None or size <= DEVICE_MEMORY_SHARE * memory:
        return True
    if placement == "device":
        raise ConfigError(
            f"input_placement='device' asks for the dataset on every device, but its splits take {size / 2**30:.2f} "
            f"GiB and a device holds {memory / 2**30:.2f} GiB (at most {DEVICE_MEMORY_SHARE:.0%} of it is given to "
            "data). Set --config.input_placement=host (or auto) to make batches on the host instead."
        )
    logging.info(
        "The dataset's %.2f GiB exceed %.0f%% of a device's %.2f GiB: batches are made on the host.",
        size / 2**30,
        DEVICE_MEMORY_SHARE * 100,
        memory / 2**30,
    )
    return False


def _replicate(array: np.ndarray, mesh: Mesh) -> jax.Array:
    """A full copy of a host array on every device of the mesh (every process passes the same array)."""
    return jax.make_array_from_callback(array.shape, sharding.replicated_sharding(mesh), lambda index: array[index])


def device_feed(splits: data_lib.InMemorySplits, mesh: Mesh, eval_batch_size: int) -> Feed:
    """Place the splits on every device once; the steps gather, augment and pad their batches there."""
    batch_sharding = sharding.batch_sharding(mesh)
    train = {name: _replicate(values, mesh) for name, values in splits.train.items()}
    evaluated = {
        prefix: {name: _replicate(values, mesh) for name, values in split.items()}
        for prefix, split in splits.eval.items()
    }
    batch_indices = {
        prefix: [
            _replicate(np.int32(index), mesh)
            for index in range(splits.num_eval_batches(prefix, eval_batch_size))
        ]
        for prefix in splits.eval
    }

    def train_batch(split, step):
        return jax.lax.with_sharding_constraint(splits.train_batch(split, step), batch_sharding)

    def eval_batch(inputs):
        split, index = inputs
        return jax.lax.with_sharding_constraint(splits.eval_batch(split, index, eval_batch_size), batch_sharding)

    return Feed(
        train_inputs=lambda start_step: itertools.repeat(train),
        eval_inputs=lambda prefix: [(evaluated[prefix], index) for index in batch_indices[prefix]],
        input_sharding=sharding.replicated_sharding(mesh),
        train_batch=train_batch,
        eval_batch=eval_batch,
        on_devices=True,
    )


def host_feed(datasets: data_lib.Datasets, mesh: Mesh) -> Feed:
    """Batches made on the host: each process's rows, assembled into global arrays a few steps ahead."""
    return sent_batches(
        mesh,
        train_inputs=lambda start_step: sharding.prefetch_to_device(datasets.train_batches(start_step), mesh),
        eval_inputs=lambda prefix: (
            sharding.to_global(batch, mesh) for batch in datasets.eval_splits[prefix].batches()
        ),
    )


def sent_batches(mesh: Mesh, train_inputs=None, eval_inputs=None) -> Feed:
    """Steps that take each global batch as it is sent (sharded over the data axis); ``benchmark`` sends one
    fixed batch, the loop what ``host_feed`` makes."""
    return Feed(
        train_inputs=train_inputs,
        eval_inputs=eval_inputs,
        input_sharding=sharding.batch_sharding(mesh),
        train_batch=lambda batch, step: batch,
        eval_batch=lambda batch: batch,
    )


def create_feed(placement: str, datasets: data_lib.Datasets, mesh: Mesh, eval_batch_size: int) -> Feed:
    """The feed ``input_placement`` asks for (see ``place_on_devices``); the log says what the dataset holds,
    which pipeline feeds it and where its batches are made."""
    what = f"{datasets.spec.name}, {datasets.spec.summary()}"
    if place_on_devices(placement, datasets, device_memory(mesh.local_devices[0])):
        feed = device_feed(datasets.in_memory, mesh, eval_batch_size)
        megabytes = dataset_bytes(datasets.in_memory) / 2**20
        logging.info(
            "Input: %s; the dataset (%.1f MiB) is on every device; each step makes its own batch.", what, megabytes
        )
        return feed
    logging.info("Input: %s; batches are made on the host and sent to the devices.", what)
    return host_feed(datasets, mesh)
