"""Input pipelines behind one interface: ``create_datasets(config, ...)`` -> ``Datasets``.

Three parts: ``sources`` (where examples come from and how each is prepared), ``pipelines`` (synthetic,
in-memory, streamed) and ``augment`` (each augmentation in one place: of one example, and of a batch, ``mixing``,
which the train step applies and reaches here); ``spec`` owns every dataset fact. Train batches are a function
of the step, so resuming at step N reproduces the data position exactly. Eval batches are padded and masked so
every example counts once: the test split always (``eval/*``), with ``validation_examples`` a held-out part of the
train split too (``val/*``). Images stay uint8 up to the devices; ``Datasets.normalisation`` is applied in the
step. In-memory datasets are read from their numpy copy and batched by JAX, on the devices or on the host;
streamed ones (ImageNet, photos) import TensorFlow lazily and run tf.data on the host CPU over TFDS records.
"""

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from resnet_jax.data import spec
from resnet_jax.data.augment import crops, erasing, examples, pad_crop
from resnet_jax.data.augment.mixing import (  # noqa: F401 (the train step's and the run fields' check)
    MIXING_STREAM,
    NO_MIXING,
    Mixing,
    check_batch_augmentations,
    mix,
)
from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.data.fields import DEFAULT_CROP, check_pipeline_options
from resnet_jax.data.pipelines import batching, in_memory, synthetic
from resnet_jax.data.sources import arrays, folder, named, records, tfds_named
from resnet_jax.errors import ConfigError

Batch = dict[str, np.ndarray]
TEST, VALIDATION = "eval", "val"  # metric prefixes of the test split and of the held-out validation split


@dataclasses.dataclass(frozen=True)
class Placement:
    """How this process's batches relate to the global ones: computed once by the run and handed to the data.

    Attributes:
      global_batch, global_eval_batch: examples in one train or eval batch over all processes.
      process_index, process_count: this process, of how many; each makes ``1 / process_count`` of a batch.
    """

    global_batch: int
    global_eval_batch: int
    process_index: int = 0
    process_count: int = 1

    @property
    def per_process_batch(self) -> int:
        """This process's share of a global train batch."""
        return self.global_batch // self.process_count

    @property
    def per_process_eval_batch(self) -> int:
        """This process's share of a global eval batch."""
        return self.global_eval_batch // self.process_count


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
    with this run's seed, batch size and augmentation); so is ``eval_batch``.
    """

    train: Batch
    eval: dict[str, Batch]
    train_batch: Callable
    global_batch: int

    @staticmethod
    def eval_batch(split: Batch, index, size: int) -> Batch:
        """Traceable: eval batch ``index`` of ``size`` examples of a whole split, padded and masked past its end."""
        return in_memory.eval_batch(split, index, size)

    def num_eval_batches(self, prefix: str, size: int) -> int:
        """How many eval batches of ``size`` examples cover the split of ``prefix`` (one process reads it all)."""
        return batching.num_eval_batches(len(self.eval[prefix]["label"]), size, process_count=1)

    def check_length(self, num_train_steps: int) -> None:
        """Refuse a run whose example positions the batches cannot count (ConfigError, saying what to change)."""
        in_memory.check_positions(num_train_steps, self.global_batch)


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

    def check_length(self, num_train_steps: int) -> None:
        """Refuse a run longer than the dataset's batches can count (in-memory datasets; ConfigError)."""
        if self.in_memory is not None:
            self.in_memory.check_length(num_train_steps)


def split_names(train_split: str, test_split: str, validation_examples: int) -> dict[str, str]:
    """TFDS split specs for training and for each evaluated split; the held-out part is the train split's tail."""
    if not validation_examples:
        return {"train": train_split, TEST: test_split}
    return {
        "train": f"{train_split}[:-{validation_examples}]",
        VALIDATION: f"{train_split}[-{validation_examples}:]",
        TEST: test_split,
    }


def open_dataset(settings) -> tuple[arrays.Splits, spec.DatasetSpec] | records.RecordSource:
    """The dataset ``settings.dataset`` names (data settings), opened for the pipeline that feeds it: an in-memory
    one's whole stored splits and spec, or a streamed one's records (``records.RecordSource``)."""
    source = spec.parse(settings.dataset)
    if source.kind == "folder":
        return folder.open_folder(source.target, settings.data_dir, settings.pipeline)
    if source.kind == "tfds":
        keys, splits = (settings.image_key, settings.label_key), (settings.train_split, settings.eval_split)
        return tfds_named.open_tfds(
            source.target, settings.data_dir, keys, splits, settings.download, settings.pipeline
        )
    if spec.pipeline_of(source, settings.pipeline) == spec.STREAMED:
        return named.named_records(settings.dataset, settings.data_dir, settings.download)
    return named.named_arrays(settings.dataset, settings.data_dir, settings.download)


