"""EfficientNet-B0 to B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs") in flax.linen.

B0 is Table 1 of the paper: a 3x3/2 stem, seven stages of MBConv units (inverted residuals with
Squeeze-and-Excitation and swish) and a 1x1 head conv before global pooling. B1-B7 scale its widths and
repeats by the compound coefficients of Sec. 4, rounded as the reference TensorFlow implementation does.

Module names follow timm's ``efficientnet_b*`` layout with indices written ``_N`` (``blocks_1_0/conv_pw``
is ``blocks.1.0.conv_pw``), so ``resnet_jax.convert.indexed_torch_key`` maps every variable to timm's key.
``padding='same'`` is TensorFlow's SAME (the reference implementation); ``'symmetric'`` is PyTorch's
``k // 2`` on each side (timm's ``efficientnet_b*``, which also wants ``bn_momentum=0.9, bn_epsilon=1e-5``).
"""

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import parts
from resnet_jax.models.attention import EFFICIENTNET_SE, SqueezeExcitation
from resnet_jax.models.layers import PADDINGS, Layers, check_images, classify, common_problems, drop_path, refuse
from resnet_jax.models.spec import ModelSpec

CHANNEL_DIVISOR = 8  # the reference's round_filters: channels are multiples of 8
MIN_KEPT_FRACTION = 0.9  # ... and rounding down keeps at least 90% of the scaled width
SE_RATIO = 0.25  # SE reduction relative to the unit's input channels
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
SOURCE = "Tan & Le 2019, EfficientNet, Table 1 and Sec. 4 (compound scaling)"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of Table 1: MBConv units with this expansion, kernel, first-unit stride, width and count."""

    expand_ratio: int
    kernel_size: int
    stride: int
    channels: int
    repeats: int


@dataclasses.dataclass(frozen=True)
class Unit:
    """One MBConv unit of a built network: expansion, kernel, stride and output channels."""

    expand_ratio: int
    kernel_size: int
    stride: int
    channels: int


# Tan & Le 2019, Table 1 (EfficientNet-B0), stages 2-8 of the table.
B0_STAGES = (
    Stage(1, 3, 1, 16, 1),
    Stage(6, 3, 2, 24, 2),
    Stage(6, 5, 2, 40, 2),
    Stage(6, 3, 2, 80, 3),
    Stage(6, 5, 1, 112, 3),
    Stage(6, 5, 2, 192, 4),
    Stage(6, 3, 1, 320, 1),
)

# Sec. 4 compound scaling as released: name -> (width, depth, resolution, dropout before the classifier).
COMPOUND_SCALING = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}


def round_filters(channels: int, width_coefficient: float) -> int:
    """The reference's round_filters: scale, round to a multiple of 8, and never lose more than 10%."""
    scaled = channels * width_coefficient
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < MIN_KEPT_FRACTION * scaled else rounded


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """The reference's round_repeats: ceil(depth_coefficient * repeats)."""
    return math.ceil(depth_coefficient * repeats)


def survival_probabilities(num_units: int, last_survival: float) -> list[float]:
    """Per-unit survival, as the reference's drop connect: 1 - (1 - last_survival) * index / num_units."""
    return [1 - (1 - last_survival) * index / num_units for index in range(num_units)]


# timm's names: an expanding unit is an InvertedResidual, an expand-ratio-1 unit a DepthwiseSeparableConv.
INVERTED_RESIDUAL_NAMES = {
    "expand": "conv_pw",
    "expand_bn": "bn1",
    "depthwise": "conv_dw",
    "depthwise_bn": "bn2",
    "project": "conv_pwl",
    "project_bn": "bn3",
}
DEPTHWISE_SEPARABLE_NAMES = {"depthwise": "conv_dw", "depthwise_bn": "bn1", "project": "conv_pw", "project_bn": "bn2"}


