"""What the model families share: torchvision-initialised convolutions, classifier and BatchNorm, and the
checks of their inputs and dtypes."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models.norm import BatchNorm

# He et al. (2015) initialisation with fan_out, as torchvision initialises its ResNets.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(
    features: int, kernel_size: int, stride: int, groups: int, dtype: Any, name: str, zero_init: bool = False
) -> nn.Conv:
    """A bias-free convolution with PyTorch's symmetric padding of kernel_size // 2."""
    pad = kernel_size // 2
    return nn.Conv(
        features,
        (kernel_size, kernel_size),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        feature_group_count=groups,
        use_bias=False,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=nn.initializers.zeros if zero_init else conv_kernel_init,
        name=name,
    )


def batch_norm(name: str, group_size: int, dtype: Any, zero_init: bool = False) -> BatchNorm:
    """PyTorch-semantics BatchNorm named ``name``; ``zero_init`` starts its scale at 0 (a zeroed branch)."""
    scale_init = nn.initializers.zeros if zero_init else nn.initializers.ones
    return BatchNorm(group_size=group_size, dtype=dtype, scale_init=scale_init, name=name)


# torchvision's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def dense_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torchvision's classifier bias initialisation."""
    bound = fan_in**-0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def check_images(images: jax.Array, channels: int) -> None:
    """Refuse, with the fix in the message, images that are not floating-point NHWC with ``channels`` channels."""
    if images.ndim != 4 or images.shape[-1] != channels:
        raise ValueError(
            f"expected NHWC images of shape (batch, height, width, {channels}), got shape "
            f"{tuple(images.shape)}; add a batch axis with images[None] or move channels last."
        )
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(
            f"expected floating-point images, got {images.dtype}; convert and normalise them first, "
            "e.g. (images.astype(jnp.float32) / 255 - mean) / std."
        )


def is_floating_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` names a floating-point type ('float32', jnp.bfloat16, ...); False for an unknown name."""
    try:
        return jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
    except TypeError:
        return False
