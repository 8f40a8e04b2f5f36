"""Datasets streamed from TFDS record files (ImageNet, photos), with exact per-process splits and exact resume.

Each process reads its own contiguous block of the split (``tfds.even_splits``: disjoint blocks that
together hold every example, sizes within one). Epoch e of a process visits its record files in a
seeded order, interleaved, through a seeded shuffle buffer: a pure function of (seed, e, process).
Resuming at step s skips the first (s*b mod n) raw records of epoch (s*b div n) before any decoding,
and the augmentation draws are keyed by stream position, so a resumed run (with the same number of
processes) sees exactly the examples and crops it would have seen.
"""

from collections.abc import Callable, Iterator

import numpy as np
from absl import logging

from resnet_jax.data.pipelines import batching
from resnet_jax.data.pipelines.streams import Stream
from resnet_jax.data.sources import tfds_source
from resnet_jax.data.sources.tfds_source import stateless_key

INTERLEAVED_FILES = 16


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
    """Batches of ``train_image(encoded, key)`` and labels for this process, from ``start_step`` on."""
    tf = tfds_source.tensorflow()
    block, size = process_split(builder, split, process_index, process_count)
    files = [(file.filename, file.skip, file.take) for file in builder.info.splits[block].file_instructions]
    filenames, skips, takes = (tf.constant(column) for column in zip(*files, strict=True))
    skips, takes = tf.cast(skips, tf.int64), tf.cast(takes, tf.int64)

    def epoch_records(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(files)), stateless_key(seed, Stream.FILE_ORDER, epoch)
        )
        shards = tf.data.Dataset.from_tensor_slices(
            (tf.gather(filenames, order), tf.gather(skips, order), tf.gather(takes, order))
        )
        records = shards.interleave(
            lambda filename, skip, take: tf.data.TFRecordDataset(filename).skip(skip).take(take),
            cycle_length=min(INTERLEAVED_FILES, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        shuffle_seed = tf.random.stateless_uniform([], stateless_key(seed, Stream.SHUFFLE, epoch), None, None, tf.int64)
        return records.shuffle(shuffle_buffer_size, seed=shuffle_seed)

    start_epoch, offset = divmod(start_step * per_process_batch, size)
    records = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch_records).skip(offset)

    def example(position, record):
        encoded, label = _image_and_label(builder, record, image_key, label_key)
        image = train_image(encoded, stateless_key(seed, Stream.TRAIN_CROP, process_index, position))
        return {"image": image, "label": label, "position": position}

    examples = records.enumerate(start=start_step * per_process_batch)
    examples = examples.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    examples = examples.ignore_errors()  # an undecodable image is dropped here, then counted by counted_skips
    return examples.batch(per_process_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def counted_skips(batches: Iterator[dict], first_position: int, what: str) -> Iterator[dict]:
    """Batches without their ``position`` key; every image that could not be decoded is counted and logged.

    Dropped examples show as gaps in the stream positions. A run with undecodable images still trains
    on every other image, but its resume position is then off by the number skipped before it.
    """
    expected, skipped = first_position, 0
    for batch in batches:
        positions = batch.pop("position")
        missing = int(positions[-1]) + 1 - expected - len(positions)
        if missing:
            skipped += missing
            logging.warning(
                "Skipped %d undecodable image(s) of %s in this batch (%d so far); re-prepare the dataset from intact "
                "archives to train on them.",
                missing,
                what,
                skipped,
            )
        expected = int(positions[-1]) + 1
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
