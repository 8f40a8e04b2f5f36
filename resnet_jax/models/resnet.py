"""One parametrised residual network covering ResNet, ResNeXt, Wide ResNet, pre-activation and plain nets.

Parameter names follow torchvision's layout (``conv1``, ``bn1``, ``layer2_0/conv1``,
``layer2_0/downsample_conv``, ``fc``) so that converted checkpoints map one to one; see
``resnet_jax.convert``.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import parts
from resnet_jax.models.norm import BatchNorm

BLOCKS = ("basic", "bottleneck")
STEMS = ("imagenet", "cifar")
SHORTCUTS = ("A", "B", "none")
BOTTLENECK_EXPANSION = 4

# He et al. (2015) initialisation with fan_out, as torchvision initialises its ResNets.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torchvision's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def dense_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torchvision's classifier bias initialisation."""
    bound = fan_in**-0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _conv(
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


class ResidualBlock(nn.Module):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) block, post- or pre-activation.

    The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"). Dropout, when enabled,
    is applied to the input of every convolution but the first, as in Wide ResNet.
    """

    block: str
    inner_width: int
    out_width: int
    stride: int
    groups: int
    shortcut: str
    preactivation: bool
    dropout_rate: float
    zero_init_residual: bool
    bn_group_size: int
    dtype: Any

    def _layers(self) -> list[tuple[int, int, int, int]]:
        """(features, kernel, stride, groups) of the branch's convolutions."""
        if self.block == "basic":
            return [(self.inner_width, 3, self.stride, 1), (self.out_width, 3, 1, 1)]
        return [
            (self.inner_width, 1, 1, 1),
            (self.inner_width, 3, self.stride, self.groups),
            (self.out_width, 1, 1, 1),
        ]

    def _norm(self, name: str, zero_init: bool = False) -> BatchNorm:
        scale_init = nn.initializers.zeros if zero_init else nn.initializers.ones
        return BatchNorm(group_size=self.bn_group_size, dtype=self.dtype, scale_init=scale_init, name=name)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Return the block's output: activation(branch(x) + shortcut(x))."""
        layers = self._layers()
        last = len(layers)
        branch = x
        if self.preactivation:
            branch = nn.relu(self._norm("bn1")(x, train))
        projection_input = branch  # pre-activated input in pre-act nets (He et al. 2016b), x otherwise
        for index, (features, kernel, stride, groups) in enumerate(layers, start=1):
            zero_init = self.zero_init_residual and index == last
            if index > 1:
                if self.preactivation:
                    branch = nn.relu(self._norm(f"bn{index}")(branch, train))
                branch = nn.Dropout(self.dropout_rate, deterministic=not train)(branch)
            # Pre-activation branches end in a conv, which is zeroed instead: a zeroed BN in front of a
            # ReLU would leave relu'(0) = 0 and block every gradient of the branch for good.
            conv_zero_init = zero_init and self.preactivation
            branch = _conv(features, kernel, stride, groups, self.dtype, f"conv{index}", conv_zero_init)(branch)
            if not self.preactivation:
                branch = self._norm(f"bn{index}", zero_init=zero_init)(branch, train)
                if index < last:
                    branch = nn.relu(branch)

        if self.shortcut != "none":
            branch = branch + self._shortcut(x, projection_input, train)
        return branch if self.preactivation else nn.relu(branch)

    def _shortcut(self, x: jax.Array, projection_input: jax.Array, train: bool) -> jax.Array:
        """Identity, or (when the shape changes) option A's subsample-and-pad or option B's projection."""
        in_width = x.shape[-1]
        if self.stride == 1 and in_width == self.out_width:
            return x
        if self.shortcut == "A":
            subsampled = x[:, :: self.stride, :: self.stride, :]
            padding = [(0, 0)] * 3 + [(0, self.out_width - in_width)]
            return jnp.pad(subsampled, padding)
        projected = _conv(self.out_width, 1, self.stride, 1, self.dtype, "downsample_conv")(projection_input)
        if self.preactivation:
            return projected
        return self._norm("downsample_bn")(projected, train)


