"""HRNet for ImageNet classification (Wang et al. 2019, "Deep High-Resolution Representation Learning for
Visual Recognition"; the HRNet-W*-C models of the official HRNet-Image-Classification code).

A stem of two 3x3/2 convolutions and a stage of bottlenecks lead into stages 2-4, which keep 2, 3 and 4
parallel branches of widths C, 2C, 4C, 8C at 1/4 ... 1/32 of the input resolution. Each stage is a stack of
high-resolution modules: a few basic blocks per branch, then every branch receives the sum of all branches
brought to its resolution and width. The classification head widens each branch with a bottleneck, folds
the branches from the highest resolution down with 3x3/2 convolutions, widens to 2048 and pools.

Module names follow timm's ``HighResolutionNet`` with every index written ``_N`` (``stage3_1``,
``fuse_layers_2_0_1_0``), so ``resnet_jax.convert.indexed_torch_key`` maps each variable to timm's key.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import parts
from resnet_jax.models.layers import Layers, check_images, classify, common_problems, dense_bias_init, refuse
from resnet_jax.models.spec import ModelSpec

EXPANSION = 4  # a bottleneck's output is 4x its inner width
STEM_WIDTH = 64
HEAD_WIDTHS = (32, 64, 128, 256)  # inner widths of the head's bottlenecks: outputs 128, 256, 512, 1024
HEAD_FEATURES = 2048
NUM_STAGES = 4


def conv(x: jax.Array, layers: Layers, features: int, kernel_size: int, stride: int, name: str, bias: bool = False):
    """Apply the network's convolution; ``bias`` adds PyTorch's default bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bias_init = dense_bias_init(kernel_size * kernel_size * x.shape[-1]) if bias else None
    return layers.conv(features, kernel_size, name, stride, bias_init=bias_init)(x)


def conv_bn(
    x: jax.Array,
    layers: Layers,
    features: int,
    kernel_size: int,
    stride: int,
    prefix: str,
    train: bool,
    activate: bool = True,
    bias: bool = False,
) -> jax.Array:
    """timm's ``Sequential(conv, BN[, ReLU])`` (the ReLU is ``layers.act``): the convolution is ``{prefix}_0``,
    the BatchNorm ``{prefix}_1``."""
    x = conv(x, layers, features, kernel_size, stride, f"{prefix}_0", bias)
    x = layers.norm(f"{prefix}_1")(x, train)
    return layers.act(x) if activate else x


def upsample_nearest(x: jax.Array, factor: int, size: tuple[int, int]) -> jax.Array:
    """PyTorch's ``Upsample(scale_factor=factor, mode='nearest')``, cropped to ``size`` where a stride-2
    convolution rounded an odd size up (PyTorch would fail there)."""
    upsampled = jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
    return upsampled[:, : size[0], : size[1]]


class ResidualUnit(nn.Module):
    """A stride-1 basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1 to 4x width) residual block with timm's names,
    its shortcut projected (``downsample_0``, ``downsample_1``) when the width changes."""

    width: int
    bottleneck: bool
    zero_init_residual: bool
    layers: Layers

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The block's output, ReLU(branch(x) + shortcut(x))."""
        convolutions = [(1, self.width), (3, self.width), (1, self.width * EXPANSION)]
        if not self.bottleneck:
            convolutions = [(3, self.width), (3, self.width)]
        y = x
        for index, (kernel_size, features) in enumerate(convolutions, start=1):
            last = index == len(convolutions)
            y = conv(y, self.layers, features, kernel_size, 1, f"conv{index}")
            y = self.layers.norm(f"bn{index}", zero_init=last and self.zero_init_residual)(y, train)
            y = y if last else self.layers.act(y)
        out_width = convolutions[-1][1]
        shortcut = x
        if x.shape[-1] != out_width:
            shortcut = conv_bn(x, self.layers, out_width, 1, 1, "downsample", train, activate=False)
        return self.layers.act(y + shortcut)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks (``branches_i_k``), then the multi-resolution fusion: output ``i`` is
    ReLU of the sum over branches ``j`` of ``fuse_layers_i_j`` (identity, 1x1 conv + BN + nearest upsampling,
    or a chain of 3x3/2 conv + BN with ReLU between)."""

    num_blocks: int
    zero_init_residual: bool
    layers: Layers

    @nn.compact
    def __call__(self, branches: list[jax.Array], train: bool) -> list[jax.Array]:
        """The fused outputs, one per branch, each at its branch's resolution and width."""
        branches = [self._branch(index, x, train) for index, x in enumerate(branches)]
        return [
            self.layers.act(sum(self._to_branch(target, source, branches, train) for source in range(len(branches))))
            for target in range(len(branches))
        ]

    def _branch(self, index: int, x: jax.Array, train: bool) -> jax.Array:
        """Branch ``index``'s stack of basic blocks, keeping its width."""
        for block in range(self.num_blocks):
            x = ResidualUnit(
                width=x.shape[-1],
                bottleneck=False,
                zero_init_residual=self.zero_init_residual,
                layers=self.layers,
                name=f"branches_{index}_{block}",
            )(x, train)
        return x

    def _to_branch(self, target: int, source: int, branches: list[jax.Array], train: bool) -> jax.Array:
        """Branch ``source``'s output brought to branch ``target``'s resolution and width."""
        x, goal = branches[source], branches[target]
        prefix = f"fuse_layers_{target}_{source}"
        if source > target:
            x = conv_bn(x, self.layers, goal.shape[-1], 1, 1, prefix, train, activate=False)
            return upsample_nearest(x, 2 ** (source - target), goal.shape[1:3])
        steps = target - source
        for step in range(steps):
            last = step == steps - 1
            features = goal.shape[-1] if last else x.shape[-1]
            x = conv_bn(x, self.layers, features, 3, 2, f"{prefix}_{step}", train, activate=not last)
        return x


