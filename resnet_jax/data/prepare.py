"""``python -m resnet_jax.data.prepare DATASET [--data_dir DIR] [--manual_dir DIR] [--skip_checksum]``.

Builds a TFDS dataset with no network. The result is a standard TFDS directory:
``tfds.builder(DATASET, data_dir=DIR)`` loads it. For the in-memory datasets (all but ImageNet) it also
writes the numpy copy that runs read without TensorFlow (``DIR/resnet_jax_arrays/DATASET.npz``).
- ``digits``: from the copy inside scikit-learn (no archive needed).
- ``fashion_mnist``: from the four original IDX ``.gz`` files in ``--manual_dir``, by default
  ``/usr/share/datasets/fashion-mnist`` where ``apt-get install dataset-fashion-mnist`` puts them;
  checked against the upstream sha256, or that of the decompressed content (Debian re-compresses them).
- ``cifar10`` / ``cifar100``: from ``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz`` in
  ``--manual_dir``, checked against the official sha256.
- ``imagenet2012``: from ``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar`` in ``--manual_dir``,
  checked against image-net.org's md5 (hashing 154 GB takes a while; the log says so).
- ``tfds:NAME[/CONFIG][:VERSION]``: any TFDS dataset, built by TFDS itself (with ``--manual_dir`` for
  those whose files are placed by hand); its image and label features and splits are found as runs find
  them, and their numpy copy is written.
- ``folder:PATH``: a class-per-folder image tree, decoded once into its numpy copy (images of one size up
  to 64 pixels; no TensorFlow needed) or into TFDS records for the streamed pipeline (photos).
``--skip_checksum`` accepts archives that differ from the official release (subsets, mirrors).
"""

import argparse
import logging

from resnet_jax.console import LibraryInfoFilter, quiet_libraries
from resnet_jax.data.sources.named import prepare
from resnet_jax.data.spec import NAMED_DATASETS
from resnet_jax.errors import MissingFilesError, exit_on_user_error


def prepare_tfds(name: str, data_dir: str, manual_dir: str | None) -> str:
    """Build ``tfds:NAME`` (``name``) with TFDS's own preparation (files from ``manual_dir`` where the builder asks for
    them); returns its directory."""
    from resnet_jax.data.sources import tfds_named

    builder = tfds_named.builder_of(name, data_dir)
    import tensorflow_datasets as tfds

    if not builder.is_prepared():
        config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
        try:
            builder.download_and_prepare(download_config=config)
        except AssertionError as error:  # TFDS's "manual directory ... does not exist or is empty"
            raise MissingFilesError(f"cannot prepare tfds:{name}: {' '.join(str(error).split())}") from None
    return str(builder.data_dir)


def prepare_any(dataset: str, data_dir: str, manual_dir: str | None, skip_checksum: bool) -> tuple[str, str]:
    """Prepare a named, ``tfds:`` or ``folder:`` dataset and write what runs read (the numpy copy of an
    in-memory dataset; a folder's records and a streamed dataset's statistics); returns (where it is, a
    one-line summary of its spec)."""
    from resnet_jax import data
    from resnet_jax.data import fields, spec

    source = spec.parse(dataset)
    location = ""
    if source.is_named:
        location = prepare(dataset, data_dir, manual_dir, skip_checksum)
    elif source.kind == "tfds":
        location = prepare_tfds(source.target, data_dir, manual_dir)
    elif source.kind == spec.SYNTHETIC:
        raise ValueError("the synthetic dataset needs no preparation")
    opened = data.open_dataset(fields.SECTION.defaults(dataset=dataset, data_dir=data_dir))
    dataset_spec = opened[1] if isinstance(opened, tuple) else opened.spec
    return location or dataset_spec.source, dataset_spec.summary()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and prepare the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help=f"{', '.join(NAMED_DATASETS)}, tfds:NAME[/CONFIG][:VERSION] or folder:PATH")
    parser.add_argument(
        "--data_dir", default="", help="TFDS data directory to write (default: TFDS's, ~/tensorflow_datasets, as runs)"
    )
    parser.add_argument(
        "--manual_dir",
        help="directory holding the original archive(s) (fashion_mnist: default /usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument("--skip_checksum", action="store_true", help="accept an archive that is not the official one")
    args = parser.parse_args(argv)
    quiet_libraries()  # this package's lines (what is written where), the libraries' warnings only
    console = logging.StreamHandler()
    console.addFilter(LibraryInfoFilter())
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[console])
    location, summary = exit_on_user_error(
        prepare_any, args.dataset, args.data_dir, args.manual_dir, args.skip_checksum
    )
    print(f"prepared {args.dataset} in {location}")
    print(f"{args.dataset}: {summary}")


if __name__ == "__main__":
    main()