def create_datasets(settings, placement: Placement, *, seed: int, num_classes: int) -> Datasets:
    """Build the train and eval inputs that the data settings name, for this process's part of ``placement``;
    ``seed`` draws the data order and augmentations, ``num_classes`` (0: the dataset's) is the model's.

    Options the chosen pipeline would ignore are refused here when the images chose it (``tfds:`` and
    ``folder:`` datasets with ``pipeline='auto'``); elsewhere validation refused them already."""
    if settings.dataset == spec.SYNTHETIC:
        return _synthetic(settings, placement, seed, num_classes)
    opened = open_dataset(settings)
    if isinstance(opened, records.RecordSource):
        check_pipeline_options(settings, spec.STREAMED)
        return _streamed(settings, opened, placement, seed, num_classes)
    check_pipeline_options(settings, spec.IN_MEMORY)
    return _in_memory(settings, *opened, placement, seed, num_classes)


def _eval_batches(split: Batch, placement: Placement):
    """This process's block of an in-memory eval split, padded and masked into equal batches."""
    num_examples = len(split["label"])
    mine = batching.process_range(num_examples, placement.process_index, placement.process_count)
    local = {name: values[mine.start : mine.stop] for name, values in split.items()}
    count = batching.num_eval_batches(num_examples, placement.per_process_eval_batch, placement.process_count)
    return batching.padded_batches(local, placement.per_process_eval_batch, count)


def _in_memory(config, stored, dataset_spec, placement: Placement, seed: int, num_classes: int) -> Datasets:
    check_num_classes(config.dataset, dataset_spec.num_classes, num_classes)
    splits = in_memory_splits(stored, dataset_spec, config.validation_examples)
    for name, split in splits.items():
        check_split(split, f"{config.dataset} {name}", config.image_size, dataset_spec.num_classes)
    train = splits.pop("train")
    _check_imagenet_statistics(config, train["image"].shape[-1])
    normalisation = Normalisation.from_images(train["image"], config.normalisation)
    settings = erasing.RandomErasing(**dataclasses.asdict(config.random_erasing))  # the same fields
    named = config.example_augmentations
    augmentation = pad_crop.Augmentation(config.crop_padding, config.pad_mode, config.random_flip, settings, named)
    fill = erasing.fill_colour_for(settings, normalisation.mean, normalisation.std)
    batch_arguments = dict(seed=seed, augmentation=augmentation, fill_colour=fill)

    def train_batches(start_step: int) -> Iterator[Batch]:
        return in_memory.host_train_batches(
            train,
            start_step=start_step,
            per_process_batch=placement.per_process_batch,
            process_index=placement.process_index,
            process_count=placement.process_count,
            **batch_arguments,
        )

    def eval_split(split: Batch) -> EvalSplit:
        return EvalSplit(
            lambda: _eval_batches(split, placement), len(split["label"])
        )

    train_batch = functools.partial(in_memory.train_batch, global_batch=placement.global_batch, **batch_arguments)
    return Datasets(
        train_batches,
        {name: eval_split(split) for name, split in splits.items()},
        num_train_examples=len(train["label"]),
        image_shape=tuple(train["image"].shape[1:]),
        normalisation=normalisation,
        spec=dataset_spec,
        in_memory=InMemorySplits(train, splits, train_batch, placement.global_batch),
    )


def in_memory_splits(stored: dict[str, Batch], dataset_spec: spec.DatasetSpec, validation_examples: int = 0):
    """The ``train`` split and each evaluated split (``eval``, and ``val`` with ``validation_examples``, the
    train split's tail, as TFDS's ``train[-N:]``) of stored whole splits."""
    train, test = stored[dataset_spec.train_split], stored[dataset_spec.test_split]
    num_train = len(train["label"])
    _check_held_out(validation_examples, num_train, dataset_spec.name)
    if not validation_examples:
        return {"train": train, TEST: test}
    kept = num_train - validation_examples

    def part(rows: slice) -> Batch:
        return {field: values[rows] for field, values in train.items()}

    return {"train": part(slice(None, kept)), VALIDATION: part(slice(kept, None)), TEST: test}


def _check_held_out(validation_examples: int, num_train: int, name: str) -> None:
    if validation_examples >= num_train:
        raise ConfigError(
            f"validation_examples={validation_examples} holds out the whole train split of {name} "
            f"({num_train} examples); use fewer."
        )


def check_num_classes(name: str, classes: int, num_classes: int) -> None:
    """Fail early when the model's ``num_classes`` (0 = the dataset's) is not the dataset's class count."""
    if num_classes and classes != num_classes:
        raise ConfigError(
            f"dataset {name!r} has {classes} classes but the model has num_classes={num_classes}; "
            f"set --config.num_classes={classes}, or 0 to take the dataset's (or use the dataset the config was "
            "written for)"
        )


def check_split(split: Batch, name: str, image_size: int, num_classes: int) -> None:
    """Every image of an in-memory split is ``image_size`` square (0: any size) and every label in [0, num_classes)."""
    height, width = split["image"].shape[1:3]
    if image_size and (height, width) != (image_size, image_size):
        raise ConfigError(
            f"{name} holds {height}x{width} images but the config says image_size={image_size}; "
            f"set --config.image_size={height}, or 0 to take the dataset's size (or --config.pipeline=streamed to "
            "resize crops to image_size)"
        )
    labels = split["label"]
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ConfigError(
            f"{name} has {bad.size} labels outside [0, {num_classes}) (first at index {bad[0]}: {labels[bad[0]]}); "
            "the dataset and num_classes disagree: re-prepare the dataset or fix num_classes"
        )