class HRNet(nn.Module):
    """HRNet-W{width}-C for NHWC float images; returns float32 logits.

    Attributes:
      num_classes: outputs of the classifier.
      width: C, the width of the highest-resolution branch; the branches are C, 2C, 4C, 8C wide.
      modules_per_stage: high-resolution modules in stages 2, 3 and 4 ((1, 4, 3) in the W*-C models).
      blocks_per_branch: basic blocks on each branch of a high-resolution module (4 in the W*-C models).
      stage1_blocks: bottlenecks of stage 1 (4 in the W*-C models).
      stage1_width: inner width of stage 1's bottlenecks, whose output is 4x as wide (64 in the W*-C models).
      bn_group_size: examples sharing BatchNorm statistics in training; 0 = the whole batch.
      zero_init_residual: start the last BatchNorm scale of every residual block at zero.
      head_dropout: dropout before the classifier (0 in the paper); needs a 'dropout' rng in training.
      input_channels: channels the input images must have.
      dtype: compute dtype; parameters, BatchNorm statistics and logits stay float32.
    """

    num_classes: int
    width: int
    modules_per_stage: Sequence[int] = (1, 4, 3)
    blocks_per_branch: int = 4
    stage1_blocks: int = 4
    stage1_width: int = 64
    bn_group_size: int = 0
    zero_init_residual: bool = False
    head_dropout: float = 0.0
    input_channels: int = 3
    dtype: Any = "float32"

    def __post_init__(self):
        super().__post_init__()
        validate_hrnet(self)

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False, return_features: bool = False):
        """Logits for ``images`` (batch, height, width, channels).

        With ``return_features=True`` it returns a dict instead: ``'stem'``, ``'layer1'`` ... ``'layer4'``
        (each stage's highest-resolution output; stage N is ``layerN`` as in ``parts``), ``'branch1'`` ...
        ``'branch4'`` (stage 4's outputs, from the highest resolution down), ``'pooled'`` and ``'logits'``.
        """
        check_images(images, self.input_channels)
        layers = self.layers
        x = images.astype(layers.dtype)
        for index in (1, 2):
            x = layers.act(layers.norm(f"bn{index}")(conv(x, layers, STEM_WIDTH, 3, 2, f"conv{index}"), train))
        features = {"stem": x}
        for index in range(self.stage1_blocks):
            x = self._residual_unit(self.stage1_width, f"layer1_{index}")(x, train)
        features[parts.stage(0)] = x
        branches = [x]
        for stage, num_modules in enumerate(self.modules_per_stage, start=2):
            branches = self._transition(stage - 1, branches, train)
            for index in range(num_modules):
                branches = HighResolutionModule(
                    num_blocks=self.blocks_per_branch,
                    zero_init_residual=self.zero_init_residual,
                    layers=layers,
                    name=f"stage{stage}_{index}",
                )(branches, train)
            features[parts.stage(stage - 1)] = branches[0]
        features.update({f"branch{index}": branch for index, branch in enumerate(branches, start=1)})
        pooled = jnp.mean(self._head(branches, train).astype(jnp.float32), axis=(1, 2))
        logits = classify(pooled, self.num_classes, train, self.head_dropout, "classifier")
        if return_features:
            return {**features, "pooled": pooled, "logits": logits}
        return logits

    @property
    def layers(self) -> Layers:
        """PyTorch's convolutions and BatchNorm (momentum 0.1 in torch's convention, eps 1e-5), as timm's HRNet."""
        return Layers(bn_group_size=self.bn_group_size, dtype=jnp.dtype(self.dtype))

    @property
    def branch_widths(self) -> tuple[int, ...]:
        """Widths of the four branches: C, 2C, 4C, 8C."""
        return tuple(self.width * 2**index for index in range(NUM_STAGES))

    def _residual_unit(self, width: int, name: str) -> ResidualUnit:
        """A bottleneck of inner ``width`` (stage 1 and the head)."""
        return ResidualUnit(
            width=width,
            bottleneck=True,
            zero_init_residual=self.zero_init_residual,
            layers=self.layers,
            name=name,
        )

    def _transition(self, index: int, branches: list[jax.Array], train: bool) -> list[jax.Array]:
        """``transition{index}``: existing branches brought to their new width by a 3x3 conv-BN-ReLU (kept
        as they are where the width already fits) and one new branch, a 3x3/2 conv-BN-ReLU of the lowest."""
        widths = self.branch_widths[: len(branches) + 1]
        kept = [
            x if x.shape[-1] == width else conv_bn(x, self.layers, width, 3, 1, f"transition{index}_{i}", train)
            for i, (x, width) in enumerate(zip(branches, widths, strict=False))
        ]
        new = len(branches)
        added = conv_bn(branches[-1], self.layers, widths[new], 3, 2, f"transition{index}_{new}_0", train)
        return [*kept, added]

    def _head(self, branches: list[jax.Array], train: bool) -> jax.Array:
        """The classification head: each branch widened by a bottleneck (``incre_modules_i_0``), folded from the
        highest resolution down by 3x3/2 conv-BN-ReLU (``downsamp_modules_i``), then 1x1 conv-BN-ReLU to 2048
        (``final_layer``)."""
        folded = None
        for index, (x, width) in enumerate(zip(branches, HEAD_WIDTHS, strict=True)):
            x = self._residual_unit(width, f"incre_modules_{index}_0")(x, train)
            if folded is not None:
                prefix = f"downsamp_modules_{index - 1}"
                x = x + conv_bn(folded, self.layers, x.shape[-1], 3, 2, prefix, train, bias=True)
            folded = x
        return conv_bn(folded, self.layers, HEAD_FEATURES, 1, 1, "final_layer", train, bias=True)


