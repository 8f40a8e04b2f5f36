"""Published numbers as data: each table row names the recipe that reproduces it and the paper's value.

``TABLES[name].rows`` are ``Row``s; a row's ``published`` is a test error in percent (top-1 error
for ImageNet), with its source given as paper, table and row. ``reference`` is a second published
value where one exists (torchvision's single-crop error of its reference weights). A table may also
be a study with no published numbers (the paper gives curves only); its rows still say what to run.
"""

import dataclasses

from resnet_jax.models.options import variant_defaults


@dataclasses.dataclass(frozen=True)
class Row:
    """One published result and the run that reproduces it.

    Attributes:
      name: short row name, also the run directory name (e.g. 'resnet56').
      config: ``configs/FILE.py[:ARG]`` of the recipe.
      model: model name the recipe trains (matches ``model`` in a run's config.json).
      dataset: dataset name (matches ``dataset`` in a run's config.json).
      published: the paper's test error in percent, or None where it prints none for this row (a figure
        only, a run that failed, or a probe outside the paper's setting: ``source`` says which).
      source: where the number is printed: paper, table, row.
      reference: an independent second value (percent error), or None.
      reference_source: where ``reference`` comes from.
      published_std: the paper's standard deviation over runs, where it prints one.
      random_erasing: whether the row trains with Random Erasing (matches runs with probability > 0).
      block_dropout: the row's dropout between the convolutions of a block (matches runs with that rate; runs
        recorded before the name changed call it dropout_rate).
      panel: the panel of the row's curves in ``reproduce.py --plot`` ('' = the only panel).
      variant: the model's variant fields the row sets (``models.options.variant_defaults()``; gates, scalings,
        activation order, ...); a run matches only with exactly these, the others at their defaults.
    """

    name: str
    config: str
    model: str
    dataset: str
    published: float | None
    source: str
    reference: float | None = None
    reference_source: str = ""
    published_std: float | None = None
    random_erasing: bool = False
    block_dropout: float = 0.0
    panel: str = ""
    variant: tuple[tuple[str, object], ...] = ()

    def matches(self, config: dict) -> bool:
        """Whether a run's resolved config (config.json) trains this row's network, variant, dataset and
        regularisation."""
        erasing = config.get("random_erasing", {}).get("probability", 0) > 0
        block_dropout = config.get("block_dropout", config.get("dropout_rate", 0.0))  # dropout_rate: older runs
        run = (config.get("model"), config.get("dataset"), erasing, block_dropout)
        variant = {name: config.get(name, default) for name, default in variant_defaults().items()}
        return (self.model, self.dataset, self.random_erasing, self.block_dropout) == run and variant == {
            **variant_defaults(),
            **dict(self.variant),
        }


@dataclasses.dataclass(frozen=True)
class Table:
    """A published table: a title, the default number of seeds to run per row, and its rows.

    ``overrides`` are config fields set on every row's command (a study's shared budget, say);
    ``measured_at`` says how the paper's numbers were taken (final or best epoch), where we know it.
    """

    title: str
    seeds: int
    rows: tuple[Row, ...]
    overrides: tuple[tuple[str, str], ...] = ()
    measured_at: str = ""


def _he2016_cifar10() -> Table:
    he = "He et al. 2016, Deep Residual Learning, Table 6 (CIFAR-10 test error)"
    errors = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
    rows = [
        Row(f"resnet{d}", f"configs/cifar10.py:resnet{d}", f"cifar_resnet{d}", "cifar10", e, f"{he}, ResNet-{d}")
        for d, e in errors.items()
    ]
    rows += [
        Row(
            f"plain{d}",
            f"configs/cifar10.py:plain{d}",
            f"cifar_plain{d}",
            "cifar10",
            None,
            f"He et al. 2016, Fig. 6 (left), plain-{d}: curves only, error grows with depth",
        )
        for d in (20, 32, 44, 56, 110)
    ]
    return Table("He et al. 2016: ResNets and plain nets on CIFAR-10", 5, tuple(rows))


