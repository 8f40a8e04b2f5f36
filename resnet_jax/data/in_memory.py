"""Datasets small enough to hold in host memory (digits; CIFAR next): loaded once from TFDS.

Train order is a seeded permutation per epoch, and the global batch of step s is positions
[s*B, (s+1)*B) of the concatenated epochs, so batch s is a pure function of (seed, s): a resumed run
sees exactly the batches it would have seen, on any number of processes.
"""

import dataclasses
from collections.abc import Iterator

import numpy as np

from resnet_jax.data import batching

AUGMENT_STREAM = 1  # keeps augmentation draws apart from the epoch permutations


def load_split(name: str, split: str, data_dir: str, build_locally: bool) -> dict[str, np.ndarray]:
    """``{'image': uint8 NHWC, 'label': int32}`` of a prepared TFDS split; a plain error if it is missing.

    ``build_locally`` datasets (digits) are prepared on first use; the others need their archives.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # the input pipeline stays on the host CPU
    builder = tfds.builder(name, data_dir=data_dir or None)
    if not builder.is_prepared():
        if not build_locally:
            raise FileNotFoundError(
                f"dataset {name!r} is not prepared in {builder.data_dir}. Prepare it once, with no network, from "
                f"the original archive: python -m resnet_jax.data.prepare {name} --data_dir "
                f"{data_dir or '~/tensorflow_datasets'} --manual_dir DIR_HOLDING_THE_ARCHIVE; then train with "
                "--config.data_dir set to the same --data_dir."
            )
        builder.download_and_prepare()
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


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """He et al.'s CIFAR augmentation: pad, random crop back to size, random horizontal flip."""

    crop_padding: int = 0
    pad_mode: str = "constant"  # 'constant' (zeros, He et al.) or 'reflect' (WRN)
    random_flip: bool = False


def augmentation_draws(rng: np.random.Generator, count: int, augmentation: Augmentation) -> tuple[np.ndarray, ...]:
    """Per-example crop offsets (top, left) and flip decisions for ``count`` examples."""
    tops, lefts = rng.integers(0, 2 * augmentation.crop_padding + 1, size=(2, count))
    return tops, lefts, rng.random(count) < 0.5


def augment(images: np.ndarray, draws: tuple[np.ndarray, ...], augmentation: Augmentation) -> np.ndarray:
    """Crop (after padding) and flip a batch of NHWC images as ``draws`` say."""
    tops, lefts, flips = draws
    height, width = images.shape[1:3]
    pad = augmentation.crop_padding
    if pad:
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=augmentation.pad_mode)
        images = np.stack(
            [
                image[top : top + height, left : left + width]
                for image, top, left in zip(padded, tops, lefts, strict=True)
            ]
        )
    if augmentation.random_flip:
        images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
    return images


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
    augmentation: Augmentation = Augmentation(),
) -> Iterator[dict[str, np.ndarray]]:
    """This process's rows of every global batch from ``start_step`` on, augmented and normalised.

    The augmentation draws are made for the whole global batch from ``(seed, step)``, so an example's
    crop and flip do not depend on how many processes share the batch.
    """
    num_examples = len(split["label"])
    global_batch = per_process_batch * process_count
    rows = batching.process_rows(per_process_batch, process_index)
    step = start_step
    while True:
        indices = global_batch_indices(seed, step, global_batch, num_examples)[rows]
        draws = augmentation_draws(np.random.default_rng([seed, AUGMENT_STREAM, step]), global_batch, augmentation)
        images = augment(split["image"][indices], [draw[rows] for draw in draws], augmentation)
        yield {"image": normalise(images, mean, std), "label": split["label"][indices]}
        step += 1
