"""Datasets the streamed pipeline reads from TFDS record files: ImageNet, ``tfds:`` datasets of large or
varying images, and image folders built into records.

A ``RecordSource`` is an open TFDS builder, the names of its image and label features, and the
dataset's spec. Its per-channel statistics are computed once from the train split (every pixel of
every image, decoded by TensorFlow) and stored beside the records as the spec's JSON
(``DATA_DIR/resnet_jax_records/NAME.json``), so later runs read them instead.
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging
from etils import epath

from resnet_jax.data import spec
from resnet_jax.data.sources import arrays, tfds_source
from resnet_jax.paths import resolve

DIRECTORY = "resnet_jax_records"


@dataclasses.dataclass(frozen=True)
class RecordSource:
    """A dataset the streamed pipeline reads: an open TFDS builder, its image and label features, its spec."""

    builder: object
    image_key: str
    label_key: str
    spec: spec.DatasetSpec


def records_dir(data_dir: str) -> epath.Path:
    """Where record datasets built here (folders) and the specs of streamed datasets live under ``data_dir``."""
    return resolve(os.path.expanduser(data_dir) if data_dir else arrays.default_data_dir()) / DIRECTORY


def spec_path(name: str, data_dir: str) -> epath.Path:
    """The stored spec of streamed dataset ``name`` (a file-name-safe key)."""
    return records_dir(data_dir) / f"{name}.json"


def write_spec(path: epath.Path, dataset_spec: spec.DatasetSpec) -> None:
    """Store ``dataset_spec`` as JSON at ``path`` (written whole, then renamed: a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(dataset_spec.to_json(), indent=1))
    partial.replace(path)


def read_spec(path: epath.Path) -> spec.DatasetSpec:
    """The spec ``write_spec`` stored."""
    return spec.DatasetSpec.from_json(json.loads(path.read_text()))


def channel_statistics(builder, split: str, image_key: str, channels: int) -> tuple[tuple, tuple]:
    """Per-channel mean and std on [0, 1] over every pixel of every image of ``split``, decoded by TensorFlow."""
    import tensorflow_datasets as tfds

    tf = tfds_source.tensorflow()
    logging.info("Computing the per-channel statistics of %s %s (once; stored with its spec).", builder.name, split)
    records = builder.as_dataset(split=split, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()})

    def sums(example):
        image = tf.io.decode_image(example[image_key], channels=channels, expand_animations=False)
        pixels = tf.reshape(tf.cast(image, tf.float64) / 255, [-1, channels])
        return tf.reduce_sum(pixels, 0), tf.reduce_sum(pixels**2, 0), tf.cast(tf.shape(pixels)[0], tf.float64)

    start = (tf.zeros([channels], tf.float64), tf.zeros([channels], tf.float64), tf.constant(0.0, tf.float64))
    totals = records.map(sums, num_parallel_calls=tf.data.AUTOTUNE).reduce(
        start, lambda total, item: tuple(a + b for a, b in zip(total, item, strict=True))
    )
    total, squares, count = (np.asarray(value) for value in totals)
    return spec.statistics_from_sums(total, squares, count, channels)


def with_statistics(builder, image_key: str, dataset_spec: spec.DatasetSpec, key: str, data_dir: str):
    """``dataset_spec`` with its train split's per-channel statistics: the spec stored under ``key`` and the
    builder's version (a new version has new statistics), else computed once and stored."""
    stored = spec_path(f"{key}_{builder.info.version}", data_dir)
    if stored.exists():
        return read_spec(stored)
    mean, std = channel_statistics(builder, dataset_spec.train_split, image_key, dataset_spec.channels)
    dataset_spec = dataclasses.replace(dataset_spec, mean=mean, std=std)
    write_spec(stored, dataset_spec)
    return dataset_spec
