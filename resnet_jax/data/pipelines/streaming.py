"""Datasets streamed from TFDS record files (ImageNet, photos), with exact resume on any process count.

Training feeds every row of the global batch from a stream of its own, so a batch is the same on any
number of processes: process p of P reads the rows ``p*b .. (p+1)*b - 1`` (b = batch / P) and no others.
Each epoch of row r is a pure function of (seed, epoch, r): the split's records, cut into chunks of
consecutive records, are put in a seeded order, and row r reads its contiguous share of that order
(``r*n // batch`` up to ``(r+1)*n // batch``: sizes within one) through a seeded shuffle buffer. Every
record is read once per epoch of its row, by one row, and only the process that owns the row reads it.
Row r's example at step s has the crop key ``(seed, s*batch + r)``. Resuming at step s skips the first
``s mod size`` raw records of each row's epoch ``s div size`` before any decoding, so a run resumed on
1, 2 or 64 processes sees exactly the examples and crops the uninterrupted run would have seen.
Evaluation reads each process's own contiguous block (``tfds.even_splits``), padded and masked.
"""

from collections.abc import Callable, Iterator

import numpy as np
from absl import logging

from resnet_jax.data.pipelines import batching
from resnet_jax.data.sources import tfds_source
from resnet_jax.data.sources.tfds_source import stateless_key
from resnet_jax.data.streams import Stream
from resnet_jax.errors import ConfigError

CHUNKS_PER_ROW = 8  # each row reads its share of an epoch as about this many chunks from seeded places
MIN_CHUNK = 16  # records; a chunk's cost of opening its file and hopping to its first record is spread over them


def process_split(builder, split: str, process_index: int, process_count: int):
    """This process's block of ``split`` (a TFDS split spec) and the block's size; fails if it is empty."""
    import tensorflow_datasets as tfds

    block = tfds.even_splits(split, n=process_count)[process_index]
    size = builder.info.splits[block].num_examples
    if size == 0:
        raise ValueError(
            f"process {process_index} of {process_count} got no examples of split {split!r} of "
            f"{builder.info.name}; use a larger split or fewer processes"
        )
    return block, size


def check_rows(num_examples: int, global_batch: int, what: str) -> None:
    """Fail with a plain error when a split has fewer examples than the global batch has rows."""
    if num_examples < global_batch:
        raise ConfigError(
            f"{what} has {num_examples} training examples, fewer than batch_size={global_batch}: the streamed "
            "pipeline feeds each row of the global batch from its own share of the split, so every row needs "
            f"one. Use --config.batch_size={num_examples} or less."
        )


def row_share(row, num_examples: int, global_batch: int):
    """Row ``row``'s share of the epoch's order of records: ``[r*n // batch, (r+1)*n // batch)``."""
    return row * num_examples // global_batch, (row + 1) * num_examples // global_batch


def row_size(row, num_examples: int, global_batch: int):
    """How many records row ``row`` reads per epoch (shares differ by at most one)."""
    low, high = row_share(row, num_examples, global_batch)
    return high - low


