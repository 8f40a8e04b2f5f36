"""What a ``folder:PATH`` image tree holds (``PATH/SPLIT/CLASS/IMAGE``): its listing and fingerprint, its images
decoded with Pillow, and its spec. Both of its copies are built from these: the numpy copy (``folder``) and the
TFDS records (``folder_records``)."""

import dataclasses
import hashlib
import io
import os
import time
from collections.abc import Iterator

import numpy as np
from absl import logging
from etils import epath

from resnet_jax.data import spec
from resnet_jax.errors import InvalidFilesError, MissingFilesError
from resnet_jax.paths import resolve

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
TRAIN_SPLIT = "train"
TEST_SPLITS = ("test", "val")  # the first present is the test split
MAX_UNREADABLE = 0.01  # more than this fraction of unreadable images in a split is an error
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
PROGRESS_EVERY_S = 10.0


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """What a folder holds: its class names (sorted), each split's ``(file, label)`` list and a fingerprint."""

    root: epath.Path
    class_names: tuple[str, ...]
    files: dict[str, list[tuple[epath.Path, int]]]
    fingerprint: str


def root_of(path: str) -> epath.Path:
    """The folder ``PATH`` names: ``~`` expanded, a relative path made absolute, ``gs://`` as given."""
    return resolve(os.path.expanduser(path))


def _subfolders(directory: epath.Path) -> list[epath.Path]:
    return sorted((entry for entry in directory.iterdir() if entry.is_dir()), key=lambda entry: entry.name)


