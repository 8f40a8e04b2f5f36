"""Input pipelines behind one interface: ``create_datasets(config, ...)`` -> ``Datasets``.

Train batches are a deterministic function of the step, so resuming at step N reproduces the data
position exactly. Eval batches are padded and masked so every example counts once. The test split is
always evaluated (``eval/*``); with ``validation_examples`` a held-out part of the train split is too
(``val/*``). Images stay uint8 up to the devices; ``Datasets.normalisation`` is applied in the step.
The synthetic dataset needs only numpy and jax. In-memory datasets are read from their numpy copy
(``arrays``), written the first time TFDS reads them, and batched by JAX (``in_memory``): on the devices
or on the host. Streamed datasets (ImageNet) import TensorFlow lazily and run tf.data on the host CPU.
"""

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from absl import logging

from resnet_jax import config_schema
from resnet_jax.data import arrays, batching, erasing, folder, in_memory, spec, synthetic, tfds_named, tfds_source
from resnet_jax.data.normalisation import Normalisation
from resnet_jax.errors import ConfigError

Batch = dict[str, np.ndarray]
TEST, VALIDATION = "eval", "val"  # metric prefixes of the test split and of the held-out validation split
PAD_MODES = ("constant", "reflect")
TRAIN_CROPS = ("random_resized", "scale_jitter")
DEFAULT_CROP = 224  # the streamed pipeline's image side when image_size is 0 (the dataset's own)


@dataclasses.dataclass(frozen=True)
class NamedSource:
    """How a named dataset is built with TFDS: prepared on first use from files already on this machine
    (``build_locally``), or from archives given to ``prepare``."""

    build_locally: bool = False


NAMED_SOURCES = {
    "digits": NamedSource(build_locally=True),  # scikit-learn's copy
    "fashion_mnist": NamedSource(build_locally=True),  # Debian's dataset-fashion-mnist
    "cifar10": NamedSource(),
    "cifar100": NamedSource(),
    "imagenet2012": NamedSource(),
}
IN_MEMORY_DATASETS = tuple(name for name, known in spec.KNOWN.items() if known.pipeline == spec.IN_MEMORY)
STREAMED_DATASETS = tuple(name for name, known in spec.KNOWN.items() if known.pipeline == spec.STREAMED)


def pipeline_of(dataset: str) -> str:
    """'synthetic', 'in_memory' or 'streamed': the pipeline that feeds ``dataset`` (known before any file is read)."""
    kind = spec.kind(dataset)
    if kind == spec.SYNTHETIC:
        return spec.SYNTHETIC
    return spec.known(dataset).pipeline if kind == "named" else spec.IN_MEMORY


@dataclasses.dataclass(frozen=True)
class EvalSplit:
    """An evaluated split: ``batches()`` gives this process's padded batches, each with a ``mask``;
    ``num_examples`` is the real (unpadded) size over all processes."""

    batches: Callable[[], Iterable[Batch]]
    num_examples: int


@dataclasses.dataclass(frozen=True)
class InMemorySplits:
    """An in-memory dataset's uint8 splits, for the steps to read on the devices.

    ``train_batch(split, step)`` is traceable: the global train batch of ``step`` (``in_memory.train_batch``
    with this run's seed, batch size and augmentation); ``in_memory.eval_batch`` cuts the eval splits.
    """

    train: Batch
    eval: dict[str, Batch]
    train_batch: Callable


@dataclasses.dataclass(frozen=True)
class Datasets:
    """Per-process train and eval inputs and the split sizes.

    Attributes:
      train_batches: ``start_step -> iterator`` of this process's slice of each global train batch.
      eval_splits: metric prefix (``eval`` for the test split, ``val`` for held-out train examples) -> split.
      num_train_examples: size of the train split (defines an epoch).
      image_shape: (height, width, channels) of one uint8 image.
      normalisation: what the train and eval steps apply to the images on the device.
      in_memory: the splits themselves, for datasets small enough to live on the devices (else None).
      spec: the dataset's facts (classes, class names, split sizes, statistics).
    """

    train_batches: Callable[[int], Iterator[Batch]]
    eval_splits: dict[str, EvalSplit]
    num_train_examples: int
    image_shape: tuple[int, int, int]
    normalisation: Normalisation
    spec: spec.DatasetSpec
    in_memory: InMemorySplits | None = None


def random_erasing_settings(config) -> erasing.RandomErasing:
    """The config's ``random_erasing`` group as settings."""
    group = config.random_erasing
    return erasing.RandomErasing(group.probability, tuple(group.area_range), group.min_aspect_ratio, group.fill)


def split_names(train_split: str, test_split: str, validation_examples: int) -> dict[str, str]:
    """TFDS split specs for training and for each evaluated split; the held-out part is the train split's tail."""
    if not validation_examples:
        return {"train": train_split, TEST: test_split}
    return {
        "train": f"{train_split}[:-{validation_examples}]",
        VALIDATION: f"{train_split}[-{validation_examples}:]",
        TEST: test_split,
    }


