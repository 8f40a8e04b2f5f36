"""Offline preparation of TFDS ``cifar10`` / ``cifar100`` from the original binary archives.

TFDS's own CIFAR builders do the parsing; they are only handed the archive from ``--manual_dir``
instead of a download, after a checksum check against the official release (the values TFDS itself
records). The result is the standard TFDS directory: ``tfds.builder('cifar10', data_dir=DIR)`` loads it.
"""

import functools
from pathlib import Path

import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import cifar

from resnet_jax.data.sources.checksum import Archive, verify_archive
from resnet_jax.data.sources.offline import offline_builder

ARCHIVES = {
    "cifar10": Archive("cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
    "cifar100": Archive("cifar-100-binary.tar.gz", "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"),
}


def prepare(name: str, data_dir: str, manual_dir: str, skip_checksum: bool = False) -> str:
    """Build TFDS ``name`` ('cifar10' or 'cifar100') in ``data_dir`` from the archive in ``manual_dir``."""
    archive = ARCHIVES[name]
    directory = Path(manual_dir).expanduser().absolute()
    verify_archive(directory / archive.filename, archive, skip_checksum)
    base = cifar.Cifar10 if name == "cifar10" else cifar.Cifar100
    builder = offline_builder(base, directory)(data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return str(builder.data_dir)


prepare_cifar10 = functools.partial(prepare, "cifar10")
prepare_cifar100 = functools.partial(prepare, "cifar100")
