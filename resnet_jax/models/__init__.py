"""The residual-network model zoo (flax.linen); imports only jax and flax, never TensorFlow.

``create_model(name, num_classes=...)`` builds a registered architecture; ``list_models()`` names them.
Per-stage feature maps (backbone use): ``model.apply(variables, images, return_features=True)``.

The names below load on first use, so ``resnet_jax.models.options`` (the architecture options, pure Python)
is importable without JAX: loading a config reads it.
"""

import importlib

_EXPORTS = {
    "MODELS": "registry",
    "create_model": "registry",
    "get_spec": "registry",
    "list_models": "registry",
    "ModelSpec": "spec",
    "ResNet": "resnet",
    "ModelProfile": "profile",
    "abstract_variables": "profile",
    "profile_model": "profile",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import ``name`` from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
