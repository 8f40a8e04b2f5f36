"""Channel attention a residual unit may be given for its branch: Squeeze-and-Excitation (Hu et al. 2018), one
module for every family, which differ only in how its two layers are built (``Excitation``)."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models.layers import Layers


@dataclasses.dataclass(frozen=True)
class Excitation:
    """How a family builds the two layers of its squeeze-excitation: their names, and whether they are 1x1
    convolutions with a bias (else dense layers). The activation between them is the network's (``Layers.act``)."""

    names: tuple[str, str]
    convolutional: bool


RESNET_SE = Excitation(("fc1", "fc2"), convolutional=False)  # Hu et al.: FC, ReLU, FC
EFFICIENTNET_SE = Excitation(("conv_reduce", "conv_expand"), convolutional=True)  # timm's: conv, swish, conv


class SqueezeExcitation(nn.Module):
    """Hu et al. 2018: channel weights sigmoid(expand(act(reduce(global average)))), reduce narrowing to
    ``hidden`` channels."""

    hidden: int
    layers: Layers = Layers()
    excitation: Excitation = RESNET_SE

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``x`` scaled channel by channel."""
        squeezed = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.layers.dtype)
        reduce_name, expand_name = self.excitation.names
        reduce, expand = self._layer(self.hidden, reduce_name), self._layer(x.shape[-1], expand_name)
        weights = nn.sigmoid(expand(self.layers.act(reduce(squeezed))))
        return x * weights

    def _layer(self, features: int, name: str) -> nn.Module:
        if self.excitation.convolutional:
            return self.layers.conv(features, 1, name, bias_init=nn.initializers.zeros)
        return nn.Dense(features, dtype=self.layers.dtype, param_dtype=jnp.float32, name=name)
