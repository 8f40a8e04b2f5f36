"""A dataset registered from outside the package, as a user registers their own: a TFDS builder of 8x8 gray
stripes (class k: horizontal, vertical or diagonal), its preparation, and one ``spec.register_dataset`` call."""

import numpy as np
import tensorflow_datasets as tfds

from resnet_jax.data import spec

NAME, SIDE, CLASSES = "toy_stripes", 8, ("horizontal", "vertical", "diagonal")
SPLITS = {"train": 96, "test": 30}


def stripes(label: int, phase: int) -> np.ndarray:
    """An 8x8x1 uint8 image of the class's stripes, shifted by ``phase``."""
    rows, columns = np.indices((SIDE, SIDE))
    line = (rows, columns, rows + columns)[label]
    return (((line + phase) % 2) * 255).astype(np.uint8)[..., None]


class ToyStripes(tfds.core.GeneratorBasedBuilder):
    """TFDS registers it under ``toy_stripes`` when this module is imported."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Image(shape=(SIDE, SIDE, 1)),
            "label": tfds.features.ClassLabel(names=CLASSES),
        }
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(count) for split, count in SPLITS.items()}

    def _generate_examples(self, count: int):
        for index in range(count):
            label = index % len(CLASSES)
            yield index, {"image": stripes(label, index // len(CLASSES) % 2), "label": label}


def prepare(data_dir: str, manual_dir: str | None = None, skip_checksum: bool = False) -> str:
    """Build the dataset in ``data_dir`` (no files to read, no network); returns its directory."""
    builder = ToyStripes(data_dir=data_dir or None)
    builder.download_and_prepare()
    return str(builder.data_dir)


if NAME not in spec.NAMED_DATASETS:  # imported once per process
    spec.register_dataset(
        spec.NamedDataset(
            spec.DatasetSpec(NAME, SPLITS, "train", "test", len(CLASSES), image_shape=(SIDE, SIDE, 1)),
            prepare,
            build_locally=True,
        )
    )
