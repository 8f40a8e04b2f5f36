"""Named models: each name is a model class, its keyword arguments and its native input size (``ModelSpec``):
the ResNet family below, EfficientNet-B0 to B7 and HRNet-W*-C from their own modules."""

import dataclasses
from typing import Any

from resnet_jax.errors import ConfigError
from resnet_jax.models import efficientnet, hrnet, options
from resnet_jax.models.resnet import ResNet
from resnet_jax.models.spec import ModelSpec

IMAGENET_INPUT_SIZE = 224
CIFAR_INPUT_SIZE = 32


def _imagenet(stage_sizes, block, source, **kwargs) -> ModelSpec:
    return ModelSpec(
        ResNet,
        dict(stage_sizes=stage_sizes, block=block, **{"stem": "imagenet", "shortcut": "B", **kwargs}),
        IMAGENET_INPUT_SIZE,
        source,
    )


def _cifar_resnet(depth: int, shortcut: str) -> ModelSpec:
    """He et al. 2016 Sec. 4.2: 6n+2 layers, 3 stages of 16/32/64 filters."""
    blocks_per_stage = (depth - 2) // 6
    return ModelSpec(
        ResNet,
        dict(
            stage_sizes=(blocks_per_stage,) * 3,
            block="basic",
            widths=(16, 32, 64),
            stem="cifar",
            stem_width=16,
            shortcut=shortcut,
        ),
        CIFAR_INPUT_SIZE,
        "He et al. 2016, Deep Residual Learning, Sec. 4.2" + (" (plain)" if shortcut == "none" else ", option A"),
    )


