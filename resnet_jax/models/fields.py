"""The model's config fields: which network, its classes and dtype, the architecture options
(``models.options``) and the framework conventions; with the arguments of the run's ``create_model`` call.

The option fields are derived each time the fields are read, so an option that a user's module registers
(``options.register_option``) before the config is made is a config field like the package's own. Pure
Python until ``check_rules`` builds the model definition: loading a config imports no JAX.
"""

from typing import Any

from resnet_jax.errors import ConfigError
from resnet_jax.fields import Field, Owned, Section
from resnet_jax.models import options
from resnet_jax.ranges import FRACTION, NON_NEGATIVE

CONVENTION_FIELDS = ("padding", "bn_epsilon", "bn_momentum")  # where a TensorFlow and a PyTorch network differ

NETWORK_FIELDS = (
    Field(
        "model",
        "cifar_resnet20",
        "network from the registry (`python -m resnet_jax.models` lists them with sizes)",
        Owned("resnet_jax.models", "list_models", "a registered model name"),
    ),
    Field(
        "num_classes",
        0,
        "outputs of the classifier; 0 = the dataset's class count (synthetic: 10)",
        range=NON_NEGATIVE,
    ),
    Field(
        "dtype",
        "float32",
        "compute dtype; parameters, BN statistics and the loss stay float32",
        ("float32", "bfloat16"),
    ),
)
# How the network computes where frameworks differ (EfficientNet's only: the other families compute as PyTorch).
CONVENTIONS = (
    Field(
        "padding",
        "",
        "'' = the model's own (EfficientNet: 'same', TensorFlow's, as the paper); 'symmetric' is PyTorch's (timm's "
        "efficientnet_b* weights)",
        ("", "same", "symmetric"),
    ),
    Field(
        "bn_epsilon",
        0.0,
        "0 = the model's own; the BatchNorm epsilon (EfficientNet: 1e-3 as TensorFlow; timm's efficientnet_b*: 1e-5)",
        range=NON_NEGATIVE,
    ),
    Field(
        "bn_momentum",
        0.0,
        "0 = the model's own; the BatchNorm running-average decay (EfficientNet: 0.99 as TensorFlow; timm's "
        "efficientnet_b*: 0.9, PyTorch's momentum 0.1)",
        range=FRACTION,
    ),
)


def fields() -> tuple[Field, ...]:
    """The model section's fields: the network, then every registered architecture option (a variant's default
    keeps the model's own), then the framework conventions."""
    option_fields = (
        Field(option.name, option.default, option.doc, option.config_choices(), option.range)
        for option in options.registered()
    )
    return (*NETWORK_FIELDS, *option_fields, *CONVENTIONS)


def model_overrides(settings: Any) -> dict[str, Any]:
    """The architecture options the settings set away from their defaults: what they change in the registered
    model (a model family without such an option refuses it by name)."""
    return {
        option.name: getattr(settings, option.name)
        for option in options.registered()
        if getattr(settings, option.name) != option.default
    }


def convention_overrides(settings: Any) -> dict[str, Any]:
    """The framework conventions (``CONVENTION_FIELDS``: padding, BatchNorm constants) the settings set."""
    defaults = {field.name: field.default for field in CONVENTIONS}
    return {name: getattr(settings, name) for name in CONVENTION_FIELDS if getattr(settings, name) != defaults[name]}


def model_arguments(settings: Any) -> dict[str, Any]:
    """The keyword arguments, besides the name and input channels, of the run's ``create_model`` call."""
    return {
        "num_classes": settings.num_classes,
        "dtype": settings.dtype,
        **model_overrides(settings),
        **convention_overrides(settings),
    }


def check_rules(settings: Any) -> None:
    """Build the model the settings name (a module definition: no weights, no compute), so that an architecture
    the zoo refuses, such as a gate on a plain net, is reported before anything starts."""
    from resnet_jax.models import create_model

    try:
        create_model(settings.model, **model_arguments(settings) | {"num_classes": settings.num_classes or 1})
    except ValueError as error:  # num_classes 0 is the dataset's, known later
        raise ConfigError(
            f"--config.model={settings.model} cannot take the options this config sets: {error}. Change or drop "
            "the option (docs/guides/training.md, Variants, lists them)."
        ) from None


SECTION = Section("model", "resnet_jax.models", fields, check_rules)
