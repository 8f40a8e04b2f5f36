"""Runs without TensorFlow: a prepared in-memory dataset is read from its numpy copy, TensorBoard events are
written by tensorboardX, and the real command trains, evaluates, checkpoints, resumes
and profiles in a process where TensorFlow and TFDS cannot be imported (``tests/without_tensorflow.py``)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import accelerator_image
import numpy as np
import pytest

from resnet_jax import data
from resnet_jax.data import spec
from resnet_jax.data.sources import arrays, named
from resnet_jax.errors import ExitCode
from resnet_jax.train import metrics

REPO = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = [sys.executable, str(REPO / "tests" / "without_tensorflow.py"), "-m"]


def _run(arguments: list[str], hide_tensorflow: bool = True) -> subprocess.CompletedProcess:
    command = [*(WITHOUT_TENSORFLOW if hide_tensorflow else [sys.executable, "-m"]), *arguments]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> str:
    """A data_dir holding digits' numpy copy, written through TFDS in this (TensorFlow-enabled) process."""
    pytest.importorskip("tensorflow_datasets", reason="writing the numpy copy needs the tfds extra")
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    named.write_numpy_copy("digits", data_dir)
    return data_dir


def test_the_numpy_copy_holds_exactly_what_tfds_reads(digits_dir):
    from resnet_jax.data.sources import tfds_source

    stored, dataset_spec = named.named_arrays("digits", digits_dir)
    splits = data.in_memory_splits(stored, dataset_spec, validation_examples=100)
    assert dataset_spec.num_classes == 10
    assert dataset_spec.splits == spec.known("digits").splits  # the facts recipes read before any file
    for ours, tfds_split in (("train", "train[:-100]"), ("val", "train[-100:]"), ("eval", "test")):
        loaded = tfds_source.load_split("digits", tfds_split, digits_dir)
        for field in ("image", "label"):
            np.testing.assert_array_equal(splits[ours][field], loaded[field])


def _digits_command(workdir: Path, digits_dir: str, steps: int, *flags: str) -> list[str]:
    return [
        "resnet_jax.main",
        "--config=configs/digits.py",
        f"--workdir={workdir}",
        f"--config.data_dir={digits_dir}",
        f"--config.num_train_steps={steps}",
        "--config.checkpoint_every_steps=4",
        "--config.eval_every_steps=4",
        "--config.log_every_steps=2",
        "--config.warmup_epochs=0",
        *flags,
    ]


@pytest.mark.slow
def test_the_command_trains_evaluates_checkpoints_resumes_and_profiles_without_tensorflow(tmp_path, digits_dir):
    workdir = tmp_path / "run"
    first = _run(_digits_command(workdir, digits_dir, 4))
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run(_digits_command(workdir, digits_dir, 20, "--config.profile=true"))  # traces steps 15-19
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resumed from" in second.stderr and "on every device" in second.stderr

    results = json.loads((workdir / "results.json").read_text())
    assert results["step"] == 20 and results["num_eval_examples"] == 360
    assert "20" in {path.name for path in (workdir / "checkpoints").iterdir()}
    events = sorted(workdir.glob("events.out.tfevents.*"))
    assert len(events) == 2  # one file per process
    written = {}
    for path in events:
        written.update(_scalars(path))
    assert {(2, "train/loss"), (20, "train/loss"), (20, "eval/top1"), (5, "startup/total_s")} <= set(written)
    assert written[(20, "eval/top1")] == pytest.approx(results["eval/top1"])
    assert list((workdir / "plugins" / "profile").glob("*/*.trace.json.gz"))  # jax.profiler's trace


def _scalars(path: Path) -> dict[tuple[int, str], float]:
    """(step, tag) -> value of an event file, read by TensorFlow itself (the format's reference reader)."""
    import tensorflow as tf

    found = {}
    for event in tf.compat.v1.train.summary_iterator(str(path)):
        for value in event.summary.value:
            found[(event.step, value.tag)] = value.simple_value
    return found


