"""``folder:PATH``: a class-per-folder image tree (``PATH/SPLIT/CLASS/IMAGE``), built once into a numpy copy.

The layout is the one torchvision's ``ImageFolder`` and TFDS's ``ImageFolder`` read: a ``train`` split and
a ``test`` (or ``val``) split, each with one folder per class. Labels are the train split's class folders
in sorted order, as torchvision assigns them, so a model trained with torchvision on the same folder has
the same label indices. Images (PNG, JPEG and the other formats Pillow reads) are decoded once with
Pillow; unreadable ones are skipped and counted, and more than ``MAX_UNREADABLE`` of them is an error.
Grayscale and colour images in one folder become colour (3 channels) if any image has colour.

The copy is keyed by a fingerprint of the file list and sizes: a folder that changed is rebuilt (the log
says so), never silently reused. Datasets of one image size up to ``spec.IN_MEMORY_MAX_SIDE`` pixels are
what this module builds; photos of mixed sizes need the streamed pipeline.
"""

import dataclasses
import hashlib
import io
import os

import numpy as np
from absl import logging
from etils import epath

from resnet_jax.data import arrays, spec
from resnet_jax.errors import InvalidFilesError, MissingFilesError
from resnet_jax.train.paths import resolve

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
TRAIN_SPLIT = "train"
TEST_SPLITS = ("test", "val")  # the first present is the test split
MAX_UNREADABLE = 0.01  # more than this fraction of unreadable images in a split is an error
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


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


def copy_path(listing: FolderListing, data_dir: str) -> epath.Path:
    """Where the numpy copy of this exact folder content lives: named after the folder and its fingerprint."""
    return arrays.copy_path(f"folder_{_stem(listing.root)}_{listing.fingerprint}", data_dir)


def _stem(root: epath.Path) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in root.name) or "root"


def _decode(path: epath.Path) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(path.read_bytes())) as image:
        image.load()
        return np.asarray(image.convert("L" if image.mode in GRAY_MODES else "RGB"))


def _decode_split(files: list[tuple[epath.Path, int]], what: str) -> tuple[list[np.ndarray], list[int]]:
    images, labels, unreadable = [], [], []
    for path, label in files:
        try:
            images.append(_decode(path))
        except (OSError, ValueError, SyntaxError) as error:  # what Pillow raises for a damaged or unknown file
            unreadable.append(f"{path} ({type(error).__name__})")
            continue
        labels.append(label)
    if unreadable:
        logging.warning("Skipped %d unreadable image(s) of %s; first: %s", len(unreadable), what, unreadable[0])
    if len(unreadable) > MAX_UNREADABLE * len(files):
        raise InvalidFilesError(
            f"{len(unreadable)} of the {len(files)} images of {what} cannot be read (more than "
            f"{MAX_UNREADABLE:.0%}), e.g. {'; '.join(unreadable[:3])}. Replace or remove them."
        )
    return images, labels


def _stack(images: list[np.ndarray], channels: int) -> np.ndarray:
    as_hwc = [image[..., None] if image.ndim == 2 else image for image in images]
    if channels == 3:
        as_hwc = [np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image for image in as_hwc]
    return np.stack(as_hwc)


def build(path: str, data_dir: str) -> tuple[dict[str, dict[str, np.ndarray]], spec.DatasetSpec]:
    """The splits and spec of ``folder:PATH``: from its numpy copy when the folder is unchanged, else decoded
    and written to a new copy (the log says when a changed folder replaces an older copy)."""
    listing = list_folder(path)
    target = copy_path(listing, data_dir)
    if target.exists():
        return arrays.load(target)
    _log_rebuild(listing, target)
    decoded = {split: _decode_split(files, f"folder:{path} {split}") for split, files in listing.files.items()}
    shapes = {image.shape[:2] for images, _ in decoded.values() for image in images}
    channels = 3 if any(image.ndim == 3 for images, _ in decoded.values() for image in images) else 1
    side = max(max(shape) for shape in shapes)
    if len(shapes) > 1 or side > spec.IN_MEMORY_MAX_SIDE:
        sizes = ", ".join(f"{h}x{w}" for h, w in sorted(shapes)[:4])
        raise InvalidFilesError(
            f"folder:{path} holds images of {len(shapes)} size(s) ({sizes}{', ...' if len(shapes) > 4 else ''}). "
            f"Folder datasets are held in memory, which needs one size up to {spec.IN_MEMORY_MAX_SIDE}x"
            f"{spec.IN_MEMORY_MAX_SIDE} pixels: resize the images to one size (e.g. with Pillow or ImageMagick's "
            "mogrify -resize WxH!) and run again."
        )
    splits = {
        split: {"image": _stack(images, channels), "label": np.asarray(labels, np.int32)}
        for split, (images, labels) in decoded.items()
    }
    dataset_spec = spec.DatasetSpec(
        name=f"{spec.FOLDER_PREFIX}{path}",
        splits={split: len(values["label"]) for split, values in splits.items()},
        train_split=TRAIN_SPLIT,
        test_split="test",
        num_classes=len(listing.class_names),
        class_names=listing.class_names,
        source=f"folder {listing.root} (fingerprint {listing.fingerprint})",
        **spec.image_facts(splits[TRAIN_SPLIT]["image"]),
    )
    arrays.save(target, splits, dataset_spec)
    logging.info("Built folder:%s into %s: %s", path, target, dataset_spec.summary())
    return splits, dataset_spec


def _log_rebuild(listing: FolderListing, target: epath.Path) -> None:
    """Say, and remove, the copies an earlier content of the same folder left: a changed folder is rebuilt."""
    if not target.parent.exists():
        return
    for older in target.parent.glob(f"folder_{_stem(listing.root)}_*.npz"):
        if arrays.read_spec(older).source.startswith(f"folder {listing.root} "):
            logging.warning(
                "folder %s changed since %s was built from it: rebuilding (the old copy is removed).",
                listing.root,
                older.name,
            )
            older.unlink()
