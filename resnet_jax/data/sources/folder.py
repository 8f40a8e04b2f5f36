"""``folder:PATH``: a class-per-folder image tree (``PATH/SPLIT/CLASS/IMAGE``), built once for its pipeline.

The layout is the one torchvision's ``ImageFolder`` and TFDS's ``ImageFolder`` read: a ``train`` split and
a ``test`` (or ``val``) split, each with one folder per class. Labels are the train split's class folders
in sorted order, as torchvision assigns them, so a model trained with torchvision on the same folder has
the same label indices. Images (PNG, JPEG and the other formats Pillow reads) are decoded once with
Pillow; unreadable ones are skipped and counted, and more than ``MAX_UNREADABLE`` of them is an error.
Grayscale and colour images in one folder become colour (3 channels) if any image has colour.

A folder of one image size up to ``spec.IN_MEMORY_MAX_SIDE`` pixels is built into a numpy copy for the
in-memory pipeline; larger or varying images (photos) into TFDS records for the streamed one
(``folder_records``); ``pipeline`` overrides the choice. Either copy is keyed by a fingerprint of the
file list and sizes: a folder that changed is rebuilt (the log says so), never silently reused.
"""

import numpy as np
from absl import logging
from etils import epath

from resnet_jax.data import spec
from resnet_jax.data.sources import arrays, folder_records, records
from resnet_jax.data.sources.folder_listing import (
    TRAIN_SPLIT,
    FolderListing,
    as_channels,
    copy_name,
    folder_spec,
    image_sizes,
    list_folder,
    readable_images,
    stem,
)


def open_folder(
    path: str, data_dir: str, pipeline: str = spec.AUTO
) -> tuple[arrays.Splits, spec.DatasetSpec] | records.RecordSource:
    """``folder:PATH`` for its pipeline: the splits and spec of an in-memory one, or the records of a streamed
    one; from the copy of this exact content when there is one, else built (the log says when a changed
    folder replaces an older copy)."""
    listing = list_folder(path)
    name = copy_name(listing)
    numpy_copy, stored_spec = arrays.copy_path(name, data_dir), records.spec_path(name, data_dir)
    if pipeline != spec.STREAMED and numpy_copy.exists():
        return arrays.load(numpy_copy)
    if pipeline != spec.IN_MEMORY and stored_spec.exists():
        return folder_records.open_records(name, data_dir)
    _remove_older_copies(listing, data_dir)
    sizes = None if pipeline == spec.STREAMED else image_sizes(listing)  # streamed takes any size
    chosen = spec.choose_pipeline(sizes, pipeline, f"folder:{path}")
    if chosen == spec.STREAMED:
        return folder_records.build(listing, path, data_dir)
    return _build_arrays(listing, path, numpy_copy)


def _build_arrays(listing: FolderListing, path: str, target: epath.Path) -> tuple[arrays.Splits, spec.DatasetSpec]:
    """Decode every image of a one-size folder into the numpy copy the in-memory pipeline reads."""
    decoded = {split: list(readable_images(files, f"folder:{path} {split}")) for split, files in listing.files.items()}
    channels = 3 if any(pixels.ndim == 3 for items in decoded.values() for _, _, pixels, _ in items) else 1
    splits = {
        split: {
            "image": np.stack([as_channels(pixels, channels) for _, _, pixels, _ in items]),
            "label": np.asarray([label for _, label, _, _ in items], np.int32),
        }
        for split, items in decoded.items()
    }
    sizes = {split: len(values["label"]) for split, values in splits.items()}
    dataset_spec = folder_spec(listing, path, sizes, **spec.image_facts(splits[TRAIN_SPLIT]["image"]))
    arrays.save(target, splits, dataset_spec)
    logging.info("Built folder:%s into %s: %s", path, target, dataset_spec.summary())
    return splits, dataset_spec


def _remove_older_copies(listing: FolderListing, data_dir: str) -> None:
    """Say, and remove, the copies an earlier content of the same folder left: a changed folder is rebuilt.
    The copies of this content (for the other pipeline) stay."""
    pattern = f"folder_{stem(listing.root)}_*"
    current = copy_name(listing)
    owner = f"folder {listing.root} "
    older = [
        (copy, arrays.read_spec(copy).source)
        for copy in _matches(arrays.copy_path("x", data_dir).parent, f"{pattern}.npz")
    ] + [(copy, records.read_spec(copy).source) for copy in _matches(records.records_dir(data_dir), f"{pattern}.json")]
    for copy, source in older:
        if source.startswith(owner) and copy.stem != current:
            logging.warning(
                "folder %s changed since %s was built from it: rebuilding (the old copy is removed).",
                listing.root,
                copy.name,
            )
            if copy.suffix == ".json":
                folder_records.remove(copy.stem, data_dir)
            copy.unlink()


def _matches(directory: epath.Path, pattern: str) -> list[epath.Path]:
    return sorted(directory.glob(pattern)) if directory.exists() else []
