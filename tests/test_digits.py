"""The offline ``digits`` dataset: preparation and the in-memory pipeline.

The real run reaching >= 97% is the README's first command, which .ci/run runs and checks; it is not
run a second time here."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import in_memory_batches
from scipy import stats
from sklearn.datasets import load_digits

from resnet_jax import benchmark
from resnet_jax.data.augment import pad_crop
from resnet_jax.data.pipelines import in_memory
from resnet_jax.data.sources import tfds_source

pytestmark = pytest.mark.xdist_group("digits")  # one worker prepares the dataset once


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The prepare command as a user runs it, without --data_dir: TFDS's data directory ($TFDS_DATA_DIR)."""
    directory = tmp_path_factory.mktemp("tfds")
    command = [sys.executable, "-m", "resnet_jax.data.prepare", "digits"]
    environment = dict(os.environ, TFDS_DATA_DIR=str(directory))
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return str(directory), completed


@pytest.fixture(scope="module")
def data_dir(prepared):
    return prepared[0]


def test_prepare_writes_to_tfds_data_directory_by_default_and_says_where(prepared):
    directory, completed = prepared
    assert completed.stderr.splitlines() == [
        f"Wrote the numpy copy of digits to {directory}/resnet_jax_arrays/digits.npz: later runs read it without "
        "TensorFlow.",
    ]
    assert completed.stdout.splitlines()[0] == f"prepared digits in {directory}/digits/1.0.0"  # no TFDS banner


def test_prepared_splits_hold_every_sklearn_image_once_with_its_label(data_dir):
    train = tfds_source.load_split("digits", "train", data_dir)
    test = tfds_source.load_split("digits", "test", data_dir)
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


def _indices(seed, step, batch, num_examples):
    return np.asarray(in_memory.global_batch_indices(seed, step, batch, num_examples))


@pytest.mark.parametrize("batch", [4, 25])  # 25 > 10: one batch spans several epochs
def test_each_epoch_visits_every_example_once_and_batches_depend_only_on_the_step(batch):
    num_examples = 10
    positions = np.concatenate([_indices(3, step, batch, num_examples) for step in range(6)])
    epochs = positions[: len(positions) // 10 * 10].reshape(-1, 10)
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
    np.testing.assert_array_equal(_indices(3, 2, batch, num_examples), positions[2 * batch : 3 * batch])
    assert not np.array_equal(_indices(4, 0, batch, num_examples), positions[:batch])  # the seed matters


def test_epoch_orders_are_uniform_random_permutations():
    """Over 4,000 epochs of 10 examples: where each example lands, and which ordered pair comes first, are
    uniform (a uniform random permutation's own distributions), and epochs are independent of each other."""
    epochs = 4_000
    orders = np.asarray(jax.jit(jax.vmap(lambda epoch: in_memory.epoch_order(7, epoch, 10)))(jnp.arange(epochs)))
    for example in range(10):
        where = np.argmax(orders == example, axis=1)
        assert stats.chisquare(np.bincount(where, minlength=10)).pvalue > 1e-3
    pairs = np.bincount(orders[:, 0] * 10 + orders[:, 1], minlength=100).reshape(10, 10)
    assert np.all(np.diag(pairs) == 0)
    assert stats.chisquare(pairs[~np.eye(10, dtype=bool)]).pvalue > 1e-3  # 90 ordered pairs, equally often
    consecutive = np.bincount(orders[:-1, 0] * 10 + orders[1:, 0], minlength=100)  # first of epoch e, then e + 1
    assert stats.chisquare(consecutive).pvalue > 1e-3


def _train_batches(split, start_step, process_index, process_count, per_process_batch=2, steps=3):
    return in_memory_batches(
        split,
        start_step,
        process_index,
        process_count,
        per_process_batch,
        steps,
        augmentation=pad_crop.Augmentation(crop_padding=1, random_flip=True),
    )


def test_process_slices_are_disjoint_make_up_the_global_batch_and_resume_exactly():
    split = {"image": np.arange(20 * 9, dtype=np.uint8).reshape(20, 3, 3, 1), "label": np.arange(20, dtype=np.int32)}
    one_process = _train_batches(split, 0, 0, 1, per_process_batch=6, steps=5)
    for step in (0, 3, 4):  # step 3 straddles the end of the first epoch
        slices = [_train_batches(split, step, p, 3, steps=1)[0] for p in range(3)]
        for name in ("label", "image"):  # same examples, and the same crops and flips, on 1 or 3 processes
            np.testing.assert_array_equal(np.concatenate([s[name] for s in slices]), one_process[step][name])
        np.testing.assert_array_equal(np.sort(one_process[step]["label"]), np.sort(_indices(0, step, 6, 20)))
    resumed = _train_batches(split, 3, 0, 1, per_process_batch=6, steps=2)
    for got, expected in zip(resumed, one_process[3:], strict=True):
        np.testing.assert_array_equal(got["image"], expected["image"])


def test_the_input_benchmark_reports_the_digits_pipeline(data_dir, capsys):
    benchmark.main(
        ["--input_config", "configs/digits.py", "--data_dir", data_dir, "--batch_size", "32", "--steps", "3", "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "digits" and report["image_shape"] == [8, 8, 1]
    assert report["train_batches_timed"] == 3 and report["eval_batches_timed"] == 3
