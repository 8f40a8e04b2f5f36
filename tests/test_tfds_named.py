"""``tfds:NAME``: features and splits found from the builder or named by fields, exact examples, and the
bad cases (not prepared, no image or label feature) as one paragraph through the real command."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_error_paragraph, main_command

from resnet_jax import data
from resnet_jax.data import fields as data_fields
from resnet_jax.errors import ConfigError
from resnet_jax.train.settings import default_values

pytestmark = pytest.mark.xdist_group("tfds_named")  # one worker writes the toy datasets once
REPO = Path(__file__).resolve().parents[1]


def _store(data_dir: Path, name: str, features: dict, splits: dict[str, int], seed: int = 0) -> dict:
    """Write a TFDS dataset with TFDS's own writer; returns {split: [example]} as written, in order."""
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(seed)

    def example(index: int) -> dict:
        values = {}
        for key, feature in features.items():
            if isinstance(feature, tfds.features.Image):
                values[key] = rng.integers(0, 256, feature.shape, dtype=np.uint8)
            elif isinstance(feature, tfds.features.ClassLabel):
                values[key] = index % feature.num_classes
            else:
                values[key] = str(index)
        return values

    written = {split: [example(i) for i in range(count)] for split, count in splits.items()}
    tfds.dataset_builders.store_as_tfds_dataset(
        name,
        "1.0.0",
        tfds.features.FeaturesDict(features),
        {split: [(str(i), e) for i, e in enumerate(examples)] for split, examples in written.items()},
        data_dir=str(data_dir),
        disable_shuffling=True,  # stored in the order written
    )
    return written


@pytest.fixture(scope="module")
def toys(tmp_path_factory) -> Path:
    import tensorflow_datasets as tfds

    data_dir = tmp_path_factory.mktemp("tfds")
    image, label = tfds.features.Image(shape=(6, 6, 3)), tfds.features.ClassLabel(names=["x", "y", "z"])
    _store(
        data_dir,
        "odd_keys_toy",
        {"picture": image, "category": label, "id": tfds.features.Text()},
        {"fit": 12, "holdout": 5},
    )
    _store(data_dir, "two_images_toy", {"picture": image, "thumb": image, "label": label}, {"train": 6, "test": 3})
    _store(data_dir, "no_label_toy", {"image": image, "caption": tfds.features.Text()}, {"train": 4, "test": 2})
    return data_dir


def _read(data_dir: Path, dataset: str, **fields):
    config = default_values() | {"dataset": dataset, "data_dir": str(data_dir), **fields}
    return data.open_dataset(data_fields.SECTION.settings(config))


def test_features_are_found_and_splits_named_by_the_fields_give_the_examples_exactly(toys):
    with pytest.raises(ConfigError, match=r"has the splits fit, holdout.*train_split and eval_split"):
        _read(toys, "tfds:odd_keys_toy")
    stored, spec = _read(toys, "tfds:odd_keys_toy", train_split="fit", eval_split="holdout")
    rng = np.random.default_rng(0)  # what _store wrote, regenerated in its order
    for split, count in (("train", 12), ("test", 5)):
        expected = [rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for _ in range(count)]
        np.testing.assert_array_equal(stored[split]["image"], np.stack(expected))
        np.testing.assert_array_equal(stored[split]["label"], np.arange(count) % 3)
    assert (spec.num_classes, spec.class_names, spec.image_shape) == (3, ("x", "y", "z"), (6, 6, 3))
    assert spec.splits == {"train": 12, "test": 5} and "'picture' and 'category'" in spec.source
    part, _ = _read(toys, "tfds:odd_keys_toy", train_split="fit[:4]", eval_split="holdout")
    np.testing.assert_array_equal(part["train"]["image"], stored["train"]["image"][:4])  # TFDS split syntax


def test_two_image_features_need_image_key_and_the_key_is_honoured(toys):
    with pytest.raises(ConfigError, match=r"has 2 Image features.*picture \(Image\).*--config.image_key=KEY"):
        _read(toys, "tfds:two_images_toy")
    picture, _ = _read(toys, "tfds:two_images_toy", image_key="picture")
    thumb, _ = _read(toys, "tfds:two_images_toy", image_key="thumb", label_key="label")
    assert not np.array_equal(picture["train"]["image"], thumb["train"]["image"])
    with pytest.raises(ConfigError, match=r"image_key='photo'.*no Image feature of that name"):
        _read(toys, "tfds:two_images_toy", image_key="photo")


def _main(workdir: Path, data_dir: Path, dataset: str, *flags: str) -> subprocess.CompletedProcess:
    command = main_command(
        workdir,
        f"--config.dataset={dataset}",
        f"--config.data_dir={data_dir}",
        "--config.num_train_steps=2",
        "--config.batch_size=4",
        *flags,
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "dataset, words",
    [
        (
            "tfds:no_label_toy",
            r"has no ClassLabel feature; its features are .*caption \(Text\).*needs an image and a class label",
        ),
        ("tfds:mnist", r"'tfds:mnist' is not prepared in .*python -m resnet_jax.data.prepare tfds:mnist --data_dir"),
        ("tfds:Bad Name", r"after 'tfds:' give a TFDS name"),
    ],
)
def test_bad_tfds_datasets_are_one_paragraph_through_the_real_command_and_leave_no_workdir(
    toys, tmp_path, dataset, words
):
    workdir = tmp_path / "run"
    assert_one_error_paragraph(_main(workdir, toys, dataset), words, workdir)


def test_a_tfds_dataset_trains_through_the_real_command_with_its_fields(toys, tmp_path):
    import json

    workdir = tmp_path / "run"
    result = _main(workdir, toys, "tfds:two_images_toy", "--config.image_key=thumb")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["num_eval_examples"] == 3
    config = json.loads((workdir / "config.json").read_text())
    assert (config["num_classes"], config["image_size"], config["image_key"]) == (3, 6, "thumb")