def _zhong_resnet(depth: int) -> ModelSpec:
    """The ResNet of Zhong et al.'s released CIFAR and Fashion-MNIST code (``models/*/resnet.py`` of
    github.com/zhunzhong07/Random-Erasing, after pytorch-classification): (depth - 2) / 6 blocks per stage of
    16/32/64 filters, projection shortcuts (1x1 conv + BN) wherever the shape changes, and from depth 44 on
    bottleneck blocks (x4 outputs), so that its 'ResNet-56' has 9 bottlenecks a stage (83 layers)."""
    return ModelSpec(
        ResNet,
        dict(
            stage_sizes=((depth - 2) // 6,) * 3,
            block="bottleneck" if depth >= 44 else "basic",
            widths=(16, 32, 64),
            stem="cifar",
            stem_width=16,
            shortcut="B",
        ),
        CIFAR_INPUT_SIZE,
        f"Zhong et al. 2017's released code, models/fashion/resnet.py (depth {depth}, projection shortcuts"
        + (", bottleneck blocks)" if depth >= 44 else ")"),
    )


def _wide_resnet(depth: int, widen: int) -> ModelSpec:
    """Zagoruyko & Komodakis 2016: pre-activation basic blocks, (depth-4)/6 per stage, width x k."""
    return ModelSpec(
        ResNet,
        dict(
            stage_sizes=((depth - 4) // 6,) * 3,
            block="basic",
            widths=(16, 32, 64),
            width_multiplier=widen,
            stem="cifar",
            stem_width=16,
            shortcut="B",
            activation_order="full_preactivation",
        ),
        CIFAR_INPUT_SIZE,
        f"Zagoruyko & Komodakis 2016, Wide Residual Networks, WRN-{depth}-{widen}",
    )


def _cifar_resnext(cardinality: int, group_width: int) -> ModelSpec:
    """Xie et al. 2017 Sec. 5.3: ResNeXt-29, 3 stages of 3 bottlenecks, 64-filter 3x3 stem."""
    return ModelSpec(
        ResNet,
        dict(
            stage_sizes=(3, 3, 3),
            block="bottleneck",
            widths=(64, 128, 256),
            groups=cardinality,
            width_per_group=group_width,
            stem="cifar",
            stem_width=64,
            shortcut="B",
        ),
        CIFAR_INPUT_SIZE,
        f"Xie et al. 2017, Aggregated Residual Transformations, ResNeXt-29 ({cardinality}x{group_width}d)",
    )


TORCHVISION = "torchvision.models (He et al. 2016 layout, stride on the 3x3)"
SE = "Hu et al. 2018, Squeeze-and-Excitation Networks (reduction 16, on the branch before the addition)"
BAG_OF_TRICKS = "He et al. 2019, Bag of Tricks: ResNet-C deep stem and ResNet-D average-pool shortcut"
RES2NET = "Gao et al. 2019, Res2Net (scale 4, width 26)"
PREACT = "He et al. 2016b, Identity Mappings: full pre-activation, BN-ReLU after conv1 and before the pooling"

MODELS: dict[str, ModelSpec] = {
    "resnet18": _imagenet((2, 2, 2, 2), "basic", TORCHVISION),
    "resnet34": _imagenet((3, 4, 6, 3), "basic", TORCHVISION),
    "resnet50": _imagenet((3, 4, 6, 3), "bottleneck", TORCHVISION),
    "resnet101": _imagenet((3, 4, 23, 3), "bottleneck", TORCHVISION),
    "resnet152": _imagenet((3, 8, 36, 3), "bottleneck", TORCHVISION),
    "resnext50_32x4d": _imagenet((3, 4, 6, 3), "bottleneck", TORCHVISION, groups=32, width_per_group=4),
    "resnext101_32x8d": _imagenet((3, 4, 23, 3), "bottleneck", TORCHVISION, groups=32, width_per_group=8),
    "resnext101_64x4d": _imagenet((3, 4, 23, 3), "bottleneck", TORCHVISION, groups=64, width_per_group=4),
    "wide_resnet50_2": _imagenet((3, 4, 6, 3), "bottleneck", TORCHVISION, width_multiplier=2),
    "wide_resnet101_2": _imagenet((3, 4, 23, 3), "bottleneck", TORCHVISION, width_multiplier=2),
    "se_resnet50": _imagenet((3, 4, 6, 3), "bottleneck", SE, se_ratio=1 / 16),
    "se_resnet101": _imagenet((3, 4, 23, 3), "bottleneck", SE, se_ratio=1 / 16),
    "resnet50d": _imagenet((3, 4, 6, 3), "bottleneck", BAG_OF_TRICKS, stem="deep", shortcut="D"),
    "res2net50_26w_4s": _imagenet((3, 4, 6, 3), "res2net", RES2NET, width_per_group=26, scale=4),
    "res2net101_26w_4s": _imagenet((3, 4, 23, 3), "res2net", RES2NET, width_per_group=26, scale=4),
    "preact_resnet18": _imagenet((2, 2, 2, 2), "basic", PREACT, activation_order="full_preactivation"),
    "preact_resnet50": _imagenet((3, 4, 6, 3), "bottleneck", PREACT, activation_order="full_preactivation"),
    **{f"cifar_resnet{d}": _cifar_resnet(d, "A") for d in (20, 32, 44, 56, 110, 1202)},
    **{f"cifar_plain{d}": _cifar_resnet(d, "none") for d in (20, 32, 44, 56, 110)},
    **{f"zhong_resnet{d}": _zhong_resnet(d) for d in (20, 32, 44, 56, 110)},
    "wrn16_8": _wide_resnet(16, 8),
    "wrn28_10": _wide_resnet(28, 10),
    "wrn40_4": _wide_resnet(40, 4),
    "resnext29_8x64d": _cifar_resnext(8, 64),
    "resnext29_16x64d": _cifar_resnext(16, 64),
    **efficientnet.SPECS,
    **hrnet.SPECS,
}


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
    """Build the registered model ``name`` with ``num_classes`` outputs, overriding any field of its class.

    Example: ``create_model('resnet50', num_classes=1000, zero_init_residual=True, dtype='bfloat16')``.
    """
    spec = get_spec(name)
    valid = overridable(spec.module)
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