def _he2016_imagenet() -> Table:
    # 10-crop top-1 error on the validation set (He et al. 2016, Tables 2 and 3), and torchvision's
    # single-crop 224 error of its reference weights (100 - its published top-1 accuracy).
    rows = (
        ("resnet18", 27.88, "Table 2, ResNet-18 (10-crop)", 30.24),
        ("resnet34", 24.52, "Table 3, ResNet-34 B (10-crop)", 26.69),
        ("resnet50", 22.85, "Table 3, ResNet-50 (10-crop)", 23.87),
        ("resnet101", 21.75, "Table 3, ResNet-101 (10-crop)", 22.63),
        ("resnet152", 21.43, "Table 3, ResNet-152 (10-crop)", 21.69),
    )
    return Table(
        "He et al. 2016: ImageNet top-1 error (paper: 10-crop; torchvision: single 224 crop)",
        1,
        tuple(
            Row(
                model,
                f"configs/imagenet.py:{model}",
                model,
                "imagenet2012",
                error,
                f"He et al. 2016, {source}",
                reference,
                "torchvision reference weights, single 224 crop (IMAGENET1K_V1)",
            )
            for model, error, source, reference in rows
        ),
    )


def _cifar_table(title: str, source: str, config_file: str, errors: dict, row_label) -> Table:
    """A table of CIFAR results keyed by (dataset, model), each row trained by ``config_file``."""
    rows = tuple(
        Row(
            f"{model}_{dataset}",
            f"configs/{config_file}:{dataset},{model}",
            model,
            dataset,
            error,
            f"{source}, {row_label(model)} ({dataset.upper()})",
        )
        for (dataset, model), error in errors.items()
    )
    return Table(title, 1, rows)


def _zagoruyko2016() -> Table:
    """Table 4's WRNs, and Table 6's WRN-28-10 with dropout 0.3 between the convolutions."""
    errors = {
        ("cifar10", "wrn40_4"): 4.97,
        ("cifar100", "wrn40_4"): 22.89,
        ("cifar10", "wrn16_8"): 4.81,
        ("cifar100", "wrn16_8"): 22.07,
        ("cifar10", "wrn28_10"): 4.17,
        ("cifar100", "wrn28_10"): 20.50,
    }
    table = _cifar_table(
        "Zagoruyko & Komodakis 2016: Wide ResNets on CIFAR",
        "Zagoruyko & Komodakis 2016, Wide Residual Networks, Table 4",
        "wrn.py",
        errors,
        lambda model: model.upper().replace("WRN", "WRN-").replace("_", "-"),
    )
    dropout = tuple(
        Row(
            f"wrn28_10_dropout_{dataset}",
            f"configs/wrn.py:{dataset},wrn28_10,dropout",
            "wrn28_10",
            dataset,
            error,
            f"Zagoruyko & Komodakis 2016, Wide Residual Networks, Table 6, WRN-28-10 with dropout ({dataset.upper()})",
            block_dropout=0.3,
        )
        for dataset, error in (("cifar10", 3.89), ("cifar100", 18.85))
    )
    return dataclasses.replace(table, rows=table.rows + dropout)


def _xie2017() -> Table:
    errors = {
        ("cifar10", "resnext29_8x64d"): 3.65,
        ("cifar100", "resnext29_8x64d"): 17.77,
        ("cifar10", "resnext29_16x64d"): 3.58,
        ("cifar100", "resnext29_16x64d"): 17.31,
    }
    return _cifar_table(
        "Xie et al. 2017: ResNeXt-29 on CIFAR",
        "Xie et al. 2017, Aggregated Residual Transformations, Table 7",
        "resnext.py",
        errors,
        lambda model: f"ResNeXt-29 {model.split('_')[1]}",
    )


