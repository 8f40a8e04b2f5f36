"""Channel attention a residual unit may be given for its branch: Squeeze-and-Excitation (Hu et al. 2018)."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn


class SqueezeExcitation(nn.Module):
    """Hu et al. 2018: channel weights sigmoid(fc2(relu(fc1(global average)))), fc1 narrowing to ``hidden``."""

    hidden: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``x`` scaled channel by channel."""
        squeezed = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
        excited = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=jnp.float32, name="fc1")(squeezed))
        weights = nn.sigmoid(nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=jnp.float32, name="fc2")(excited))
        return x * weights
