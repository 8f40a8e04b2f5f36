"""An architecture option registered from outside the package, as a user adds their own to every ResNet: one
``Option`` with its branch function and one ``register_option`` call, nothing else. It is LayerScale (Touvron et
al. 2021, "Going deeper with Image Transformers", Sec. 2): a learned per-channel gain on each residual branch,
initialised at the option's value."""

import jax
from flax import linen as nn

from resnet_jax.models.options import Option, register_option
from resnet_jax.ranges import NON_NEGATIVE

NAME = "toy_layer_scale"


def scale_branch(unit: nn.Module, branch: jax.Array, value: float, train: bool) -> jax.Array:
    """``branch`` times a per-channel gain that starts at ``value``, a parameter of the unit named ``NAME``."""
    gain = unit.param(NAME, nn.initializers.constant(value), (branch.shape[-1],))
    return branch * gain.astype(branch.dtype)


register_option(
    Option(
        NAME,
        0.0,
        "LayerScale: a learned per-channel gain on each residual branch, starting at this value (CaiT: 1e-5 to "
        "0.1); 0 = off",
        range=NON_NEGATIVE,
        branch=scale_branch,
    )
)
