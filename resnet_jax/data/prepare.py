"""``python -m resnet_jax.data.prepare DATASET --data_dir DIR``: build a TFDS dataset with no network.

The result is a standard TFDS directory: ``tfds.builder(DATASET, data_dir=DIR)`` loads it.
Today ``digits`` (built from the copy inside scikit-learn); the archive-based datasets (CIFAR,
ImageNet) arrive with issue #4.
"""

import argparse

PREPARABLE = ("digits",)


def prepare(dataset: str, data_dir: str) -> str:
    """Build ``dataset`` under ``data_dir`` (no-op if already there); returns its TFDS directory."""
    if dataset not in PREPARABLE:
        raise ValueError(f"cannot prepare {dataset!r}; preparable datasets: {', '.join(PREPARABLE)}")
    import tensorflow_datasets as tfds

    import resnet_jax.data.digits  # noqa: F401  (registers the builder)

    builder = tfds.builder(dataset, data_dir=data_dir)
    builder.download_and_prepare()
    return str(builder.data_dir)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and prepare the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=PREPARABLE)
    parser.add_argument("--data_dir", required=True, help="TFDS data directory to write")
    args = parser.parse_args(argv)
    print(f"prepared {args.dataset} in {prepare(args.dataset, args.data_dir)}")


if __name__ == "__main__":
    main()
