"""Batch normalisation with PyTorch semantics and optional per-group statistics.

Flax's own BatchNorm updates its running variance with the biased batch variance; PyTorch (and so
every published ResNet checkpoint) uses the unbiased one. This module matches PyTorch, and it can
compute statistics over fixed-size groups of examples, which is how the original papers' per-GPU
BatchNorm behaved (e.g. 8 GPUs x 32 images: ``group_size=32``).
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

Initializer = Any


class BatchNorm(nn.Module):
    """BatchNorm over NHWC (or NC) inputs, statistics kept in the ``batch_stats`` collection.

    Attributes:
      momentum: running-average decay in Flax's convention (PyTorch momentum 0.1 == 0.9 here).
      epsilon: added to the variance, as in PyTorch (1e-5).
      group_size: examples that share statistics in training; 0 means the whole (global) batch.
      dtype: compute dtype of the output; statistics and the normalisation itself run in float32, the
        moments in one pass over the activations (about a constant near the mean, against round-off).
      scale_init: initialiser of the scale (gamma); zeros give a zero-initialised residual branch.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    group_size: int = 0
    dtype: Any = jnp.float32
    scale_init: Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, update_stats: jax.Array | bool = True) -> jax.Array:
        """Normalise ``x`` with batch statistics (train) or running statistics (eval).

        ``update_stats`` (a traced bool) False keeps the running statistics in training: the branch BNs
        of a block that stochastic depth drops in this step (Huang et al. 2016)."""
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)

        if train:
            grouped = self._group(x)
            reduce_axes = tuple(range(1, grouped.ndim - 1))
            # Both moments in one fused pass over the activations, in float32 whatever x's dtype. They are
            # taken about a constant near the mean, the first example's per-channel mean in each group:
            # the variance is unchanged, but E[d^2] - E[d]^2 does not cancel catastrophically when a
            # channel's mean is large against its spread. Reading one example per group costs little.
            shift = jax.lax.stop_gradient(jnp.mean(grouped[:, :1], axis=reduce_axes, keepdims=True, dtype=jnp.float32))
            centred = grouped.astype(jnp.float32) - shift
            shifted_mean = jnp.mean(centred, axis=reduce_axes, keepdims=True)
            var = jnp.maximum(jnp.mean(jnp.square(centred), axis=reduce_axes, keepdims=True) - shifted_mean**2, 0.0)
            mean = shifted_mean + shift
            if not self.is_initializing():
                count = grouped.size // (grouped.shape[0] * features)
                unbiased_var = var * count / max(count - 1, 1)
                new_mean = mean.reshape(-1, features).mean(axis=0)
                new_var = unbiased_var.reshape(-1, features).mean(axis=0)
                updated_mean = self.momentum * running_mean.value + (1 - self.momentum) * new_mean
                updated_var = self.momentum * running_var.value + (1 - self.momentum) * new_var
                if update_stats is not True:
                    updated_mean = jnp.where(update_stats, updated_mean, running_mean.value)
                    updated_var = jnp.where(update_stats, updated_var, running_var.value)
                running_mean.value, running_var.value = updated_mean, updated_var
        else:
            grouped, mean, var = x, running_mean.value, running_var.value
        # y = x * multiplier + offset: one multiply-add per element, the per-channel terms in float32.
        multiplier = jax.lax.rsqrt(var + self.epsilon) * scale
        offset = bias - mean * multiplier
        return (grouped.astype(jnp.float32) * multiplier + offset).reshape(x.shape).astype(self.dtype)

    def _group(self, x: jax.Array) -> jax.Array:
        """Reshape the batch axis into (num_groups, group_size) so statistics are per group."""
        batch = x.shape[0]
        group_size = self.group_size or batch
        if batch % group_size:
            raise ValueError(
                f"BatchNorm group_size={self.group_size} does not divide the batch of {batch} examples; "
                "choose a bn_group_size that divides the per-step batch, or 0 for whole-batch statistics."
            )
        return x.reshape((batch // group_size, group_size) + x.shape[1:])
