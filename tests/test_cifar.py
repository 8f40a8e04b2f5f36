"""CIFAR-10/100 prepared offline from generated archives in the original binary format, and augmentation."""

import numpy as np
import pytest
from archives import write_cifar_archive

from configs import cifar10
from resnet_jax.data import in_memory, prepare
from resnet_jax.train import loop


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_prepare_from_the_original_archive_then_load_every_record_exactly(name, tmp_path):
    expected = write_cifar_archive(tmp_path, name)
    prepare.main([name, "--data_dir", str(tmp_path / "tfds"), "--manual_dir", str(tmp_path), "--skip_checksum"])
    for split, records in expected.items():
        loaded = in_memory.load_split(name, split, str(tmp_path / "tfds"), build_locally=False)
        assert len(loaded["label"]) == len(records)
        got = {(int(label), image.tobytes()) for label, image in zip(loaded["label"], loaded["image"], strict=True)}
        assert got == {(label, image.tobytes()) for label, image in records}


def test_an_unofficial_archive_needs_skip_checksum(tmp_path):
    write_cifar_archive(tmp_path, "cifar10")
    with pytest.raises(ValueError, match="--skip_checksum"):
        prepare.prepare("cifar10", str(tmp_path / "tfds"), str(tmp_path))


def test_a_missing_dataset_is_one_plain_error_naming_the_prepare_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m resnet_jax.data.prepare cifar10 --data_dir"):
        in_memory.load_split("cifar10", "train", str(tmp_path), build_locally=False)


def test_augmentation_crops_from_the_padded_image_flips_and_repeats_under_a_seed():
    images = np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1) + 1  # no zeros inside
    augmentation = in_memory.Augmentation(crop_padding=1, pad_mode="constant", random_flip=True)
    draws = (np.array([0, 2]), np.array([1, 0]), np.array([False, True]))
    out = in_memory.augment(images, draws, augmentation)
    assert out.shape == images.shape
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    np.testing.assert_array_equal(out[0], padded[0, 0:4, 1:5])  # top 0, left 1, no flip
    np.testing.assert_array_equal(out[1], padded[1, 2:6, 0:4][:, ::-1])  # top 2, left 0, flipped
    rng_draws = [in_memory.augmentation_draws(np.random.default_rng(7), 64, augmentation) for _ in range(2)]
    for first, second in zip(*rng_draws, strict=True):
        np.testing.assert_array_equal(first, second)
    tops, lefts, flips = rng_draws[0]
    assert set(tops) == {0, 1, 2} and set(lefts) == {0, 1, 2} and 0 < flips.mean() < 1


def test_no_augmentation_is_the_identity():
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    draws = in_memory.augmentation_draws(np.random.default_rng(0), 3, in_memory.Augmentation())
    np.testing.assert_array_equal(in_memory.augment(images, draws, in_memory.Augmentation()), images)


def test_training_on_prepared_cifar10_and_a_missing_dataset_stops_before_compiling(tmp_path, monkeypatch):
    write_cifar_archive(tmp_path, "cifar10")
    prepare.prepare("cifar10", str(tmp_path / "tfds"), str(tmp_path), skip_checksum=True)
    config = cifar10.get_config("resnet20")
    config.update(dict(data_dir=str(tmp_path / "tfds"), batch_size=16, bn_group_size=0, num_train_steps=2))
    config.update(dict(warmup_steps=0, lr_boundaries=(1,), eval_every_steps=2, checkpoint_every_steps=2))
    results = loop.train_and_evaluate(config, tmp_path / "run")
    assert results["step"] == 2 and results["num_eval_examples"] == 30  # 30 test records, padded to 2 x 16

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before finding the dataset missing")

    monkeypatch.setattr(loop.jax, "jit", no_compiling)
    config.data_dir = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not prepared"):
        loop.train_and_evaluate(config, tmp_path / "run2")
