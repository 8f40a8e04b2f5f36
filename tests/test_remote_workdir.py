"""A whole run on a ``gs://`` workdir (an in-memory bucket on 127.0.0.1, ``fake_gcs``): every workdir file
lands in the bucket, and a resume from it ends bitwise where an uninterrupted local run ends; both through
TensorFlow's filesystem and, where TensorFlow is not installed, through gcsfs (the gcs extra). Without either,
a ``gs://`` path stops the command at once with one paragraph that names the extra."""

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from etils import epath
from fake_gcs import FakeGCS

from configs import default
from experiments import runs, sweep
from experiments.kill_harness import tensorboard_scalars
from resnet_jax import config_schema
from resnet_jax.errors import ExitCode, MissingDependency
from resnet_jax.runtime import lease, storage
from resnet_jax.train import loop, metrics

REPO = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = [sys.executable, str(REPO / "tests" / "without_tensorflow.py")]
DEFAULT_CONFIG = f"--config={REPO / 'configs' / 'default.py'}"  # from any directory


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


TINY_FLAGS = [  # tiny_config(12) on the command line
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.schedule=constant",
    "--config.num_train_steps=12",
    "--config.log_every_steps=3",
    "--config.eval_every_steps=6",
    "--config.checkpoint_every_steps=3",
    "--config.synthetic.num_eval_examples=64",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The results of tiny_config(12) run once on a local workdir."""
    return loop.train_and_evaluate(tiny_config(12), tmp_path_factory.mktemp("local"))


def without_wall_time(results: dict) -> dict:
    return {name: value for name, value in results.items() if name != "wall_time_s"}


def assert_each_step_once(workdir: epath.Path, logged_steps: list[int]) -> None:
    """metrics.jsonl in the bucket and what TensorBoard shows of it hold each logged train step once, in order."""
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "train/loss" in line] == logged_steps
    assert [step for step, _, _ in tensorboard_scalars(workdir, "train/loss")] == logged_steps


# What etils.epath opens gs:// with: TensorFlow's filesystem, or gcsfs. A whole run on TensorFlow's is outside CI's
# 15 minutes (the sweep and the lease on gs:// below run on it too); gcsfs is the core install's.
FILESYSTEMS = (pytest.param("tensorflow", marks=pytest.mark.extended), "gcsfs")
def train_on(filesystem: str, num_train_steps: int, workdir: epath.Path, caplog) -> tuple[dict, str]:
    """tiny_config(num_train_steps) on ``workdir``; its results and log. 'tensorflow': in this process, whose
    etils.epath opens gs:// with TensorFlow's filesystem; 'gcsfs': by the main command in a process where
    TensorFlow is hidden, as on the core install with the gcs extra, so that etils opens gs:// with gcsfs."""
    if filesystem == "tensorflow":
        with caplog.at_level(logging.WARNING):
            return loop.train_and_evaluate(tiny_config(num_train_steps), os.fspath(workdir)), caplog.text
    if importlib.util.find_spec("gcsfs") is None:
        pytest.skip("gcsfs is not installed: the gcs extra, part of dev")
    flags = [flag for flag in TINY_FLAGS if not flag.startswith(("--config=", "--config.num_train_steps="))]
    command = [*WITHOUT_TENSORFLOW, "-m", "resnet_jax.main", DEFAULT_CONFIG, f"--workdir={workdir}", *flags]
    command.append(f"--config.num_train_steps={num_train_steps}")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)  # in the test's directory
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((workdir / "results.json").read_text()), completed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("filesystem", FILESYSTEMS)
def test_a_run_on_gs_writes_everything_there_and_resumes_from_it(
    filesystem, bucket, uninterrupted, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would appear here, as ./gs:
    workdir = epath.Path(f"{bucket}/{filesystem}/cifar_resnet20")
    train_on(filesystem, 6, workdir, caplog)
    assert not (workdir / lease.LEASE_FILE).exists()
    stale = dict(host="another-node", pid=1, process_started=None, started=0.0, heartbeat=time.time() - 600)
    (workdir / lease.LEASE_FILE).write_text(json.dumps({**stale, "token": "theirs"}))  # its run died long ago
    resumed, log = train_on(filesystem, 12, workdir, caplog)
    assert "its heartbeat has not moved for 90 s (host another-node" in log

    assert without_wall_time(resumed) == without_wall_time(uninterrupted)  # bitwise the same metrics
    names = {path.name for path in workdir.iterdir()}
    assert {"config.json", "metrics.jsonl", "results.json", "checkpoints"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)  # TensorBoard events, through epath
    assert {"6", "12"} <= {path.name for path in (workdir / "checkpoints").iterdir()}
    assert json.loads((workdir / "results.json").read_text())["step"] == 12
    changes = json.loads((workdir / "config.json").read_text())["resumed_with_changes"]
    assert changes == [{"step": 6, "changes": {"num_train_steps": [6, 12]}}]
    assert not any(name.startswith("gs") for name in os.listdir(tmp_path))
    (found,) = runs.find_runs(f"{bucket}/{filesystem}")  # the experiment tools read gs:// sweeps too
    assert found.results == resumed and found.config["num_train_steps"] == 12
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    starts = [(line["step"], "startup/restore_s" in line) for line in lines if "startup/total_s" in line]
    assert starts == [(1, False), (7, True)]  # the second process restored step 6 and went on from there
    assert_each_step_once(workdir, [3, 6, 9, 12])  # the events of both processes, read from the bucket


def test_without_gcsfs_and_tensorflow_a_gs_workdir_stops_the_command_naming_the_extra(tmp_path):
    command = [*WITHOUT_TENSORFLOW, "--hide=gcsfs", "-m", "resnet_jax.main", DEFAULT_CONFIG]
    command += ["--workdir=gs://runs/unreachable", "--config.num_train_steps=2"]
    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == ExitCode.USER_ERROR, completed.stderr[-3000:]  # a retry would fail again
    assert "Traceback" not in completed.stderr
    (line,) = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: --workdir=gs://runs/unreachable is in Google Cloud Storage") and '".[gcs]"' in line
    assert os.listdir(tmp_path) == []  # nothing written, no ./gs: folder


@pytest.mark.parametrize(
    "field, value",
    [
        ("data_dir", "gs://runs/data"),
        ("init_from", "gs://runs/pretrained"),
        ("compilation_cache_dir", "gs://runs/jax_cache"),
        ("dataset", "folder:gs://runs/photos"),
    ],
)
def test_without_gcsfs_and_tensorflow_a_gs_path_of_the_config_fails_its_validation(field, value, monkeypatch):
    for package in ("gcsfs", "tensorflow"):
        monkeypatch.setitem(sys.modules, package, None)  # find_spec finds neither, as on the core install
    config = tiny_config(2)
    config[field] = value
    with pytest.raises(MissingDependency, match=rf'^--config\.{field}={value} is in Google Cloud Storage.*"\.\[gcs\]"'):
        config_schema.validate(config)
    config[field] = value.replace("gs://", "/tmp/")  # a local path is left to the run
    config_schema.validate(config)


@pytest.mark.slow
def test_a_live_lease_on_gs_refuses_a_run_before_it_writes_anything(bucket):
    workdir = epath.Path(f"{bucket}/held")
    workdir.mkdir(parents=True)
    theirs = lease.Lease(workdir, host="another-node", heartbeat_s=0.2)
    theirs.acquire()
    try:
        with pytest.raises(lease.WorkdirInUse, match="host another-node"):
            loop.train_and_evaluate(tiny_config(12), os.fspath(workdir))
    finally:
        theirs.release()
    assert list(workdir.iterdir()) == []


@pytest.mark.slow
@pytest.mark.extended  # the same on a local disk: test_resume; the lease on gs://: test_lease; a resume on gs://: above
def test_on_gs_a_second_launch_is_refused_and_a_killed_runs_restart_takes_over(bucket, uninterrupted):
    workdir = epath.Path(f"{bucket}/launched_twice")
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *TINY_FLAGS]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while storage.intact_checkpoint(workdir) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGSTOP)  # alive, holding the lease, between two checkpoints
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    first.kill()
    first.wait(timeout=60)
    assert second.returncode == ExitCode.USER_ERROR, second.stderr[-3000:]
    assert (
        f"another run is using the workdir {workdir}: host " in second.stderr and f"pid {first.pid}," in second.stderr
    )

    restart = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert "of a run that is gone" in restart.stderr  # the same host's dead process: at once
    assert "Resumed from gs://runs/launched_twice/checkpoints at step" in restart.stderr
    results = json.loads((workdir / "results.json").read_text())
    assert without_wall_time(results) == without_wall_time(uninterrupted)
    assert_each_step_once(workdir, [3, 6, 9, 12])  # what the killed run logged past its checkpoint: once


@pytest.mark.slow  # one point, run through the main command
@pytest.mark.extended  # a run on gs:// (test_a_run_on_gs_...) and a sweep's skipping (test_experiments) stay in CI
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


def test_on_gs_metrics_jsonl_is_cut_back_to_the_restored_step_in_place(bucket):
    workdir = epath.Path(f"{bucket}/cut")
    workdir.mkdir(parents=True)
    lines = [json.dumps({"step": step, "train/loss": 1 / step}) + "\n" for step in range(1, 9)]
    (workdir / "metrics.jsonl").write_text("".join(lines) + '{"step": 9, "train/lo')  # torn by a kill
    assert metrics.cut_jsonl(workdir / "metrics.jsonl", 5) == 4
    assert (workdir / "metrics.jsonl").read_text() == "".join(lines[:5])
    assert sorted(path.name for path in workdir.iterdir()) == ["metrics.jsonl"]  # no temporary object left
