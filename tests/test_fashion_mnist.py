"""Fashion-MNIST prepared offline from IDX files in the original format, checksums, errors and a short run."""

import dataclasses
import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from archives import FASHION_MNIST_FILES, write_fashion_mnist_files
from conftest import assert_whole_images

from configs import fashion_mnist as fashion_mnist_config
from resnet_jax.data import prepare
from resnet_jax.data.sources import checksum, fashion_mnist, tfds_source
from resnet_jax.errors import ExitCode, InvalidFilesError, MissingFilesError
from resnet_jax.train import loop

pytestmark = pytest.mark.xdist_group("fashion_mnist")  # one worker prepares the miniature dataset once
ROOT = Path(__file__).resolve().parents[1]
FILE_NAMES = [name for pair in FASHION_MNIST_FILES.values() for name in pair]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A miniature Fashion-MNIST written in the original format and prepared: (data_dir, written examples)."""
    manual_dir = tmp_path_factory.mktemp("fashion_mnist_files")
    written = write_fashion_mnist_files(manual_dir)
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.main(["fashion_mnist", "--data_dir", str(data_dir), "--manual_dir", str(manual_dir), "--skip_checksum"])
    return str(data_dir), written


def test_every_record_arrives_once_with_its_label_and_exact_pixels(prepared):
    data_dir, written = prepared
    for split, records in written.items():
        loaded = tfds_source.load_split("fashion_mnist", split, data_dir)
        assert loaded["image"].shape == (len(records), 28, 28, 1) and loaded["image"].dtype == np.uint8
        got = sorted(
            (int(label), image.tobytes()) for label, image in zip(loaded["label"], loaded["image"], strict=True)
        )
        assert got == sorted((label, image.tobytes()) for label, image in records)


def test_the_prepared_directory_is_tfds_own_fashion_mnist(prepared):
    import tensorflow_datasets as tfds

    data_dir, written = prepared
    builder = tfds.builder("fashion_mnist", data_dir=data_dir)  # the stock builder reads what we wrote
    assert builder.is_prepared() and str(builder.version) == "3.0.1"
    assert builder.info.features["label"].names[0] == "T-shirt/top"
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {
        split: len(records) for split, records in written.items()
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _official(directory: Path, upstream: bool) -> tuple[checksum.Archive, ...]:
    """The four files' checksum records as if the files in ``directory`` were the official ones: the gzip
    bytes' sha256 (``upstream``), or a different gzip digest and the decompressed content's sha256."""
    records = []
    for name in FILE_NAMES:
        raw = (directory / name).read_bytes()
        digest = _sha256(raw) if upstream else _sha256(b"another gzip of the same content")
        records.append(checksum.Archive(name, digest, gunzipped_digest=_sha256(gzip.decompress(raw))))
    return tuple(records)


@pytest.mark.parametrize("path", ["upstream", "debian"])
def test_either_the_upstream_gzip_or_its_recompressed_content_passes_the_checksum(path, tmp_path, monkeypatch):
    write_fashion_mnist_files(tmp_path, mtime=1)
    monkeypatch.setattr(fashion_mnist, "FILES", _official(tmp_path, upstream=path == "upstream"))
    if path == "debian":  # same content, new gzip bytes
        write_fashion_mnist_files(tmp_path, mtime=2)
    location = prepare.prepare("fashion_mnist", str(tmp_path / "tfds"), str(tmp_path))
    assert Path(location).name == "3.0.1"


def test_a_file_with_other_content_fails_the_checksum_naming_it(tmp_path, monkeypatch):
    write_fashion_mnist_files(tmp_path)
    monkeypatch.setattr(fashion_mnist, "FILES", _official(tmp_path, upstream=False))
    write_fashion_mnist_files(tmp_path, seed=1)  # other pixels and labels
    with pytest.raises(InvalidFilesError, match="train-images-idx3-ubyte.gz.*--skip_checksum"):
        prepare.prepare("fashion_mnist", str(tmp_path / "tfds"), str(tmp_path))


def test_the_recorded_digests_match_debians_files_where_installed():
    if fashion_mnist.default_manual_dir() is None:
        pytest.skip("Debian's dataset-fashion-mnist is not installed on this machine")
    for record in fashion_mnist.FILES:  # the real values: Debian's re-compressed files pass on their content
        checksum.verify_archive(fashion_mnist.DEBIAN_DIR / record.filename, record, skip_checksum=False)
        with pytest.raises(InvalidFilesError):
            checksum.verify_archive(
                fashion_mnist.DEBIAN_DIR / record.filename,
                dataclasses.replace(record, gunzipped_digest="0" * 64),
                skip_checksum=False,
            )


def test_a_truncated_idx_header_is_refused(tmp_path):
    write_fashion_mnist_files(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + gzip.decompress(path.read_bytes())[4:]))  # labels as images
    with pytest.raises(InvalidFilesError, match="expected IDX file"):
        prepare.prepare("fashion_mnist", str(tmp_path / "tfds"), str(tmp_path), skip_checksum=True)


def test_missing_files_are_one_error_naming_the_package_and_the_four_files(tmp_path, monkeypatch):
    write_fashion_mnist_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MissingFilesError) as error:
        prepare.prepare("fashion_mnist", str(tmp_path / "tfds"), str(tmp_path))
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message and "t10k-labels-idx1-ubyte.gz missing in" in message
    assert all(name in message for name in FILE_NAMES)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "not_installed")  # no package, no --manual_dir
    with pytest.raises(MissingFilesError, match="no --manual_dir given"):
        prepare.prepare("fashion_mnist", str(tmp_path / "tfds"))


def test_the_prepare_command_prints_the_error_without_a_traceback(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "resnet_jax.data.prepare", "fashion_mnist", "--data_dir", str(tmp_path / "tfds")]
        + ["--manual_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert completed.returncode == ExitCode.USER_ERROR
    assert completed.stderr.startswith("error: Fashion-MNIST needs its four original files")
    assert "Traceback" not in completed.stderr


def _config(data_dir: str, **overrides):
    config = fashion_mnist_config.get_config("resnet20,erasing,budget")
    config.data_dir = data_dir
    for field, value in dict(num_epochs=0, num_train_steps=4, batch_size=8, log_every_steps=2, **overrides).items():
        setattr(config, field, value)
    config.eval_every_steps = config.checkpoint_every_steps = 4
    return config


def test_training_without_the_files_stops_before_compiling(tmp_path, monkeypatch):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before checking the dataset")

    monkeypatch.setattr(loop.jax, "jit", no_compiling)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "not_installed")
    with pytest.raises(MissingFilesError, match="apt-get install dataset-fashion-mnist"):
        loop.train_and_evaluate(_config(str(tmp_path / "tfds")), tmp_path / "workdir")
    assert not (tmp_path / "workdir" / "checkpoints").exists()


def test_a_short_run_with_random_erasing_on_the_miniature_dataset(prepared, tmp_path):
    data_dir, written = prepared
    results = loop.train_and_evaluate(_config(data_dir), tmp_path)
    assert results["step"] == 4 and results["num_eval_examples"] == len(written["test"])
    assert_whole_images(results["eval/top1"], len(written["test"]))
    assert np.isfinite(results["eval/loss"])
    record = (tmp_path / "config.json").read_text()
    assert '"probability": 0.5' in record and '"dataset": "fashion_mnist"' in record


def _stored(data_dir: str, dataset: str):
    from resnet_jax import data
    from resnet_jax.data import fields as data_fields
    from resnet_jax.train.settings import default_values

    config = default_values() | {"dataset": dataset, "data_dir": data_dir}
    return data.open_dataset(data_fields.SECTION.settings(config))


def _multiset(split: dict) -> list:
    return sorted((int(label), image.tobytes()) for image, label in zip(split["image"], split["label"], strict=True))


def test_tfds_fashion_mnist_by_name_gives_exactly_the_named_datasets_examples(prepared):
    data_dir, _ = prepared
    named, named_spec = _stored(data_dir, "fashion_mnist")
    by_name, spec = _stored(data_dir, "tfds:fashion_mnist")
    for split in ("train", "test"):
        for field in ("image", "label"):
            np.testing.assert_array_equal(by_name[split][field], named[split][field])  # same order too
    assert (spec.num_classes, spec.class_names) == (named_spec.num_classes, named_spec.class_names)


def test_a_folder_exported_from_fashion_mnist_gives_the_same_pixels_and_labels(prepared, tmp_path):
    from experiments import export_fashion_mnist_folders as export

    data_dir, _ = prepared
    named, named_spec = _stored(data_dir, "fashion_mnist")
    present = np.unique(named["train"]["label"])  # the miniature may lack a class: labels are then re-indexed
    for split in ("train", "test"):
        named[split] = {k: v[np.isin(named[split]["label"], present)] for k, v in named[split].items()}
        rows = np.arange(len(named[split]["label"]))
        export.write_split(
            named[split]["image"], named[split]["label"], rows, tmp_path / "fm" / split, named_spec.class_names
        )
    from_folder, spec = _stored(str(tmp_path / "data"), f"folder:{tmp_path / 'fm'}")
    for split in ("train", "test"):
        relabelled = {**named[split], "label": np.searchsorted(present, named[split]["label"])}
        assert _multiset(from_folder[split]) == _multiset(relabelled)
    assert spec.image_shape == (28, 28, 1)
