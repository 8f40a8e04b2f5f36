"""He et al.'s small-image augmentation (pad, random crop back to size, random horizontal flip), in JAX.

The in-memory pipeline draws the crop offsets and flips of a whole global batch from (seed, step), on
the devices or the host; ``Augmentation`` bundles these settings with Random Erasing's, which follows, and
the registered example augmentations the run names (``examples``), which come last.
"""

import dataclasses

import jax
import jax.numpy as jnp

from resnet_jax.data.augment import erasing
from resnet_jax.data.streams import Stream, stream_key


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """He et al.'s CIFAR augmentation (pad, random crop back to size, random horizontal flip), then
    Zhong et al.'s Random Erasing, then the registered example augmentations ``named``, in order."""

    crop_padding: int = 0
    pad_mode: str = "constant"  # 'constant' (zeros, He et al.) or 'reflect' (WRN)
    random_flip: bool = False
    random_erasing: erasing.RandomErasing = erasing.RandomErasing()
    named: tuple[str, ...] = ()


NO_AUGMENTATION = Augmentation()


def draws(seed: int, step, count: int, augmentation: Augmentation) -> tuple[jax.Array, ...]:
    """Crop offsets (top, left) and flip decisions for the ``count`` examples of the batch at ``step``."""
    top_key, left_key, flip_key = jax.random.split(stream_key(seed, Stream.CROP_FLIP, step), 3)
    offsets = [
        jax.random.randint(key, (count,), 0, 2 * augmentation.crop_padding + 1, jnp.int32)
        for key in (top_key, left_key)
    ]
    return (*offsets, jax.random.uniform(flip_key, (count,)) < 0.5)


def pad_crop_flip(images: jax.Array, drawn: tuple[jax.Array, ...], augmentation: Augmentation) -> jax.Array:
    """Crop (after padding) and flip a batch of NHWC images as ``drawn`` (from ``draws``) says."""
    tops, lefts, flips = drawn
    images = jnp.asarray(images)
    height, width, channels = images.shape[1:]
    pad = augmentation.crop_padding
    if pad:
        padded = jnp.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode=augmentation.pad_mode)
        crop = jax.vmap(
            lambda image, top, left: jax.lax.dynamic_slice(image, (top, left, 0), (height, width, channels))
        )
        images = crop(padded, tops, lefts)
    if augmentation.random_flip:
        images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
    return images
