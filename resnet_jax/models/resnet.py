"""One residual network covering ResNet, ResNeXt, Wide ResNet, SE-ResNet, ResNet-D, Res2Net, pre-activation
and plain nets, and the ablation variants of He et al. 2016b and Huang et al. 2016.

Parameter names follow torchvision's layout (``conv1``, ``bn1``, ``layer2_0/conv1``,
``layer2_0/downsample_conv``, ``fc``) so that converted checkpoints map one to one; see
``resnet_jax.convert``. The units are ``resnet_jax.models.blocks`` (one class per kind), their shortcuts,
gates and attention modules of their own; the options a run may change are declared in ``models.options``.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import options, parts
from resnet_jax.models.attention import SqueezeExcitation
from resnet_jax.models.blocks import BOTTLENECK_EXPANSION, UNITS, ResidualUnit
from resnet_jax.models.layers import Layers, check_images, classify, common_problems, refuse
from resnet_jax.models.shortcuts import Gate, ProjectionShortcut, Shortcut, ZeroPadShortcut

STEMS = ("imagenet", "cifar", "deep")
DEEP_STEM_WIDTHS = (32, 32)  # He et al. 2019 (ResNet-C): 3x3 convs of 32, 32, then stem_width


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
      preactivation: the earlier spelling, still accepted: True means ``activation_order='full_preactivation'``,
        False ``'post'``; None (the default) leaves ``activation_order`` to decide.
      groups: cardinality of the bottleneck's 3x3 convolution (ResNeXt).
      width_per_group: bottleneck channels per group at base width 64 (ResNeXt's "d", Res2Net's width).
      width_multiplier: widens each block's inner convolutions (Wide ResNet's "k").
      scale: Res2Net's number of splits ("s").
      shortcut, activation_order, se_ratio, stochastic_depth, shortcut_scale, branch_scale, gate,
        gate_bias_init, shortcut_dropout, zero_init_residual, block_dropout, bn_group_size: the options a run
        may change, each documented, bounded and checked where it is declared (``models.options``).
        A ``'full_preactivation'`` net ends with a final BN-ReLU, a ``'relu_preactivation'`` one with a ReLU;
        dropout and stochastic depth need a 'dropout' rng in training.
      added_options: the values of options added with ``options.register_option``, as (name, value) pairs;
        ``create_model`` packs them from its keyword arguments. Each acts on every unit's branch.
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
    block_dropout: float = 0.0
    stochastic_depth: float = 1.0
    shortcut_scale: float = 1.0
    branch_scale: float = 1.0
    gate: str = ""
    gate_bias_init: float = 0.0
    shortcut_dropout: float = 0.0
    zero_init_residual: bool = False
    bn_group_size: int = 0
    added_options: tuple[tuple[str, Any], ...] = ()
    input_channels: int = 3
    dtype: Any = "float32"

    def __post_init__(self):
        super().__post_init__()
        validate_structure(self)
        options.check(self)

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False, return_features: bool = False):
        """Logits for ``images`` (batch, height, width, channels).

        With ``return_features=True`` it returns a dict of the per-stage feature maps instead:
        ``{'stem', 'layer1', ..., 'layerN', 'pooled', 'logits'}`` (the backbone interface).
        """
        check_images(images, self.input_channels)
        layers = Layers(bn_group_size=self.bn_group_size, dtype=jnp.dtype(self.dtype))  # PyTorch's conventions
        features = {}
        x = self._stem(images.astype(layers.dtype), train, layers)
        features[parts.STEM] = x
        total_blocks, position = sum(self.stage_sizes), 0
        for stage, num_blocks in enumerate(self.stage_sizes):
            for index in range(num_blocks):
                position += 1  # Huang et al.: p_l = 1 - l / L (1 - p_L) for block l of L
                survival = 1 - position / total_blocks * (1 - self.stochastic_depth)
                x = self._unit(stage, index, survival, layers)(x, train)
            features[parts.stage(stage)] = x
        x = self._final_activation(x, train, layers)
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        logits = classify(pooled, self.num_classes, train, 0.0, parts.CLASSIFIER)
        if return_features:
            return {**features, "pooled": pooled, "logits": logits}
        return logits

    @property
    def unit_order(self) -> str:
        """The activation order the units are built with: ``activation_order``, unless ``preactivation`` says."""
        if self.preactivation is None:
            return self.activation_order
        return "full_preactivation" if self.preactivation else "post"

    def option_value(self, name: str) -> Any:
        """The value of option ``name``: a field, an added option's value, or an unset added option's default."""
        if name in self.__dataclass_fields__:
            return getattr(self, name)
        return dict(self.added_options).get(name, options.BY_NAME[name].default)

    @property
    def stage_out_widths(self) -> list[int]:
        """The output channels of each stage."""
        return [self._out_width(stage) for stage in range(len(self.stage_sizes))]

    def _unit(self, stage: int, index: int, survival: float, layers: Layers) -> ResidualUnit:
        """Block ``index`` of ``stage``: its kind's class, given its shortcut, gate and attention as modules."""
        stride = 2 if stage > 0 and index == 0 else 1
        out_width, inner_width = self._out_width(stage), self._inner_width(stage)
        shape = {
            "basic": {},
            "bottleneck": dict(width=inner_width, groups=self.groups),
            "res2net": dict(width=inner_width, scale=self.scale),
        }[self.block]
        se_hidden = int(out_width * self.se_ratio)
        return UNITS[self.block](
            out_width=out_width,
            stride=stride,
            shortcut=self._shortcut(out_width, stride, layers),
            gating=Gate(self.gate == "exclusive", out_width, stride, self.gate_bias_init, layers, parent=None)
            if self.gate
            else None,
            se=SqueezeExcitation(se_hidden, layers, parent=None) if se_hidden else None,
            order=self.unit_order,
            block_dropout=self.block_dropout,
            branch_scale=self.branch_scale,
            survival_probability=survival,
            zero_init_residual=self.zero_init_residual,
            added_options=tuple(
                (name, value) for name, value in self.added_options if value != options.BY_NAME[name].default
            ),
            skip_preactivation=self._stem_is_activated and stage == 0 and index == 0,
            layers=layers,
            name=parts.block(stage, index),
            **shape,
        )

    def _shortcut(self, out_width: int, stride: int, layers: Layers) -> Shortcut | None:
        """The module of option ``shortcut`` for one unit (None for a plain net)."""
        if self.shortcut == "none":
            return None
        common = dict(out_width=out_width, stride=stride, scale=self.shortcut_scale, dropout=self.shortcut_dropout)
        if self.shortcut == "A":
            return ZeroPadShortcut(**common, parent=None)
        return ProjectionShortcut(
            **common,
            everywhere=self.shortcut == "C",
            average_pool=self.shortcut == "D",
            norm=self.unit_order != "full_preactivation",
            layers=layers,
            parent=None,
        )

    @property
    def _stem_is_activated(self) -> bool:
        """Whether the stem ends in BN-ReLU before a full pre-activation unit, whose own first BN-ReLU
        is then left out (He et al. 2016b's ImageNet nets); a CIFAR stem is a bare conv instead."""
        return self.unit_order == "full_preactivation" and self.stem != "cifar"

    def _stem(self, x: jax.Array, train: bool, layers: Layers) -> jax.Array:
        conv_name, norm_name = parts.STEM_MODULES[:2]
        if self.stem == "cifar":
            x = layers.conv(self.stem_width, 3, conv_name)(x)
            if self.unit_order == "full_preactivation":  # the first block's BN-ReLU follows directly
                return x
            x = layers.norm(norm_name)(x, train)
            # A ReLU-only pre-activation unit starts with its own ReLU.
            return x if self.unit_order == "relu_preactivation" else layers.act(x)
        if self.stem == "deep":
            for i, (width, stride) in enumerate(zip(DEEP_STEM_WIDTHS, (2, 1), strict=True)):
                deep_conv, deep_norm = parts.DEEP_STEM_MODULES[2 * i : 2 * i + 2]
                x = layers.act(layers.norm(deep_norm)(layers.conv(width, 3, deep_conv, stride)(x), train))
            x = layers.conv(self.stem_width, 3, conv_name)(x)
        else:
            x = layers.conv(self.stem_width, 7, conv_name, 2)(x)
        x = layers.act(layers.norm(norm_name)(x, train))
        return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

    def _final_activation(self, x: jax.Array, train: bool, layers: Layers) -> jax.Array:
        """The final BN-ReLU of a full pre-activation net, or ReLU of a ReLU-only one (He et al. 2016b)."""
        if self.unit_order == "full_preactivation":
            return layers.act(layers.norm(parts.FINAL_NORM)(x, train))
        if self.unit_order == "relu_preactivation":
            return layers.act(x)
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