def _images_under(directory: epath.Path) -> list[epath.Path]:
    """The image files anywhere under ``directory`` (torchvision walks class folders recursively), sorted."""
    found = []
    for entry in directory.iterdir():
        if entry.is_dir():
            found += _images_under(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            found.append(entry)
    return sorted(found, key=os.fspath)


def list_folder(path: str) -> FolderListing:
    """Read the layout of ``path`` (no image is opened); a wrong layout is one paragraph saying what to fix."""
    root = root_of(path)
    layout = f"{root}/train/CLASS/IMAGE and {root}/test/CLASS/IMAGE (or val/)"
    if not root.is_dir():
        raise MissingFilesError(
            f"folder:{path}: there is no directory {root}. A folder dataset is laid out as {layout}."
        )
    split_dirs = {entry.name: entry for entry in _subfolders(root)}
    test = next((name for name in TEST_SPLITS if name in split_dirs), None)
    missing = [
        name for name, present in ((TRAIN_SPLIT, TRAIN_SPLIT in split_dirs), ("test (or val)", test)) if not present
    ]
    if missing:
        raise MissingFilesError(
            f"folder:{path} has no {' and no '.join(missing)} split: it holds {sorted(split_dirs) or 'no folders'}. "
            f"Lay it out as {layout}; the split folders hold one folder per class."
        )
    class_dirs = {split: _subfolders(split_dirs[split]) for split in (TRAIN_SPLIT, test)}
    class_names = tuple(entry.name for entry in class_dirs[TRAIN_SPLIT])
    for split, entries in class_dirs.items():
        if not entries:
            raise MissingFilesError(
                f"folder:{path}: {root / split} has no class subfolders. Put each class's images in its own "
                f"folder, {root / split}/CLASS/IMAGE; the sorted folder names are the labels."
            )
    unknown = sorted({entry.name for entry in class_dirs[test]} - set(class_names))
    if unknown:
        raise InvalidFilesError(
            f"folder:{path}: {test}/ has classes that train/ lacks ({', '.join(unknown[:5])}); labels come from "
            "train/'s sorted class folders, so every test class must also be a train class."
        )
    files = {TRAIN_SPLIT: [], "test": []}
    digest = hashlib.sha256()
    for split, key in ((TRAIN_SPLIT, TRAIN_SPLIT), (test, "test")):
        for entry in class_dirs[split]:
            images = _images_under(entry)
            if not images:
                raise MissingFilesError(
                    f"folder:{path}: the class folder {entry} holds no images ({', '.join(IMAGE_SUFFIXES)}). "
                    "Add its images or remove the folder."
                )
            label = class_names.index(entry.name)
            for image in images:
                files[key].append((image, label))
                digest.update(f"{image.relative_to(root)}\0{image.stat().length}\n".encode())
    return FolderListing(root, class_names, files, digest.hexdigest()[:16])


def copy_name(listing: FolderListing) -> str:
    """The file-name key of this exact folder content: the folder's name and its fingerprint."""
    return f"folder_{stem(listing.root)}_{listing.fingerprint}"


def stem(root: epath.Path) -> str:
    """The folder's name as a file-name part: what its copies' names start with."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in root.name.lower()) or "root"


def decode(path: epath.Path) -> tuple[np.ndarray, bool]:
    """The image's pixels (HxW gray or HxWx3 colour, as Pillow converts them) and whether TensorFlow's
    decoder gives the same from the file's own bytes (8-bit gray or RGB JPEG and PNG)."""
    from PIL import Image

    with Image.open(io.BytesIO(path.read_bytes())) as image:
        image.load()
        as_is = image.format in ("JPEG", "PNG") and image.mode in ("L", "RGB")
        return np.asarray(image.convert("L" if image.mode in GRAY_MODES else "RGB")), as_is


def readable_images(files: list[tuple[epath.Path, int]], what: str) -> Iterator[tuple]:
    """``(path, label, pixels, as_is)`` of each image Pillow reads (``decode``); unreadable ones are skipped,
    counted in the log, and more than ``MAX_UNREADABLE`` of them is an error once the split is read. A long
    read logs its progress and ETA every ``PROGRESS_EVERY_S`` seconds."""
    unreadable = []
    start = last_report = time.monotonic()
    for done, (path, label) in enumerate(files):
        if time.monotonic() - last_report > PROGRESS_EVERY_S:
            last_report = time.monotonic()
            remaining = (last_report - start) / done * (len(files) - done)
            logging.info("Decoding %s: %d of %d images, about %.0f s left.", what, done, len(files), remaining)
        try:
            pixels, as_is = decode(path)
        except (OSError, ValueError, SyntaxError) as error:  # what Pillow raises for a damaged or unknown file
            unreadable.append(f"{path} ({type(error).__name__})")
            continue
        yield path, label, pixels, as_is
    if unreadable:
        logging.warning("Skipped %d unreadable image(s) of %s; first: %s", len(unreadable), what, unreadable[0])
    if len(unreadable) > MAX_UNREADABLE * len(files):
        raise InvalidFilesError(
            f"{len(unreadable)} of the {len(files)} images of {what} cannot be read (more than "
            f"{MAX_UNREADABLE:.0%}), e.g. {'; '.join(unreadable[:3])}. Replace or remove them."
        )


def image_sizes(listing: FolderListing) -> set[tuple[int, int]]:
    """The (height, width) sizes of the folder's images, read from their headers (no image is decoded)."""
    from PIL import Image

    sizes = set()
    for path, _ in (item for files in listing.files.values() for item in files):
        try:
            with path.open("rb") as file, Image.open(file) as image:
                sizes.add(image.size[::-1])
        except (OSError, ValueError, SyntaxError):  # counted when the images are decoded
            continue
    return sizes


def as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """HxW or HxWxC pixels as HxWx``channels`` (a gray image repeated into each colour channel)."""
    as_hwc = pixels[..., None] if pixels.ndim == 2 else pixels
    return np.repeat(as_hwc, 3, axis=-1) if channels == 3 and as_hwc.shape[-1] == 1 else as_hwc


def folder_spec(listing: FolderListing, path: str, splits: dict[str, int], **facts) -> spec.DatasetSpec:
    """The spec of ``folder:PATH`` with these split sizes and facts (image shape, statistics, pipeline)."""
    return spec.DatasetSpec(
        name=f"{spec.FOLDER_PREFIX}{path}",
        splits=splits,
        train_split=TRAIN_SPLIT,
        test_split="test",
        num_classes=len(listing.class_names),
        class_names=listing.class_names,
        source=f"folder {listing.root} (fingerprint {listing.fingerprint})",
        **facts,
    )
