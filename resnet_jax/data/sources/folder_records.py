"""A folder of photos (large or varying images) built into TFDS records, for the streamed pipeline.

Every image is decoded once with Pillow: to skip and count unreadable ones, and to compute the train
split's per-channel statistics over every pixel. The records keep each JPEG's and PNG's own bytes
(8-bit gray or RGB, which TensorFlow decodes to the same pixels); other files are stored as PNGs of
Pillow's pixels. TFDS's own writer makes ``DATA_DIR/resnet_jax_records/NAME/1.0.0``, its records
shuffled by file path as TFDS shuffles every dataset it writes, and the spec is stored beside it.
"""

import io

import numpy as np
from absl import logging

from resnet_jax.data import spec
from resnet_jax.data.sources import folder_listing, records, tfds_source

VERSION = "1.0.0"


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_and_measure(listing: folder_listing.FolderListing, path: str):
    """Decode every image once: ``({split: [(path, label, as_is)]}`` of the readable ones, their sizes, the
    channels the spec records, and the train split's per-channel mean and std over every pixel)."""
    checked = {split: [] for split in listing.files}
    sizes, colour = set(), False
    sums = squares = 0.0
    num_pixels = 0
    for split, files in listing.files.items():
        for image_path, label, pixels, as_is in folder_listing.readable_images(files, f"folder:{path} {split}"):
            checked[split].append((image_path, label, as_is))
            sizes.add(pixels.shape[:2])
            colour |= pixels.ndim == 3
            if split == folder_listing.TRAIN_SPLIT:  # float64 sums; a gray image adds the same to each colour channel
                values = pixels.reshape(-1, 3 if pixels.ndim == 3 else 1).astype(np.float64) / 255
                sums, squares = sums + values.sum(0), squares + (values**2).sum(0)
                num_pixels += len(values)
    channels = 3 if colour else 1
    return checked, sizes, channels, *spec.statistics_from_sums(sums, squares, num_pixels, channels)


def build(listing: folder_listing.FolderListing, path: str, data_dir: str) -> records.RecordSource:
    """Write the folder's readable images as TFDS records with their spec; returns them opened."""
    tfds_source.require_tfds()
    import tensorflow_datasets as tfds

    checked, sizes, channels, mean, std = _check_and_measure(listing, path)

    def examples(items):
        for image_path, label, as_is in items:
            if as_is:
                encoded = image_path.read_bytes()
            else:
                encoded = _png(folder_listing.as_channels(folder_listing.decode(image_path)[0], channels))
            yield str(image_path.relative_to(listing.root)), {"image": encoded, "label": label}

    name = folder_listing.copy_name(listing)
    remove(name, data_dir)  # records a build left without their spec (it is written last) are not trusted
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, channels)),
            "label": tfds.features.ClassLabel(names=listing.class_names),
        }
    )
    logging.info("Building folder:%s into TFDS records for the streamed pipeline (%s).", path, name)
    tfds.dataset_builders.store_as_tfds_dataset(
        name,
        VERSION,
        features,
        {split: examples(items) for split, items in checked.items()},
        data_dir=str(records.records_dir(data_dir)),
        description=f"folder {listing.root}",
    )
    height, width = next(iter(sizes)) if len(sizes) == 1 else (None, None)
    dataset_spec = folder_listing.folder_spec(
        listing,
        path,
        {split: len(items) for split, items in checked.items()},
        image_shape=(height, width, channels),
        mean=mean,
        std=std,
        pipeline=spec.STREAMED,
    )
    records.write_spec(records.spec_path(name, data_dir), dataset_spec)
    logging.info("Built folder:%s: %s", path, dataset_spec.summary())
    return open_records(name, data_dir)


def open_records(name: str, data_dir: str) -> records.RecordSource:
    """The records a ``build`` wrote under ``name``, opened, with their stored spec."""
    tfds_source.tensorflow()
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(records.records_dir(data_dir) / name / VERSION))
    return records.RecordSource(builder, "image", "label", records.read_spec(records.spec_path(name, data_dir)))


def remove(name: str, data_dir: str) -> None:
    """Delete the records of ``name`` (a folder's older content, or an unfinished build)."""
    directory = records.records_dir(data_dir) / name
    if directory.exists():
        directory.rmtree()
