"""Print the model table: ``python -m resnet_jax.models [--json] [NAME ...]``.

Parameters and MACs (convolutions and dense layers, per image) come from shape evaluation at each
model's native input size, with 1000 classes for ImageNet models and 10 for CIFAR models.
"""

import argparse
import json

from resnet_jax.models.profile import profile_model
from resnet_jax.models.registry import IMAGENET_INPUT_SIZE, create_model, get_spec, list_models


def default_num_classes(name: str) -> int:
    """1000 for ImageNet architectures, 10 for CIFAR ones: the setting of the published counts."""
    return 1000 if get_spec(name).input_size == IMAGENET_INPUT_SIZE else 10


def model_rows(names: list[str]) -> list[dict]:
    """One row per model: name, params, macs, input_size, num_classes."""
    rows = []
    for name in names:
        spec = get_spec(name)
        num_classes = default_num_classes(name)
        profile = profile_model(create_model(name, num_classes=num_classes), spec.input_size)
        rows.append(
            dict(
                name=name, params=profile.params, macs=profile.macs, input_size=spec.input_size, num_classes=num_classes
            )
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of ``model_rows`` output."""
    lines = [f"{'name':<20} {'params':>13} {'MACs':>9} {'input':>7} {'classes':>8}"]
    for row in rows:
        size = f"{row['input_size']}x{row['input_size']}"
        lines.append(
            f"{row['name']:<20} {row['params']:>13,} {row['macs'] / 1e9:>8.3f}G {size:>7} {row['num_classes']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print the table (or JSON list)."""
    parser = argparse.ArgumentParser(prog="python -m resnet_jax.models", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    args = parser.parse_args(argv)
    try:
        rows = model_rows(args.names or list_models())
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))


if __name__ == "__main__":
    main()
