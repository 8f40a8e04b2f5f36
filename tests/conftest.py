"""Shared test set-up: 8 simulated CPU devices, tests/ importable for the reference networks, helpers."""

import os
import sys

# Multi-device tests need several devices; XLA reads this once, before JAX is first imported.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def random_variables(model, input_size: int, seed: int = 0) -> dict:
    """Variables of the right shapes filled from numpy, avoiding the slow XLA compile of ``model.init``.

    Kernels get He-like scale so activations stay O(1); running variances are positive.
    """
    from resnet_jax.models import abstract_variables

    rng = np.random.default_rng(seed)
    shapes = abstract_variables(model, input_size)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("var", "scale"):
            return 0.5 + rng.random(leaf.shape, dtype=np.float32)
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 1
        std = np.sqrt(1.0 / fan_in) if len(leaf.shape) > 1 else 0.1
        return (std * rng.standard_normal(leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def in_memory_batches(split, start_step, process_index, process_count, per_process_batch, steps, **pipeline) -> list:
    """The first ``steps`` batches (numpy) of this process's in-memory train pipeline from ``start_step``, seed 0.

    ``pipeline`` gives ``normalisation`` and ``augmentation`` (``in_memory.train_dataset``'s arguments).
    """
    from resnet_jax.data import in_memory

    dataset = in_memory.train_dataset(
        split,
        seed=0,
        start_step=start_step,
        per_process_batch=per_process_batch,
        process_index=process_index,
        process_count=process_count,
        **pipeline,
    )
    iterator = dataset.as_numpy_iterator()
    return [next(iterator) for _ in range(steps)]