STRUCTURE = {"block": tuple(UNITS), "stem": STEMS}


def validate_structure(model: ResNet) -> None:
    """Raise ValueError, saying what to change, if the network's shape fields are inconsistent (the options'
    own values and combinations are checked where they are declared, ``options.check``)."""
    refuse(
        [
            *(
                (getattr(model, field) in allowed, f"{field} must be one of {allowed}, got {getattr(model, field)!r}")
                for field, allowed in STRUCTURE.items()
            ),
            (
                len(model.stage_sizes) > 0 and all(n >= 1 for n in model.stage_sizes),
                f"stage_sizes must be positive block counts, got {tuple(model.stage_sizes)}",
            ),
            (
                len(model.widths) == len(model.stage_sizes),
                f"widths {tuple(model.widths)} needs one entry per stage of stage_sizes {tuple(model.stage_sizes)}",
            ),
            *common_problems(model),
            (
                model.groups >= 1 and model.width_per_group >= 1 and model.width_multiplier >= 1 and model.scale >= 1,
                "groups, width_per_group, width_multiplier and scale must be >= 1",
            ),
            (
                model.block != "basic" or (model.groups == 1 and model.width_per_group == 64),
                "groups and width_per_group apply to bottleneck and res2net blocks only; set block='bottleneck'",
            ),
            (
                (model.block == "res2net") == (model.scale > 1) and (model.block != "res2net" or model.groups == 1),
                "block='res2net' needs scale >= 2 splits and groups=1; scale applies to res2net blocks only",
            ),
        ]
    )
