"""The shortcut of a residual unit, one module per form, and He et al. 2016b's gate that mixes it in.

A unit is given its shortcut (or None: a plain net) and its gate (or None: plain addition). Both share the
unit's scope, so their parameters sit beside the branch's, as in torchvision (``downsample_conv``,
``downsample_bn``, ``gate``). Every shortcut may be scaled (He et al. 2016b Table 1's constant scaling) and
dropped out (their dropout shortcut, not rescaled: its expected scale is 1 - p, and eval multiplies by 1 - p).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models.layers import Layers


def average_pool_ceil(x: jax.Array, stride: int) -> jax.Array:
    """PyTorch's ``AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)`` (ResNet-D's shortcut)."""
    padding = [(0, -size % stride) for size in x.shape[1:3]]
    return nn.avg_pool(x, (stride, stride), (stride, stride), padding, count_include_pad=False)


class Shortcut(nn.Module):
    """What every shortcut shares: the unit's output width and stride, its scale and its dropout."""

    out_width: int
    stride: int
    scale: float = 1.0
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, preactivated: jax.Array, train: bool) -> jax.Array:
        """The shortcut of ``x`` (``preactivated``: the unit's pre-activated input, which projections take)."""
        carried = self.carry(x, preactivated, train)
        if self.scale != 1.0:
            carried = carried * self.scale
        if not self.dropout:
            return carried
        keep = 1 - self.dropout
        if not train:
            return carried * keep
        kept = jax.random.bernoulli(self.make_rng("dropout"), keep, carried.shape)
        return jnp.where(kept, carried, jnp.zeros_like(carried))

    def carry(self, x: jax.Array, preactivated: jax.Array, train: bool) -> jax.Array:
        """The shortcut before scaling and dropout; each form defines it."""
        raise NotImplementedError

    def projects(self, in_width: int) -> bool:
        """Whether the shortcut is a 1x1 projection for an input of ``in_width`` channels."""
        return False


class ZeroPadShortcut(Shortcut):
    """He et al. 2016's option A: the identity; on a shape change, subsample and zero-pad the new channels."""

    def carry(self, x: jax.Array, preactivated: jax.Array, train: bool) -> jax.Array:
        """``x``, or ``x[::stride, ::stride]`` padded with zero channels up to ``out_width``."""
        in_width = x.shape[-1]
        if self.stride == 1 and in_width == self.out_width:
            return x
        subsampled = x[:, :: self.stride, :: self.stride, :]
        return jnp.pad(subsampled, [(0, 0)] * 3 + [(0, self.out_width - in_width)])


class ProjectionShortcut(Shortcut):
    """Option B: the identity, or a 1x1 projection (then BN) where the shape changes; ``everywhere`` projects in
    every unit (option C); ``average_pool`` average-pools before a strided projection (He et al. 2019's ResNet-D).

    A pre-activation unit's projection takes the pre-activated input and has no BN of its own (He et al. 2016b).
    """

    everywhere: bool = False
    average_pool: bool = False
    norm: bool = True
    layers: Layers = Layers()

    def carry(self, x: jax.Array, preactivated: jax.Array, train: bool) -> jax.Array:
        """``x``, or the projection of ``preactivated``."""
        if not self.projects(x.shape[-1]):
            return x
        stride = self.stride
        if self.average_pool and stride > 1:
            preactivated, stride = average_pool_ceil(preactivated, stride), 1
        projected = self.layers.conv(self.out_width, 1, "downsample_conv", stride)(preactivated)
        if not self.norm:
            return projected
        return self.layers.norm("downsample_bn")(projected, train)

    def projects(self, in_width: int) -> bool:
        """Option C always; B and D on a change of resolution or width."""
        return self.everywhere or self.stride > 1 or in_width != self.out_width


class Gate(nn.Module):
    """He et al. 2016b Table 1's gating, g = sigmoid(1x1 conv(x) + b): ``exclusive`` gives g F + (1 - g) h,
    ``shortcut_only`` F + (1 - g) h, for the branch F and the shortcut h of the unit's input x."""

    exclusive: bool
    out_width: int
    stride: int
    bias_init: float = 0.0
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x: jax.Array, branch: jax.Array, shortcut: jax.Array) -> jax.Array:
        """The gated sum of ``branch`` and ``shortcut``."""
        bias_init = nn.initializers.constant(self.bias_init)
        gate = nn.sigmoid(self.layers.conv(self.out_width, 1, "gate", self.stride, bias_init=bias_init)(x))
        carried = (1 - gate) * shortcut
        return gate * branch + carried if self.exclusive else branch + carried