class MBConv(nn.Module):
    """A mobile inverted bottleneck: [1x1 expand-BN-swish], kxk depthwise-BN-swish, SE, 1x1 project-BN, and an
    identity skip with stochastic depth when the stride is 1 and the width is kept."""

    out_channels: int
    expand_ratio: int
    kernel_size: int
    stride: int
    survival_probability: float
    zero_init_residual: bool
    layers: Layers

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The unit's output for NHWC ``x``."""
        in_channels = x.shape[-1]
        has_skip = self.stride == 1 and in_channels == self.out_channels
        names = DEPTHWISE_SEPARABLE_NAMES if self.expand_ratio == 1 else INVERTED_RESIDUAL_NAMES
        branch = x
        if self.expand_ratio != 1:
            branch = self.layers.conv(in_channels * self.expand_ratio, 1, names["expand"])(branch)
            branch = self.layers.act(self.layers.norm(names["expand_bn"])(branch, train))
        width = branch.shape[-1]
        depthwise = self.layers.conv(width, self.kernel_size, names["depthwise"], self.stride, depthwise=True)
        branch = self.layers.act(self.layers.norm(names["depthwise_bn"])(depthwise(branch), train))
        se_width = max(1, int(in_channels * SE_RATIO))
        branch = SqueezeExcitation(se_width, self.layers, EFFICIENTNET_SE, name="se")(branch)
        branch = self.layers.conv(self.out_channels, 1, names["project"])(branch)
        branch = self.layers.norm(names["project_bn"], zero_init=self.zero_init_residual and has_skip)(branch, train)
        if not has_skip:
            return branch
        return x + drop_path(branch, self._keep(branch, train), self.survival_probability, train, inverted=True)

    def _keep(self, branch: jax.Array, train: bool) -> jax.Array | bool:
        """Stochastic depth's draw, per example (the reference's drop connect); True where nothing is drawn."""
        if not train or self.survival_probability >= 1:
            return True
        shape = (branch.shape[0],) + (1,) * (branch.ndim - 1)
        return jax.random.bernoulli(self.make_rng("dropout"), self.survival_probability, shape)