def create_datasets(
    config, *, per_process_batch: int, per_process_eval_batch: int, process_index: int, process_count: int
) -> Datasets:
    """Build the train and eval inputs that ``config.dataset`` names (fields of the data view), for this process."""
    config = config_schema.view(config, config_schema.DATA)
    placement = dict(
        per_process_batch=per_process_batch,
        per_process_eval_batch=per_process_eval_batch,
        process_index=process_index,
        process_count=process_count,
    )
    pipeline = pipeline_of(config.dataset)
    if pipeline == spec.SYNTHETIC:
        return _synthetic(config, **placement)
    if pipeline == spec.IN_MEMORY:
        return _in_memory(config, **placement)
    return _streamed(config, **placement)


def _eval_batches(split: Batch, per_process_eval_batch: int, process_index: int, process_count: int):
    """This process's block of an in-memory eval split, padded and masked into equal batches."""
    num_examples = len(split["label"])
    mine = batching.process_range(num_examples, process_index, process_count)
    local = {name: values[mine.start : mine.stop] for name, values in split.items()}
    count = batching.num_eval_batches(num_examples, per_process_eval_batch, process_count)
    return batching.padded_batches(local, per_process_eval_batch, count)


def _in_memory(config, per_process_batch, per_process_eval_batch, process_index, process_count) -> Datasets:
    stored, dataset_spec = dataset_arrays(config)
    check_num_classes(config.dataset, dataset_spec.num_classes, config.num_classes)
    splits = in_memory_splits(stored, dataset_spec, config.validation_examples)
    for name, split in splits.items():
        tfds_source.check_split(split, f"{config.dataset} {name}", config.image_size, dataset_spec.num_classes)
    train = splits.pop("train")
    normalisation = Normalisation.from_images(train["image"], config.normalisation)
    augmentation = in_memory.Augmentation(
        config.crop_padding, config.pad_mode, config.random_flip, random_erasing_settings(config)
    )
    batch_arguments = dict(seed=config.seed, augmentation=augmentation, mean_pixel=normalisation.mean * 255)

    def train_batches(start_step: int) -> Iterator[Batch]:
        return in_memory.host_train_batches(
            train,
            start_step=start_step,
            per_process_batch=per_process_batch,
            process_index=process_index,
            process_count=process_count,
            **batch_arguments,
        )

    def eval_split(split: Batch) -> EvalSplit:
        return EvalSplit(
            lambda: _eval_batches(split, per_process_eval_batch, process_index, process_count), len(split["label"])
        )

    global_batch = per_process_batch * process_count
    train_batch = functools.partial(in_memory.train_batch, global_batch=global_batch, **batch_arguments)
    return Datasets(
        train_batches,
        {name: eval_split(split) for name, split in splits.items()},
        num_train_examples=len(train["label"]),
        image_shape=tuple(train["image"].shape[1:]),
        normalisation=normalisation,
        spec=dataset_spec,
        in_memory=InMemorySplits(train, splits, train_batch),
    )


def dataset_arrays(config) -> tuple[dict[str, Batch], spec.DatasetSpec]:
    """The whole stored splits of an in-memory dataset (named, ``tfds:`` or ``folder:``) and its spec."""
    config = config_schema.view(config, config_schema.DATA)
    kind = spec.kind(config.dataset)
    if kind == "folder":
        return folder.build(spec.folder_path(config.dataset), config.data_dir)
    if kind == "tfds":
        keys, splits = (config.image_key, config.label_key), (config.train_split, config.eval_split)
        return tfds_named.read(config.dataset, config.data_dir, keys, splits, config.download)
    return named_arrays(config.dataset, config.data_dir, config.download)


def named_arrays(name: str, data_dir: str, download: bool = False) -> tuple[dict[str, Batch], spec.DatasetSpec]:
    """A named in-memory dataset's stored splits and spec: from the numpy copy when there is one (no
    TensorFlow), else from TFDS, which then writes the copy."""
    path = arrays.copy_path(name, data_dir)
    return arrays.load(path) if path.exists() else write_numpy_copy(name, data_dir, download)


def in_memory_splits(stored: dict[str, Batch], dataset_spec: spec.DatasetSpec, validation_examples: int = 0):
    """The ``train`` split and each evaluated split (``eval``, and ``val`` with ``validation_examples``, the
    train split's tail, as TFDS's ``train[-N:]``) of stored whole splits."""
    train, test = stored[dataset_spec.train_split], stored[dataset_spec.test_split]
    num_train = len(train["label"])
    if validation_examples >= num_train:
        raise ConfigError(
            f"validation_examples={validation_examples} holds out the whole train split of {dataset_spec.name} "
            f"({num_train} examples); use fewer."
        )
    if not validation_examples:
        return {"train": train, TEST: test}
    kept = num_train - validation_examples

    def part(rows: slice) -> Batch:
        return {field: values[rows] for field, values in train.items()}

    return {"train": part(slice(None, kept)), VALIDATION: part(slice(kept, None)), TEST: test}