# Zhong et al. 2017, Random Erasing Data Augmentation (arXiv 1708.04896 v2, Table 1; AAAI 2020): test
# error (%) as mean +- std over 5 runs, baseline then +RE. The means agree with the authors' README
# (github.com/zhunzhong07/Random-Erasing); the standard deviations are from a transcription of the v2 PDF.
ZHONG2017_ERRORS = {
    "cifar10": {
        "resnet20": ((7.21, 0.17), (6.73, 0.09)),
        "resnet32": ((6.41, 0.06), (5.66, 0.10)),
        "resnet44": ((5.53, 0.08), (5.13, 0.09)),
        "resnet56": ((5.31, 0.07), (4.89, 0.07)),
        "resnet110": ((5.10, 0.07), (4.61, 0.06)),
        "wrn28_10": ((3.80, 0.07), (3.08, 0.05)),
    },
    "cifar100": {
        "resnet20": ((30.84, 0.19), (29.97, 0.11)),
        "resnet32": ((28.50, 0.37), (27.18, 0.32)),
        "resnet44": ((25.27, 0.21), (24.29, 0.16)),
        "resnet56": ((24.82, 0.27), (23.69, 0.33)),
        "resnet110": ((23.73, 0.37), (22.10, 0.41)),
        "wrn28_10": ((18.49, 0.11), (17.73, 0.15)),
    },
    "fashion_mnist": {
        "resnet20": ((4.39, 0.08), (4.02, 0.07)),
        "resnet32": ((4.16, 0.13), (3.80, 0.05)),
        "resnet44": ((4.41, 0.09), (4.01, 0.14)),
        "resnet56": ((4.39, 0.10), (4.13, 0.42)),
        "resnet110": ((4.40, 0.10), (4.01, 0.13)),
        "wrn28_10": ((4.01, 0.10), (3.65, 0.03)),
    },
}
ZHONG2017_MEASURED_AT = (
    "not stated in the paper; the authors' released scripts print the best test accuracy over all epochs "
    "('Best acc'), so most likely best epoch"
)
ZHONG2017_DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "Fashion-MNIST"}
# The like-for-like anchor on today's Fashion-MNIST files: the paper measured the release before 2017-08-31
# (zalandoresearch/fashion-mnist issue #44; the authors say so in zhunzhong07/Random-Erasing issue #9), and a
# user ran the authors' fashionmnist.py (ResNet-20) on the current files: 4.82 +- 0.04, with RE 4.45 +- 0.04.
ZHONG2017_CURRENT_FILES = {"resnet20": (4.82, 4.45)}
ZHONG2017_CURRENT_FILES_SOURCE = (
    "the authors' released fashionmnist.py on the current Fashion-MNIST files, run by a user "
    "(zhunzhong07/Random-Erasing issue #10)"
)


def _zhong2017_rows(
    budget: bool = False, datasets=tuple(ZHONG2017_ERRORS), models=None, authors: bool = False
) -> tuple[Row, ...]:
    """Zhong et al.'s rows: every (dataset, model), baseline and +RE, with the recipe that trains each (with
    ``authors``, the released code's: ``,authors``); Fashion-MNIST's ResNet-20 with the current-files anchor."""
    rows = []
    for dataset in datasets:
        for model, results in ZHONG2017_ERRORS[dataset].items():
            if models is not None and model not in models:
                continue
            for erasing, (error, std) in enumerate(results):
                tokens = [model] + ["erasing"] * erasing + ["budget"] * budget + ["authors"] * authors
                config = (
                    f"configs/fashion_mnist.py:{','.join(tokens)}"
                    if dataset == "fashion_mnist"
                    else f"configs/random_erasing.py:{','.join([dataset, *tokens])}"
                )
                label = model.replace("resnet", "ResNet-").replace("wrn28_10", "WRN-28-10")
                current = ZHONG2017_CURRENT_FILES.get(model) if dataset == "fashion_mnist" else None
                rows.append(
                    Row(
                        f"{dataset}_{model}" + "_re" * erasing,
                        config,
                        f"zhong_{model}" if authors else model if model.startswith("wrn") else f"cifar_{model}",
                        dataset,
                        error,
                        f"Zhong et al. 2017, Random Erasing, Table 1, {label} "
                        f"{'+ RE' if erasing else 'baseline'} ({ZHONG2017_DATASET_NAMES[dataset]})",
                        reference=current[erasing] if current else None,
                        reference_source=ZHONG2017_CURRENT_FILES_SOURCE if current else "",
                        published_std=std,
                        random_erasing=bool(erasing),
                    )
                )
    return tuple(rows)


