"""Augmentations registered from outside the package, as a user registers their own, each a function or two and
one registration call. The batch augmentation negates a random half of the batch's (normalised) images; the
example augmentation inverts a random half of the uint8 images, in JAX for the in-memory pipeline and in
TensorFlow for the streamed one. Both keep stripes' direction, and each counts the batches it was traced with."""

import jax
import jax.numpy as jnp

from resnet_jax.data.augment.examples import ExampleAugmentation, register_example_augmentation
from resnet_jax.data.augment.mixing import register_batch_augmentation

NAME = "toy_negate_half"
TRACES = []
EXAMPLE_NAME = "toy_invert_half"
EXAMPLE_TRACES = []


def negate_half(images: jax.Array, key: jax.Array) -> jax.Array:
    """Each image negated with probability 1/2, drawn from ``key``."""
    TRACES.append(images.shape)
    flipped = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flipped, -images, images)


register_batch_augmentation(NAME, negate_half)


def invert_half(images: jax.Array, key: jax.Array) -> jax.Array:
    """Each uint8 image of the batch inverted (255 - x) with probability 1/2, drawn from ``key``."""
    EXAMPLE_TRACES.append(images.shape)
    inverted = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(inverted, 255 - images, images)


def invert_half_streamed(image, seed):
    """One uint8 image inverted with probability 1/2, drawn from the stateless ``seed``, in tf.data."""
    import tensorflow as tf

    return tf.where(tf.random.stateless_uniform([], seed) < 0.5, 255 - image, image)


register_example_augmentation(ExampleAugmentation(EXAMPLE_NAME, invert_half, invert_half_streamed))