def test_the_tensorboard_writer_writes_events_that_tensorflow_reads(tmp_path):
    pytest.importorskip("tensorflow", reason="TensorFlow reads the events back: the tfds extra")
    writer = metrics.TensorBoardWriter(tmp_path)
    writer.write_scalars(3, {"train/loss": 0.25, "eval/top1": np.float32(0.5)})
    writer.write_scalars(7, {"train/loss": 0.125})
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    assert _scalars(path) == {(3, "train/loss"): 0.25, (3, "eval/top1"): 0.5, (7, "train/loss"): 0.125}


def test_without_tfds_and_without_a_numpy_copy_the_error_names_the_prepare_command_and_the_extra(tmp_path):
    workdir = tmp_path / "run"
    completed = _run(_digits_command(workdir, str(tmp_path / "empty"), 4))
    assert completed.returncode == ExitCode.USER_ERROR
    assert "Traceback" not in completed.stderr
    (line,) = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert "no numpy copy" in line and "python -m resnet_jax.data.prepare digits" in line
    assert "resnet_jax[tfds]" in line
    assert not workdir.exists()


def test_preparing_without_tfds_names_the_extra(tmp_path):
    completed = _run(["resnet_jax.data.prepare", "digits", "--data_dir", str(tmp_path)])
    assert completed.returncode == ExitCode.USER_ERROR and "Traceback" not in completed.stderr
    assert "error:" in completed.stderr and "resnet_jax[tfds]" in completed.stderr


def test_tensorflow_is_told_to_see_no_gpu_wherever_it_starts(monkeypatch):
    tf = pytest.importorskip("tensorflow", reason="the tfds extra is not installed")

    from resnet_jax.data.sources import tfds_source

    hidden = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind: hidden.append((list(devices), kind)))
    tfds_source.tensorflow.cache_clear()  # the first call in a process hides the GPU; later ones reuse it
    try:
        assert tfds_source.tensorflow() is tf and tfds_source.tensorflow() is tf
    finally:
        tfds_source.tensorflow.cache_clear()
    assert hidden == [([], "GPU")]


@pytest.mark.slow
def test_the_accelerator_check_runs_its_cpu_path(tmp_path):
    """experiments/accelerator_check.sh on a few CPU steps, TensorFlow hidden, on a stand-in Fashion-MNIST copy."""
    rng = np.random.default_rng(0)

    def split(count):
        return {
            "image": rng.integers(0, 256, (count, 28, 28, 1), np.uint8),
            "label": np.arange(count, dtype=np.int32) % 10,
        }

    data_dir = tmp_path / "data"
    stand_in = dataclasses.replace(spec.known("fashion_mnist"), splits={"train": 64, "test": 20}, source="test")
    arrays.save(arrays.copy_path("fashion_mnist", str(data_dir)), {"train": split(64), "test": split(20)}, stand_in)
    out = tmp_path / "out"
    flags = ["--config.num_train_steps=3", "--config.batch_size=16", "--config.eval_every_steps=3"]
    environment = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "PYTHON": f"{WITHOUT_TENSORFLOW[0]} {WITHOUT_TENSORFLOW[1]}",
    }
    command = ["bash", "experiments/accelerator_check.sh", "erasing", str(out), "300", *flags]
    completed = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + (out / "erasing.log").read_text()[-3000:]
    results = json.loads((out / "erasing" / "results.json").read_text())
    assert results["step"] == 3 and results["num_eval_examples"] == 20
    assert json.loads((out / "erasing" / "config.json").read_text())["random_erasing"]["probability"] == 0.5
    assert "jax" in (out / "device.txt").read_text()


