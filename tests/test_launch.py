"""The cluster launch files (experiments/launch/): each runs a real main command whose config validates, and
the SLURM script checkpoints and requeues on the signal SLURM sends before the time limit."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from experiments import sweep

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "experiments" / "launch"
TIMEOUT_S = 60


def run_line(script: str) -> list[str]:
    """The words of the script's RUN=(...) line."""
    (line,) = re.findall(r"^RUN=\((.*)\)$", script, flags=re.MULTILINE)
    return shlex.split(line)


def without_srun(words: list[str]) -> list[str]:
    """The command that srun starts: ``srun --option ... python ...`` -> ``python ...``."""
    assert words[0] == "srun"
    return words[next(index for index, word in enumerate(words[1:], 1) if not word.startswith("-")) :]


def test_the_slurm_template_is_bash_that_runs_one_task_per_gpu_of_a_main_command_that_validates():
    script = (LAUNCH / "slurm.sbatch").read_text()
    subprocess.run(["bash", "-n", str(LAUNCH / "slurm.sbatch")], check=True, timeout=TIMEOUT_S)
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=?(\S*)", script, flags=re.MULTILINE))
    assert directives["ntasks-per-node"] == directives["gpus-per-node"]  # one task per GPU
    assert "gpus-per-task" not in directives  # it would hide the GPU that JAX picks by SLURM_LOCALID
    assert "requeue" in directives and directives["signal"].startswith("B:TERM@")
    command = without_srun(run_line(script))
    sweep.check_main_command(command)
    assert not any(word.startswith(("--coordinator_address", "--num_processes", "--process_id")) for word in command)


def test_the_slurm_script_passes_the_time_limit_signal_to_the_run_then_requeues_the_job(tmp_path):
    """SIGTERM to the batch script (what --signal=B:TERM@120 sends): the run gets SIGTERM and ends as it
    does after a checkpoint, then the script asks SLURM to requeue the job and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/bash\necho "$@" > {tmp_path}/scontrol_args\n')
    scontrol.chmod(0o755)
    run = (
        "import pathlib, signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(tmp_path)!r}, 'stopped').touch(), sys.exit(0)))\n"
        f"pathlib.Path({str(tmp_path)!r}, 'started').touch()\n"
        "time.sleep(60)\n"
    )
    template = (LAUNCH / "slurm.sbatch").read_text()
    script = re.sub(r"^RUN=\(.*\)$", lambda _: f"RUN=({shlex.join([sys.executable, '-c', run])})", template, flags=re.M)
    (tmp_path / "job.sbatch").write_text(script)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_SUBMIT_DIR=str(tmp_path))
    job = subprocess.Popen(["bash", str(tmp_path / "job.sbatch")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=TIMEOUT_S)
    finally:
        job.kill()
    assert job.returncode == 0, output
    assert (tmp_path / "stopped").exists()  # the run had its SIGTERM, to checkpoint and exit
    assert (tmp_path / "scontrol_args").read_text().split() == ["requeue", "4242"]


def jobsets() -> dict[str, dict]:
    """The GKE manifest's JobSets by name."""
    documents = yaml.safe_load_all((LAUNCH / "gke_jobset.yaml").read_text())
    return {document["metadata"]["name"]: document for document in documents if document}


def container_and_job(jobset: dict) -> tuple[dict, dict]:
    (replicated,) = jobset["spec"]["replicatedJobs"]
    job = replicated["template"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    return container, job


def expanded(words: list[str], values: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of a container's command and args."""
    return [re.sub(r"\$\((\w+)\)", lambda match: values[match.group(1)], word) for word in words]


def test_the_gke_manifest_holds_a_tpu_and_a_gpu_jobset():
    assert set(jobsets()) == {"resnet-jax-tpu", "resnet-jax-gpu"}
    for jobset in jobsets().values():
        assert jobset["apiVersion"].startswith("jobset.x-k8s.io/") and jobset["kind"] == "JobSet"
        assert jobset["spec"]["failurePolicy"]["maxRestarts"] > 0  # a restart resumes from the workdir


def test_the_tpu_jobset_runs_a_main_command_that_validates_and_joins_its_slices():
    container, job = container_and_job(jobsets()["resnet-jax-tpu"])
    command = expanded([*container["command"], *container["args"]], {})
    sweep.check_main_command(command)
    assert next(word for word in command if word.startswith("--workdir=")).startswith("--workdir=gs://")
    assert not any(word.startswith("--coordinator_address") for word in command)  # JAX detects the TPU hosts
    env = {variable["name"] for variable in container["env"]}
    assert {"MEGASCALE_NUM_SLICES", "MEGASCALE_SLICE_ID", "MEGASCALE_COORDINATOR_ADDRESS"} <= env
    assert job["parallelism"] == job["completions"]


def test_the_gpu_jobset_gives_each_pod_the_multi_host_flags():
    container, job = container_and_job(jobsets()["resnet-jax-gpu"])
    values = {"JOBSET_NAME": "resnet-jax-gpu", "JOB_COMPLETION_INDEX": "1"}
    command = expanded([*container["command"], *container["args"]], values)
    sweep.check_main_command(command)
    flags = dict(word.split("=", 1) for word in command if word.startswith("--") and "=" in word)
    assert flags["--coordinator_address"] == "resnet-jax-gpu-workers-0-0.resnet-jax-gpu:1234"
    assert int(flags["--num_processes"]) == job["parallelism"] == job["completions"]
    assert flags["--process_id"] == "1" and job["completionMode"] == "Indexed"
    assert {port["containerPort"] for port in container["ports"]} == {1234}


@pytest.mark.parametrize(
    "command",
    [
        ["python", "-m", "resnet_jax.train", "--workdir=w", "--config=configs/digits.py"],  # not the main command
        ["python", "-m", "resnet_jax.main", "--config=configs/digits.py"],  # no workdir
        ["python", "-m", "resnet_jax.main", "--workdir=w", "--config=configs/digits.py", "--config.lerning_rate=1"],
        ["python", "-m", "resnet_jax.main", "--workdir=w", "--config=configs/digits.py", "--config.batch_size=-1"],
    ],
)
def test_the_launch_check_refuses_what_the_main_command_would_refuse(command):
    with pytest.raises(ValueError):
        sweep.check_main_command(command)