def write_numpy_copy(name: str, data_dir: str, download: bool = False) -> tuple[dict[str, Batch], spec.DatasetSpec]:
    """Read a named in-memory dataset's whole train and test splits through TFDS (preparing it first if it
    builds from local files) and write their numpy copy; returns what ``arrays.load`` would, without reading it back."""
    known = spec.known(name)
    path = arrays.copy_path(name, data_dir)
    from resnet_jax.data import prepare

    local = functools.partial(prepare.prepare, name, data_dir) if NAMED_SOURCES[name].build_locally else None
    builder = tfds_source.prepared_builder(name, data_dir, local, numpy_copy=path, download=download)
    stored = {split: tfds_source.split_arrays(builder, split) for split in (known.train_split, known.test_split)}
    label = builder.info.features["label"]
    dataset_spec = dataclasses.replace(
        known,
        splits={split: len(values["label"]) for split, values in stored.items()},
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        source=f"tfds {builder.info.full_name}",
        **spec.image_facts(stored[known.train_split]["image"]),
    )
    arrays.save(path, stored, dataset_spec)
    logging.info("Wrote the numpy copy of %s to %s: later runs read it without TensorFlow.", name, path)
    return stored, dataset_spec


def check_num_classes(name: str, classes: int, num_classes: int) -> None:
    """Fail early when the model's ``num_classes`` (0 = the dataset's) is not the dataset's class count."""
    if num_classes and classes != num_classes:
        raise ConfigError(
            f"dataset {name!r} has {classes} classes but the model has num_classes={num_classes}; "
            f"set --config.num_classes={classes}, or 0 to take the dataset's (or use the dataset the config was "
            "written for)"
        )


def _streamed(config, per_process_batch, per_process_eval_batch, process_index, process_count) -> Datasets:
    from resnet_jax.data import imagenet, streaming

    known = spec.known(config.dataset)
    builder = tfds_source.prepared_builder(config.dataset, config.data_dir, download=config.download)
    label = builder.info.features["label"]
    check_num_classes(config.dataset, label.num_classes, config.num_classes)
    splits = split_names(known.train_split, known.test_split, config.validation_examples)
    image_size = config.image_size or DEFAULT_CROP
    crops = imagenet.Crops(
        image_size, config.train_crop, tuple(config.scale_range), config.eval_resize, config.random_flip
    )

    def train_batches(start_step: int) -> Iterator[Batch]:
        dataset = streaming.train_dataset(
            builder,
            splits["train"],
            seed=config.seed,
            start_step=start_step,
            per_process_batch=per_process_batch,
            process_index=process_index,
            process_count=process_count,
            shuffle_buffer_size=config.shuffle_buffer_size,
            train_image=functools.partial(imagenet.train_image, crops=crops),
        )
        what = f"{config.dataset} {splits['train']}"
        return streaming.counted_skips(dataset.as_numpy_iterator(), start_step * per_process_batch, what)

    def eval_split(split: str) -> EvalSplit:
        def batches():
            dataset = streaming.eval_dataset(
                builder,
                split,
                per_process_batch=per_process_eval_batch,
                process_index=process_index,
                process_count=process_count,
                eval_image=functools.partial(imagenet.eval_image, crops=crops),
            )
            return streaming.decode_errors_stop_eval(dataset.as_numpy_iterator(), f"{config.dataset} {split}")

        return EvalSplit(batches, builder.info.splits[split].num_examples)

    return Datasets(
        train_batches,
        {name: eval_split(split) for name, split in splits.items() if name != "train"},
        num_train_examples=builder.info.splits[splits["train"]].num_examples,
        image_shape=(image_size, image_size, 3),
        normalisation=Normalisation.imagenet(),
        spec=dataclasses.replace(
            known,
            splits={split: builder.info.splits[split].num_examples for split in known.splits},
            class_names=tuple(label.names),
        ),
    )


def _synthetic(config, per_process_batch, per_process_eval_batch, process_index, process_count) -> Datasets:
    options = config.synthetic
    image_size = config.image_size or synthetic.DEFAULT_IMAGE_SIZE
    num_classes = config.num_classes or synthetic.DEFAULT_NUM_CLASSES
    image_shape = (image_size, image_size, 3)
    global_batch = per_process_batch * process_count
    rows = batching.process_rows(per_process_batch, process_index)

    def train_batches(start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            batch = synthetic.train_batch(config.seed, step, global_batch, num_classes, image_shape, options.noise)
            yield {name: values[rows] for name, values in batch.items()}
            step += 1

    def eval_batches() -> Iterable[Batch]:
        split = synthetic.eval_split(config.seed, options.num_eval_examples, num_classes, image_shape, options.noise)
        return _eval_batches(split, per_process_eval_batch, process_index, process_count)

    return Datasets(
        train_batches,
        {TEST: EvalSplit(eval_batches, options.num_eval_examples)},
        options.num_train_examples,
        image_shape,
        synthetic.normalisation(image_shape[-1]),
        spec.DatasetSpec(
            spec.SYNTHETIC,
            {"train": options.num_train_examples, "test": options.num_eval_examples},
            "train",
            "test",
            num_classes,
            image_shape=image_shape,
            source="random images with a fixed learnable rule",
        ),
    )