def _he2016_degradation_fashion_mnist() -> Table:
    rows = tuple(
        Row(
            name,
            f"configs/fashion_mnist.py:{name},budget",
            f"cifar_{name}",
            "fashion_mnist",
            None,
            f"He et al. 2016, Fig. 1 and Fig. 6 (CIFAR-10): {claim}; curves only",
            panel="plain" if name.startswith("plain") else "ResNet",
        )
        for name, claim in (
            ("plain20", "the 20-layer plain net has the lower training error"),
            ("plain56", "the 56-layer plain net has a higher training error than the 20-layer one"),
            ("resnet20", "residual nets do not degrade with depth"),
            ("resnet56", "the 56-layer ResNet is at least as good as the 20-layer one"),
        )
    )
    return Table(
        "He et al. 2016's degradation problem on Fashion-MNIST: plain vs residual, 20 and 56 layers, same 2-epoch "
        "budget (the ',budget' recipe shortened to 2 epochs)",
        1,
        rows,
        overrides=(("num_epochs", "2"), ("eval_every_steps", "100")),  # test-error curves, not two points
    )


HE2016B = "He et al. 2016b, Identity Mappings in Deep Residual Networks"
HE2016B_FAIL = "fail (test error above 20%)"


def _ablation_row(name: str, published: float | None, source: str, arg: str = "", **variant) -> Row:
    """A row of ``configs/ablations.py:NAME[ARG]`` on CIFAR-10 ResNet-110 unless ``arg`` says otherwise."""
    model = "cifar_resnet56" if "resnet56" in arg else "cifar_resnet110"
    dataset = "fashion_mnist" if "fashion_mnist" in arg else "cifar10"
    return Row(
        name, f"configs/ablations.py:{name}{arg}", model, dataset, published, source, variant=tuple(variant.items())
    )


def _he2016b_shortcuts() -> Table:
    table = f"{HE2016B}, Table 1 (CIFAR-10, ResNet-110)"
    rows = (
        _ablation_row("original", 6.61, f"{table}, original"),
        Row(
            "plain110",
            "configs/cifar10.py:plain110",
            "cifar_plain110",
            "cifar10",
            None,
            f"{table}, constant scaling, shortcut 0 (a plain net): {HE2016B_FAIL}",
        ),
        _ablation_row(
            "shortcut_half", None, f"{table}, constant scaling 0.5 on the shortcut: {HE2016B_FAIL}", shortcut_scale=0.5
        ),
        _ablation_row(
            "constant_scaling", 12.35, f"{table}, constant scaling 0.5, 0.5", shortcut_scale=0.5, branch_scale=0.5
        ),
        _ablation_row(
            "exclusive_gating_b0",
            None,
            f"{table}, exclusive gating, b_g = 0 (to -5): {HE2016B_FAIL}",
            gate="exclusive",
        ),
        _ablation_row(
            "exclusive_gating", 8.70, f"{table}, exclusive gating, b_g = -6", gate="exclusive", gate_bias_init=-6.0
        ),
        _ablation_row(
            "exclusive_gating_b7", 9.81, f"{table}, exclusive gating, b_g = -7", gate="exclusive", gate_bias_init=-7.0
        ),
        _ablation_row("shortcut_gating_b0", 12.86, f"{table}, shortcut-only gating, b_g = 0", gate="shortcut_only"),
        _ablation_row(
            "shortcut_gating",
            6.91,
            f"{table}, shortcut-only gating, b_g = -6",
            gate="shortcut_only",
            gate_bias_init=-6.0,
        ),
        _ablation_row("conv_shortcut", 12.22, f"{table}, 1x1 conv shortcut", shortcut="C"),
        _ablation_row("dropout_shortcut", None, f"{table}, dropout shortcut 0.5: {HE2016B_FAIL}", shortcut_dropout=0.5),
    )
    return Table(f"{HE2016B}: shortcut types (Table 1, CIFAR-10 ResNet-110)", 5, rows, measured_at="median of 5 runs")


