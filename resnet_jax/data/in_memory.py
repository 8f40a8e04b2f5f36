"""Datasets small enough for host memory (digits, CIFAR): a tf.data pipeline over the decoded arrays.

Train order is a seeded permutation per epoch, and the global batch of step s is positions
[s*B, (s+1)*B) of the concatenated epochs; its crops and flips are drawn for the whole global batch
from (seed, s). Batch s is therefore a pure function of (seed, s): a resumed run sees exactly the
batches it would have seen, on any number of processes, and each process keeps only its rows.
"""

import dataclasses

import numpy as np

from resnet_jax.data import batching, erasing, tfds_source
from resnet_jax.data.streams import Stream


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """He et al.'s CIFAR augmentation (pad, random crop back to size, random horizontal flip), then
    Zhong et al.'s Random Erasing."""

    crop_padding: int = 0
    pad_mode: str = "constant"  # 'constant' (zeros, He et al.) or 'reflect' (WRN)
    random_flip: bool = False
    random_erasing: erasing.RandomErasing = erasing.RandomErasing()


def epoch_order(seed: int, epoch, num_examples: int):
    """The seeded permutation of the example indices that epoch ``epoch`` visits."""
    tf = tfds_source.tensorflow()
    indices = tf.range(num_examples, dtype=tf.int64)
    return tf.random.experimental.stateless_shuffle(
        indices, seed=tfds_source.stateless_key(seed, Stream.EPOCH_ORDER, epoch)
    )


def global_batch_indices(seed: int, step, global_batch: int, num_examples: int):
    """Example indices of the global batch at ``step``: consecutive positions in the per-epoch orders."""
    tf = tfds_source.tensorflow()
    positions = tf.cast(step, tf.int64) * global_batch + tf.range(global_batch, dtype=tf.int64)
    epochs = positions // num_examples
    first_epoch = epochs[0]
    orders = tf.map_fn(  # a batch may span several epochs when it is larger than the split
        lambda epoch: epoch_order(seed, epoch, num_examples),
        tf.range(first_epoch, epochs[-1] + 1),
        fn_output_signature=tf.int64,
    )
    return tf.gather_nd(orders, tf.stack([epochs - first_epoch, positions % num_examples], axis=1))


def augmentation_draws(seed: int, step, count: int, augmentation: Augmentation):
    """Crop offsets (top, left) and flip decisions for the ``count`` examples of the batch at ``step``."""
    tf = tfds_source.tensorflow()
    keys = tf.random.experimental.stateless_split(tfds_source.stateless_key(seed, Stream.CROP_FLIP, step), 3)
    offsets = [
        tf.random.stateless_uniform([count], keys[i], 0, 2 * augmentation.crop_padding + 1, dtype=tf.int32)
        for i in (0, 1)
    ]
    return (*offsets, tf.random.stateless_uniform([count], keys[2]) < 0.5)


def augment(images, draws, augmentation: Augmentation):
    """Crop (after padding) and flip a batch of NHWC images as ``draws`` say."""
    tf = tfds_source.tensorflow()
    tops, lefts, flips = draws
    images = tf.convert_to_tensor(images)
    height, width = images.shape[1], images.shape[2]
    pad = augmentation.crop_padding
    if pad:
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=augmentation.pad_mode.upper())
        rows = tops[:, None] + tf.range(height)
        columns = lefts[:, None] + tf.range(width)
        images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)
    if augmentation.random_flip:
        images = tf.where(flips[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


def erase_batch(images, seed: int, step, global_batch: int, rows: slice, augmentation: Augmentation, mean_pixel):
    """Random Erasing of this process's ``rows`` of the global batch at ``step``, drawn for the whole batch."""
    tf = tfds_source.tensorflow()
    settings = augmentation.random_erasing
    keys = tf.random.experimental.stateless_split(tfds_source.stateless_key(seed, Stream.ERASING, step), 2)
    rectangle_key, fill_key = keys[0], keys[1]
    height, width = images.shape[1], images.shape[2]
    drawn = erasing.draw_rectangles(rectangle_key, global_batch, height, width, settings)
    fill = erasing.fill_values(fill_key, tuple(images.shape[1:]), global_batch, settings, mean_pixel)
    if settings.fill == "random":  # one value per pixel of each example of the global batch
        fill = fill[rows]
    return erasing.erase(images, {name: values[rows] for name, values in drawn.items()}, fill)


def train_dataset(
    split: dict[str, np.ndarray],
    *,
    seed: int,
    start_step: int,
    per_process_batch: int,
    process_index: int,
    process_count: int,
    augmentation: Augmentation = Augmentation(),
    mean_pixel: np.ndarray | None = None,
):
    """A tf.data pipeline of this process's rows of every global batch from ``start_step`` on, uint8
    images as stored (the step normalises them on the device); ``mean_pixel`` is 'mean' erasing's fill.

    Batches are built in parallel on the host CPU threads and prefetched; the draws are made for the
    whole global batch, so an example's crop, flip and erasing do not depend on how many processes share it.
    """
    tf = tfds_source.tensorflow()
    images, labels = tf.constant(split["image"]), tf.constant(split["label"])
    num_examples, global_batch = len(split["label"]), per_process_batch * process_count
    mine = batching.process_rows(per_process_batch, process_index)

    def batch_at(step):
        indices = global_batch_indices(seed, step, global_batch, num_examples)[mine]
        draws = [draw[mine] for draw in augmentation_draws(seed, step, global_batch, augmentation)]
        image = augment(tf.gather(images, indices), draws, augmentation)
        if augmentation.random_erasing.probability > 0:
            image = erase_batch(image, seed, step, global_batch, mine, augmentation, mean_pixel)
        return {"image": image, "label": tf.gather(labels, indices)}

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return steps.map(batch_at, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
