"""Bad input gets a clear error or a counted, logged skip, never a silent wrong result."""

import collections
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from archives import write_imagenet_archives
from conftest import datasets_for, main_command

import resnet_jax.data as data
from configs import cifar10, imagenet
from resnet_jax import config_schema
from resnet_jax.data import prepare
from resnet_jax.errors import ConfigError, ExitCode
from resnet_jax.train import loop

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cifar_dir(prepared_cifar) -> str:
    return prepared_cifar("cifar10")[0]


def _cifar_config(data_dir: str, **fields):
    config = cifar10.get_config("resnet20")
    config.update(dict(data_dir=data_dir, bn_group_size=0))
    config.update(fields)
    return config


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_classes": 1000}, r"has 10 classes but the model has num_classes=1000; set --config.num_classes=10"),
        ({"image_size": 24}, r"holds 32x32 images but the config says image_size=24"),
        ({"validation_examples": 100}, r"validation_examples=100 holds out the whole train split of cifar10"),
    ],
)
def test_a_dataset_that_does_not_fit_the_config_stops_before_compiling(
    cifar_dir, tmp_path, monkeypatch, fields, message
):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before checking the dataset")

    monkeypatch.setattr(loop.jax, "jit", no_compiling)
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(_cifar_config(cifar_dir, **fields), tmp_path)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"eval_resize": 200}, r"eval_resize=200 is smaller than image_size=224.*at least 224"),
        ({"train_crop": "scale_jitter", "scale_range": (192, 480)}, r"scale_range=\(192, 480\) starts below"),
    ],
)
def test_imagenet_crops_that_cannot_fit_are_refused(fields, message):
    config = imagenet.get_config("resnet50")
    config_schema.validate(config)  # the recipe itself is fine
    config.update(fields)
    with pytest.raises(ConfigError, match=message):
        config_schema.validate(config)


def test_labels_out_of_range_are_named():
    arrays = {"image": np.zeros((4, 8, 8, 3), np.uint8), "label": np.array([0, 3, 10, -1], np.int32)}
    with pytest.raises(ValueError, match=r"2 labels outside \[0, 10\) \(first at index 2: 10\)"):
        data.check_split(arrays, "toy train", image_size=8, num_classes=10)
    data.check_split({**arrays, "label": np.array([0, 3, 9, 1])}, "toy train", image_size=8, num_classes=10)


