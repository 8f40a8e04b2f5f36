"""What a dataset is: ``DatasetSpec``, the one owner of a dataset's facts, and the names ``dataset`` accepts.

``dataset`` is a named dataset (``digits``, ``cifar10``, ...), ``tfds:NAME[/CONFIG][:VERSION]`` (any TFDS
image-classification dataset) or ``folder:PATH`` (``PATH/SPLIT/CLASS/IMAGE``). The named datasets' facts
are known before any file is read (``NAMED_DATASETS``), so recipes derive epochs and class counts from them; a
``tfds:`` or ``folder:`` dataset's facts are read from the builder or the folder when it is prepared and
stored with its numpy copy (in-memory) or beside its records (streamed). A named dataset is one
``NamedDataset`` entry of ``NAMED_DATASETS``: its facts, its preparation and whether it builds from local files;
``register_dataset`` adds one from outside the package. This module imports neither JAX nor TensorFlow:
configs read it.
"""

import dataclasses
import difflib
import importlib
import re
from collections.abc import Callable, Mapping

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


Preparation = Callable[[str, "str | None", bool], str]  # (data_dir, manual_dir, skip_checksum) -> TFDS directory


@dataclasses.dataclass(frozen=True)
class NamedDataset:
    """A dataset that ``dataset`` names: its facts, and how it is prepared with TFDS, with no network.

    Attributes:
      spec: the facts recipes need before any file is read (tests check them against the data).
      prepare: builds the TFDS dataset: ``'module:function'`` (imported when first prepared, so that naming a
        dataset imports no TensorFlow; importing it also registers the TFDS builder) or the function itself.
      build_locally: prepared on first use from files already on this machine (else only by the prepare command).
      needs_archives: ``prepare`` reads the original archives from ``--manual_dir``.
    """

    spec: DatasetSpec
    prepare: str | Preparation
    build_locally: bool = False
    needs_archives: bool = False

    def preparation(self) -> Preparation:
        """The prepare function, importing its module on first use."""
        if callable(self.prepare):
            return self.prepare
        module, _, function = self.prepare.partition(":")
        return getattr(importlib.import_module(module), function)


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


SOURCES = "resnet_jax.data.sources"
NAMED_DATASETS: dict[str, NamedDataset] = {  # every dataset known by name: add one with ``register_dataset``
    "digits": NamedDataset(  # scikit-learn's copy
        _known("digits", 1437, 360, 10, (8, 8, 1)), f"{SOURCES}.digits:prepare", build_locally=True
    ),
    "fashion_mnist": NamedDataset(  # Debian's dataset-fashion-mnist
        _known("fashion_mnist", 60_000, 10_000, 10, (28, 28, 1)), f"{SOURCES}.fashion_mnist:prepare", build_locally=True
    ),
    "cifar10": NamedDataset(
        _known("cifar10", 50_000, 10_000, 10, (32, 32, 3)), f"{SOURCES}.cifar:prepare_cifar10", needs_archives=True
    ),
    "cifar100": NamedDataset(
        _known("cifar100", 50_000, 10_000, 100, (32, 32, 3)), f"{SOURCES}.cifar:prepare_cifar100", needs_archives=True
    ),
    "imagenet2012": NamedDataset(
        _known("imagenet2012", 1_281_167, 50_000, 1000, (None, None, 3), STREAMED, "validation", IMAGENET_MEAN_STD),
        f"{SOURCES}.imagenet:prepare",
        needs_archives=True,
    ),
}


def register_dataset(entry: NamedDataset) -> None:
    """Make ``entry.spec.name`` a dataset that ``--config.dataset`` and the prepare command accept (from any
    module: the package need not change). A name already taken is refused."""
    name = entry.spec.name
    if name in NAMED_DATASETS or name == SYNTHETIC or name.startswith((TFDS_PREFIX, FOLDER_PREFIX)):
        raise ValueError(f"dataset name {name!r} is taken; register the dataset under another name")
    NAMED_DATASETS[name] = entry


def known(name: str) -> DatasetSpec:
    """The spec of a named dataset (what configs read for class counts and epoch lengths)."""
    return NAMED_DATASETS[name].spec


@dataclasses.dataclass(frozen=True)
class DatasetName:
    """A ``dataset`` field parsed once: its kind ('synthetic', 'named', 'tfds' or 'folder') and what follows the
    prefix (a named dataset's name, a TFDS builder's NAME[/CONFIG][:VERSION] or a folder's path)."""

    kind: str
    target: str

    @property
    def is_named(self) -> bool:
        """Whether it is one of ``NAMED_DATASETS``."""
        return self.kind == "named"


def parse(dataset: str) -> DatasetName:
    """How ``dataset`` is read: ConfigError, saying what to write, if it is none of the four kinds."""
    if dataset == SYNTHETIC:
        return DatasetName(SYNTHETIC, dataset)
    if dataset in NAMED_DATASETS:
        return DatasetName("named", dataset)
    if dataset.startswith(TFDS_PREFIX):
        name = dataset[len(TFDS_PREFIX) :]
        if not TFDS_NAME.match(name):
            raise ConfigError(
                f"dataset={dataset!r}: after 'tfds:' give a TFDS name as tfds.builder takes it, "
                "NAME[/CONFIG][:VERSION] (e.g. tfds:svhn_cropped, tfds:oxford_flowers102:2.1.1)."
            )
        return DatasetName("tfds", name)
    if dataset.startswith(FOLDER_PREFIX):
        if not dataset[len(FOLDER_PREFIX) :].strip():
            raise ConfigError("dataset='folder:' needs a path: folder:PATH, where PATH holds train/CLASS/IMAGE files.")
        return DatasetName("folder", dataset[len(FOLDER_PREFIX) :])
    named = (SYNTHETIC, *NAMED_DATASETS)
    close = difflib.get_close_matches(dataset, named, n=1)
    raise ConfigError(
        f"dataset must be one of {', '.join(map(repr, named))}, tfds:NAME[/CONFIG][:VERSION] (any TFDS "
        f"image-classification dataset) or folder:PATH (PATH/SPLIT/CLASS/IMAGE), got {dataset!r}."
        + (f" Did you mean {close[0]!r}?" if close else "")
    )


def pipeline_of(source: DatasetName, requested: str = AUTO) -> str | None:
    """'synthetic', 'in_memory' or 'streamed': the pipeline that feeds ``source`` when it is known before any
    file is read (named datasets, or a ``requested`` one); None when the images decide (tfds: and folder:)."""
    if source.kind == SYNTHETIC:
        return SYNTHETIC
    if not source.is_named:
        return None if requested == AUTO else requested
    height, width, _ = known(source.target).image_shape
    if requested == AUTO:
        return known(source.target).pipeline
    return choose_pipeline(None if height is None else {(height, width)}, requested, source.target)
