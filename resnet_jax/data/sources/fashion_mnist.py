"""Offline preparation of TFDS ``fashion_mnist`` (Xiao et al. 2017) from its four original IDX files.

TFDS's own ``fashion_mnist`` builder (name, version, features, parsing) is handed the four ``.gz``
files from ``--manual_dir`` instead of a download. Debian's package ``dataset-fashion-mnist`` installs
them in ``/usr/share/datasets/fashion-mnist``, the default. The result is the standard TFDS
directory: ``tfds.builder('fashion_mnist', data_dir=DIR)`` loads it.

Checksums. ``digest`` is the sha256 of the upstream ``.gz`` that TFDS records
(``tensorflow_datasets/url_checksums/fashion_mnist.txt``, the files of
github.com/zalandoresearch/fashion-mnist after its 2017-08-31 duplicate fix). Debian re-compressed
the files, so their gzip bytes differ; ``gunzipped_digest`` is the sha256 of the decompressed IDX
content, computed here from Debian's ``dataset-fashion-mnist 0.0~git20200523.55506a9-1``. For the two
label files the upstream ``.gz`` (from the repository) decompresses to exactly that content; the image
files are too large for the stored copy of the repository, so their content digest rests on Debian's copy.
"""

from pathlib import Path

import numpy as np

from resnet_jax.data.sources.checksum import Archive, verify_archive
from resnet_jax.errors import InvalidFilesError, MissingFilesError

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SIDE = 28
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 or 1 dimensions
FILES = (
    Archive(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        gunzipped_digest="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    Archive(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        gunzipped_digest="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    Archive(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        gunzipped_digest="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    Archive(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        gunzipped_digest="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
)


def default_manual_dir() -> Path | None:
    """Where Debian's package puts the files, if it is installed; None otherwise."""
    return DEBIAN_DIR if DEBIAN_DIR.is_dir() else None


def idx_shape(path: str | Path, magic: int) -> tuple[int, ...]:
    """The dimensions in the header of a decompressed IDX file, after checking its magic number."""
    with open(path, "rb") as file:
        header = np.frombuffer(file.read(4), ">u4")
        if header.size != 1 or header[0] != magic:
            found = f"{header[0]:#010x}" if header.size else "an empty file"
            raise InvalidFilesError(f"{path} is not the expected IDX file (magic {found}, expected {magic:#010x})")
        return tuple(int(size) for size in np.frombuffer(file.read(4 * (magic & 0xFF)), ">u4"))


def _check_pair(data_path: str, label_path: str) -> int:
    """The number of examples in an images/labels pair, after checking both headers agree."""
    images, labels = idx_shape(data_path, IDX_IMAGES_MAGIC), idx_shape(label_path, IDX_LABELS_MAGIC)
    if images[1:] != (IMAGE_SIDE, IMAGE_SIDE) or images[:1] != labels:
        raise InvalidFilesError(
            f"{data_path} holds images of shape {images} and {label_path} labels of shape {labels}; expected "
            f"N images of {IMAGE_SIDE}x{IMAGE_SIDE} and N labels"
        )
    return labels[0]


class _CountFromHeader:
    """Reads as many examples as the IDX headers say (TFDS's builder assumes 60,000 / 10,000)."""

    def _generate_examples(self, num_examples, data_path, label_path):
        del num_examples
        return super()._generate_examples(_check_pair(data_path, label_path), data_path, label_path)


def _require_files(directory: Path | None) -> Path:
    """``directory`` if it holds all four files; otherwise an error that says how to get them."""
    missing = [file.filename for file in FILES if directory is None or not (directory / file.filename).is_file()]
    if not missing:
        return directory
    where = f"in {directory}" if directory is not None else f"(no --manual_dir given and no {DEBIAN_DIR})"
    raise MissingFilesError(
        f"Fashion-MNIST needs its four original files, {', '.join(file.filename for file in FILES)}; "
        + ("none of them is there " if len(missing) == len(FILES) else f"{', '.join(missing)} missing ")
        + f"{where}. Install them with "
        f"Debian's package: 'sudo apt-get install {DEBIAN_PACKAGE}' (into {DEBIAN_DIR}, used by default), or "
        "download them from https://github.com/zalandoresearch/fashion-mnist and prepare the dataset from them: "
        "python -m resnet_jax.data.prepare fashion_mnist --data_dir DIR --manual_dir DIR_WITH_THE_FILES "
        "(then train with --config.data_dir=DIR)."
    )


def prepare(data_dir: str, manual_dir: str | None = None, skip_checksum: bool = False) -> str:
    """Build TFDS ``fashion_mnist`` in ``data_dir`` from the four files in ``manual_dir`` (default: Debian's)."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification import mnist

    from resnet_jax.data.sources.offline import offline_builder

    directory = _require_files(Path(manual_dir).expanduser().absolute() if manual_dir else default_manual_dir())
    for file in FILES:
        verify_archive(directory / file.filename, file, skip_checksum)
    builder = offline_builder(mnist.FashionMNIST, directory, mixin=_CountFromHeader)(data_dir=data_dir or None)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(directory)))
    return str(builder.data_dir)