class EfficientNet(nn.Module):
    """EfficientNet for NHWC float images; returns float32 logits.

    Attributes:
      num_classes: outputs of the classifier.
      width_coefficient: channel multiplier of Sec. 4 (stem and head included), rounded to multiples of 8.
      depth_coefficient: repeat multiplier of Sec. 4; each stage has ceil(depth_coefficient * repeats) units.
      head_dropout: dropout on the pooled features before the classifier, in training.
      survival_probability: stochastic depth reaches 1 - (1 - this) * (N - 1) / N at the last of N units,
        linearly from 1 at the first (the reference's drop connect); 1 turns it off. Needs a 'dropout' rng.
      bn_momentum, bn_epsilon: BatchNorm constants; TensorFlow's 0.99 and 1e-3 by default, PyTorch's 0.9 and
        1e-5 for timm-trained weights.
      padding: ``'same'`` (TensorFlow SAME, less padding at the top-left on even inputs) or ``'symmetric'``.
      bn_group_size: examples sharing BatchNorm statistics in training; 0 means the whole batch.
      zero_init_residual: zero the scale of the last BatchNorm of every unit with an identity skip.
      input_channels: channels of the input images.
      dtype: compute dtype; parameters, BatchNorm statistics and logits stay float32.
    """

    num_classes: int
    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0
    head_dropout: float = 0.2
    survival_probability: float = 0.8
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    padding: str = "same"
    bn_group_size: int = 0
    zero_init_residual: bool = False
    input_channels: int = 3
    dtype: Any = "float32"

    def __post_init__(self):
        super().__post_init__()
        validate_fields(self)

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False, return_features: bool = False):
        """Logits for ``images`` (batch, height, width, channels).

        With ``return_features=True`` it returns ``{'stem', 'layer1', ..., 'layer7', 'pooled', 'logits'}``
        (stage N is ``layerN``, as in the other families and ``parts``).
        """
        check_images(images, self.input_channels)
        layers = self._layers()
        x = layers.conv(self.round_filters(STEM_CHANNELS), 3, "conv_stem", stride=2)(images.astype(layers.dtype))
        x = layers.act(layers.norm("bn1")(x, train))
        features = {"stem": x}
        stage_units = self.stage_units()
        survivals = iter(survival_probabilities(sum(map(len, stage_units)), self.survival_probability))
        for stage_index, units in enumerate(stage_units):
            for unit_index, unit in enumerate(units):
                x = MBConv(
                    out_channels=unit.channels,
                    expand_ratio=unit.expand_ratio,
                    kernel_size=unit.kernel_size,
                    stride=unit.stride,
                    survival_probability=next(survivals),
                    zero_init_residual=self.zero_init_residual,
                    layers=layers,
                    name=f"blocks_{stage_index}_{unit_index}",
                )(x, train)
            features[parts.stage(stage_index)] = x
        x = layers.conv(self.round_filters(HEAD_CHANNELS), 1, "conv_head")(x)
        x = layers.act(layers.norm("bn2")(x, train))
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        logits = classify(pooled, self.num_classes, train, self.head_dropout, "classifier")
        if return_features:
            return {**features, "pooled": pooled, "logits": logits}
        return logits

    def round_filters(self, channels: int) -> int:
        """``channels`` of B0 scaled by this model's width coefficient."""
        return round_filters(channels, self.width_coefficient)

    def stage_units(self) -> list[list[Unit]]:
        """Per stage, each unit's settings after compound scaling; only a stage's first unit has its stride."""
        return [
            [
                Unit(
                    stage.expand_ratio,
                    stage.kernel_size,
                    stage.stride if index == 0 else 1,
                    self.round_filters(stage.channels),
                )
                for index in range(round_repeats(stage.repeats, self.depth_coefficient))
            ]
            for stage in B0_STAGES
        ]

    def _layers(self) -> Layers:
        return Layers(
            self.padding, self.bn_momentum, self.bn_epsilon, self.bn_group_size, nn.swish, jnp.dtype(self.dtype)
        )


def validate_fields(model: EfficientNet) -> None:
    """Raise ValueError, saying what to change, for a field value EfficientNet cannot build."""
    refuse(
        [
            *common_problems(model),
            (
                model.width_coefficient > 0,
                f"width_coefficient must be positive (B0: 1.0), got {model.width_coefficient}",
            ),
            (
                model.depth_coefficient > 0,
                f"depth_coefficient must be positive (B0: 1.0), got {model.depth_coefficient}",
            ),
            (0 <= model.head_dropout < 1, f"head_dropout must be in [0, 1) (B0: 0.2), got {model.head_dropout}"),
            (
                0 < model.survival_probability <= 1,
                f"survival_probability must be in (0, 1] (0.8 as the paper; 1 turns stochastic depth off), "
                f"got {model.survival_probability}",
            ),
            (
                0 <= model.bn_momentum < 1,
                f"bn_momentum is the running-average decay in [0, 1) (TensorFlow 0.99, PyTorch 0.9), "
                f"got {model.bn_momentum}",
            ),
            (
                model.bn_epsilon > 0,
                f"bn_epsilon must be positive (TensorFlow 1e-3, PyTorch 1e-5), got {model.bn_epsilon}",
            ),
            (model.padding in PADDINGS, f"padding must be one of {PADDINGS}, got {model.padding!r}"),
        ]
    )


def _spec(width: float, depth: float, resolution: int, dropout: float) -> ModelSpec:
    return ModelSpec(
        EfficientNet,
        {"width_coefficient": width, "depth_coefficient": depth, "head_dropout": dropout},
        resolution,
        SOURCE,
    )


SPECS: dict[str, ModelSpec] = {name: _spec(*scaling) for name, scaling in COMPOUND_SCALING.items()}