class ResNet(nn.Module):
    """A residual network for NHWC float images; returns float32 logits.

    Attributes:
      stage_sizes: residual blocks per stage; stage ``i > 0`` halves the resolution.
      num_classes: outputs of the final dense layer.
      block: ``'basic'`` (3x3, 3x3) or ``'bottleneck'`` (1x1, 3x3, 1x1; output width x4).
      widths: base width of each stage (64, 128, 256, 512 for ImageNet; 16, 32, 64 for CIFAR).
      stem: ``'imagenet'`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) or ``'cifar'`` (3x3 conv).
      stem_width: output channels of the stem convolution.
      shortcut: ``'A'`` (identity; subsample + zero-pad on shape change), ``'B'`` (1x1 projection on
        shape change), or ``'none'`` (plain network, no shortcut at all).
      preactivation: BN-ReLU-conv ordering (He et al. 2016b, Wide ResNet) with a final BN-ReLU.
      groups: cardinality of the bottleneck's 3x3 convolution (ResNeXt).
      width_per_group: bottleneck channels per group at base width 64 (ResNeXt's "d").
      width_multiplier: widens each block's inner convolutions (Wide ResNet's "k").
      dropout_rate: dropout between a block's convolutions (Wide ResNet); needs a 'dropout' rng.
      zero_init_residual: start every residual branch at zero: the last BatchNorm scale of a
        post-activation branch, the last convolution of a pre-activation branch (which ends in a conv).
      bn_group_size: examples sharing BatchNorm statistics in training; 0 = the whole batch.
      input_channels: channels the input images must have.
      dtype: compute dtype; parameters, BatchNorm statistics and logits stay float32.
    """

    stage_sizes: Sequence[int]
    num_classes: int
    block: str = "basic"
    widths: Sequence[int] = (64, 128, 256, 512)
    stem: str = "imagenet"
    stem_width: int = 64
    shortcut: str = "B"
    preactivation: bool = False
    groups: int = 1
    width_per_group: int = 64
    width_multiplier: int = 1
    dropout_rate: float = 0.0
    zero_init_residual: bool = False
    bn_group_size: int = 0
    input_channels: int = 3
    dtype: Any = "float32"

    def __post_init__(self):
        super().__post_init__()
        validate_architecture(self)

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False, return_features: bool = False):
        """Logits for ``images`` (batch, height, width, channels).

        With ``return_features=True`` it returns a dict of the per-stage feature maps instead:
        ``{'stem', 'layer1', ..., 'layerN', 'pooled', 'logits'}`` (the backbone interface).
        """
        self._check_images(images)
        dtype = jnp.dtype(self.dtype)
        features = {}
        x = self._stem(images.astype(dtype), train)
        features[parts.STEM] = x
        for stage, num_blocks in enumerate(self.stage_sizes):
            for index in range(num_blocks):
                x = ResidualBlock(
                    block=self.block,
                    inner_width=self._inner_width(stage),
                    out_width=self._out_width(stage),
                    stride=2 if stage > 0 and index == 0 else 1,
                    groups=self.groups,
                    shortcut=self.shortcut,
                    preactivation=self.preactivation,
                    dropout_rate=self.dropout_rate,
                    zero_init_residual=self.zero_init_residual,
                    bn_group_size=self.bn_group_size,
                    dtype=dtype,
                    name=parts.block(stage, index),
                )(x, train)
            features[parts.stage(stage)] = x
        if self.preactivation:
            x = nn.relu(BatchNorm(group_size=self.bn_group_size, dtype=dtype, name=parts.FINAL_NORM)(x, train))
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        logits = nn.Dense(
            self.num_classes,
            dtype=jnp.float32,
            param_dtype=jnp.float32,
            kernel_init=dense_kernel_init,
            bias_init=dense_bias_init(pooled.shape[-1]),
            name=parts.CLASSIFIER,
        )(pooled)
        if return_features:
            return {**features, "pooled": pooled, "logits": logits}
        return logits

    def _stem(self, x: jax.Array, train: bool) -> jax.Array:
        dtype = x.dtype
        if self.stem == "imagenet":
            x = _conv(self.stem_width, 7, 2, 1, dtype, parts.STEM_MODULES[0])(x)
        else:
            x = _conv(self.stem_width, 3, 1, 1, dtype, parts.STEM_MODULES[0])(x)
            if self.preactivation:  # the first block's BN-ReLU follows directly
                return x
        x = nn.relu(BatchNorm(group_size=self.bn_group_size, dtype=dtype, name=parts.STEM_MODULES[1])(x, train))
        if self.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        return x

    def _inner_width(self, stage: int) -> int:
        base = self.widths[stage]
        if self.block == "basic":
            return base * self.width_multiplier
        return int(base * self.width_per_group / 64) * self.groups * self.width_multiplier

    def _out_width(self, stage: int) -> int:
        base = self.widths[stage]
        if self.block == "basic":
            return base * self.width_multiplier
        return base * BOTTLENECK_EXPANSION

    def _check_images(self, images: jax.Array) -> None:
        if images.ndim != 4 or images.shape[-1] != self.input_channels:
            raise ValueError(
                f"expected NHWC images of shape (batch, height, width, {self.input_channels}), got shape "
                f"{tuple(images.shape)}; add a batch axis with images[None] or move channels last."
            )
        if not jnp.issubdtype(images.dtype, jnp.floating):
            raise TypeError(
                f"expected floating-point images, got {images.dtype}; convert and normalise them first, "
                "e.g. (images.astype(jnp.float32) / 255 - mean) / std."
            )