def validate_hrnet(model: HRNet) -> None:
    """Raise ValueError, saying what to set, if an HRNet field is out of range."""
    refuse(
        [
            *common_problems(model),
            (model.width >= 1, f"width (C: 18, 30, 32, 40, 44, 48 or 64) must be >= 1, got {model.width}"),
            (
                len(model.modules_per_stage) == NUM_STAGES - 1 and all(n >= 1 for n in model.modules_per_stage),
                f"modules_per_stage must give stages 2, 3 and 4 at least one module each, e.g. (1, 4, 3); "
                f"got {tuple(model.modules_per_stage)}",
            ),
            *(
                (getattr(model, field) >= 1, f"{field} must be >= 1, got {getattr(model, field)}")
                for field in ("blocks_per_branch", "stage1_blocks", "stage1_width")
            ),
            (0.0 <= model.head_dropout < 1.0, f"head_dropout must be in [0, 1), got {model.head_dropout}"),
        ]
    )


W_C_WIDTHS = (18, 30, 32, 40, 44, 48, 64)  # the HRNet-W*-C models
PAPER = "Wang et al. 2019 (TPAMI), Table of ImageNet classification (HRNet-W*-C)"
OFFICIAL = "official HRNet-Image-Classification experiments/cls_hrnet_{}_sgd_lr5e-2_wd1e-4_bs32_x100.yaml"


def _spec(row: str, config: str, **kwargs: Any) -> ModelSpec:
    """A 224-pixel HRNet spec citing the paper's row and the official config."""
    return ModelSpec(HRNet, kwargs, 224, f"{PAPER}, {row}; {OFFICIAL.format(config)}")


SPECS: dict[str, ModelSpec] = {
    # Small-v1 is 16 wide in the official config, whatever its name says.
    "hrnet_w18_small": _spec(
        "HRNet-W18-C-Small-v1",
        "w18_small_v1",
        width=16,
        modules_per_stage=(1, 1, 1),
        stage1_blocks=1,
        stage1_width=32,
        blocks_per_branch=2,
    ),
    "hrnet_w18_small_v2": _spec(
        "HRNet-W18-C-Small-v2",
        "w18_small_v2",
        width=18,
        modules_per_stage=(1, 3, 2),
        stage1_blocks=2,
        blocks_per_branch=2,
    ),
    **{f"hrnet_w{width}": _spec(f"HRNet-W{width}-C", f"w{width}", width=width) for width in W_C_WIDTHS},
}