def _check_imagenet_statistics(config, channels: int) -> None:
    if config.normalisation == "imagenet" and channels != 3:
        raise ConfigError(
            f"normalisation='imagenet' applies torchvision's 3-channel statistics, and dataset {config.dataset!r} "
            f"has {channels}-channel images; use --config.normalisation=channel (the dataset's own statistics)."
        )


def _check_held_out_split(train_split: str, validation_examples: int) -> None:
    """A streamed held-out part is the train split's tail in TFDS's syntax, which a sliced split cannot take."""
    if validation_examples and any(mark in train_split for mark in "[+"):
        raise ConfigError(
            f"validation_examples={validation_examples} holds out the tail of the train split, which TFDS cannot "
            f"slice again when the split is already {train_split!r}; set --config.train_split and "
            "--config.eval_split to the parts you want (e.g. 'train[:90%]' and 'train[90%:]') and drop "
            "validation_examples."
        )


def streamed_normalisation(dataset_spec: spec.DatasetSpec, mode: str) -> Normalisation:
    """A streamed dataset's normalisation: its train split's per-channel statistics ('channel'), MNIST's
    ('mnist'), or torchvision's ImageNet statistics ('imagenet'; ImageNet's own are those)."""
    if mode == "mnist":
        return Normalisation.mnist(dataset_spec.channels)
    if mode == "imagenet" or dataset_spec.mean is None:
        return Normalisation.imagenet()
    return Normalisation(np.asarray(dataset_spec.mean), np.asarray(dataset_spec.std))


def _streamed(config, source: records.RecordSource, placement: Placement, seed: int, num_classes: int) -> Datasets:
    from resnet_jax.data.pipelines import streaming

    dataset_spec = source.spec
    check_num_classes(config.dataset, dataset_spec.num_classes, num_classes)
    _check_held_out(config.validation_examples, dataset_spec.num_train_examples, dataset_spec.name)
    _check_held_out_split(dataset_spec.train_split, config.validation_examples)
    _check_imagenet_statistics(config, dataset_spec.channels)
    splits = split_names(dataset_spec.train_split, dataset_spec.test_split, config.validation_examples)
    image_size = config.image_size or DEFAULT_CROP
    settings = crops.Crops(
        image_size,
        config.train_crop,
        config.scale_range,
        config.eval_resize,
        config.random_flip,
        dataset_spec.channels,
    )
    builder, what = source.builder, config.dataset
    num_train = builder.info.splits[splits["train"]].num_examples
    streaming.check_rows(num_train, placement.global_batch, f"{what} {splits['train']}")
    keys = dict(image_key=source.image_key, label_key=source.label_key)

    def train_batches(start_step: int) -> Iterator[Batch]:
        dataset = streaming.train_dataset(
            builder,
            splits["train"],
            seed=seed,
            start_step=start_step,
            per_process_batch=placement.per_process_batch,
            process_index=placement.process_index,
            process_count=placement.process_count,
            shuffle_buffer_size=config.shuffle_buffer_size,
            train_image=examples.streamed_train_image(
                functools.partial(crops.train_image, crops=settings), config.example_augmentations
            ),
            **keys,
        )
        return streaming.counted_skips(dataset.as_numpy_iterator(), start_step, f"{what} {splits['train']}")

    def eval_split(split: str) -> EvalSplit:
        def batches():
            dataset = streaming.eval_dataset(
                builder,
                split,
                per_process_batch=placement.per_process_eval_batch,
                process_index=placement.process_index,
                process_count=placement.process_count,
                eval_image=functools.partial(crops.eval_image, crops=settings),
                **keys,
            )
            return streaming.decode_errors_stop_eval(dataset.as_numpy_iterator(), f"{what} {split}")

        return EvalSplit(batches, builder.info.splits[split].num_examples)

    return Datasets(
        train_batches,
        {name: eval_split(split) for name, split in splits.items() if name != "train"},
        num_train_examples=num_train,
        image_shape=(image_size, image_size, dataset_spec.channels),
        normalisation=streamed_normalisation(dataset_spec, config.normalisation),
        spec=dataset_spec,
    )


def _synthetic(config, placement: Placement, seed: int, num_classes: int) -> Datasets:
    options = config.synthetic
    image_size = config.image_size or synthetic.DEFAULT_IMAGE_SIZE
    num_classes = num_classes or synthetic.DEFAULT_NUM_CLASSES
    image_shape = (image_size, image_size, 3)
    rows = batching.process_rows(placement.per_process_batch, placement.process_index)

    def train_batches(start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            batch = synthetic.train_batch(seed, step, placement.global_batch, num_classes, image_shape, options.noise)
            yield {name: values[rows] for name, values in batch.items()}
            step += 1

    def eval_batches() -> Iterable[Batch]:
        split = synthetic.eval_split(seed, options.num_eval_examples, num_classes, image_shape, options.noise)
        return _eval_batches(split, placement)

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
