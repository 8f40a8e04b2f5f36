"""Print the model table, ``python -m resnet_jax.models [--json] [NAME ...]``, or one model's module tree,
``python -m resnet_jax.models --summary NAME [--input_size N]``.

Parameters and MACs (convolutions and dense layers, per image) come from shape evaluation at each
model's native input size (or ``--input_size``), with 1000 classes for ImageNet models and 10 for CIFAR
models; nothing is allocated or run.
"""

import argparse
import json
from collections.abc import Iterator

from resnet_jax.models.profile import module_rows, profile_model
from resnet_jax.models.registry import create_model, for_imagenet, get_spec, list_models


def default_num_classes(name: str) -> int:
    """1000 for ImageNet architectures, 10 for CIFAR ones: the setting of the published counts."""
    return 1000 if for_imagenet(name) else 10


def model_rows(names: list[str]) -> Iterator[dict]:
    """One row per model, as each is measured: name, params, macs, input_size, num_classes."""
    for name in names:
        spec = get_spec(name)
        num_classes = default_num_classes(name)
        profile = profile_model(create_model(name, num_classes=num_classes), spec.input_size)
        yield dict(
            name=name, params=profile.params, macs=profile.macs, input_size=spec.input_size, num_classes=num_classes
        )


TABLE_HEADER = f"{'name':<20} {'params':>13} {'MACs':>9} {'input':>7} {'classes':>8}"


def format_row(row: dict) -> str:
    """One line of the text table."""
    size = f"{row['input_size']}x{row['input_size']}"
    return f"{row['name']:<20} {row['params']:>13,} {row['macs'] / 1e9:>8.3f}G {size:>7} {row['num_classes']:>8}"


def format_summary(name: str, input_size: int | None = None) -> str:
    """The module tree of ``name``: each module's output shape, parameters and MACs (itself and all inside
    it), indented by depth, then the total (the whole model's row, the figures the table shows)."""
    size = input_size or get_spec(name).input_size
    num_classes = default_num_classes(name)
    rows = module_rows(create_model(name, num_classes=num_classes), size)
    lines = [
        f"{name} at {size}x{size}x3, {num_classes} classes",
        f"{'module':<36} {'kind':<16} {'output':>16} {'params':>13} {'MACs':>14}",
    ]
    for row in rows[1:]:
        label = "  " * (len(row.path) - 1) + row.path[-1]
        shape = "x".join(str(n) for n in row.output_shape[1:])
        lines.append(f"{label:<36} {row.kind:<16} {shape:>16} {row.params:>13,} {row.macs:>14,}")
    total = rows[0]
    lines.append(
        f"{'total':<36} {total.kind:<16} {'x'.join(map(str, total.output_shape[1:])):>16} "
        f"{total.params:>13,} {total.macs:>14,}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print the table (or JSON list)."""
    parser = argparse.ArgumentParser(prog="python -m resnet_jax.models", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    parser.add_argument("--summary", metavar="NAME", help="print NAME's module tree with shapes, params and MACs")
    parser.add_argument("--input_size", type=int, default=None, help="with --summary: the image side (default: native)")
    args = parser.parse_args(argv)
    if args.input_size is not None and (not args.summary or args.input_size < 1):
        parser.error("--input_size takes a positive image side, and goes with --summary NAME")
    if args.summary:
        if args.names or args.json:
            parser.error("--summary NAME shows one model as a tree; drop the other names and --json")
        if args.summary not in list_models():
            parser.error(f"unknown model {args.summary!r}; python -m resnet_jax.models lists them")
        print(format_summary(args.summary, args.input_size))
        return
    names = args.names or list_models()
    try:
        for name in names:
            get_spec(name)  # an unknown name fails here, with the closest names, before any row is printed
    except ValueError as error:
        parser.error(str(error))
    if args.json:
        print(json.dumps(list(model_rows(names)), indent=1))
        return
    print(TABLE_HEADER, flush=True)
    for row in model_rows(names):  # each line as soon as its model is measured (shape evaluation: ~1 s each)
        print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
