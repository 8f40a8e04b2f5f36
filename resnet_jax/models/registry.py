"""Named models: each name is a model class, its keyword arguments and its native input size (``ModelSpec``).

Each family registers its named models once, from its own module's ``SPECS`` (``resnet_zoo``, ``efficientnet``,
``hrnet``); ``register_models`` adds more from anywhere, a module of one's own included."""

import dataclasses
from collections.abc import Mapping
from typing import Any

from resnet_jax.errors import ConfigError
from resnet_jax.models import efficientnet, hrnet, options, resnet_zoo
from resnet_jax.models.spec import IMAGENET_INPUT_SIZE, ModelSpec

MODELS: dict[str, ModelSpec] = {}


def register_models(specs: Mapping[str, ModelSpec]) -> None:
    """Add named models (a family's ``SPECS``) to the registry; a name already registered is refused."""
    if taken := sorted(set(specs) & set(MODELS)):
        raise ValueError(f"model name(s) {taken} are registered already; choose others")
    MODELS.update(specs)


for family in (resnet_zoo, efficientnet, hrnet):
    register_models(family.SPECS)


def overridable(module: type) -> tuple[str, ...]:
    """The fields of a model class that ``create_model`` may override: all but flax's own and ``num_classes``."""
    return tuple(f.name for f in dataclasses.fields(module) if f.name not in ("parent", "name", "num_classes"))


def list_models() -> list[str]:
    """Names of every registered model, in registry order."""
    return list(MODELS)


def for_imagenet(name: str) -> bool:
    """Whether model ``name`` was designed for ImageNet (at 224 pixels or, EfficientNet-B1 to B7, more)."""
    return get_spec(name).input_size >= IMAGENET_INPUT_SIZE


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name is an error listing the valid ones."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[name]


def create_model(name: str, *, num_classes: int, **overrides: Any):
    """Build the registered model ``name`` with ``num_classes`` outputs, overriding any field of its class; an
    option added with ``options.register_option`` goes into the model's ``added_options`` record.

    Example: ``create_model('resnet50', num_classes=1000, zero_init_residual=True, dtype='bfloat16')``.
    """
    spec = get_spec(name)
    valid = overridable(spec.module)
    if "added_options" in valid and (added := [o.name for o in options.added() if o.name in overrides]):
        record = (*spec.kwargs.get("added_options", ()), *((option, overrides.pop(option)) for option in added))
        overrides["added_options"] = record
    if renamed := [options.RENAMED[old] for old in overrides if old in options.RENAMED]:
        raise ConfigError(" ".join(renamed))
    unknown = sorted(set(overrides) - set(valid))
    if other_family := [option for option in unknown if option in options.BY_NAME]:
        family, these = spec.module.__name__, ", ".join(other_family)
        raise ConfigError(
            f"{these} {'is an option' if len(other_family) == 1 else 'are options'} of the ResNet family, and "
            f"{name!r} is of the {family} family, which has no such part; drop "
            f"{'it' if len(other_family) == 1 else 'them'} (the {family} family's fields: {', '.join(valid)})."
        )
    if unknown:
        raise ConfigError(f"unknown override(s) {unknown} for model {name!r}; valid fields: {', '.join(valid)}")
    return spec.module(num_classes=num_classes, **{**spec.kwargs, **overrides})
