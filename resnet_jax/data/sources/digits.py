"""``digits``: scikit-learn's 1,797 handwritten 8x8 digits as a TFDS dataset, built with no network.

The images ship inside scikit-learn, so a new user can watch the whole system learn on real data
without a download. The train/test split is a fixed, seeded permutation (1,437 / 360 examples).
"""

import numpy as np
import tensorflow_datasets as tfds

SPLIT_SEED = 1797
NUM_TEST = 360
SKLEARN_MAX_PIXEL = 16  # scikit-learn stores 4-bit intensities 0..16


class Digits(tfds.core.GeneratorBasedBuilder):
    """The UCI optical-recognition digits (via scikit-learn), 8x8x1 uint8 images, 10 classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: seeded 1,437 / 360 train/test split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255 / SKLEARN_MAX_PIXEL)).astype(np.uint8)[..., None]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
        test, train = order[:NUM_TEST], order[NUM_TEST:]
        return {
            "train": self._generate_examples(images[train], digits.target[train]),
            "test": self._generate_examples(images[test], digits.target[test]),
        }

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield index, {"image": image, "label": int(label)}


def prepare(data_dir: str, manual_dir: str | None = None, skip_checksum: bool = False) -> str:
    """Build the ``digits`` TFDS dataset in ``data_dir`` (no-op if already there); returns its directory. It
    reads scikit-learn's copy: there is no archive to give or check."""
    builder = Digits(data_dir=data_dir or None)
    builder.download_and_prepare()
    return str(builder.data_dir)
