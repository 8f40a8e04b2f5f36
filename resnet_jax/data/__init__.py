"""Input pipelines behind one interface: ``create_datasets(config, ...)`` -> ``Datasets``.

Train batches are a deterministic function of the step, so resuming at step N reproduces the data
position exactly. Eval batches are padded and masked so every example counts once.
The synthetic dataset needs only numpy; TFDS-backed datasets import TensorFlow lazily.
"""

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from resnet_jax.data import batching, in_memory, synthetic

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class InMemorySource:
    """A TFDS dataset small enough for host memory: its splits, and whether it builds with no archive."""

    train_split: str
    eval_split: str
    build_locally: bool = False


IN_MEMORY = {
    "digits": InMemorySource("train", "test", build_locally=True),
    "cifar10": InMemorySource("train", "test"),
    "cifar100": InMemorySource("train", "test"),
}
DATASETS = ("synthetic", *IN_MEMORY)


@dataclasses.dataclass(frozen=True)
class Datasets:
    """Per-process train and eval inputs and the split sizes.

    Attributes:
      train_batches: ``start_step -> iterator`` of this process's slice of each global train batch.
      eval_batches: ``() -> iterable`` of this process's padded eval batches, each with a ``mask``.
      num_train_examples: size of the train split (defines an epoch).
      num_eval_examples: real (unpadded) size of the eval split over all processes.
      image_shape: (height, width, channels) of one image.
    """

    train_batches: Callable[[int], Iterator[Batch]]
    eval_batches: Callable[[], Iterable[Batch]]
    num_train_examples: int
    num_eval_examples: int
    image_shape: tuple[int, int, int]


def check_dataset_name(name: str) -> None:
    """Fail early, before any compilation, on a dataset this package cannot provide."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available datasets: {', '.join(DATASETS)}")


def create_datasets(
    config, *, per_process_batch: int, per_process_eval_batch: int, process_index: int, process_count: int
) -> Datasets:
    """Build the train and eval inputs that ``config.dataset`` names, for this process."""
    check_dataset_name(config.dataset)
    if config.dataset == "synthetic":
        return _synthetic(config, per_process_batch, per_process_eval_batch, process_index, process_count)
    return _in_memory(config, per_process_batch, per_process_eval_batch, process_index, process_count)


def _eval_batches(split: Batch, per_process_eval_batch: int, process_index: int, process_count: int):
    """This process's block of the eval split, padded and masked into equal batches."""
    num_examples = len(split["label"])
    mine = batching.process_range(num_examples, process_index, process_count)
    local = {name: values[mine.start : mine.stop] for name, values in split.items()}
    count = batching.num_eval_batches(num_examples, per_process_eval_batch, process_count)
    return batching.padded_batches(local, per_process_eval_batch, count)


def _in_memory(config, per_process_batch, per_process_eval_batch, process_index, process_count) -> Datasets:
    if config.dataset == "digits":
        import resnet_jax.data.digits  # noqa: F401  (registers the TFDS builder)
    source = IN_MEMORY[config.dataset]
    train = in_memory.load_split(config.dataset, source.train_split, config.data_dir, source.build_locally)
    test = in_memory.load_split(config.dataset, source.eval_split, config.data_dir, source.build_locally)
    augmentation = in_memory.Augmentation(config.crop_padding, config.pad_mode, config.random_flip)
    mean, std = in_memory.channel_statistics(train["image"])
    eval_split = {"image": in_memory.normalise(test["image"], mean, std), "label": test["label"]}

    def train_batches(start_step: int) -> Iterator[Batch]:
        return in_memory.train_batches(
            train,
            seed=config.seed,
            start_step=start_step,
            per_process_batch=per_process_batch,
            process_index=process_index,
            process_count=process_count,
            mean=mean,
            std=std,
            augmentation=augmentation,
        )

    return Datasets(
        train_batches,
        lambda: _eval_batches(eval_split, per_process_eval_batch, process_index, process_count),
        num_train_examples=len(train["label"]),
        num_eval_examples=len(test["label"]),
        image_shape=tuple(train["image"].shape[1:]),
    )


def _synthetic(config, per_process_batch, per_process_eval_batch, process_index, process_count) -> Datasets:
    options = config.synthetic
    image_shape = (config.image_size, config.image_size, 3)
    global_batch = per_process_batch * process_count
    rows = batching.process_rows(per_process_batch, process_index)

    def train_batches(start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            batch = synthetic.train_batch(
                config.seed, step, global_batch, config.num_classes, image_shape, options.noise
            )
            yield {name: values[rows] for name, values in batch.items()}
            step += 1

    def eval_batches() -> Iterable[Batch]:
        split = synthetic.eval_split(
            config.seed, options.num_eval_examples, config.num_classes, image_shape, options.noise
        )
        return _eval_batches(split, per_process_eval_batch, process_index, process_count)

    return Datasets(train_batches, eval_batches, options.num_train_examples, options.num_eval_examples, image_shape)
