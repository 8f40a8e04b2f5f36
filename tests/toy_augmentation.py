"""A batch augmentation registered from outside the package, as a user registers their own: one function and one
``register_batch_augmentation`` call. It negates a random half of the batch's (normalised) images, which keeps
stripes' direction, and counts the times a train step was traced with it."""

import jax
import jax.numpy as jnp

from resnet_jax.data.augment.mixing import register_batch_augmentation

NAME = "toy_negate_half"
TRACES = []


def negate_half(images: jax.Array, key: jax.Array) -> jax.Array:
    """Each image negated with probability 1/2, drawn from ``key``."""
    TRACES.append(images.shape)
    flipped = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flipped, -images, images)


register_batch_augmentation(NAME, negate_half)
