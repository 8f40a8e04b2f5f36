"""Datasets small enough to hold in host memory (digits; CIFAR next): loaded once from TFDS.

Train order is a seeded permutation per epoch, and the global batch of step s is positions
[s*B, (s+1)*B) of the concatenated epochs, so batch s is a pure function of (seed, s): a resumed run
sees exactly the batches it would have seen, on any number of processes.
"""

from collections.abc import Iterator

import numpy as np


def load_split(name: str, split: str, data_dir: str) -> dict[str, np.ndarray]:
    """``{'image': uint8 NHWC, 'label': int32}`` of a TFDS split, preparing the dataset first if needed."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # the input pipeline stays on the host CPU
    builder = tfds.builder(name, data_dir=data_dir or None)
    if not builder.is_prepared():
        builder.download_and_prepare()  # local builders only (digits); archive-based ones arrive with #4
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return {"image": arrays["image"], "label": arrays["label"].astype(np.int32)}


def channel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images, on the 0..1 scale."""
    scaled = images.astype(np.float64) / 255
    return scaled.mean(axis=(0, 1, 2)), scaled.std(axis=(0, 1, 2))


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """uint8 -> float32 with per-channel zero mean and unit variance."""
    return ((images.astype(np.float32) / 255 - mean) / std).astype(np.float32)


def global_batch_indices(seed: int, step: int, global_batch: int, num_examples: int) -> np.ndarray:
    """Example indices of the global batch at ``step``: consecutive positions in seeded per-epoch orders."""
    positions = np.arange(step * global_batch, (step + 1) * global_batch)
    epochs = positions // num_examples
    indices = np.empty(global_batch, dtype=np.int64)
    for epoch in np.unique(epochs):
        order = np.random.default_rng([seed, int(epoch)]).permutation(num_examples)
        chosen = epochs == epoch
        indices[chosen] = order[positions[chosen] % num_examples]
    return indices


def train_batches(
    split: dict[str, np.ndarray],
    *,
    seed: int,
    start_step: int,
    per_process_batch: int,
    process_index: int,
    process_count: int,
    mean: np.ndarray,
    std: np.ndarray,
) -> Iterator[dict[str, np.ndarray]]:
    """This process's rows of every global batch from ``start_step`` on, normalised."""
    num_examples = len(split["label"])
    rows = slice(process_index * per_process_batch, (process_index + 1) * per_process_batch)
    step = start_step
    while True:
        indices = global_batch_indices(seed, step, per_process_batch * process_count, num_examples)[rows]
        yield {"image": normalise(split["image"][indices], mean, std), "label": split["label"][indices]}
        step += 1
