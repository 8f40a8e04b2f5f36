"""Weights & Biases through the real ``wandb`` package in offline mode (no network): the run's history holds
what ``metrics.jsonl`` holds, a resume continues the same W&B run, and W&B failing never stops training."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from configs import default
from resnet_jax import config_schema
from resnet_jax.errors import MissingDependency
from resnet_jax.train import loop, tracking

wandb = pytest.importorskip("wandb", reason="the wandb extra is not installed")
import wandb_offline  # noqa: E402  (needs wandb)

REPO = Path(__file__).resolve().parents[1]
FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.log_every_steps=2",
    "--config.eval_every_steps=4",
    "--config.checkpoint_every_steps=4",
    "--config.synthetic.num_eval_examples=40",
    "--config.wandb_project=resnet-jax-tests",
    "--config.wandb_run_name=tiny",
]


def offline_environment(directory: Path) -> dict[str, str]:
    """W&B offline, its files under ``directory``, nothing written to the home directory."""
    return dict(
        os.environ,
        WANDB_MODE="offline",
        WANDB_DIR=str(directory),
        WANDB_CONFIG_DIR=str(directory / "config"),
        WANDB_CACHE_DIR=str(directory / "cache"),
        WANDB_DATA_DIR=str(directory / "data"),
        WANDB_SILENT="true",
    )


def train(workdir: Path, wandb_dir: Path, num_train_steps: int) -> None:
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS]
    command.append(f"--config.num_train_steps={num_train_steps}")
    done = subprocess.run(
        command, cwd=REPO, env=offline_environment(wandb_dir), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory) -> tuple[Path, list[Path]]:
    """8 steps, then the same workdir resumed to 12: (workdir, the two offline W&B runs' files in order)."""
    workdir, wandb_dir = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("wandb")
    train(workdir, wandb_dir, 8)
    train(workdir, wandb_dir, 12)
    runs = sorted((wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    return workdir, runs


@pytest.mark.slow  # two runs of the main command
def test_the_offline_history_holds_the_values_of_metrics_jsonl_at_the_same_steps(resumed_run):
    workdir, runs = resumed_run
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    rows = [row for run in runs for row in wandb_offline.history(run)]
    assert rows == lines
    assert {"train/loss", "eval/top1", "eval/loss"} <= {key for line in lines for key in line}


@pytest.mark.slow
def test_a_resume_appends_to_the_same_wandb_run(resumed_run):
    workdir, runs = resumed_run
    assert len(runs) == 2  # one offline directory per process that ran, as W&B keeps them
    stored = json.loads((workdir / tracking.RUN_ID_FILE).read_text())
    infos = [wandb_offline.run_info(run) for run in runs]
    assert [info[0] for info in infos] == [stored["id"], stored["id"]]
    assert [info[1] for info in infos] == ["resnet-jax-tests", "resnet-jax-tests"]
    second = [row["step"] for row in wandb_offline.history(runs[1])]
    assert second and min(second) > 8  # the resumed run went on after the first run's last checkpoint


@pytest.mark.slow
def test_the_wandb_run_has_the_resolved_config_and_the_final_results(resumed_run):
    workdir, runs = resumed_run
    _, _, config = wandb_offline.run_info(runs[-1])
    recorded = json.loads((workdir / "config.json").read_text())
    for key in ("model", "batch_size", "num_train_steps", "devices", "derived"):
        assert config[key] == recorded[key], key
    results = json.loads((workdir / "results.json").read_text())
    summary = wandb_offline.summary(runs[-1])
    for key in ("step", "eval/top1", "eval/loss", "num_eval_examples"):
        assert summary[key] == results[key], key


def tiny_config(**fields):
    config = default.get_config()
    config.update(dict(image_size=8, batch_size=16, num_train_steps=4, log_every_steps=1, eval_every_steps=4))
    config.update({"checkpoint_every_steps": 4, "wandb_project": "resnet-jax-tests", **fields})
    config.synthetic.num_eval_examples = 32
    return config


class FailingRun:
    """A W&B run whose every log call fails, as one does when the network or the quota goes."""

    name, calls = "failing", 0

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, row):
        FailingRun.calls += 1
        raise ConnectionError("wandb.ai unreachable")


@pytest.mark.parametrize("failure", ["init", "log"])
def test_a_wandb_failure_is_logged_once_and_training_goes_on(tmp_path, monkeypatch, caplog, failure):
    def init(**kwargs):
        if failure == "init":
            raise wandb.errors.CommError("quota exceeded")
        return FailingRun()

    monkeypatch.setattr(wandb, "init", init)
    FailingRun.calls = 0
    with caplog.at_level(logging.WARNING):
        results = loop.train_and_evaluate(tiny_config(), tmp_path / "run")
    assert results["step"] == 4 and (tmp_path / "run" / "results.json").exists()
    warnings = [record.getMessage() for record in caplog.records if "W&B logging failed" in record.getMessage()]
    assert len(warnings) == 1 and ("quota exceeded" if failure == "init" else "unreachable") in warnings[0]
    assert FailingRun.calls == (1 if failure == "log" else 0)  # off after the first failure
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if "train/loss" in line]) == 4  # every scalar kept in the workdir


def test_without_wandb_installed_the_config_is_refused_naming_the_extra(monkeypatch):
    real_find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(
        tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else real_find_spec(name)
    )
    with pytest.raises(MissingDependency, match=r"pip install -e '\.\[wandb\]'"):
        config_schema.validate(tiny_config())
    config_schema.validate(tiny_config(wandb_project=""))  # off: wandb is not needed
