"""Image normalisation, applied on the device inside the jitted steps (numpy and jax only).

Every pipeline sends uint8 images to the devices, a quarter of the bytes of float32; the train and eval
steps turn them into ``(x / 255 - mean) / std`` in float32 there, as one multiply-add per pixel that
XLA fuses into the first convolution's input.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from resnet_jax.data.spec import IMAGENET_MEAN_STD, MNIST_MEAN_STD, channel_statistics

MODES = ("channel", "pixel_mean", "imagenet", "mnist")


@dataclasses.dataclass(frozen=True, eq=False)
class Normalisation:
    """uint8 images -> float32 ``(x / 255 - mean) / std``; ``mean`` and ``std`` broadcast over HWC."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_images(cls, images: np.ndarray, mode: str) -> "Normalisation":
        """Statistics of the train images: per channel ('channel'), or He et al.'s per-pixel mean image alone;
        'imagenet': torchvision's ImageNet statistics, for fine-tuning its weights; 'mnist': MNIST's on every
        channel (Zhong et al.'s released Fashion-MNIST script)."""
        if mode == "imagenet":
            return cls.imagenet()
        if mode == "mnist":
            return cls.mnist(images.shape[-1])
        if mode == "pixel_mean":
            return cls(np.mean(images, axis=0, dtype=np.float64) / 255, np.ones(images.shape[-1]))
        if mode == "channel":
            return cls(*channel_statistics(images))
        raise ValueError(f"normalisation must be one of {MODES}, got {mode!r}")

    @classmethod
    def imagenet(cls) -> "Normalisation":
        """torchvision's ImageNet statistics (what its pretrained weights expect)."""
        mean, std = IMAGENET_MEAN_STD
        return cls(np.asarray(mean), np.asarray(std))

    @classmethod
    def mnist(cls, channels: int) -> "Normalisation":
        """MNIST's statistics on each of ``channels`` (Zhong et al.'s released Fashion-MNIST script)."""
        mean, std = MNIST_MEAN_STD
        return cls(np.full(channels, mean), np.full(channels, std))

    def __call__(self, images: jax.Array) -> jax.Array:
        """Normalise a batch of uint8 images (traceable; runs inside the jitted step)."""
        scale = (1 / (255 * np.asarray(self.std, np.float64))).astype(np.float32)
        offset = (-np.asarray(self.mean, np.float64) / self.std).astype(np.float32)
        return images.astype(jnp.float32) * scale + offset
