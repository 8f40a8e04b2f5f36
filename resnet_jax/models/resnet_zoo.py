"""The ResNet family's named models: torchvision's ImageNet nets and their variants (ResNeXt, Wide ResNet, SE,
ResNet-D, Res2Net, pre-activation), and the CIFAR nets of He et al., Zhong et al., Zagoruyko & Komodakis and Xie et
al. The registry takes them from ``SPECS``, as it takes each family's."""

from resnet_jax.models.resnet import ResNet
from resnet_jax.models.spec import CIFAR_INPUT_SIZE, IMAGENET_INPUT_SIZE, ModelSpec


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

SPECS: dict[str, ModelSpec] = {
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
}
