"""The toolkit every model family builds with: one conv, norm and activation factory (``Layers``), where BN
and the activation sit (``Place``), stochastic depth (``drop_path``), the classifier head (``classify``) and
the structure checks (``refuse``, ``common_problems``), plus the input checks.

A family hands one ``Layers`` to each of its units, as Flax's examples hand in ``conv``, ``norm`` and ``act``:
the padding convention, the BatchNorm constants, the statistics' group size, the activation and the compute
dtype are set once, where the network is, and every convolution, BatchNorm and activation follows them.
"""

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models.norm import BatchNorm

# He et al. (2015) initialisation with fan_out, as torchvision (and the EfficientNet reference) initialise
# convolutions. For a depthwise kernel (k, k, 1, C) the reference's fan_out is k * k, which is Flax's fan_in.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
depthwise_kernel_init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
# torchvision's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
PADDINGS = ("symmetric", "same")  # PyTorch's kernel_size // 2 on each side; TensorFlow's SAME


def dense_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default bias of a linear or convolutional layer."""
    bound = fan_in**-0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


@dataclasses.dataclass(frozen=True)
class Layers:
    """How every convolution, BatchNorm and activation of a network is built (the defaults are PyTorch's ResNet's).

    Attributes:
      padding: 'symmetric' (PyTorch's kernel_size // 2 on each side) or 'same' (TensorFlow's SAME).
      bn_momentum, bn_epsilon: BatchNorm's running-average decay (Flax's convention: PyTorch's 0.1 is 0.9)
        and the epsilon added to the variance.
      bn_group_size: examples sharing BatchNorm statistics in training; 0 = the whole batch.
      act: the activation (ReLU; EfficientNet's swish), in the units and squeeze-excitation's hidden layer.
      dtype: the compute dtype; parameters stay float32.
    """

    padding: str = "symmetric"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0
    act: Callable[[jax.Array], jax.Array] = nn.relu
    dtype: Any = jnp.float32

    def conv(
        self,
        features: int,
        kernel_size: int,
        name: str,
        stride: int = 1,
        groups: int = 1,
        *,
        depthwise: bool = False,
        zero_init: bool = False,
        bias_init: nn.initializers.Initializer | None = None,
    ) -> nn.Conv:
        """A convolution padded as ``padding`` says, He-initialised (``zero_init``: zeros); ``depthwise``: one
        group per channel; a bias only where ``bias_init`` is given."""
        pad = kernel_size // 2
        kernel_init = depthwise_kernel_init if depthwise else conv_kernel_init
        return nn.Conv(
            features,
            (kernel_size, kernel_size),
            strides=(stride, stride),
            padding="SAME" if self.padding == "same" else ((pad, pad), (pad, pad)),
            feature_group_count=features if depthwise else groups,
            use_bias=bias_init is not None,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            kernel_init=nn.initializers.zeros if zero_init else kernel_init,
            bias_init=bias_init or nn.initializers.zeros,
            name=name,
        )

    def norm(self, name: str, zero_init: bool = False) -> BatchNorm:
        """A BatchNorm with the network's constants; ``zero_init`` starts its scale at 0 (a zeroed branch)."""
        return BatchNorm(
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            group_size=self.bn_group_size,
            dtype=self.dtype,
            scale_init=nn.initializers.zeros if zero_init else nn.initializers.ones,
            name=name,
        )


@dataclasses.dataclass(frozen=True)
class Place:
    """What sits at one place of a unit: a BatchNorm (``norm``), then the activation (``act``: ReLU in He et al.'s
    orders), either, both or none."""

    norm: bool = False
    act: bool = False


NOTHING, RELU, BN, BN_RELU = Place(), Place(act=True), Place(norm=True), Place(norm=True, act=True)


def drop_path(branch: jax.Array, keep: jax.Array | bool, survival: float, train: bool, inverted: bool) -> jax.Array:
    """Stochastic depth (Huang et al. 2016) on a residual branch, kept where ``keep`` (for the whole batch, or
    per example, broadcasting) with probability ``survival``. ``inverted``: the kept branches are divided by
    ``survival`` in training and eval is the identity (the EfficientNet reference's drop connect); otherwise
    training keeps them as they are and eval multiplies by ``survival`` (the paper)."""
    if survival >= 1.0:
        return branch
    if not train:
        return branch if inverted else branch * survival
    kept = branch / survival if inverted else branch
    return jnp.where(keep, kept, jnp.zeros_like(branch)).astype(branch.dtype)


def classify(features: jax.Array, num_classes: int, train: bool, dropout: float, name: str) -> jax.Array:
    """The classifier head every family ends with: pooled ``features`` through dropout (in training; it needs a
    'dropout' rng when ``dropout`` > 0) and a float32 linear layer ``name``, initialised as torchvision's."""
    dropped = nn.Dropout(dropout, deterministic=not train)(features) if dropout else features
    return nn.Dense(
        num_classes,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        kernel_init=dense_kernel_init,
        bias_init=dense_bias_init(features.shape[-1]),
        name=name,
    )(dropped)


def refuse(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise ValueError with the message of the first check that does not hold: a family's structure check."""
    for holds, message in checks:
        if not holds:
            raise ValueError(message)


def common_problems(model: Any) -> list[tuple[bool, str]]:
    """The checks of the fields every family has: classes, input channels, BatchNorm groups and dtype."""
    return [
        (model.num_classes >= 1, f"num_classes must be at least 1, got {model.num_classes}"),
        (model.input_channels >= 1, f"input_channels must be at least 1, got {model.input_channels}"),
        (model.bn_group_size >= 0, f"bn_group_size must be 0 (whole batch) or positive, got {model.bn_group_size}"),
        (
            is_floating_dtype(model.dtype),
            f"dtype must be a floating-point type such as 'float32' or 'bfloat16', got {model.dtype!r}",
        ),
    ]


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
