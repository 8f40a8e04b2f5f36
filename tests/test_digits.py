"""The offline ``digits`` dataset: preparation, the in-memory pipeline, and a real run reaching >= 97%."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from configs import digits as digits_config
from resnet_jax.data import in_memory, prepare
from resnet_jax.train import loop

pytestmark = pytest.mark.xdist_group("digits")  # one worker prepares the dataset once


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    prepare.prepare("digits", str(directory))
    return str(directory)


def test_prepared_splits_hold_every_sklearn_image_once_with_its_label(data_dir):
    train = in_memory.load_split("digits", "train", data_dir, build_locally=True)
    test = in_memory.load_split("digits", "test", data_dir, build_locally=True)
    assert (len(train["label"]), len(test["label"])) == (1437, 360)
    assert train["image"].shape[1:] == (8, 8, 1) and train["image"].dtype == np.uint8
    reference = load_digits()
    expected = {
        (np.round(image * 255 / 16).astype(np.uint8).tobytes(), int(label))
        for image, label in zip(reference.images, reference.target, strict=True)
    }
    got = [
        (image.tobytes(), int(label)) for split in (train, test) for image, label in zip(*split.values(), strict=True)
    ]
    assert len(got) == 1797 and set(got) == expected


def test_each_epoch_visits_every_example_once_and_batches_depend_only_on_the_step():
    num_examples, batch = 10, 4
    positions = np.concatenate([in_memory.global_batch_indices(3, step, batch, num_examples) for step in range(5)])
    assert sorted(positions[:10]) == list(range(10))  # epoch 0
    assert sorted(positions[10:20]) == list(range(10))  # epoch 1, in another order
    assert not np.array_equal(positions[:10], positions[10:20])
    np.testing.assert_array_equal(in_memory.global_batch_indices(3, 2, batch, num_examples), positions[8:12])


def test_process_slices_are_disjoint_and_make_up_the_global_batch():
    split = {"image": np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1), "label": np.arange(20, dtype=np.int32)}
    common = dict(seed=0, start_step=3, per_process_batch=2, mean=np.zeros(1), std=np.ones(1) / 255)
    slices = [
        next(in_memory.train_batches(split, process_index=p, process_count=3, **common))["label"] for p in range(3)
    ]
    np.testing.assert_array_equal(np.concatenate(slices), in_memory.global_batch_indices(0, 3, 6, 20))


def test_resnet20_reaches_97_percent_on_digits(data_dir, tmp_path):
    config = digits_config.get_config()
    config.data_dir = data_dir
    results = loop.train_and_evaluate(config, tmp_path)
    assert results["num_eval_examples"] == 360
    assert results["eval/top1"] >= 0.97, results
