"""The residual-network model zoo (flax.linen); imports only jax and flax, never TensorFlow.

``create_model(name, num_classes=...)`` builds a registered architecture; ``list_models()`` names them.
Per-stage feature maps (backbone use): ``model.apply(variables, images, return_features=True)``.
"""

from resnet_jax.models.profile import ModelProfile, abstract_variables, profile_model
from resnet_jax.models.registry import MODELS, create_model, get_spec, list_models
from resnet_jax.models.resnet import ResNet
from resnet_jax.models.spec import ModelSpec

__all__ = [
    "MODELS",
    "ModelProfile",
    "ModelSpec",
    "ResNet",
    "abstract_variables",
    "create_model",
    "get_spec",
    "list_models",
    "profile_model",
]
