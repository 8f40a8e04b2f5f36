"""One parametrised residual network covering ResNet, ResNeXt, Wide ResNet, SE-ResNet, ResNet-D, Res2Net,
pre-activation and plain nets, and the ablation variants of He et al. 2016b and Huang et al. 2016.

Parameter names follow torchvision's layout (``conv1``, ``bn1``, ``layer2_0/conv1``,
``layer2_0/downsample_conv``, ``fc``) so that converted checkpoints map one to one; see
``resnet_jax.convert``. The residual unit and its options live in ``resnet_jax.models.blocks``.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import parts
from resnet_jax.models.blocks import (
    ACTIVATION_ORDERS,
    BLOCKS,
    BOTTLENECK_EXPANSION,
    GATES,
    SHORTCUTS,
    ResidualBlock,
    conv,
)
from resnet_jax.models.norm import BatchNorm

STEMS = ("imagenet", "cifar", "deep")
DEEP_STEM_WIDTHS = (32, 32)  # He et al. 2019 (ResNet-C): 3x3 convs of 32, 32, then stem_width
# torchvision's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def dense_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torchvision's classifier bias initialisation."""
    bound = fan_in**-0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class ResNet(nn.Module):
    """A residual network for NHWC float images; returns float32 logits.

    Attributes:
      stage_sizes: residual blocks per stage; stage ``i > 0`` halves the resolution.
      num_classes: outputs of the final dense layer.
      block: ``'basic'`` (3x3, 3x3), ``'bottleneck'`` (1x1, 3x3, 1x1; output width x4) or ``'res2net'``
        (a bottleneck whose 3x3 is Gao et al.'s hierarchy over ``scale`` splits).
      widths: base width of each stage (64, 128, 256, 512 for ImageNet; 16, 32, 64 for CIFAR).
      stem: ``'imagenet'`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), ``'deep'`` (ResNet-C: 3x3/2 convs of
        32, 32 and ``stem_width``, each with BN-ReLU, then the max-pool) or ``'cifar'`` (3x3 conv).
      stem_width: output channels of the stem.
      shortcut: ``'A'`` (identity; subsample + zero-pad on shape change), ``'B'`` (1x1 projection on
        shape change), ``'C'`` (1x1 projection on every block), ``'D'`` (ResNet-D: 2x2 average pool, then
        the 1x1 projection, on shape change) or ``'none'`` (plain network, no shortcut at all).
      activation_order: where BN and ReLU sit (``blocks.ACTIVATION_ORDERS``, He et al. 2016b Fig. 4);
        ``'full_preactivation'`` (WRN) ends with a final BN-ReLU, ``'relu_preactivation'`` with a ReLU.
      preactivation: the earlier spelling, still accepted: True means ``activation_order='full_preactivation'``,
        False ``'post'``; None (the default) leaves ``activation_order`` to decide.
      groups: cardinality of the bottleneck's 3x3 convolution (ResNeXt).
      width_per_group: bottleneck channels per group at base width 64 (ResNeXt's "d", Res2Net's width).
      width_multiplier: widens each block's inner convolutions (Wide ResNet's "k").
      scale: Res2Net's number of splits ("s").
      se_ratio: Squeeze-and-Excitation on each branch, narrowing to this fraction (Hu et al.: 1/16); 0 = off.
      dropout_rate: dropout between a block's convolutions (Wide ResNet); needs a 'dropout' rng.
      stochastic_depth: survival probability of the last block, decaying linearly from 1 over
        the blocks (Huang et al. 2016: 0.5); 1 = off. Needs a 'dropout' rng in training.
      shortcut_scale, branch_scale: constant scaling of the shortcut and the branch (He et al. 2016b).
      gate: ``''``, ``'exclusive'`` or ``'shortcut_only'`` gating (He et al. 2016b), its 1x1 conv's bias
        starting at ``gate_bias_init``.
      shortcut_dropout: dropout on the shortcut (He et al. 2016b).
      zero_init_residual: start every residual branch at zero: the last BatchNorm scale of a branch that
        ends in BN, the last convolution of a branch that ends in a conv.
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
    activation_order: str = "post"
    preactivation: bool | None = None
    groups: int = 1
    width_per_group: int = 64
    width_multiplier: int = 1
    scale: int = 1
    se_ratio: float = 0.0
    dropout_rate: float = 0.0
    stochastic_depth: float = 1.0
    shortcut_scale: float = 1.0
    branch_scale: float = 1.0
    gate: str = ""
    gate_bias_init: float = 0.0
    shortcut_dropout: float = 0.0
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
        check_images(images, self.input_channels)
        dtype = jnp.dtype(self.dtype)
        features = {}
        x = self._stem(images.astype(dtype), train)
        features[parts.STEM] = x
        total_blocks, position = sum(self.stage_sizes), 0
        for stage, num_blocks in enumerate(self.stage_sizes):
            for index in range(num_blocks):
                position += 1  # Huang et al.: p_l = 1 - l / L (1 - p_L) for block l of L
                survival = 1 - position / total_blocks * (1 - self.stochastic_depth)
                x = ResidualBlock(
                    block=self.block,
                    inner_width=self._inner_width(stage),
                    out_width=self._out_width(stage),
                    stride=2 if stage > 0 and index == 0 else 1,
                    groups=self.groups,
                    shortcut=self.shortcut,
                    activation_order=self.unit_order,
                    dropout_rate=self.dropout_rate,
                    zero_init_residual=self.zero_init_residual,
                    bn_group_size=self.bn_group_size,
                    dtype=dtype,
                    scale=self.scale,
                    se_hidden=int(self._out_width(stage) * self.se_ratio),
                    shortcut_scale=self.shortcut_scale,
                    branch_scale=self.branch_scale,
                    gate=self.gate,
                    gate_bias_init=self.gate_bias_init,
                    shortcut_dropout=self.shortcut_dropout,
                    survival_probability=survival,
                    skip_preactivation=self._stem_is_activated and stage == 0 and index == 0,
                    name=parts.block(stage, index),
                )(x, train)
            features[parts.stage(stage)] = x
        x = self._final_activation(x, train)
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

    @property
    def unit_order(self) -> str:
        """The activation order the units are built with: ``activation_order``, unless ``preactivation`` says."""
        if self.preactivation is None:
            return self.activation_order
        return "full_preactivation" if self.preactivation else "post"

    @property
    def _stem_is_activated(self) -> bool:
        """Whether the stem ends in BN-ReLU before a full pre-activation unit, whose own first BN-ReLU
        is then left out (He et al. 2016b's ImageNet nets); a CIFAR stem is a bare conv instead."""
        return self.unit_order == "full_preactivation" and self.stem != "cifar"

    def _stem(self, x: jax.Array, train: bool) -> jax.Array:
        dtype = x.dtype

        def norm(name):
            return BatchNorm(group_size=self.bn_group_size, dtype=dtype, name=name)

        if self.stem == "cifar":
            x = conv(self.stem_width, 3, 1, 1, dtype, parts.STEM_MODULES[0])(x)
            if self.unit_order == "full_preactivation":  # the first block's BN-ReLU follows directly
                return x
            x = norm(parts.STEM_MODULES[1])(x, train)
            # A ReLU-only pre-activation unit starts with its own ReLU.
            return x if self.unit_order == "relu_preactivation" else nn.relu(x)
        if self.stem == "deep":
            for i, (width, stride) in enumerate(zip(DEEP_STEM_WIDTHS, (2, 1), strict=True)):
                conv_name, norm_name = parts.DEEP_STEM_MODULES[2 * i : 2 * i + 2]
                x = nn.relu(norm(norm_name)(conv(width, 3, stride, 1, dtype, conv_name)(x), train))
            x = conv(self.stem_width, 3, 1, 1, dtype, parts.STEM_MODULES[0])(x)
        else:
            x = conv(self.stem_width, 7, 2, 1, dtype, parts.STEM_MODULES[0])(x)
        x = nn.relu(norm(parts.STEM_MODULES[1])(x, train))
        return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

    def _final_activation(self, x: jax.Array, train: bool) -> jax.Array:
        """The final BN-ReLU of a full pre-activation net, or ReLU of a ReLU-only one (He et al. 2016b)."""
        if self.unit_order == "full_preactivation":
            return nn.relu(BatchNorm(group_size=self.bn_group_size, dtype=x.dtype, name=parts.FINAL_NORM)(x, train))
        if self.unit_order == "relu_preactivation":
            return nn.relu(x)
        return x

    def _inner_width(self, stage: int) -> int:
        base = self.widths[stage]
        if self.block == "basic":
            return base * self.width_multiplier
        return int(base * self.width_per_group / 64) * self.groups * self.scale * self.width_multiplier

    def _out_width(self, stage: int) -> int:
        base = self.widths[stage]
        if self.block == "basic":
            return base * self.width_multiplier
        return base * BOTTLENECK_EXPANSION

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


def validate_architecture(model: ResNet) -> None:
    """Raise ValueError with a readable message if the architecture fields are inconsistent."""

    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(message)

    for field, allowed in (
        ("block", BLOCKS),
        ("stem", STEMS),
        ("shortcut", SHORTCUTS),
        ("activation_order", ACTIVATION_ORDERS),
        ("gate", GATES),
    ):
        value = getattr(model, field)
        require(value in allowed, f"{field} must be one of {allowed}, got {value!r}")
    require(
        model.preactivation is None or model.activation_order in ("post", "full_preactivation"),
        f"preactivation={model.preactivation} chooses between 'post' and 'full_preactivation'; with "
        f"activation_order={model.activation_order!r} set activation_order alone",
    )
    require(
        len(model.stage_sizes) > 0 and all(n >= 1 for n in model.stage_sizes),
        f"stage_sizes must be positive block counts, got {tuple(model.stage_sizes)}",
    )
    require(
        len(model.widths) == len(model.stage_sizes),
        f"widths {tuple(model.widths)} needs one entry per stage of stage_sizes {tuple(model.stage_sizes)}",
    )
    require(model.num_classes >= 1, f"num_classes must be >= 1, got {model.num_classes}")
    for field in ("dropout_rate", "shortcut_dropout", "se_ratio"):
        require(0.0 <= getattr(model, field) < 1.0, f"{field} must be in [0, 1), got {getattr(model, field)}")
    require(
        0.0 < model.stochastic_depth <= 1.0,
        f"stochastic_depth must be in (0, 1] (1 = off), got {model.stochastic_depth}",
    )
    require(
        model.groups >= 1 and model.width_per_group >= 1 and model.width_multiplier >= 1 and model.scale >= 1,
        "groups, width_per_group, width_multiplier and scale must be >= 1",
    )
    require(
        model.block != "basic" or (model.groups == 1 and model.width_per_group == 64),
        "groups and width_per_group apply to bottleneck and res2net blocks only; set block='bottleneck'",
    )
    require(
        (model.block == "res2net") == (model.scale > 1) and (model.block != "res2net" or model.groups == 1),
        "block='res2net' needs scale >= 2 splits and groups=1; scale applies to res2net blocks only",
    )
    require(
        model.block != "res2net" or model.unit_order == "post",
        "res2net blocks are built with activation_order='post' only (Gao et al. 2019)",
    )
    require(
        model.se_ratio == 0
        or min(int(model._out_width(stage) * model.se_ratio) for stage in range(len(model.stage_sizes))) >= 1,
        f"se_ratio={model.se_ratio} leaves no hidden unit in the narrowest stage; raise it or widen the net",
    )
    require(model.bn_group_size >= 0, f"bn_group_size must be >= 0 (0 = whole batch), got {model.bn_group_size}")
    require(
        not (model.zero_init_residual and model.shortcut == "none"),
        "zero_init_residual=True would zero a plain network's only path; use it with shortcut 'A' or 'B'",
    )
    require(
        not (model.zero_init_residual and model.unit_order == "relu_before_addition"),
        "zero_init_residual=True cannot zero a branch that ends in BN-ReLU: relu'(0) = 0 would stop its "
        "gradients for good; leave it off with activation_order='relu_before_addition'",
    )
    modifies_shortcut = model.gate or model.shortcut_scale != 1.0 or model.shortcut_dropout
    require(
        not (modifies_shortcut and model.shortcut == "none"),
        "gate, shortcut_scale and shortcut_dropout act on the shortcut, and shortcut='none' has none",
    )
    if model.shortcut == "A":
        channels = [model.stem_width] + [model._out_width(stage) for stage in range(len(model.stage_sizes))]
        require(
            all(a <= b for a, b in zip(channels, channels[1:], strict=False)),
            f"option A shortcuts zero-pad channels and cannot narrow them, but the widths go {channels}; "
            "use non-decreasing widths or shortcut='B'",
        )
    require(jnp.issubdtype(jnp.dtype(model.dtype), jnp.floating), f"dtype must be a float type, got {model.dtype}")