@pytest.fixture(scope="module")
def corrupt_imagenet(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("corrupt_imagenet")
    broken = ("n01440764_1.JPEG", "ILSVRC2012_val_00000002.JPEG")
    write_imagenet_archives(directory, ["n01440764", "n01443537"], per_class=3, num_val=3, corrupt=broken)
    prepare.prepare("imagenet2012", str(directory / "tfds"), str(directory), skip_checksum=True)
    return str(directory / "tfds")


def _imagenet_datasets(data_dir: str, batch: int = 2) -> data.Datasets:
    config = imagenet.get_config("resnet18")
    config.update(dict(data_dir=data_dir, image_size=16, eval_resize=20, shuffle_buffer_size=4))
    return datasets_for(config, batch, 2)


def test_a_corrupt_train_jpeg_is_skipped_counted_and_logged(corrupt_imagenet, caplog):
    batches = _imagenet_datasets(corrupt_imagenet, batch=1).train_batches(0)  # one row: it reads every record
    with caplog.at_level(logging.WARNING):
        labels = [next(batches)["label"] for _ in range(10)]  # 10 of the 5 good images a run, 2 epochs
    assert all(len(batch) == 1 for batch in labels)
    # Two epochs of the 5 good images (2 of class 0, 3 of class 1): nothing doubled, nothing put in its place.
    assert collections.Counter(np.concatenate(labels).tolist()) == {0: 4, 1: 6}
    skips = [record.getMessage() for record in caplog.records if "undecodable" in record.getMessage()]
    assert skips and skips[-1].endswith("re-prepare the dataset from intact archives to train on them.")
    assert "(2 so far)" in skips[-1]  # the broken image, once in each of the two epochs read


def test_skips_are_counted_from_the_rows_that_run_ahead_of_the_batch(caplog):
    """A row that dropped an image holds the next step's example from then on; each new skip is logged once."""
    from resnet_jax.data.pipelines import streaming

    steps = [[3, 3, 3], [4, 5, 4], [5, 6, 5], [7, 7, 7]]  # steps 3..6: row 1 skips one at 4, rows 0 and 2 at 6
    batches = [{"step": np.array(rows), "label": np.zeros(3)} for rows in steps]
    with caplog.at_level(logging.WARNING):
        out = list(streaming.counted_skips(iter(batches), 3, "toy train"))
    assert all(set(batch) == {"label"} for batch in out) and len(out) == 4
    messages = [record.getMessage() for record in caplog.records]
    assert [message.split(" undecodable")[0] for message in messages] == ["Skipped 1", "Skipped 2"]
    assert ["(1 so far)" in messages[0], "(3 so far)" in messages[1]] == [True, True]


def test_a_corrupt_eval_jpeg_stops_eval_with_a_plain_error(corrupt_imagenet):
    with pytest.raises(ValueError, match="could not be decoded .* exact eval counts every image"):
        list(_imagenet_datasets(corrupt_imagenet).eval_splits["eval"].batches())


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--config.lerning_rate=0.1"], ["no field 'lerning_rate'", 'Did you mean "learning_rate"?']),
        (["--config.synthetic.nois=2"], ["--config.synthetic.nois=2", 'Did you mean "noise"?']),
        (["--config.batch_size=abc"], ["--config.batch_size=abc", "invalid literal"]),
        (["--config.model=resnet19"], ["model must be one of", "cifar_resnet20", "Did you mean 'resnet18'?"]),
        (["--config.dataset=cifar"], ["dataset must be one of", "'fashion_mnist'", "Did you mean 'cifar10'?"]),
        (["--config.block_dropout=1.5"], ["block_dropout must be in [0, 1), got 1.5", "dropout between"]),
        (
            ["--config=configs/cifar10.py:resnet99"],
            ["configs/cifar10.py:resnet99 (unknown resnet99", "resnet110"],
        ),
        (["--config={typo_config}"], ["no field 'learnin_rate' (set by the config file)", '"learning_rate"?']),
        (["--config=configs/nope.py"], ["could not load the config file", "configs/nope.py", "--config=configs/"]),
        (["--config.batch_size=12"], ["batch_size=12 is not divisible by the 8 devices", "use a multiple of 8"]),
        (["--config.num_train_steps=0"], ["set num_train_steps > 0 or num_epochs > 0"]),
        (
            ["--config.model=cifar_plain20", "--config.gate=exclusive"],
            [
                "--config.model=cifar_plain20 cannot take",
                "shortcut='none' has none",
                "Change or drop the option (docs/guides/training.md",
            ],
        ),
        (["surplus"], ["unexpected arguments: surplus"]),
    ],
)
def test_a_users_mistake_is_one_paragraph_exit_2_no_traceback_and_no_workdir(tmp_path, arguments, words):
    workdir = tmp_path / "run"
    typo_config = tmp_path / "typo.py"  # a config file that sets a field the schema does not declare
    typo_config.write_text(
        "from resnet_jax import config_schema\n\n\ndef get_config():\n"
        "    config = config_schema.default_config()\n    config.learnin_rate = 0.3\n    return config\n"
    )
    command = [sys.executable, "-m", "resnet_jax.main", "--config=configs/default.py", f"--workdir={workdir}"]
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    arguments = [argument.format(typo_config=typo_config) for argument in arguments]
    completed = subprocess.run(
        [*command, *arguments], cwd=REPO, capture_output=True, text=True, timeout=300, env=environment
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    (message,) = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    for word in words:
        assert word in message
    assert not workdir.exists()


def test_debug_shows_the_traceback_of_a_users_mistake(tmp_path):
    command = [sys.executable, "-m", "resnet_jax.main", "--config=configs/default.py", f"--workdir={tmp_path}/run"]
    completed = subprocess.run(
        [*command, "--config.model=resnet19", "--debug"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode != 0
    assert "Traceback" in completed.stderr and "ConfigError: model must be one of" in completed.stderr


def _main(workdir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """The real command line on the default (synthetic) config, with tiny steps."""
    command = main_command(
        workdir,
        "--config.num_train_steps=2",
        "--config.image_size=8",
        "--config.batch_size=16",
        "--config.synthetic.num_eval_examples=32",
        *overrides,
    )
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def resnet20_workdir(tmp_path_factory) -> Path:
    """A finished 2-step run of cifar_resnet20, whose checkpoint other models cannot use."""
    workdir = tmp_path_factory.mktemp("resnet20") / "run"
    completed = _main(workdir)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return workdir


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, words",
    [
        ("missing dataset", ["dataset 'cifar10' is not prepared in", "python -m resnet_jax.data.prepare cifar10"]),
        ("missing init_from", ["no checkpoint at", "give a workdir, its checkpoints/ folder or one step's folder"]),
        ("another model's init_from", ["does not match this model", "layer"]),
        ("another model's workdir", ["does not match this model", "start a fresh --workdir"]),
    ],
)
def test_a_mistake_found_after_the_config_check_is_one_paragraph_exit_2(tmp_path, resnet20_workdir, case, words):
    workdir = tmp_path / "run"
    overrides = {
        "missing dataset": ["--config.dataset=cifar10", f"--config.data_dir={tmp_path / 'empty'}"],
        "missing init_from": [f"--config.init_from={tmp_path / 'nowhere'}"],
        "another model's init_from": ["--config.model=cifar_resnet32", f"--config.init_from={resnet20_workdir}"],
        "another model's workdir": ["--config.model=cifar_resnet32"],
    }[case]
    if case == "another model's workdir":
        workdir = resnet20_workdir
    completed = _main(workdir, *overrides)
    assert completed.returncode == ExitCode.USER_ERROR, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    (message,) = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    for word in words:
        assert word in message
    assert case == "another model's workdir" or not workdir.exists()
