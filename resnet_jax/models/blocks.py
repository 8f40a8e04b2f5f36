"""The residual unit and its options: block kinds, activation orders, shortcut forms, gates, SE, stochastic
depth. ``ResNet`` stacks these; every variant is a field here, not another class.

Parameter names follow torchvision's layout inside a block (``conv1``, ``bn1``, ``downsample_conv``,
``downsample_bn``); the options add ``se/fc1``, ``se/fc2`` (Squeeze-and-Excitation), ``gate`` (He et al.
2016b's 1x1 gating convolution) and, in a Res2Net block, ``conv2_i`` / ``bn2_i`` for the i-th split.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models.norm import BatchNorm

BLOCKS = ("basic", "bottleneck", "res2net")
SHORTCUTS = ("A", "B", "C", "D", "none")
# He et al. 2016b, Fig. 4 (a)-(e): where BN and ReLU sit relative to the weights and the addition.
ACTIVATION_ORDERS = (
    "post",  # (a) original: conv-BN-ReLU-conv-BN, add, ReLU
    "bn_after_addition",  # (b) conv-BN-ReLU-conv, add, BN-ReLU
    "relu_before_addition",  # (c) conv-BN-ReLU-conv-BN-ReLU, add
    "relu_preactivation",  # (d) ReLU-conv-BN-ReLU-conv-BN, add
    "full_preactivation",  # (e) BN-ReLU-conv-BN-ReLU-conv, add
)
GATES = ("", "exclusive", "shortcut_only")
BOTTLENECK_EXPANSION = 4

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


def average_pool_ceil(x: jax.Array, stride: int) -> jax.Array:
    """PyTorch's ``AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)`` (ResNet-D's shortcut)."""
    padding = [(0, -size % stride) for size in x.shape[1:3]]
    return nn.avg_pool(x, (stride, stride), (stride, stride), padding, count_include_pad=False)


class SqueezeExcitation(nn.Module):
    """Hu et al. 2018: channel weights sigmoid(fc2(relu(fc1(global average)))), fc1 narrowing to ``hidden``."""

    hidden: int
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``x`` scaled channel by channel."""
        squeezed = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
        excited = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=jnp.float32, name="fc1")(squeezed))
        weights = nn.sigmoid(nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=jnp.float32, name="fc2")(excited))
        return x * weights


