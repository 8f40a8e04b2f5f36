"""CIFAR-10/100 prepared offline from generated archives in the original binary format, and augmentation."""

import numpy as np
import pytest
from archives import write_cifar_archive
from conftest import assert_whole_images, datasets_for

from configs import cifar10
from resnet_jax.data import prepare
from resnet_jax.data.augment import pad_crop
from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.data.sources import tfds_source
from resnet_jax.train import loop


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_prepare_from_the_original_archive_then_load_every_record_exactly(name, prepared_cifar):
    data_dir, expected = prepared_cifar(name)  # written and prepared through the prepare command's main
    for split, records in expected.items():
        loaded = tfds_source.load_split(name, split, data_dir)
        assert len(loaded["label"]) == len(records)
        got = {(int(label), image.tobytes()) for label, image in zip(loaded["label"], loaded["image"], strict=True)}
        assert got == {(label, image.tobytes()) for label, image in records}


def test_an_unofficial_archive_needs_skip_checksum(tmp_path):
    write_cifar_archive(tmp_path, "cifar10")
    with pytest.raises(ValueError, match="--skip_checksum"):
        prepare.prepare("cifar10", str(tmp_path / "tfds"), str(tmp_path))


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012"])
def test_a_missing_dataset_is_one_plain_error_naming_the_prepare_command(name, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"python -m resnet_jax.data.prepare {name} --data_dir"):
        tfds_source.prepared_builder(name, str(tmp_path))


def _numpy(draws):
    return [np.asarray(draw) for draw in draws]


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_augmentation_crops_from_the_padded_image_flips_and_repeats_under_a_seed(pad_mode):
    images = np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1) + 1  # no zeros inside
    augmentation = pad_crop.Augmentation(crop_padding=1, pad_mode=pad_mode, random_flip=True)
    draws = (np.array([0, 2], np.int32), np.array([1, 0], np.int32), np.array([False, True]))
    out = np.asarray(pad_crop.pad_crop_flip(images, draws, augmentation))
    assert out.shape == images.shape
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=pad_mode)  # numpy as the reference
    np.testing.assert_array_equal(out[0], padded[0, 0:4, 1:5])  # top 0, left 1, no flip
    np.testing.assert_array_equal(out[1], padded[1, 2:6, 0:4][:, ::-1])  # top 2, left 0, flipped
    first, again, later = (_numpy(pad_crop.draws(7, step, 64, augmentation)) for step in (3, 3, 4))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, later, strict=True))
    tops, lefts, flips = first
    assert set(tops) == {0, 1, 2} and set(lefts) == {0, 1, 2} and 0 < flips.mean() < 1


def test_no_augmentation_is_the_identity():
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    draws = pad_crop.draws(0, 0, 3, pad_crop.Augmentation())
    np.testing.assert_array_equal(np.asarray(pad_crop.pad_crop_flip(images, draws, pad_crop.Augmentation())), images)


def test_normalisation_per_channel_and_he_et_al_per_pixel_mean():
    images = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    channel = np.asarray(Normalisation.from_images(images, "channel")(images))
    np.testing.assert_allclose(channel.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(channel.std(axis=(0, 1, 2)), 1, atol=1e-4)
    pixel = np.asarray(Normalisation.from_images(images, "pixel_mean")(images))
    np.testing.assert_allclose(pixel.mean(axis=0), 0, atol=1e-6)  # every pixel position is centred...
    np.testing.assert_allclose(pixel, images / 255 - (images / 255).mean(axis=0), atol=1e-6)  # ...and not scaled


def test_a_held_out_validation_split_is_the_train_tail_and_the_test_split_stays(prepared_cifar):
    data_dir, records = prepared_cifar("cifar10")
    config = cifar10.get_config("resnet20")
    config.update(dict(data_dir=data_dir, validation_examples=25))
    datasets = datasets_for(config, 8)
    assert datasets.num_train_examples == 100 - 25
    assert {name: split.num_examples for name, split in datasets.eval_splits.items()} == {"val": 25, "eval": 30}
    train = tfds_source.load_split("cifar10", "train", data_dir)
    val = list(datasets.eval_splits["val"].batches())
    mask = np.concatenate([b["mask"] for b in val]).astype(bool)
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in val])[mask], train["label"][-25:])
    val_images = np.concatenate([b["image"] for b in val])[mask]
    np.testing.assert_array_equal(val_images, train["image"][-25:])  # uint8 as stored; the step normalises
    expected = Normalisation.from_images(train["image"][:-25], config.normalisation)  # from the train part only
    np.testing.assert_allclose(datasets.normalisation.mean, expected.mean)
    np.testing.assert_allclose(datasets.normalisation.std, expected.std)
    test = list(datasets.eval_splits["eval"].batches())
    test_labels = np.concatenate([b["label"] for b in test])[np.concatenate([b["mask"] for b in test]).astype(bool)]
    assert sorted(test_labels) == sorted(label for label, _ in records["test"])


def test_training_on_prepared_cifar10_and_a_missing_dataset_stops_before_compiling(
    prepared_cifar, tmp_path, monkeypatch
):
    config = cifar10.get_config("resnet20")
    config.update(dict(data_dir=prepared_cifar("cifar10")[0], batch_size=16, bn_group_size=0, num_train_steps=2))
    config.validation_examples = 20
    config.update(dict(warmup_steps=0, lr_boundaries=(1,), eval_every_steps=2, checkpoint_every_steps=2))
    results = loop.train_and_evaluate(config, tmp_path / "run")
    assert results["step"] == 2 and results["num_eval_examples"] == 30  # 30 test records, padded to 2 x 16
    assert results["num_val_examples"] == 20
    assert_whole_images(results["val/top1"], 20)
    assert_whole_images(results["eval/top1"], 30)

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before finding the dataset missing")

    monkeypatch.setattr(loop.jax, "jit", no_compiling)
    config.data_dir = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not prepared"):
        loop.train_and_evaluate(config, tmp_path / "run2")
