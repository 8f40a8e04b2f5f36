"""A whole run on a ``gs://`` workdir (an in-memory bucket on 127.0.0.1, ``fake_gcs``): every workdir file
lands in the bucket, and a resume from it ends bitwise where an uninterrupted local run ends."""

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
from resnet_jax.train import lease, loop, storage

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


@pytest.mark.slow
def test_a_run_on_gs_writes_everything_there_and_resumes_from_it(bucket, uninterrupted, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would appear here, as ./gs:
    workdir = epath.Path(f"{bucket}/cifar_resnet20")
    loop.train_and_evaluate(tiny_config(6), os.fspath(workdir))
    assert not (workdir / lease.LEASE_FILE).exists()
    stale = dict(host="another-node", pid=1, process_started=None, started=0.0, heartbeat=time.time() - 600)
    (workdir / lease.LEASE_FILE).write_text(json.dumps({**stale, "token": "theirs"}))  # its run died long ago
    with caplog.at_level(logging.WARNING):
        resumed = loop.train_and_evaluate(tiny_config(12), os.fspath(workdir))
    assert "its heartbeat has not moved for 90 s (host another-node" in caplog.text

    assert without_wall_time(resumed) == without_wall_time(uninterrupted)  # bitwise the same metrics
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
    assert second.returncode == 1, second.stderr[-3000:]
    assert (
        f"another run is using the workdir {workdir}: host " in second.stderr and f"pid {first.pid}," in second.stderr
    )

    restart = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert "of a run that is gone" in restart.stderr  # the same host's dead process: at once
    assert "Resumed from gs://runs/launched_twice/checkpoints at step" in restart.stderr
    results = json.loads((workdir / "results.json").read_text())
    assert without_wall_time(results) == without_wall_time(uninterrupted)


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
