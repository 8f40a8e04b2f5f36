"""Published numbers as data: each table row names the recipe that reproduces it and the paper's value.

``TABLES[name].rows`` are ``Row``s; a row's ``published`` is a test error in percent (top-1 error
for ImageNet), with its source given as paper, table and row. ``reference`` is a second published
value where one exists (torchvision's single-crop error of its reference weights).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Row:
    """One published result and the run that reproduces it.

    Attributes:
      name: short row name, also the run directory name (e.g. 'resnet56').
      config: ``configs/FILE.py[:ARG]`` of the recipe.
      model: model name the recipe trains (matches ``model`` in a run's config.json).
      dataset: dataset name (matches ``dataset`` in a run's config.json).
      published: the paper's test error in percent, or None where the paper gives only a figure.
      source: where the number is printed: paper, table, row.
      reference: an independent second value (percent error), or None.
      reference_source: where ``reference`` comes from.
    """

    name: str
    config: str
    model: str
    dataset: str
    published: float | None
    source: str
    reference: float | None = None
    reference_source: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """A published table: a title, the default number of seeds to run per row, and its rows."""

    title: str
    seeds: int
    rows: tuple[Row, ...]


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
    errors = {
        ("cifar10", "wrn40_4"): 4.97,
        ("cifar100", "wrn40_4"): 22.89,
        ("cifar10", "wrn16_8"): 4.81,
        ("cifar100", "wrn16_8"): 22.07,
        ("cifar10", "wrn28_10"): 4.17,
        ("cifar100", "wrn28_10"): 20.50,
    }
    return _cifar_table(
        "Zagoruyko & Komodakis 2016: Wide ResNets on CIFAR",
        "Zagoruyko & Komodakis 2016, Wide Residual Networks, Table 4",
        "wrn.py",
        errors,
        lambda model: model.upper().replace("WRN", "WRN-").replace("_", "-"),
    )


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


TABLES = {
    "he2016_cifar10": _he2016_cifar10(),
    "he2016_imagenet": _he2016_imagenet(),
    "zagoruyko2016": _zagoruyko2016(),
    "xie2017": _xie2017(),
}


def get_table(name: str) -> Table:
    """The table ``name``, or an error listing the tables there are."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    return TABLES[name]
