"""The named random streams of the input pipelines, in one place.

Every random draw is keyed by ``(seed, stream, counters...)`` (epoch, step, position), so no two uses
share numbers and a run's data is a pure function of ``(seed, step)``. The values are fixed forever:
changing one changes the data of every run that uses it.
"""

import enum

import jax


@enum.unique
class Stream(enum.IntEnum):
    """In-memory datasets: JAX keys (``stream_key``); streamed datasets: TensorFlow stateless
    keys (``tfds_source.stateless_key``)."""

    EPOCH_ORDER = 0  # in-memory datasets: the permutation each epoch visits
    CROP_FLIP = 1  # in-memory datasets: crop offsets and flips of each global batch
    ERASING = 2  # in-memory datasets: Random Erasing rectangles and fills of each global batch
    # 10 and 11 (the per-process file order and shuffle of the streamed pipeline before issue 29): retired.
    TRAIN_CROP = 12  # streamed datasets: each example's crop and flip, by its place in the stream
    CHUNK_ORDER = 13  # streamed datasets: the order of the split's chunks of records each epoch
    ROW_SHUFFLE = 14  # streamed datasets: the seed of each row's shuffle buffer each epoch
    NAMED_EXAMPLES = 15  # in-memory datasets: the registered example augmentations a run names, by position


@enum.unique
class SyntheticStream(enum.IntEnum):
    """numpy generators of the synthetic dataset (``np.random.default_rng([seed, stream, ...])``)."""

    TRAIN = 0  # a global batch per step
    EVAL = 1  # the fixed eval split


def stream_key(seed: int, stream: Stream, *counters) -> jax.Array:
    """The JAX key of one named stream of ``seed``, folded with each counter (epoch, step) in turn."""
    key = jax.random.fold_in(jax.random.key(seed), int(stream))
    for counter in counters:
        key = jax.random.fold_in(key, counter)
    return key
