"""Splitting an eval split over processes and padding it into equal, masked batches (numpy only).

Every process must run the same number of eval steps (each step is a collective), so batches are
padded with masked-out examples instead of dropped: every real example is counted exactly once.
"""

import math
from collections.abc import Iterator, Mapping

import numpy as np


def process_range(num_examples: int, process_index: int, process_count: int) -> range:
    """The contiguous block of example indices that ``process_index`` evaluates."""
    return range(num_examples * process_index // process_count, num_examples * (process_index + 1) // process_count)


def process_rows(per_process_batch: int, process_index: int) -> slice:
    """The rows of a global batch that ``process_index`` feeds (process-major order)."""
    return slice(process_index * per_process_batch, (process_index + 1) * per_process_batch)


def num_eval_batches(num_examples: int, per_process_batch: int, process_count: int) -> int:
    """Eval steps needed so the process with the most examples sees all of them."""
    return math.ceil(math.ceil(num_examples / process_count) / per_process_batch)


def padded_batches(
    arrays: Mapping[str, np.ndarray], batch_size: int, num_batches: int
) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``num_batches`` batches of ``batch_size``, padding with zeros and adding a 0/1 ``mask``."""
    num_examples = len(next(iter(arrays.values())))
    if num_examples > batch_size * num_batches:
        raise ValueError(f"{num_examples} examples do not fit in {num_batches} batches of {batch_size}")
    for start in range(0, batch_size * num_batches, batch_size):
        real = max(0, min(batch_size, num_examples - start))
        batch = {}
        for name, values in arrays.items():
            padded = np.zeros((batch_size,) + values.shape[1:], values.dtype)
            padded[:real] = values[start : start + real]
            batch[name] = padded
        batch["mask"] = (np.arange(batch_size) < real).astype(np.float32)
        yield batch
