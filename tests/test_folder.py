"""``folder:PATH`` datasets: every image once with its sorted-class label, exact PNG pixels, fingerprinted
copies, bad layouts as one paragraph through the real command, and exact resume on 1 and 8 devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import assert_one_error_paragraph, main_command
from PIL import Image

from resnet_jax import data
from resnet_jax.data import fields as data_fields
from resnet_jax.data.sources import arrays, folder_listing
from resnet_jax.errors import ConfigError, ExitCode, InvalidFilesError, MissingFilesError
from resnet_jax.train import checkpoint
from resnet_jax.train.settings import default_values

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("cat", "Dog", "ant", "bird")  # sorted as torchvision sorts: 'Dog' < 'ant' < 'bird' < 'cat'


def write_folder(root: Path, side: int, per_class: dict[str, int], fmt: str = "png", seed: int = 0, colour=True):
    """Write ``root/SPLIT/CLASS/NAME.fmt`` images; returns {split: [(class name, pixels as written)]}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in per_class.items():
        written[split] = []
        for name in CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                shape = (side, side, 3) if colour else (side, side)
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index:03d}.{fmt}")
                written[split].append((name, pixels))
    return written


def load(path: Path, data_dir: Path):
    config = default_values() | {"dataset": f"folder:{path}", "data_dir": str(data_dir)}
    return data.open_dataset(data_fields.SECTION.settings(config))


def as_multiset(images: np.ndarray, labels: np.ndarray) -> list:
    return sorted((int(label), image.tobytes()) for image, label in zip(images, labels, strict=True))


@pytest.mark.parametrize("side", [8, 12])
def test_png_folders_give_every_image_once_with_its_sorted_class_label_and_exact_pixels(tmp_path, side):
    written = write_folder(tmp_path / "pets", side, {"train": 3, "test": 2})
    stored, spec = load(tmp_path / "pets", tmp_path / "data")
    assert spec.class_names == ("Dog", "ant", "bird", "cat")  # Python's sorted(), as torchvision's ImageFolder
    assert spec.num_classes == 4 and spec.image_shape == (side, side, 3)
    assert spec.splits == {"train": 12, "test": 8}
    for split, records in written.items():
        expected = sorted((spec.class_names.index(name), pixels.tobytes()) for name, pixels in records)
        assert as_multiset(stored[split]["image"], stored[split]["label"]) == expected
    train = np.stack([pixels for _, pixels in written["train"]]).astype(np.float64) / 255
    np.testing.assert_allclose(spec.mean, train.mean(axis=(0, 1, 2)), rtol=1e-12)  # stored with the copy
    np.testing.assert_allclose(spec.std, train.std(axis=(0, 1, 2)), rtol=1e-12)


def test_jpeg_folders_decode_as_pillow_decodes_them(tmp_path):
    write_folder(tmp_path / "photos", 16, {"train": 2, "val": 1}, fmt="jpg")
    stored, spec = load(tmp_path / "photos", tmp_path / "data")
    assert spec.splits == {"train": 8, "test": 4}  # 'val' is the test split when there is no 'test'
    for split, folder_name in (("train", "train"), ("test", "val")):
        files = sorted((tmp_path / "photos" / folder_name).glob("*/*.jpg"), key=os.fspath)
        expected = sorted(
            (spec.class_names.index(path.parent.name), np.asarray(Image.open(path).convert("RGB")).tobytes())
            for path in files
        )
        assert as_multiset(stored[split]["image"], stored[split]["label"]) == expected


def test_grayscale_and_colour_mixed_become_colour_as_pillow_converts_them(tmp_path):
    root = tmp_path / "mixed"
    write_folder(root, 8, {"train": 1, "test": 1}, colour=False)
    gray = np.asarray(Image.open(root / "train" / "ant" / "000.png"))
    Image.fromarray(np.full((8, 8, 3), (10, 200, 30), np.uint8)).save(root / "train" / "ant" / "colour.png")
    stored, spec = load(root, tmp_path / "data")
    assert spec.image_shape == (8, 8, 3)
    images = {image.tobytes() for image in stored["train"]["image"]}
    assert np.repeat(gray[..., None], 3, axis=-1).tobytes() in images  # L -> RGB replicates the gray value


def test_all_grayscale_stays_one_channel(tmp_path):
    write_folder(tmp_path / "gray", 8, {"train": 1, "test": 1}, colour=False)
    _, spec = load(tmp_path / "gray", tmp_path / "data")
    assert spec.image_shape == (8, 8, 1)


