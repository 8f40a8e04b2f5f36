"""Photos (large or varying images) from ``folder:`` and ``tfds:`` datasets through the streamed pipeline:
every image once with its sorted-class label, exact PNG pixels in the records, statistics computed from
the train split, every eval example counted once, train batches a function of (seed, step), exact resume
through the real command, and options the pipeline would ignore refused."""

import io
import json
import os
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from archives import PHOTO_CLASSES as CLASSES
from archives import PHOTO_SIZES as SIZES
from archives import write_photos
from conftest import assert_one_error_paragraph, datasets_for, main_command
from PIL import Image

from configs import default
from resnet_jax import data
from resnet_jax.data import fields as data_fields
from resnet_jax.data import spec
from resnet_jax.data.augment import crops
from resnet_jax.data.sources import records
from resnet_jax.errors import ConfigError
from resnet_jax.train import checkpoint
from resnet_jax.train.settings import default_values, validate

REPO = Path(__file__).resolve().parents[1]


def _values(dataset: str, data_dir: Path, **fields) -> dict:
    return default_values() | {"dataset": dataset, "data_dir": str(data_dir), **fields}


def _config(dataset: str, data_dir: Path, **fields):
    return data_fields.SECTION.settings(_values(dataset, data_dir, **fields))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "zoo"
    written = write_photos(root, {"train": 4, "test": 3})
    data_dir = root.parent / "data"
    return root, data_dir, written, data.open_dataset(_config(f"folder:{root}", data_dir))


def test_photos_of_two_sizes_are_streamed_with_every_image_once_labelled_by_its_sorted_class(photos):
    root, data_dir, written, source = photos
    assert isinstance(source, records.RecordSource) and source.spec.pipeline == spec.STREAMED
    assert source.spec.class_names == ("Bee", "cat", "owl") and source.spec.num_classes == 3
    assert source.spec.splits == {"train": 13, "test": 9} and source.spec.image_shape == (None, None, 3)
    for split, images in written.items():
        stored = tfds.as_numpy(source.builder.as_dataset(split=split, shuffle_files=False))
        pngs, jpegs = [], []
        for example in stored:
            image, label = example["image"], int(example["label"])
            (pngs if image.shape[:2] == SIZES[0] else jpegs).append((label, image))
        expected_pngs = sorted(
            (source.spec.class_names.index(name), pixels.tobytes()) for name, fmt, pixels in images if fmt == "png"
        )
        assert sorted((label, image.tobytes()) for label, image in pngs) == expected_pngs  # PNG pixels exact
        expected_jpegs = [(name, pixels) for name, fmt, pixels in images if fmt == "jpeg"]
        assert sorted(label for label, _ in jpegs) == sorted(
            source.spec.class_names.index(name) for name, _ in expected_jpegs
        )
        assert all(image.shape == (*SIZES[1], 3) for _, image in jpegs)


def test_the_statistics_are_the_train_splits_per_channel_mean_and_std_over_every_pixel(photos):
    root, _, written, source = photos
    pixels = []
    for path in sorted((root / "train").rglob("*.*")):  # decoded by Pillow, independently of the records
        pixels.append(np.asarray(Image.open(path).convert("RGB"), np.float64).reshape(-1, 3) / 255)
    every = np.concatenate(pixels)
    np.testing.assert_allclose(source.spec.mean, every.mean(0), rtol=1e-9)
    np.testing.assert_allclose(source.spec.std, every.std(0), rtol=1e-9)
    datasets = datasets_for(_values(f"folder:{root}", photos[1], image_size=32), 4)
    np.testing.assert_allclose(datasets.normalisation.mean, every.mean(0), rtol=1e-9)