class ResidualBlock(nn.Module):
    """One residual unit: y = combine(branch(x), shortcut(x)), each part as the fields say.

    The branch is basic (3x3, 3x3), bottleneck (1x1, 3x3, 1x1) or Res2Net (1x1, hierarchical 3x3s over
    ``scale`` splits, 1x1). The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"). Dropout,
    when enabled, is applied to the input of every convolution but the first, as in Wide ResNet.

    ``activation_order`` places BN and ReLU (He et al. 2016b, Fig. 4). ``skip_preactivation`` drops the
    first BN-ReLU of a full pre-activation unit that follows an activated stem (their ImageNet nets).

    The combination: the shortcut ``h`` is scaled by ``shortcut_scale`` and dropped out by
    ``shortcut_dropout`` (without the inverted rescaling: its expected scale is 1 - p, as the paper says,
    and eval multiplies by 1 - p), the branch ``f`` scaled by ``branch_scale`` and by stochastic depth
    (whole batch, Huang et al.; a dropped branch leaves its BN running statistics as they were, except a
    pre-activation bn1 that a projection shortcut shares; eval multiplies by the survival probability); then
    ``f + h``, or with a gate g = sigmoid(conv1x1(x) + ``gate_bias_init``): ``g f + (1 - g) h``
    (exclusive) or ``f + (1 - g) h`` (shortcut-only), as in He et al. 2016b, Table 1.
    """

    block: str
    inner_width: int
    out_width: int
    stride: int
    groups: int
    shortcut: str
    activation_order: str
    dropout_rate: float
    zero_init_residual: bool
    bn_group_size: int
    dtype: Any
    scale: int = 1
    se_hidden: int = 0
    shortcut_scale: float = 1.0
    branch_scale: float = 1.0
    gate: str = ""
    gate_bias_init: float = 0.0
    shortcut_dropout: float = 0.0
    survival_probability: float = 1.0
    skip_preactivation: bool = False

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

    @property
    def _branch_ends_in_bn(self) -> bool:
        """Whether the branch's last operation is a BN (whose scale zero_init_residual zeroes)."""
        return self.activation_order in ("post", "relu_before_addition", "relu_preactivation")

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """The unit's output for input ``x``."""
        order = self.activation_order
        layers = self._layers()
        last = len(layers)
        survives = self._survives(train)
        branch = x
        if order == "full_preactivation" and not self.skip_preactivation:
            # bn1 also feeds a projection shortcut, which runs whether or not the branch does.
            bn1_survives = True if self._projects(x.shape[-1]) else survives
            branch = nn.relu(self._norm("bn1")(x, train, bn1_survives))
        elif order == "relu_preactivation":
            branch = nn.relu(x)
        projection_input = branch  # pre-activated input in pre-act nets (He et al. 2016b), x otherwise
        for index, (features, kernel, stride, groups) in enumerate(layers, start=1):
            is_last = index == last
            zero_init = self.zero_init_residual and is_last
            if index > 1:
                if order == "full_preactivation":
                    branch = nn.relu(self._norm(f"bn{index}")(branch, train, survives))
                branch = nn.Dropout(self.dropout_rate, deterministic=not train)(branch)
            if self.block == "res2net" and index == 2:
                branch = self._multi_scale(branch, x.shape[-1] != self.out_width or self.stride > 1, train, survives)
                continue
            # A branch that ends in a conv zeroes it instead of a BN: a zeroed BN in front of a ReLU would
            # leave relu'(0) = 0 and block every gradient of the branch for good.
            conv_zero_init = zero_init and not self._branch_ends_in_bn
            branch = conv(features, kernel, stride, groups, self.dtype, f"conv{index}", conv_zero_init)(branch)
            if order == "full_preactivation" or (is_last and order == "bn_after_addition"):
                continue
            branch = self._norm(f"bn{index}", zero_init=zero_init)(branch, train, survives)
            if not is_last or order == "relu_before_addition":
                branch = nn.relu(branch)
        if self.se_hidden:
            branch = SqueezeExcitation(self.se_hidden, self.dtype, name="se")(branch)
        branch = self._scaled_branch(branch, train, survives)
        if self.shortcut == "none":
            return self._after_addition(branch, train)
        return self._after_addition(self._combine(x, branch, self._shortcut(x, projection_input, train), train), train)

    def _multi_scale(self, x: jax.Array, changes_shape: bool, train: bool, survives: jax.Array | bool) -> jax.Array:
        """Res2Net's hierarchical 3x3s (Gao et al. 2019): split i > 0 adds the previous split's output
        before its conv, except in a block that changes shape (the first of a stage), where each split is
        convolved alone and the last one is average-pooled; otherwise the last split passes through."""
        width = self.inner_width // self.scale
        splits = jnp.split(x, self.scale, axis=-1)
        outputs = []
        for i, split in enumerate(splits[:-1]):
            inputs = split if i == 0 or changes_shape else split + outputs[-1]
            out = conv(width, 3, self.stride, 1, self.dtype, f"conv2_{i}")(inputs)
            outputs.append(nn.relu(self._norm(f"bn2_{i}")(out, train, survives)))
        if changes_shape:
            pad = ((1, 1), (1, 1))
            outputs.append(nn.avg_pool(splits[-1], (3, 3), (self.stride, self.stride), pad, count_include_pad=True))
        else:
            outputs.append(splits[-1])
        return jnp.concatenate(outputs, axis=-1)

    def _shortcut(self, x: jax.Array, projection_input: jax.Array, train: bool) -> jax.Array:
        """Identity, or: option A's subsample-and-pad, B's projection on a shape change, C's projection
        everywhere, D's average pool then projection (He et al. 2019, ResNet-D)."""
        in_width = x.shape[-1]
        if not self._projects(in_width):
            if self.stride == 1 and in_width == self.out_width:
                return x
            subsampled = x[:, :: self.stride, :: self.stride, :]
            padding = [(0, 0)] * 3 + [(0, self.out_width - in_width)]
            return jnp.pad(subsampled, padding)  # option A
        stride = self.stride
        if self.shortcut == "D" and stride > 1:
            projection_input, stride = average_pool_ceil(projection_input, stride), 1
        projected = conv(self.out_width, 1, stride, 1, self.dtype, "downsample_conv")(projection_input)
        if self.activation_order == "full_preactivation":
            return projected
        return self._norm("downsample_bn")(projected, train)

    def _projects(self, in_width: int) -> bool:
        """Whether the shortcut is a 1x1 projection (of the pre-activated input, in a pre-activation unit)."""
        if self.shortcut in ("A", "none"):
            return False
        return self.shortcut == "C" or self.stride > 1 or in_width != self.out_width

    def _survives(self, train: bool) -> jax.Array | bool:
        """Stochastic depth's draw (Huang et al. 2016): whether this block's branch is kept, for the whole
        batch, in this training step; True when the block is always kept."""
        if not train or self.survival_probability == 1.0 or self.is_initializing():
            return True
        return jax.random.bernoulli(self.make_rng("dropout"), self.survival_probability)

    def _scaled_branch(self, branch: jax.Array, train: bool, survives: jax.Array | bool) -> jax.Array:
        """``branch_scale`` times the branch, dropped where stochastic depth's draw says so in training and
        scaled by its survival probability at eval."""
        branch = branch * self.branch_scale if self.branch_scale != 1.0 else branch
        if self.survival_probability == 1.0:
            return branch
        if not train:
            return branch * self.survival_probability
        return jnp.where(survives, branch, jnp.zeros_like(branch))

    def _combine(self, x: jax.Array, branch: jax.Array, shortcut: jax.Array, train: bool) -> jax.Array:
        """Scaled, dropped-out and gated shortcut plus the (scaled, stochastic-depth) branch."""
        if self.shortcut_scale != 1.0:
            shortcut = shortcut * self.shortcut_scale
        if self.shortcut_dropout:  # as He et al. 2016b describe it: a scale of expectation 1 - p, not inverted
            keep = 1 - self.shortcut_dropout
            if train:
                kept = jax.random.bernoulli(self.make_rng("dropout"), keep, shortcut.shape)
                shortcut = jnp.where(kept, shortcut, jnp.zeros_like(shortcut))
            else:
                shortcut = shortcut * keep
        if not self.gate:
            return branch + shortcut
        gate_conv = nn.Conv(
            self.out_width,
            (1, 1),
            strides=(self.stride, self.stride),
            dtype=self.dtype,
            param_dtype=jnp.float32,
            kernel_init=conv_kernel_init,
            bias_init=nn.initializers.constant(self.gate_bias_init),
            name="gate",
        )
        gate = nn.sigmoid(gate_conv(x))
        carried = (1 - gate) * shortcut
        return gate * branch + carried if self.gate == "exclusive" else branch + carried

    def _after_addition(self, y: jax.Array, train: bool) -> jax.Array:
        """What follows the addition: ReLU (a), BN-ReLU (b), nothing (c)-(e)."""
        if self.activation_order == "post":
            return nn.relu(y)
        if self.activation_order == "bn_after_addition":
            return nn.relu(self._norm(f"bn{len(self._layers())}")(y, train))
        return y