def _he2016b_activations() -> Table:
    table = f"{HE2016B}, Table 2 (CIFAR-10, ResNet-110 column)"
    errors = {
        "original": 6.61,
        "bn_after_addition": 8.17,
        "relu_before_addition": 7.84,
        "relu_preactivation": 6.71,
        "full_preactivation": 6.37,
    }
    rows = tuple(
        _ablation_row(
            name,
            error,
            f"{table}, {name.replace('_', ' ')}",
            **({} if name == "original" else {"activation_order": name}),
        )
        for name, error in errors.items()
    )
    return Table(f"{HE2016B}: activation orders (Table 2, CIFAR-10 ResNet-110)", 5, rows)


def _huang2016() -> Table:
    source = "Huang et al. 2016, Deep Networks with Stochastic Depth, Table 1 (CIFAR-10+, ResNet-110)"
    rows = (
        _ablation_row("constant_depth", 6.41, f"{source}, constant depth"),
        _ablation_row("stochastic_depth", 5.25, f"{source}, stochastic depth, p_L = 0.5", stochastic_depth=0.5),
    )
    return Table(
        "Huang et al. 2016: stochastic depth on CIFAR-10 ResNet-110 (500 epochs)",
        1,
        rows,
        measured_at="the epoch of the lowest validation error (45k/5k split)",
    )


def _he2016b_shortcuts_fashion_mnist() -> Table:
    probe = "a 56-layer, 5-epoch probe on Fashion-MNIST, not the paper's setting (He et al. 2016b, Table 1"
    rows = (
        _ablation_row(
            "original", None, f"{probe}: original 6.61% on CIFAR-10 ResNet-110)", ",fashion_mnist,resnet56,budget"
        ),
        _ablation_row(
            "exclusive_gating",
            None,
            f"{probe}: exclusive gating b_g = -6, 8.70%)",
            ",fashion_mnist,resnet56,budget",
            gate="exclusive",
            gate_bias_init=-6.0,
        ),
        _ablation_row(
            "constant_scaling",
            None,
            f"{probe}: constant scaling 0.5, 0.5, 12.35%)",
            ",fashion_mnist,resnet56,budget",
            shortcut_scale=0.5,
            branch_scale=0.5,
        ),
    )
    return Table(
        "He et al. 2016b's shortcut comparison, small: original vs exclusive gating vs constant scaling, "
        "cifar_resnet56 on Fashion-MNIST with the 5-epoch ',budget' recipe",
        1,
        rows,
    )


def _imagenet_reference() -> Table:
    """Single-crop 224 top-1 error of torchvision's reference weights (100 - its published top-1), and
    Xie et al.'s ResNeXt-101 64x4d, which torchvision's V1 weights do not reproduce with this recipe."""
    torchvision = {
        "resnet18": 69.758,
        "resnet34": 73.314,
        "resnet50": 76.130,
        "resnet101": 77.374,
        "resnet152": 78.312,
        "resnext50_32x4d": 77.618,
        "resnext101_32x8d": 79.312,
        "wide_resnet50_2": 78.468,
        "wide_resnet101_2": 78.848,
    }
    source = "torchvision reference weights (IMAGENET1K_V1), single 224 crop, top-1 {:.3f}%"
    rows = [
        Row(model, f"configs/imagenet.py:{model}", model, "imagenet2012", round(100 - top1, 3), source.format(top1))
        for model, top1 in torchvision.items()
    ]
    rows.append(
        Row(
            "resnext101_64x4d",
            "configs/imagenet.py:resnext101_64x4d",
            "resnext101_64x4d",
            "imagenet2012",
            20.4,
            "Xie et al. 2017, Aggregated Residual Transformations, Table 5, ResNeXt-101 64x4d (224 crop)",
        )
    )
    return Table("ImageNet single-crop 224 top-1 error of reference weights", 1, tuple(rows))