def validate_architecture(model: ResNet) -> None:
    """Raise ValueError with a readable message if the architecture fields are inconsistent."""

    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(message)

    require(model.block in BLOCKS, f"block must be one of {BLOCKS}, got {model.block!r}")
    require(model.stem in STEMS, f"stem must be one of {STEMS}, got {model.stem!r}")
    require(model.shortcut in SHORTCUTS, f"shortcut must be one of {SHORTCUTS}, got {model.shortcut!r}")
    require(
        len(model.stage_sizes) > 0 and all(n >= 1 for n in model.stage_sizes),
        f"stage_sizes must be positive block counts, got {tuple(model.stage_sizes)}",
    )
    require(
        len(model.widths) == len(model.stage_sizes),
        f"widths {tuple(model.widths)} needs one entry per stage of stage_sizes {tuple(model.stage_sizes)}",
    )
    require(model.num_classes >= 1, f"num_classes must be >= 1, got {model.num_classes}")
    require(0.0 <= model.dropout_rate < 1.0, f"dropout_rate must be in [0, 1), got {model.dropout_rate}")
    require(
        model.groups >= 1 and model.width_per_group >= 1 and model.width_multiplier >= 1,
        "groups, width_per_group and width_multiplier must be >= 1",
    )
    require(
        model.block == "bottleneck" or (model.groups == 1 and model.width_per_group == 64),
        "groups and width_per_group apply to bottleneck blocks only; set block='bottleneck'",
    )
    require(model.bn_group_size >= 0, f"bn_group_size must be >= 0 (0 = whole batch), got {model.bn_group_size}")
    require(
        not (model.zero_init_residual and model.shortcut == "none"),
        "zero_init_residual=True would zero a plain network's only path; use it with shortcut 'A' or 'B'",
    )
    require(
        not (model.preactivation and model.stem == "imagenet"),
        "preactivation=True with the ImageNet stem would apply BN-ReLU twice before layer1 (He et al. 2016b "
        "use a special first block there, not implemented); use stem='cifar' or post-activation blocks",
    )
    if model.shortcut == "A":
        channels = [model.stem_width] + [model._out_width(stage) for stage in range(len(model.stage_sizes))]
        require(
            all(a <= b for a, b in zip(channels, channels[1:], strict=False)),
            f"option A shortcuts zero-pad channels and cannot narrow them, but the widths go {channels}; "
            "use non-decreasing widths or shortcut='B'",
        )
    require(jnp.issubdtype(jnp.dtype(model.dtype), jnp.floating), f"dtype must be a float type, got {model.dtype}")