def test_eval_counts_every_test_photo_once_and_train_batches_are_a_function_of_the_step(photos):
    root, data_dir, written, source = photos
    config = _values(f"folder:{root}", data_dir, image_size=32, random_flip=True, shuffle_buffer_size=8)
    datasets = datasets_for(config, 4)
    assert datasets.image_shape == (32, 32, 3) and datasets.num_train_examples == 13
    batches = list(datasets.eval_splits["eval"].batches())
    mask = np.concatenate([batch["mask"] for batch in batches])
    labels = np.concatenate([batch["label"] for batch in batches])[mask == 1]
    assert mask.sum() == 9 == datasets.eval_splits["eval"].num_examples
    assert sorted(labels) == sorted(source.spec.class_names.index(name) for name, _, _ in written["test"])
    first = [next(iter(datasets.train_batches(0))) for _ in range(2)]
    np.testing.assert_array_equal(first[0]["image"], first[1]["image"])  # the same (seed, step), the same batch
    stream = datasets.train_batches(0)
    run = [next(stream) for _ in range(5)]  # past the first epoch (13 examples, batch 4)
    resumed = next(datasets.train_batches(4))
    for field in ("image", "label"):
        np.testing.assert_array_equal(resumed[field], run[4][field])
    assert run[0]["image"].shape == (4, 32, 32, 3) and run[0]["image"].dtype == np.uint8


def test_a_png_eval_crop_is_the_centre_window_resized_as_pil_does_it():
    pixels = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    got = crops.eval_image(tf.constant(buffer.getvalue()), crops.Crops(image_size=28, eval_resize=32)).numpy()
    # By hand: shorter side 64 -> 32 halves it, so the centre 28 crop is the centre 56 x 56 window of the
    # original (rows 4..60, columns 20..76), which PIL resizes to 28 x 28.
    expected = np.asarray(Image.fromarray(pixels).crop((20, 4, 76, 60)).resize((28, 28), Image.BILINEAR))
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 6 and difference.mean() < 1.2  # resampling differences only, in uint8 levels
    assert crops.Crops(image_size=224).eval_side == 256 and crops.Crops(image_size=32).eval_side == 37


def test_the_pipeline_field_overrides_the_choice_and_in_memory_refuses_varying_sizes(photos, tmp_path):
    root, data_dir, _, source = photos
    with pytest.raises(ConfigError, match=r"varying size \(72x96, 80x66\).*--config.pipeline=streamed"):
        data.open_dataset(_config(f"folder:{root}", data_dir, pipeline="in_memory"))
    assert list((data_dir / records.DIRECTORY).glob("folder_zoo_*.json"))  # the refusal removed nothing
    small = tmp_path / "small"
    for split in ("train", "test"):
        for name in CLASSES:
            (small / split / name).mkdir(parents=True)
            Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(small / split / name / "a.png")
    assert isinstance(data.open_dataset(_config(f"folder:{small}", tmp_path / "d")), tuple)  # auto: in memory
    streamed = data.open_dataset(_config(f"folder:{small}", tmp_path / "d", pipeline="streamed"))
    assert isinstance(streamed, records.RecordSource) and streamed.spec.image_shape == (8, 8, 3)
    assert isinstance(data.open_dataset(_config(f"folder:{small}", tmp_path / "d")), tuple)  # auto: still in memory


def test_options_that_cannot_apply_to_photos_are_refused_before_training(photos):
    root, data_dir, _, _ = photos
    with pytest.raises(ConfigError, match=r"normalisation='imagenet'.*has 1-channel images"):
        datasets_for(_values("digits", data_dir, normalisation="imagenet", pipeline="streamed"), 4)
    sliced = _values(f"folder:{root}", data_dir, image_size=16, validation_examples=2)
    datasets = datasets_for(sliced, 4)  # the tail of a whole split is held out
    assert datasets.num_train_examples == 11 and datasets.eval_splits["val"].num_examples == 2
    config = default.get_config()  # the synthetic dataset
    config.pipeline = "streamed"
    with pytest.raises(ConfigError, match="synthetic dataset is made batch by batch"):
        validate(config)