def test_an_unchanged_folder_reuses_its_copy_and_a_changed_one_is_rebuilt(tmp_path, caplog):
    root, data_dir = tmp_path / "pets", tmp_path / "data"
    write_folder(root, 8, {"train": 2, "test": 1})
    load(root, data_dir)
    first = arrays.copy_path(folder_listing.copy_name(folder_listing.list_folder(str(root))), str(data_dir))
    stamp = first.stat().mtime
    load(root, data_dir)
    assert first.stat().mtime == stamp  # read back, not rebuilt
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "train" / "cat" / "new.png")
    with caplog.at_level("WARNING"):
        stored, spec = load(root, data_dir)
    assert spec.splits["train"] == 9
    assert "changed since" in caplog.text and "rebuilding" in caplog.text
    assert not first.exists() and len(list((data_dir / arrays.DIRECTORY).glob("folder_pets_*.npz"))) == 1


def test_relative_paths_and_home_are_the_same_folder(tmp_path, monkeypatch):
    write_folder(tmp_path / "pets", 8, {"train": 1, "test": 1})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    fingerprints = {folder_listing.list_folder(path).fingerprint for path in ("pets", "~/pets", str(tmp_path / "pets"))}
    assert len(fingerprints) == 1
    assert folder_listing.root_of("~/pets") == folder_listing.root_of("pets")


