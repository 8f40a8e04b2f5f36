"""What a dataset is: ``DatasetSpec``, the one owner of a dataset's facts, and the names ``dataset`` accepts.

``dataset`` is a named dataset (``digits``, ``cifar10``, ...), ``tfds:NAME[/CONFIG][:VERSION]`` (any TFDS
image-classification dataset) or ``folder:PATH`` (``PATH/SPLIT/CLASS/IMAGE``). The named datasets' facts
are known before any file is read (``KNOWN``), so recipes derive epochs and class counts from them; a
``tfds:`` or ``folder:`` dataset's facts are read from the builder or the folder when it is prepared and
stored with its numpy copy (in-memory) or beside its records (streamed). This module imports neither JAX
nor TensorFlow: configs read it.
"""

import dataclasses
import difflib
import re
from collections.abc import Mapping

import numpy as np

from resnet_jax.errors import ConfigError

SYNTHETIC = "synthetic"
TFDS_PREFIX, FOLDER_PREFIX = "tfds:", "folder:"
IN_MEMORY, STREAMED = "in_memory", "streamed"
AUTO = "auto"
PIPELINES = (AUTO, IN_MEMORY, STREAMED)  # the ``pipeline`` field's values
IN_MEMORY_MAX_SIDE = 64  # images of one size up to this side are held in memory (CIFAR-like); larger are streamed
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's: what its ImageNet weights expect
MNIST_MEAN_STD = (0.1307, 0.3081)  # MNIST's train statistics, which Zhong et al.'s Fashion-MNIST script normalises with
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[\w.+-]+)?(:\d+\.\d+\.\d+|:\d+\.\d+\.\*|:\d+\.\*\.\*)?$")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipelines and recipes need to know about a dataset.

    Attributes:
      name: the ``dataset`` value it answers to.
      splits: split name -> number of examples (the splits the dataset holds, whole).
      train_split, test_split: which of ``splits`` trains and which is the test split (``eval/*``).
      num_classes: label values are 0 .. num_classes - 1.
      class_names: the label names, in label order ('' when the source has none).
      image_shape: (height, width, channels); height and width are None when sizes vary.
      mean, std: per-channel statistics of the train split on [0, 1] (None when not computed).
      pipeline: ``in_memory`` (exact, on the devices) or ``streamed`` (tf.data with resizing crops).
      source: where the examples came from, in words.
    """

    name: str
    splits: Mapping[str, int]
    train_split: str
    test_split: str
    num_classes: int
    class_names: tuple[str, ...] = ()
    image_shape: tuple[int | None, int | None, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pipeline: str = IN_MEMORY
    source: str = ""

    @property
    def num_train_examples(self) -> int:
        """Examples in the train split: what an epoch is."""
        return self.splits[self.train_split]

    def summary(self) -> str:
        """One line: classes (the first ten names), split sizes, image shape and pipeline."""
        sizes = ", ".join(f"{split} {count:,}" for split, count in self.splits.items())
        names = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "")
        height, width, channels = self.image_shape or (None, None, None)
        shape = f"{height}x{width}x{channels}" if height else f"varying size, {channels} channel(s)"
        return f"{self.num_classes} classes ({names}); {sizes} images ({shape}); fed by the {self.pipeline} pipeline"

    @property
    def channels(self) -> int:
        """Channels of every image (3 when not recorded)."""
        return self.image_shape[-1] if self.image_shape else 3

    def to_json(self) -> dict:
        """A JSON-ready dict (``from_json`` reads it back)."""
        return dataclasses.asdict(self) | {"splits": dict(self.splits)}

    @classmethod
    def from_json(cls, values: Mapping) -> "DatasetSpec":
        """The spec a ``to_json`` dict describes."""
        tuples = ("class_names", "image_shape", "mean", "std")
        return cls(
            **{key: tuple(value) if key in tuples and value is not None else value for key, value in values.items()}
        )


def channel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std on [0, 1] of uint8 NHWC images (float64)."""
    axes = tuple(range(images.ndim - 1))
    return np.mean(images, axes, dtype=np.float64) / 255, np.std(images, axes, dtype=np.float64) / 255


def statistics_from_sums(sums, squares, count: int, channels: int) -> tuple[tuple, tuple]:
    """Per-channel mean and std from the sums and sums of squares of ``count`` pixel values on [0, 1] (a single
    sum broadcasts to every channel: a gray image is the same in each colour channel)."""
    mean = np.broadcast_to(np.asarray(sums, np.float64) / count, channels)
    std = np.sqrt(np.maximum(np.broadcast_to(np.asarray(squares, np.float64) / count, channels) - mean**2, 0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def image_facts(train_images: np.ndarray) -> dict:
    """The spec's ``image_shape``, ``mean`` and ``std`` (per channel, on [0, 1]) of a uint8 NHWC train split."""
    mean, std = channel_statistics(train_images)
    return {
        "image_shape": tuple(int(n) for n in train_images.shape[1:]),
        "mean": tuple(float(m) for m in mean),
        "std": tuple(float(s) for s in std),
    }


def choose_pipeline(sizes: set[tuple[int, int]] | None, requested: str, what: str) -> str:
    """The pipeline for images of ``sizes`` ((height, width) pairs; None: varying, unknown until decoded):
    ``requested``, or with 'auto' the in-memory one for one size up to ``IN_MEMORY_MAX_SIDE``, else streamed."""
    one_size = sizes is not None and len(sizes) == 1
    if requested == IN_MEMORY and not one_size:
        listed = (
            ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:4]) + (", ..." if len(sizes) > 4 else "") if sizes else ""
        )
        raise ConfigError(
            f"pipeline='in_memory' needs images of one size, and {what} has images of varying size"
            f"{f' ({listed})' if listed else ''}. Use --config.pipeline=streamed (or auto), which crops and resizes "
            "each image to image_size, or resize the images to one size."
        )
    if requested != AUTO:
        return requested
    return IN_MEMORY if one_size and max(next(iter(sizes))) <= IN_MEMORY_MAX_SIDE else STREAMED


def _known(name, train, test, num_classes, image_shape, pipeline=IN_MEMORY, test_split="test", statistics=(None, None)):
    return DatasetSpec(
        name,
        {"train": train, test_split: test},
        "train",
        test_split,
        num_classes,
        (),
        image_shape,
        *statistics,
        pipeline=pipeline,
    )


KNOWN = {  # the named datasets, whose facts recipes need before reading a file (tests check them against the data)
    "digits": _known("digits", 1437, 360, 10, (8, 8, 1)),
    "fashion_mnist": _known("fashion_mnist", 60_000, 10_000, 10, (28, 28, 1)),
    "cifar10": _known("cifar10", 50_000, 10_000, 10, (32, 32, 3)),
    "cifar100": _known("cifar100", 50_000, 10_000, 100, (32, 32, 3)),
    "imagenet2012": _known(
        "imagenet2012", 1_281_167, 50_000, 1000, (None, None, 3), STREAMED, "validation", IMAGENET_MEAN_STD
    ),
}
NAMED = (SYNTHETIC, *KNOWN)


def known(name: str) -> DatasetSpec:
    """The spec of a named dataset (what configs read for class counts and epoch lengths)."""
    return KNOWN[name]


def kind(dataset: str) -> str:
    """'synthetic', 'named', 'tfds' or 'folder': how ``dataset`` is read (ConfigError if it is none of them)."""
    if dataset == SYNTHETIC:
        return SYNTHETIC
    if dataset in KNOWN:
        return "named"
    if dataset.startswith(TFDS_PREFIX):
        name = dataset[len(TFDS_PREFIX) :]
        if not TFDS_NAME.match(name):
            raise ConfigError(
                f"dataset={dataset!r}: after 'tfds:' give a TFDS name as tfds.builder takes it, "
                "NAME[/CONFIG][:VERSION] (e.g. tfds:svhn_cropped, tfds:oxford_flowers102:2.1.1)."
            )
        return "tfds"
    if dataset.startswith(FOLDER_PREFIX):
        if not dataset[len(FOLDER_PREFIX) :].strip():
            raise ConfigError("dataset='folder:' needs a path: folder:PATH, where PATH holds train/CLASS/IMAGE files.")
        return "folder"
    close = difflib.get_close_matches(dataset, NAMED, n=1)
    raise ConfigError(
        f"dataset must be one of {', '.join(map(repr, NAMED))}, tfds:NAME[/CONFIG][:VERSION] (any TFDS "
        f"image-classification dataset) or folder:PATH (PATH/SPLIT/CLASS/IMAGE), got {dataset!r}."
        + (f" Did you mean {close[0]!r}?" if close else "")
    )


def tfds_name(dataset: str) -> str:
    """The TFDS builder name of ``tfds:NAME`` (or of a named dataset)."""
    return dataset[len(TFDS_PREFIX) :] if dataset.startswith(TFDS_PREFIX) else dataset


def folder_path(dataset: str) -> str:
    """The path of ``folder:PATH``."""
    return dataset[len(FOLDER_PREFIX) :]


def pipeline_of(dataset: str, requested: str = AUTO) -> str | None:
    """'synthetic', 'in_memory' or 'streamed': the pipeline that feeds ``dataset`` when it is known before any
    file is read (named datasets, or a ``requested`` one); None when the images decide (tfds: and folder:)."""
    how = kind(dataset)
    if how == SYNTHETIC:
        return SYNTHETIC
    if how != "named":
        return None if requested == AUTO else requested
    height, width, _ = known(dataset).image_shape
    if requested == AUTO:
        return known(dataset).pipeline
    return choose_pipeline(None if height is None else {(height, width)}, requested, dataset)