@pytest.mark.slow
def test_installed_with_no_deps_on_an_accelerator_image_the_command_trains(tmp_path, digits_dir):
    """pip install --no-deps into an environment of jax, flax, optax, orbax, numpy, ml_collections, clu and
    tensorboardX alone (``accelerator_image``), then the digits job from its numpy copy."""
    site, package = tmp_path / "site", tmp_path / "package"
    linked = accelerator_image.link_environment(site)
    assert "flax" in linked and not any(name.lower().startswith("tensorflow") for name in linked)
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    installed = subprocess.run([*install, str(package), str(REPO)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    workdir = tmp_path / "run"
    arguments = _digits_command(workdir, digits_dir, 4)[1:]
    code = (
        "import runpy, sys\n"
        f"sys.path[:0] = [{str(package)!r}, {str(site)!r}]\n"
        f"sys.path.append({str(REPO)!r})  # the configs\n"
        "import resnet_jax\n"
        f"assert resnet_jax.__file__.startswith({str(package)!r}), resnet_jax.__file__\n"
        f"sys.argv = ['resnet_jax.main', *{arguments!r}]\n"
        "runpy.run_module('resnet_jax.main', run_name='__main__', alter_sys=True)\n"
    )
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads((workdir / "results.json").read_text())["step"] == 4
    assert list(workdir.glob("events.out.tfevents.*")) and (workdir / "checkpoints" / "4").exists()


def _digits_config(digits_dir: str, steps: int, **fields):
    from configs import digits

    config = digits.get_config()
    config.update(dict(data_dir=digits_dir, num_train_steps=steps, warmup_epochs=0, batch_size=32, **fields))
    config.schedule = "constant"  # the learning rate does not depend on the run's length
    config.update(dict(log_every_steps=4, eval_every_steps=4, checkpoint_every_steps=4, crop_padding=2))
    config.random_flip = True
    config.random_erasing.probability = 0.5
    return config


@pytest.mark.slow
def test_on_the_devices_a_resumed_run_ends_bitwise_where_an_uninterrupted_one_does_and_the_host_agrees(
    digits_dir, tmp_path
):
    """The resumed run makes 4 steps a dispatch (``steps_per_dispatch``), the uninterrupted one 1: bitwise the
    same on XLA:CPU, where a dispatch's steps are unrolled and each compiles as the single step does. (Measured
    by hand at 8 steps a dispatch too. A loop on an accelerator may fuse differently: there the runs would
    agree to float reassociation.)"""
    import jax

    from resnet_jax.train import checkpoint, loop

    uninterrupted = loop.train_and_evaluate(_digits_config(digits_dir, 8), tmp_path / "whole")
    loop.train_and_evaluate(_digits_config(digits_dir, 4, steps_per_dispatch=4), tmp_path / "resumed")
    resumed = loop.train_and_evaluate(_digits_config(digits_dir, 8, steps_per_dispatch=4), tmp_path / "resumed")
    assert resumed == {**uninterrupted, "wall_time_s": resumed["wall_time_s"]}
    lines = {name: (tmp_path / name / "metrics.jsonl").read_text().splitlines() for name in ("whole", "resumed")}
    logged = [
        [(record["step"], record["train/loss"]) for record in map(json.loads, lines[name]) if "train/loss" in record]
        for name in ("whole", "resumed")
    ]
    assert logged[0] == logged[1] and [step for step, _ in logged[0]] == [4, 8]
    leaves = [jax.tree_util.tree_leaves_with_path(checkpoint.load_tree(tmp_path / n)) for n in ("whole", "resumed")]
    assert len(leaves[0]) == len(leaves[1]) > 100  # parameters, BN statistics, momentum buffers
    for (path, whole), (_, resumed_leaf) in zip(*leaves, strict=True):
        np.testing.assert_array_equal(resumed_leaf, whole, err_msg=jax.tree_util.keystr(path))
    on_host = loop.train_and_evaluate(_digits_config(digits_dir, 8, input_placement="host"), tmp_path / "host")
    assert on_host["num_eval_examples"] == uninterrupted["num_eval_examples"] == 360
    assert on_host["eval/loss"] == pytest.approx(uninterrupted["eval/loss"], rel=1e-4)  # the same batches