def test_a_few_unreadable_images_are_skipped_and_counted_and_many_are_an_error(tmp_path, caplog):
    root = tmp_path / "pets"
    write_folder(root, 8, {"train": 30, "test": 1})  # 120 train images
    (root / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    with caplog.at_level("WARNING"):
        _, spec = load(root, tmp_path / "data")
    assert spec.splits["train"] == 120 and "Skipped 1 unreadable" in caplog.text
    for index in range(3):
        (root / "train" / "ant" / f"broken{index}.png").write_bytes(b"\x89PNG damaged")
    with pytest.raises(InvalidFilesError, match=r"4 of the 124 images .* cannot be read .*broken"):
        load(root, tmp_path / "data")


def test_images_of_several_sizes_cannot_be_held_in_memory_and_the_error_says_what_to_do(tmp_path):
    root = tmp_path / "sizes"
    write_folder(root, 8, {"train": 1, "test": 1})
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(root / "train" / "cat" / "tall.png")
    config = default_values() | {
        "dataset": f"folder:{root}",
        "data_dir": str(tmp_path / "data"),
        "pipeline": "in_memory",
    }
    with pytest.raises(ConfigError, match=r"varying size \(8x8, 9x8\).*--config.pipeline=streamed"):
        data.open_dataset(data_fields.SECTION.settings(config))


def _command(workdir: Path, dataset: str, data_dir: Path, *flags: str) -> list[str]:
    return main_command(
        workdir,
        f"--config.dataset={dataset}",
        f"--config.data_dir={data_dir}",
        "--config.batch_size=16",
        "--config.schedule=constant",
        "--config.learning_rate=0.01",
        "--config.crop_padding=2",
        "--config.random_flip=True",
        "--config.log_every_steps=4",
        "--config.eval_every_steps=1000",
        *flags,
    )


def _run(command: list[str], num_devices: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _make_bad(kind: str, root: Path) -> str:
    if kind == "no class folders":
        (root / "train").mkdir(parents=True)
        (root / "test").mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "train" / "loose.png")
    elif kind == "no test split":
        write_folder(root, 8, {"train": 1})
    elif kind == "empty class":
        write_folder(root, 8, {"train": 1, "test": 1})
        (root / "train" / "zebra").mkdir()
    return f"folder:{root}"


@pytest.mark.parametrize(
    "kind, words",
    [
        ("no class folders", r"has no class subfolders.*CLASS/IMAGE"),
        ("no test split", r"has no test \(or val\) split.*train/CLASS/IMAGE"),
        ("empty class", r"zebra holds no images.*Add its images or remove the folder"),
    ],
)
def test_a_bad_folder_is_one_paragraph_through_the_real_command_and_leaves_no_workdir(tmp_path, kind, words):
    dataset = _make_bad(kind, tmp_path / "bad")
    workdir = tmp_path / "run"
    result = _run(_command(workdir, dataset, tmp_path / "data", "--config.num_train_steps=2"))
    assert_one_error_paragraph(result, words, workdir)


def test_num_classes_that_disagrees_with_the_folder_names_both_numbers(tmp_path):
    write_folder(tmp_path / "pets", 8, {"train": 1, "test": 1})
    workdir = tmp_path / "run"
    command = _command(workdir, f"folder:{tmp_path / 'pets'}", tmp_path / "data", "--config.num_classes=10")
    result = _run([*command, "--config.num_train_steps=2"])
    assert_one_error_paragraph(result, "has 4 classes but the model has num_classes=10", workdir)


def test_layout_errors_are_user_errors():
    with pytest.raises(MissingFilesError, match="there is no directory"):
        folder_listing.list_folder("/nonexistent/folder/of/images")


@pytest.mark.slow
@pytest.mark.extended  # resumes bitwise: also test_streamed_datasets, test_lean_runs; 1 vs 8 devices: test_step
def test_a_folder_run_resumes_bitwise_and_1_and_8_devices_agree(tmp_path):
    write_folder(tmp_path / "pets", 8, {"train": 10, "test": 5})
    dataset, data_dir = f"folder:{tmp_path / 'pets'}", tmp_path / "data"

    def train(workdir: Path, steps: int, num_devices: int) -> dict:
        result = _run(
            _command(
                workdir, dataset, data_dir, f"--config.num_train_steps={steps}", "--config.checkpoint_every_steps=6"
            ),
            num_devices,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return checkpoint.load_tree(workdir)

    resumed_workdir = tmp_path / "resumed"
    train(resumed_workdir, 6, 8)
    resumed = train(resumed_workdir, 12, 8)  # continues from step 6's checkpoint
    uninterrupted = train(tmp_path / "uninterrupted", 12, 8)
    assert int(resumed["step"]) == 12
    for a, b in zip(jax.tree_util.tree_leaves(resumed), jax.tree_util.tree_leaves(uninterrupted), strict=True):
        np.testing.assert_array_equal(a, b)
    # 1 and 8 devices: the same global batches (tests/test_feed.py checks them bitwise), so the same training
    # up to float reassociation of the reductions. Compared over the first three steps: on these noise images
    # with crop and flip, one pre-activation within rounding of 0 flips its ReLU at step four (a jump of
    # 8.5e-5, not a drift), after which the two runs are no longer comparable to a tight tolerance.
    few = {devices: train(tmp_path / f"devices{devices}", 3, devices)["params"] for devices in (1, 8)}
    for a, b in zip(jax.tree_util.tree_leaves(few[1]), jax.tree_util.tree_leaves(few[8]), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(b).max(), rtol=0)
    results = json.loads((tmp_path / "uninterrupted" / "results.json").read_text())
    assert results["num_eval_examples"] == 20
    config = json.loads((tmp_path / "uninterrupted" / "config.json").read_text())
    assert (config["num_classes"], config["image_size"]) == (4, 8)  # 0 in the config: the dataset's, recorded


def test_the_prepare_command_builds_a_folder_and_says_what_it_holds(tmp_path):
    write_folder(tmp_path / "pets", 8, {"train": 2, "test": 1})
    command = [
        sys.executable,
        "-m",
        "resnet_jax.data.prepare",
        f"folder:{tmp_path / 'pets'}",
        "--data_dir",
        str(tmp_path / "d"),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = "4 classes (Dog, ant, bird, cat); train 8, test 4 images (8x8x3); fed by the in_memory pipeline"
    assert summary in result.stdout
    assert list((tmp_path / "d" / arrays.DIRECTORY).glob("folder_pets_*.npz"))
    missing = subprocess.run(
        [*command[:3], f"folder:{tmp_path / 'nothing'}", *command[4:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == ExitCode.USER_ERROR and "Traceback" not in missing.stderr
    assert "there is no directory" in missing.stderr


@pytest.fixture(scope="module")
def bucket():
    from fake_gcs import FakeGCS

    with FakeGCS("photos"):
        yield "gs://photos"


@pytest.mark.slow
def test_a_folder_and_its_copy_on_gs_give_what_the_local_folder_gives(bucket, tmp_path, monkeypatch):
    from etils import epath

    monkeypatch.chdir(tmp_path)  # a gs:// path mistaken for a local one would appear here, as ./gs:
    write_folder(tmp_path / "pets", 8, {"train": 2, "test": 1})
    remote = epath.Path(f"{bucket}/pets")
    for path in (tmp_path / "pets").rglob("*.png"):
        target = remote / path.relative_to(tmp_path / "pets")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    local, local_spec = load(tmp_path / "pets", tmp_path / "data")
    stored, spec = load(f"{bucket}/pets", f"{bucket}/data")
    for split in ("train", "test"):
        np.testing.assert_array_equal(stored[split]["image"], local[split]["image"])
        np.testing.assert_array_equal(stored[split]["label"], local[split]["label"])
    assert spec.class_names == local_spec.class_names and spec.splits == local_spec.splits
    assert list(epath.Path(f"{bucket}/data/{arrays.DIRECTORY}").glob("folder_pets_*.npz"))
    assert not any(name.startswith("gs") for name in os.listdir(tmp_path))