def _tan2019_efficientnet() -> Table:
    """Tan & Le 2019's EfficientNet-B0 to B7, their ImageNet top-1 at the model's own resolution (single crop,
    with AutoAugment, which configs/imagenet.py's 'efficientnet' recipe does not implement)."""
    top1 = {0: 77.1, 1: 79.1, 2: 80.1, 3: 81.6, 4: 82.9, 5: 83.6, 6: 84.0, 7: 84.3}
    source = "Tan & Le 2019, EfficientNet (ICML version, arXiv v5), Table 2, EfficientNet-B{} top-1 {}%"
    rows = tuple(
        Row(
            f"efficientnet_b{index}",
            f"configs/imagenet.py:efficientnet_b{index}",
            f"efficientnet_b{index}",
            "imagenet2012",
            round(100 - accuracy, 1),
            source.format(index, accuracy),
        )
        for index, accuracy in top1.items()
    )
    return Table("Tan & Le 2019: EfficientNet-B0 to B7, ImageNet top-1 error (single crop, own resolution)", 1, rows)


def _wang2019_hrnet() -> Table:
    """Wang et al. 2019's HRNet-W*-C classification models: ImageNet single-crop 224 top-1 error."""
    errors = {
        "hrnet_w18_small": ("HRNet-W18-C-Small-v1", 27.7),
        "hrnet_w18_small_v2": ("HRNet-W18-C-Small-v2", 24.9),
        "hrnet_w18": ("HRNet-W18-C", 23.2),
        "hrnet_w30": ("HRNet-W30-C", 21.8),
        "hrnet_w32": ("HRNet-W32-C", 21.5),
        "hrnet_w40": ("HRNet-W40-C", 21.1),
        "hrnet_w44": ("HRNet-W44-C", 21.1),
        "hrnet_w48": ("HRNet-W48-C", 20.7),
        "hrnet_w64": ("HRNet-W64-C", 20.5),
    }
    source = "Wang et al. 2019 (TPAMI), ImageNet classification, and the official HRNet-Image-Classification README: {}"
    rows = tuple(
        Row(model, f"configs/imagenet.py:{model}", model, "imagenet2012", error, source.format(row))
        for model, (row, error) in errors.items()
    )
    return Table("Wang et al. 2019: HRNet-W*-C, ImageNet single-crop 224 top-1 error", 1, rows)


TABLES = {
    "he2016_cifar10": _he2016_cifar10(),
    "he2016_imagenet": _he2016_imagenet(),
    "imagenet_reference": _imagenet_reference(),
    "tan2019_efficientnet": _tan2019_efficientnet(),
    "wang2019_hrnet": _wang2019_hrnet(),
    "zagoruyko2016": _zagoruyko2016(),
    "xie2017": _xie2017(),
    "zhong2017": Table(
        "Zhong et al. 2017: Random Erasing on CIFAR-10, CIFAR-100 and Fashion-MNIST (300 epochs, 5 runs)",
        5,
        _zhong2017_rows(),
        measured_at=ZHONG2017_MEASURED_AT,
    ),
    "zhong2017_budget": Table(
        "Zhong et al. 2017's ResNet-20 on Fashion-MNIST, baseline and + Random Erasing, with the 5-epoch cosine "
        "',budget' schedule (not the paper's 300 epochs); published: the paper's 300-epoch numbers",
        3,
        _zhong2017_rows(budget=True, datasets=("fashion_mnist",), models=("resnet20",)),
        measured_at=ZHONG2017_MEASURED_AT,
    ),
    "zhong2017_authors_fashion_mnist": Table(
        "Zhong et al. 2017's ResNets on Fashion-MNIST trained as their released fashionmnist.py does (',authors': "
        "projection shortcuts, bottlenecks from depth 44, their erasing sampler and constant fill, MNIST's "
        "normalisation), 300 epochs",
        3,
        _zhong2017_rows(
            datasets=("fashion_mnist",), models=("resnet20", "resnet32", "resnet44", "resnet56"), authors=True
        ),
        measured_at=ZHONG2017_MEASURED_AT,
    ),
    "he2016_degradation_fashion_mnist": _he2016_degradation_fashion_mnist(),
    "he2016b_shortcuts": _he2016b_shortcuts(),
    "he2016b_activations": _he2016b_activations(),
    "huang2016": _huang2016(),
    "he2016b_shortcuts_fashion_mnist": _he2016b_shortcuts_fashion_mnist(),
}


def get_table(name: str) -> Table:
    """The table ``name``, or an error listing the tables there are."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    return TABLES[name]
