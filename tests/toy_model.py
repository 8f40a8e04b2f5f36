"""A model family registered from outside the package, as a user registers their own: one Flax module built with
the package's toolkit (``models.layers``), its named models, and one ``register_models`` call; and a small
named model of the ResNet family, registered the same way."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from resnet_jax.models import ResNet, parts, registry
from resnet_jax.models.layers import Layers, check_images, classify
from resnet_jax.models.spec import ModelSpec


class ToyConvNet(nn.Module):
    """One 3x3 convolution, BN and the activation, global average pooling and the classifier."""

    num_classes: int
    width: int = 8
    input_channels: int = 3
    bn_group_size: int = 0
    dtype: Any = "float32"

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
        """Logits for NHWC ``images``."""
        check_images(images, self.input_channels)
        layers = Layers(bn_group_size=self.bn_group_size, dtype=jnp.dtype(self.dtype))
        x = layers.conv(self.width, 3, "conv1")(images.astype(layers.dtype))
        x = layers.act(layers.norm("bn1")(x, train))
        return classify(jnp.mean(x.astype(jnp.float32), axis=(1, 2)), self.num_classes, train, 0.0, parts.CLASSIFIER)


SPECS = {
    "toy_convnet": ModelSpec(ToyConvNet, {}, 8, "tests/toy_model.py"),
    "toy_resnet": ModelSpec(
        ResNet, dict(stage_sizes=(1, 1), widths=(8, 16), stem="cifar", stem_width=8), 8, "tests/toy_model.py"
    ),
}
registry.register_models(SPECS)
