"""Residual units, one class per kind, each ``__call__`` reading top to bottom like its figure.

A unit is ``add(x, branch(x))``: the branch is its kind's convolutions (``BasicBlock``, ``Bottleneck``,
``Res2NetBottleneck``), and what varies around them is handed in. The shortcut and the gate (``gating``) are modules
(``resnet_jax.models.shortcuts``; None: a plain net, plain addition), so is the branch's channel attention
(``se``, ``resnet_jax.models.attention``). Where BN and ReLU sit is the unit's ``order``, one row of
``ORDERS`` (He et al. 2016b, Fig. 4).

Parameter names follow torchvision's layout inside a block (``conv1``, ``bn1``, ``downsample_conv``,
``downsample_bn``); the options add ``se/fc1``, ``se/fc2``, ``gate`` and, in a Res2Net block, ``conv2_i`` /
``bn2_i`` for the i-th split.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import options
from resnet_jax.models.layers import BN, BN_RELU, NOTHING, RELU, Layers, Place, drop_path
from resnet_jax.models.shortcuts import Gate, Shortcut

BOTTLENECK_EXPANSION = 4


@dataclasses.dataclass(frozen=True)
class ActivationOrder:
    """Where BN and ReLU sit in a unit: a ``Place`` (BN, ReLU, both or nothing) at each point."""

    preactivation: Place  # on the unit's input (a projection shortcut takes the result)
    before_conv: Place  # before each convolution but the first
    after_conv: Place  # after each convolution but the last
    after_last_conv: Place
    after_addition: Place


# He et al. 2016b, Fig. 4 (a)-(e).
ORDERS = {
    "post": ActivationOrder(NOTHING, NOTHING, BN_RELU, BN, RELU),  # (a) the original unit
    "bn_after_addition": ActivationOrder(NOTHING, NOTHING, BN_RELU, NOTHING, BN_RELU),  # (b)
    "relu_before_addition": ActivationOrder(NOTHING, NOTHING, BN_RELU, BN_RELU, NOTHING),  # (c)
    "relu_preactivation": ActivationOrder(RELU, NOTHING, BN_RELU, BN, NOTHING),  # (d)
    "full_preactivation": ActivationOrder(BN_RELU, BN_RELU, NOTHING, NOTHING, NOTHING),  # (e)
}


class ResidualUnit(nn.Module):
    """What every unit kind shares: its output, the parts it is given, and the steps around its convolutions.

    Attributes:
      out_width, stride: the unit's output channels and the stride of its strided convolution.
      shortcut: a ``shortcuts.Shortcut`` module, or None for a plain unit (no shortcut at all).
      gating: a ``shortcuts.Gate`` mixing branch and shortcut, or None for their sum.
      se: channel attention on the branch before the addition (``attention.SqueezeExcitation``), or None.
      order: a key of ``ORDERS``: where BN and ReLU sit.
      block_dropout: dropout on the input of every convolution but the first (Wide ResNet).
      branch_scale: constant scaling of the branch (He et al. 2016b).
      survival_probability: stochastic depth (Huang et al. 2016): the branch is kept for the whole batch with
        this probability in training, and scaled by it at eval. A dropped branch leaves its BN statistics as
        they were, except a pre-activation bn1 that a projection shortcut shares.
      zero_init_residual: start the branch at zero: its last BN scale, or its last convolution where the branch
        ends in a convolution (a zeroed BN before a ReLU would block the branch's gradients for good).
      added_options: (name, value) of each option added with ``options.register_option`` that is set away from
        its default; its ``branch`` function acts on the branch after ``se``.
      skip_preactivation: leave out the first BN-ReLU of a full pre-activation unit that follows an activated
        stem (He et al. 2016b's ImageNet nets).
      layers: how the unit's convolutions and BatchNorms are built (padding, BN constants and groups, dtype).
    """

    out_width: int
    stride: int
    shortcut: Shortcut | None = None
    gating: Gate | None = None
    se: nn.Module | None = None
    order: str = "post"
    block_dropout: float = 0.0
    branch_scale: float = 1.0
    survival_probability: float = 1.0
    zero_init_residual: bool = False
    added_options: tuple[tuple[str, object], ...] = ()
    skip_preactivation: bool = False
    layers: Layers = Layers()

    CONVOLUTIONS: ClassVar[int]  # the branch's convolutions; a BN after the addition is bn{CONVOLUTIONS}

    def setup(self):
        """The shortcut and the gate keep their parameters in the unit's own scope (torchvision's layout)."""
        for part in (self.shortcut, self.gating):
            if part is not None:
                nn.share_scope(self, part)

    def preactivate(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array | bool]:
        """Stochastic depth's draw for this step, and the unit's input after the order's pre-activation."""
        survives = self._survives(train)
        place = NOTHING if self.skip_preactivation else ORDERS[self.order].preactivation
        # bn1 also feeds a projection shortcut, which runs whether or not the branch does.
        projects = self.shortcut is not None and self.shortcut.projects(x.shape[-1])
        return self._activate(place, x, "bn1", train, True if projects else survives), survives

    def conv_layer(
        self,
        index: int,
        x: jax.Array,
        features: int,
        kernel: int,
        stride: int,
        train: bool,
        survives: jax.Array | bool,
        *,
        groups: int = 1,
        last: bool = False,
    ) -> jax.Array:
        """Convolution ``conv{index}`` of the branch with the BN and ReLU the order puts around it."""
        order = ORDERS[self.order]
        if index > 1:
            x = self._activate(order.before_conv, x, f"bn{index}", train, survives)
            x = self.dropout(x, train)
        after = order.after_last_conv if last else order.after_conv
        zero_init = self.zero_init_residual and last
        x = self.layers.conv(features, kernel, f"conv{index}", stride, groups, zero_init=zero_init and not after.norm)(
            x
        )
        return self._activate(after, x, f"bn{index}", train, survives, zero_init=zero_init)

    def dropout(self, x: jax.Array, train: bool) -> jax.Array:
        """Wide ResNet's dropout between convolutions (a 'dropout' rng in training)."""
        return nn.Dropout(self.block_dropout, deterministic=not train)(x)

    def add(
        self, x: jax.Array, preactivated: jax.Array, branch: jax.Array, train: bool, survives: jax.Array | bool
    ) -> jax.Array:
        """Attention, the added options, scaling and stochastic depth on the branch, then the (gated) sum with the
        shortcut and what the order puts after the addition."""
        if self.se is not None:
            branch = self.se(branch)
        for name, value in self.added_options:
            branch = options.BY_NAME[name].branch(self, branch, value, train)
        scaled = branch * self.branch_scale if self.branch_scale != 1.0 else branch
        branch = drop_path(scaled, survives, self.survival_probability, train, inverted=False)
        if self.shortcut is not None:
            shortcut = self.shortcut(x, preactivated, train)
            branch = self.gating(x, branch, shortcut) if self.gating is not None else branch + shortcut
        return self._activate(ORDERS[self.order].after_addition, branch, f"bn{self.CONVOLUTIONS}", train, True)

    def _activate(
        self, place: Place, x: jax.Array, name: str, train: bool, survives: jax.Array | bool, zero_init: bool = False
    ) -> jax.Array:
        """``x`` through the BN (named ``name``) and the activation that sit at ``place``."""
        if place.norm:
            x = self.layers.norm(name, zero_init)(x, train, survives)
        return self.layers.act(x) if place.act else x

    def _survives(self, train: bool) -> jax.Array | bool:
        """Whether this unit's branch is kept, for the whole batch, in this training step; True when always kept."""
        if not train or self.survival_probability == 1.0 or self.is_initializing():
            return True
        return jax.random.bernoulli(self.make_rng("dropout"), self.survival_probability)


class BasicBlock(ResidualUnit):
    """He et al. 2016, Fig. 2 (left): 3x3 (strided), 3x3; Wide ResNet's unit when widened."""

    CONVOLUTIONS: ClassVar[int] = 2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The unit's output for input ``x``."""
        preactivated, survives = self.preactivate(x, train)
        y = self.conv_layer(1, preactivated, self.out_width, 3, self.stride, train, survives)
        y = self.conv_layer(2, y, self.out_width, 3, 1, train, survives, last=True)
        return self.add(x, preactivated, y, train, survives)


class Bottleneck(ResidualUnit):
    """He et al. 2016, Fig. 5 (right): 1x1 down to ``width``, 3x3 (strided, ``groups``: ResNeXt's
    cardinality; the stride on the 3x3 is torchvision's "ResNet v1.5"), 1x1 up to ``out_width``."""

    width: int = 64
    groups: int = 1
    CONVOLUTIONS: ClassVar[int] = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The unit's output for input ``x``."""
        preactivated, survives = self.preactivate(x, train)
        y = self.conv_layer(1, preactivated, self.width, 1, 1, train, survives)
        y = self.conv_layer(2, y, self.width, 3, self.stride, train, survives, groups=self.groups)
        y = self.conv_layer(3, y, self.out_width, 1, 1, train, survives, last=True)
        return self.add(x, preactivated, y, train, survives)


class Res2NetBottleneck(ResidualUnit):
    """Gao et al. 2019, Fig. 2 (right): a bottleneck whose 3x3 is a hierarchy over ``scale`` splits of ``width``
    channels: split i > 0 adds the previous split's output before its 3x3, except in a unit that changes shape
    (the first of a stage), where each split is convolved alone and the last one is average-pooled; otherwise
    the last split passes through. Post-activation only."""

    width: int = 104
    scale: int = 4
    CONVOLUTIONS: ClassVar[int] = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The unit's output for input ``x``."""
        preactivated, survives = self.preactivate(x, train)
        y = self.conv_layer(1, preactivated, self.width, 1, 1, train, survives)
        changes_shape = self.stride > 1 or x.shape[-1] != self.out_width
        y = self._hierarchical_convs(self.dropout(y, train), changes_shape, train, survives)
        y = self.conv_layer(3, y, self.out_width, 1, 1, train, survives, last=True)
        return self.add(x, preactivated, y, train, survives)

    def _hierarchical_convs(
        self, x: jax.Array, changes_shape: bool, train: bool, survives: jax.Array | bool
    ) -> jax.Array:
        """The 3x3 convolutions over the splits (``conv2_i``, ``bn2_i``), concatenated."""
        splits = jnp.split(x, self.scale, axis=-1)
        outputs = []
        for i, split in enumerate(splits[:-1]):
            inputs = split if i == 0 or changes_shape else split + outputs[-1]
            out = self.layers.conv(self.width // self.scale, 3, f"conv2_{i}", self.stride)(inputs)
            outputs.append(self._activate(BN_RELU, out, f"bn2_{i}", train, survives))
        if changes_shape:
            pad = ((1, 1), (1, 1))
            outputs.append(nn.avg_pool(splits[-1], (3, 3), (self.stride, self.stride), pad, count_include_pad=True))
        else:
            outputs.append(splits[-1])
        return jnp.concatenate(outputs, axis=-1)


UNITS = {"basic": BasicBlock, "bottleneck": Bottleneck, "res2net": Res2NetBottleneck}
