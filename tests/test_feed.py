"""The device placement of in-memory datasets: the same global batches as the host makes, on 1, 8 and
2 x 4 devices; exact padded eval; and where the dataset goes when device memory is short."""

import functools

import jax
import numpy as np
import pytest
from conftest import in_memory_batches

from resnet_jax import data as data_lib
from resnet_jax.data import spec
from resnet_jax.data.augment import erasing, pad_crop
from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.data.pipelines import in_memory
from resnet_jax.errors import ConfigError
from resnet_jax.train import feed, sharding

AUGMENTATION = pad_crop.Augmentation(
    crop_padding=2, pad_mode="reflect", random_flip=True, random_erasing=erasing.RandomErasing(0.5, fill="random")
)
FILL_COLOUR = np.array([120.0])


def _split(num_examples: int, side: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(num_examples)
    return {
        "image": rng.integers(0, 256, (num_examples, side, side, 1), dtype=np.uint8),
        "label": np.arange(num_examples, dtype=np.int32) % 7,
    }


def _datasets(train, evaluated, global_batch) -> data_lib.Datasets:
    train_batch = functools.partial(
        in_memory.train_batch, seed=0, global_batch=global_batch, augmentation=AUGMENTATION, fill_colour=FILL_COLOUR
    )
    return data_lib.Datasets(
        train_batches=None,
        eval_splits={},
        num_train_examples=len(train["label"]),
        image_shape=train["image"].shape[1:],
        normalisation=Normalisation.from_images(train["image"], "channel"),
        spec=spec.DatasetSpec("test", {"train": len(train["label"]), "test": 0}, "train", "test", 7),
        in_memory=data_lib.InMemorySplits(train, evaluated, train_batch, global_batch),
    )


def _device_batches(mesh, train, global_batch, steps):
    input_feed = feed.device_feed(_datasets(train, {}, global_batch).in_memory, mesh, eval_batch_size=global_batch)
    make = jax.jit(input_feed.train_batch, in_shardings=(input_feed.input_sharding, None))
    inputs = next(input_feed.train_inputs(0))
    batches = [make(inputs, np.int32(step)) for step in steps]
    assert all(batch["image"].sharding.is_equivalent_to(sharding.batch_sharding(mesh), 4) for batch in batches)
    return [jax.device_get(batch) for batch in batches]


@pytest.mark.parametrize("devices", [1, 8])
def test_the_devices_make_the_global_batches_the_host_makes(devices):
    train, global_batch, steps = _split(21), 8, (0, 2, 5)  # step 2 crosses the end of the first epoch
    mesh = sharding.make_mesh(jax.devices()[:devices])
    on_devices = _device_batches(mesh, train, global_batch, steps)
    host = in_memory_batches(
        train, 0, 0, 1, global_batch, max(steps) + 1, augmentation=AUGMENTATION, fill_colour=FILL_COLOUR
    )
    for step, batch in zip(steps, on_devices, strict=True):
        for name in ("image", "label"):
            np.testing.assert_array_equal(batch[name], host[step][name])
    assert any((batch["image"] != train["image"][: len(batch["image"])]).any() for batch in on_devices)


def test_two_processes_of_four_devices_see_the_global_batch_of_one_process():
    train, global_batch = _split(21), 8
    whole = in_memory_batches(train, 3, 0, 1, global_batch, 1, augmentation=AUGMENTATION, fill_colour=FILL_COLOUR)[0]
    halves = [
        in_memory_batches(train, 3, p, 2, global_batch // 2, 1, augmentation=AUGMENTATION, fill_colour=FILL_COLOUR)[0]
        for p in (0, 1)
    ]
    for name in ("image", "label"):
        np.testing.assert_array_equal(np.concatenate([half[name] for half in halves]), whole[name])
    (device_batch,) = _device_batches(sharding.make_mesh(jax.devices()[:8]), train, global_batch, [3])
    np.testing.assert_array_equal(device_batch["image"], whole["image"])


def test_eval_on_the_devices_counts_every_example_once():
    evaluated = _split(13)
    datasets = _datasets(_split(20), {"eval": evaluated}, 8)
    mesh = sharding.make_mesh(jax.devices()[:8])
    input_feed = feed.device_feed(datasets.in_memory, mesh, eval_batch_size=8)
    make = jax.jit(input_feed.eval_batch, in_shardings=(input_feed.input_sharding,))
    batches = [jax.device_get(make(inputs)) for inputs in input_feed.eval_inputs("eval")]
    assert len(batches) == 2  # 13 examples in batches of 8
    masks = np.concatenate([batch["mask"] for batch in batches])
    images = np.concatenate([batch["image"] for batch in batches])[masks == 1]
    labels = np.concatenate([batch["label"] for batch in batches])[masks == 1]
    assert masks.sum() == 13 and masks.tolist() == [1.0] * 13 + [0.0] * 3
    np.testing.assert_array_equal(images, evaluated["image"])  # in order, each once, not augmented
    np.testing.assert_array_equal(labels, evaluated["label"])


def test_the_dataset_goes_to_the_devices_unless_memory_is_short_or_the_host_is_asked_for():
    datasets = _datasets(_split(100), {"eval": _split(10)}, 8)
    size = feed.dataset_bytes(datasets.in_memory)
    assert size == 110 * 36 + 110 * 4  # uint8 images of 6x6x1 and int32 labels
    assert feed.place_on_devices("auto", datasets, memory=None)  # XLA:CPU does not say: the host's memory
    assert feed.place_on_devices("device", datasets, memory=2 * size)
    assert not feed.place_on_devices("host", datasets, memory=None)
    assert not feed.place_on_devices("auto", datasets, memory=size)  # more than half a device: the host
    with pytest.raises(ConfigError) as error:
        feed.place_on_devices("device", datasets, memory=size)
    message = str(error.value)
    assert f"{size / 2**30:.2f} GiB" in message and "--config.input_placement=host" in message
    synthetic = data_lib.Datasets(None, {}, 10, (4, 4, 3), datasets.normalisation, datasets.spec)  # no in-memory splits
    assert not feed.place_on_devices("device", synthetic, memory=None)


def test_a_run_longer_than_the_positions_count_is_refused():
    in_memory.check_positions(1000, 128)
    with pytest.raises(ConfigError, match="train fewer steps or epochs"):
        in_memory.check_positions(2**31 // 128 + 1, 128)