def test_a_tfds_dataset_of_varying_image_sizes_is_streamed_with_its_statistics(tmp_path):
    rng = np.random.default_rng(5)
    examples = {
        split: [
            (str(i), {"photo": rng.integers(0, 256, (70 + i, 90 - i, 3), dtype=np.uint8), "kind": i % 2})
            for i in range(count)
        ]
        for split, count in (("train", 6), ("validation", 3))
    }
    features = tfds.features.FeaturesDict(
        {"photo": tfds.features.Image(shape=(None, None, 3)), "kind": tfds.features.ClassLabel(names=["a", "b"])}
    )
    tfds.dataset_builders.store_as_tfds_dataset(
        "varying_photos_toy", "1.0.0", features, examples, data_dir=str(tmp_path), disable_shuffling=True
    )
    source = data.open_dataset(_config("tfds:varying_photos_toy", tmp_path))
    assert isinstance(source, records.RecordSource) and (source.image_key, source.label_key) == ("photo", "kind")
    assert source.spec.splits == {"train": 6, "validation": 3} and source.spec.test_split == "validation"
    every = np.concatenate([e["photo"].reshape(-1, 3) for _, e in examples["train"]]).astype(np.float64) / 255
    np.testing.assert_allclose(source.spec.mean, every.mean(0), rtol=1e-9)
    np.testing.assert_allclose(source.spec.std, every.std(0), rtol=1e-9)
    datasets = datasets_for(_values("tfds:varying_photos_toy", tmp_path, image_size=16), 4)
    mask = np.concatenate([batch["mask"] for batch in datasets.eval_splits["eval"].batches()])
    assert mask.sum() == 3 and next(datasets.train_batches(0))["image"].shape == (4, 16, 16, 3)
    sliced = _values("tfds:varying_photos_toy", tmp_path, train_split="train[:4]", validation_examples=1)
    with pytest.raises(ConfigError, match=r"cannot slice again when the split is already 'train\[:4\]'"):
        datasets_for(sliced, 4)


def _command(workdir: Path, root: Path, data_dir: Path, *flags: str) -> list[str]:
    return main_command(
        workdir,
        f"--config.dataset=folder:{root}",
        f"--config.data_dir={data_dir}",
        "--config.image_size=16",
        "--config.batch_size=4",
        "--config.shuffle_buffer_size=8",
        "--config.random_flip=True",
        "--config.schedule=constant",
        "--config.learning_rate=0.01",
        "--config.log_every_steps=2",
        *flags,
    )


def _run(command: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_an_in_memory_option_on_photos_is_refused_through_the_real_command(photos, tmp_path):
    root, data_dir, _, _ = photos
    workdir = tmp_path / "run"
    result = _run(_command(workdir, root, data_dir, "--config.crop_padding=4", "--config.num_train_steps=2"))
    assert_one_error_paragraph(result, r"crop_padding=4: options of the in_memory pipeline.*streamed", workdir)


@pytest.mark.slow
@pytest.mark.extended  # the streamed batches of a resumed run: test_imagenet checks them without a whole run
def test_a_streamed_folder_run_resumes_bitwise_through_the_real_command(photos, tmp_path):
    root, data_dir, _, _ = photos

    def train(workdir: Path, steps: int) -> dict:
        flags = (
            f"--config.num_train_steps={steps}",
            "--config.checkpoint_every_steps=3",
            "--config.eval_every_steps=3",
        )
        result = _run(_command(workdir, root, data_dir, *flags))
        assert result.returncode == 0, result.stderr[-3000:]
        return checkpoint.load_tree(workdir)

    train(tmp_path / "resumed", 3)
    resumed = train(tmp_path / "resumed", 6)  # continues from step 3's checkpoint, past the first epoch
    uninterrupted = train(tmp_path / "uninterrupted", 6)
    assert int(resumed["step"]) == 6
    for a, b in zip(jax.tree_util.tree_leaves(resumed), jax.tree_util.tree_leaves(uninterrupted), strict=True):
        np.testing.assert_array_equal(a, b)
    results = json.loads((tmp_path / "uninterrupted" / "results.json").read_text())
    assert results["num_eval_examples"] == 9
    config = json.loads((tmp_path / "uninterrupted" / "config.json").read_text())
    assert (config["num_classes"], config["image_size"]) == (3, 16)
