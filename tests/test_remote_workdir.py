"""A whole run on a ``gs://`` workdir (an in-memory bucket on 127.0.0.1, ``fake_gcs``): every workdir file
lands in the bucket, and a resume from it ends bitwise where an uninterrupted local run ends."""

import json
import os
from pathlib import Path

import pytest
from etils import epath
from fake_gcs import FakeGCS

from configs import default
from experiments import runs, sweep
from resnet_jax.train import loop

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bucket():
    with FakeGCS("runs"):
        yield "gs://runs"


def tiny_config(num_train_steps: int):
    config = default.get_config()
    config.update(
        dict(
            image_size=8,
            batch_size=16,
            schedule="constant",  # the learning rate does not depend on the run's length
            num_train_steps=num_train_steps,
            log_every_steps=3,
            eval_every_steps=6,
            checkpoint_every_steps=3,
        )
    )
    config.synthetic.num_eval_examples = 64
    return config


@pytest.mark.slow
def test_a_run_on_gs_writes_everything_there_and_resumes_from_it(bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would appear here, as ./gs:
    workdir = epath.Path(f"{bucket}/cifar_resnet20")
    loop.train_and_evaluate(tiny_config(6), os.fspath(workdir))
    resumed = loop.train_and_evaluate(tiny_config(12), os.fspath(workdir))
    uninterrupted = loop.train_and_evaluate(tiny_config(12), tmp_path / "local")

    assert resumed == {**uninterrupted, "wall_time_s": resumed["wall_time_s"]}  # bitwise the same metrics
    names = {path.name for path in workdir.iterdir()}
    assert {"config.json", "metrics.jsonl", "results.json", "checkpoints"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)  # TensorBoard events, through epath
    assert {"6", "12"} <= {path.name for path in (workdir / "checkpoints").iterdir()}
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    starts = [(line["step"], "startup/restore_s" in line) for line in lines if "startup/total_s" in line]
    assert starts == [(1, False), (7, True)]  # the second process restored step 6 and went on from there
    assert json.loads((workdir / "results.json").read_text())["step"] == 12
    changes = json.loads((workdir / "config.json").read_text())["resumed_with_changes"]
    assert changes == [{"step": 6, "changes": {"num_train_steps": [6, 12]}}]
    assert not any(name.startswith("gs") for name in os.listdir(tmp_path))
    (found,) = runs.find_runs(bucket)  # the experiment tools read gs:// sweeps too
    assert found.results == resumed and found.config["num_train_steps"] == 12


@pytest.mark.slow  # one point, run through the main command
def test_a_sweep_on_gs_writes_its_points_there_and_skips_them_when_finished(bucket, monkeypatch, capsys):
    sweep_dir = f"{bucket}/sweep"
    fixed = dict(image_size=8, batch_size=16, num_train_steps=2, log_every_steps=1, eval_every_steps=2)
    arguments = ["--config", str(REPO / "configs" / "default.py"), "--workdir", sweep_dir, "--grid", "seed=3"]
    arguments += [word for field, value in fixed.items() for word in ("--set", f"{field}={value}")]
    monkeypatch.chdir(REPO)  # the configs import configs/default.py from the repository root
    assert sweep.main(arguments) == 0
    point = epath.Path(sweep_dir) / "seed=3"
    assert json.loads((point / "results.json").read_text())["step"] == 2
    assert json.loads((epath.Path(sweep_dir) / "sweep.json").read_text())["points"] == ["seed=3"]
    assert sweep.main(arguments) == 0
    assert "finished before, skipped" in capsys.readouterr().out
    assert not (REPO / "gs:").exists()  # where a path mistaken for a local one would be