def _chunks(builder, split: str, chunk_size: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The split's record files, and its records cut into chunks: each chunk's file index, skip and take."""
    instructions = builder.info.splits[split].file_instructions
    filenames = [instruction.filename for instruction in instructions]
    chunks = [
        (file, first, min(chunk_size, instruction.skip + instruction.take - first))
        for file, instruction in enumerate(instructions)
        for first in range(instruction.skip, instruction.skip + instruction.take, chunk_size)
    ]
    files, skips, takes = (np.asarray(column, np.int64) for column in zip(*chunks, strict=True))
    return filenames, files, skips, takes


def _image_and_label(builder, record, image_key: str, label_key: str):
    """Parse a serialised TFDS example, leaving the image encoded (a JPEG's crop is decoded alone)."""
    import tensorflow_datasets as tfds

    tf = tfds_source.tensorflow()
    features = builder.info.features.deserialize_example(record, decoders={image_key: tfds.decode.SkipDecoding()})
    return features[image_key], tf.cast(features[label_key], tf.int32)


def train_dataset(
    builder,
    split: str,
    *,
    seed: int,
    start_step: int,
    per_process_batch: int,
    process_index: int,
    process_count: int,
    shuffle_buffer_size: int,
    train_image: Callable,
    image_key: str = "image",
    label_key: str = "label",
):
    """This process's rows of every global batch from ``start_step`` on: ``train_image(encoded, key)``,
    the label, and the step each row's example belongs to (ahead of the batch's after a skipped image)."""
    tf = tfds_source.tensorflow()
    global_batch = per_process_batch * process_count
    num_examples = builder.info.splits[split].num_examples
    check_rows(num_examples, global_batch, f"split {split!r} of {builder.info.name}")
    chunk_size = max(MIN_CHUNK, num_examples // (global_batch * CHUNKS_PER_ROW))
    filenames, files, skips, takes = _chunks(builder, split, chunk_size)
    filenames, files, skips, takes = (tf.constant(column) for column in (filenames, files, skips, takes))
    row_buffer = max(1, shuffle_buffer_size // global_batch)

    def row_epoch(row, epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.size(takes, tf.int64)), stateless_key(seed, Stream.CHUNK_ORDER, epoch)
        )
        sizes = tf.gather(takes, order)
        ends = tf.cumsum(sizes)
        starts = ends - sizes
        low, high = row_share(row, num_examples, global_batch)
        first = tf.searchsorted(ends, tf.reshape(low, [1]), side="right")[0]  # the first chunk ending after low
        last = tf.searchsorted(starts, tf.reshape(high, [1]), side="left")[0]  # the first starting at high or later
        pieces, piece_starts, piece_ends = order[first:last], starts[first:last], ends[first:last]
        pieces = tf.data.Dataset.from_tensor_slices(
            (
                tf.gather(filenames, tf.gather(files, pieces)),
                tf.gather(skips, pieces) + tf.maximum(low - piece_starts, 0),
                tf.minimum(piece_ends, high) - tf.maximum(piece_starts, low),
            )
        )
        records = pieces.flat_map(  # unbuffered: the skip hops from record header to header instead of reading
            lambda filename, skip, take: tf.data.TFRecordDataset(filename, buffer_size=0).skip(skip).take(take)
        )
        shuffle_seed = tf.random.stateless_uniform(
            [], stateless_key(seed, Stream.ROW_SHUFFLE, epoch, row), None, None, tf.int64
        )
        return records.shuffle(row_buffer, seed=shuffle_seed)

    def example(row, step, record):
        encoded, label = _image_and_label(builder, record, image_key, label_key)
        image = train_image(encoded, stateless_key(seed, Stream.TRAIN_CROP, step * global_batch + row))
        return {"image": image, "label": label, "step": step}

    def row_examples(row):
        size = row_size(row, num_examples, global_batch)
        start_epoch, offset = start_step // size, start_step % size
        epochs = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max)
        records = epochs.flat_map(lambda epoch: row_epoch(row, epoch)).skip(offset).enumerate(start=start_step)
        # An undecodable image is dropped here, inside its row, so the other rows stay at their steps; the row
        # then runs one step ahead, which counted_skips counts and logs.
        return records.map(lambda step, record: example(row, step, record)).ignore_errors()

    rows = tf.data.Dataset.range(process_index * per_process_batch, (process_index + 1) * per_process_batch)
    examples = rows.interleave(
        row_examples,
        cycle_length=per_process_batch,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return examples.batch(per_process_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def counted_skips(batches: Iterator[dict], start_step: int, what: str) -> Iterator[dict]:
    """Batches without their ``step`` key; every image that could not be decoded is counted and logged.

    A row that drops an undecodable image shows one step ahead of the batch from then on. A run with
    undecodable images still trains on every other image, but that row's resume position is then off
    by the number it skipped before it.
    """
    skipped = 0
    for step, batch in enumerate(batches, start=start_step):
        ahead = int(np.sum(batch.pop("step") - step))
        if ahead > skipped:
            logging.warning(
                "Skipped %d undecodable image(s) of %s in this batch (%d so far); re-prepare the dataset from intact "
                "archives to train on them.",
                ahead - skipped,
                what,
                ahead,
            )
            skipped = ahead
        yield batch


def decode_errors_stop_eval(batches: Iterator[dict], what: str) -> Iterator[dict]:
    """Eval batches; an image that cannot be decoded stops the run with a plain error (eval must count all)."""
    tf = tfds_source.tensorflow()
    try:
        yield from batches
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(
            f"an image of {what} could not be decoded ({error.message.splitlines()[0][:200]}); exact eval counts "
            "every image, so the run stops. Re-prepare the dataset from intact archives."
        ) from None


def eval_dataset(
    builder,
    split: str,
    *,
    per_process_batch: int,
    process_index: int,
    process_count: int,
    eval_image: Callable,
    image_key: str = "image",
    label_key: str = "label",
):
    """This process's block of ``split``, as ``eval_image`` crops, padded and masked into equal batches."""
    import tensorflow_datasets as tfds

    tf = tfds_source.tensorflow()
    block, _ = process_split(builder, split, process_index, process_count)
    num_batches = batching.num_eval_batches(builder.info.splits[split].num_examples, per_process_batch, process_count)
    records = builder.as_dataset(split=block, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()})
    real = records.map(
        lambda features: {
            "image": eval_image(features[image_key]),
            "label": tf.cast(features[label_key], tf.int32),
            "mask": tf.constant(1.0),
        },
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    blank = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), real.element_spec)
    padded = real.concatenate(tf.data.Dataset.from_tensors(blank).repeat())
    return padded.take(num_batches * per_process_batch).batch(per_process_batch).prefetch(tf.data.AUTOTUNE)
