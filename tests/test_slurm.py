"""The SLURM launch files on a real one-node SLURM cluster (``slurm_cluster``): the template of
experiments/launch/slurm.sbatch, in its CPU variant, and ``sweep.py --emit slurm``'s array job.

Each job runs two tasks of the real main command, which form one two-process JAX job from SLURM's
environment alone. Checks: the job finishes; the time-limit signal makes it save, requeue and resume from
the step where it was signalled, ending equal to the uninterrupted job; ``scancel`` stops it after a
checkpoint without a requeue; a config typo fails at once and is not requeued; the sweep runs each grid
point as an array task with the resources of its own flags.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from slurm_cluster import SlurmCluster, unavailable_reason

from experiments import sweep
from resnet_jax.errors import ExitCode
from resnet_jax.train import checkpoint

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]  # one cluster; real processes on loopback
REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "experiments" / "launch" / "slurm.sbatch"
JOB_TIMEOUT_S = 300
REQUIRED = "RESNET_JAX_REQUIRE_SLURM"  # set (CI does): a cluster that cannot start fails instead of skipping
TASKS = 2
FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.num_train_steps=60",
    "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10",
    "--config.eval_every_steps=60",
    "--config.synthetic.num_eval_examples=37",
    "--config.learning_rate=0.002",  # small steps: float reassociation stays at 1e-6 (test_multihost.FLAGS)
]
# JAX's coordinator for a SLURM job listens on this port of the step's first node; bound to loopback here.
BIND_COORDINATOR_TO_LOOPBACK = "env JAX_COORDINATOR_BIND_ADDRESS=127.0.0.1:$((61440 + SLURM_JOB_ID % 4096))"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real SLURM cluster for this module; skips, saying why, where none can start (fails where required)."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get(REQUIRED):
            pytest.fail(f"{REQUIRED} is set but no SLURM cluster can start here: {reason}")
        pytest.skip(f"no SLURM cluster here: {reason}")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


def job_environment() -> dict[str, str]:
    """The environment sbatch passes to the job: this Python first on PATH, two CPU devices per task, gloo."""
    return dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
    )


def cpu_variant(script: str, directory: Path) -> str:
    """The template made for this one CPU node: the GPU line deleted, 2 tasks of 1 CPU, its log in ``directory``."""
    lines = [line for line in script.splitlines(keepends=True) if "GPU: delete this line" not in line]
    script = "".join(lines)
    for option, value in {"nodes": "1", "ntasks-per-node": str(TASKS), "cpus-per-task": "1"}.items():
        script, found = re.subn(rf"^#SBATCH --{option}=\S+", f"#SBATCH --{option}={value}", script, flags=re.M)
        assert found == 1, option
    return script.replace("--output=slurm-", f"--output={directory}/slurm-")


def submit(cluster: SlurmCluster, directory: Path, workdir: Path, *extra: str) -> int:
    """Submit the template's CPU variant running the main command on ``workdir``; returns the job id."""
    arguments = shlex.join([f"--workdir={workdir}", *FLAGS, *extra])
    run = f"{BIND_COORDINATOR_TO_LOOPBACK} python -m resnet_jax.main {arguments}"
    script = re.sub(r"^RUN=\(.*\)$", lambda _: f"RUN=({run})", cpu_variant(TEMPLATE.read_text(), directory), flags=re.M)
    (directory / "job.sbatch").write_text(script)
    return cluster.sbatch(directory / "job.sbatch", job_environment(), cwd=REPO)


def job_log(directory: Path, job_id: int) -> str:
    return (directory / f"slurm-resnet_jax-{job_id}.out").read_text()


def ended(fields: dict[str, str]) -> bool:
    return fields.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL")


def wait_for_checkpoint(workdir: Path, step: int, cluster: SlurmCluster, job_id: int) -> None:
    """Bounded wait for ``workdir``'s checkpoint ``step`` while job ``job_id`` runs."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (workdir / "checkpoints" / str(step)).is_dir():
        assert time.monotonic() < deadline and not ended(cluster.job(job_id)), cluster.job(job_id)
        time.sleep(0.05)


def train_steps(workdir: Path) -> list[int]:
    """The steps of metrics.jsonl's train lines, in order."""
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [line["step"] for line in lines if "train/loss" in line]


def stop_step(log: str) -> int:
    """The step at which every task says a stop signal ended it, having saved there."""
    found = re.findall(r"Stopped by SIGTERM at step (\d+): its checkpoint of step \1 is in", log)
    assert len(found) == TASKS and len(set(found)) == 1, log
    return int(found[0])


@pytest.fixture(scope="module")
def uninterrupted(cluster, tmp_path_factory) -> Path:
    """The workdir of the job run to its end without a signal."""
    directory = tmp_path_factory.mktemp("uninterrupted")
    job_id = submit(cluster, directory, directory / "workdir")
    fields = cluster.wait_for(job_id, ended, "its end", JOB_TIMEOUT_S)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), job_log(directory, job_id)
    return directory / "workdir"


def test_a_two_task_job_forms_one_two_process_jax_job_and_finishes(uninterrupted):
    record = json.loads((uninterrupted / "config.json").read_text())
    assert record["devices"]["num_processes"] == TASKS and record["devices"]["num_devices"] == 2 * TASKS
    results = json.loads((uninterrupted / "results.json").read_text())
    assert results["step"] == 60 and results["num_eval_examples"] == 37


def assert_equal_states(expected: Path, actual: Path) -> None:
    """The same job's end states: float reassociation only (test_multihost's tolerance)."""
    leaves = [jax.tree_util.tree_leaves_with_path(checkpoint.load_tree(workdir)) for workdir in (expected, actual)]
    assert len(leaves[0]) == len(leaves[1]) > 120
    for (path, a), (_, b) in zip(*leaves, strict=True):
        scale = max(float(np.abs(a).max()), 1e-30)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * scale, err_msg=jax.tree_util.keystr(path))


def test_the_time_limit_signal_saves_requeues_and_resumes_where_it_was_signalled(cluster, uninterrupted, tmp_path):
    """``scancel --batch --signal=USR1`` is what ``--signal=B:USR1@300`` sends before the time limit."""
    workdir = tmp_path / "workdir"
    job_id = submit(cluster, tmp_path, workdir)
    wait_for_checkpoint(workdir, 10, cluster, job_id)
    subprocess.run(["scancel", "--batch", "--signal=USR1", str(job_id)], env=cluster.env, check=True, timeout=30)
    fields = cluster.wait_for(job_id, lambda f: ended(f) and f["Restarts"] != "0", "its end after a requeue", 300)
    log = job_log(tmp_path, job_id)
    assert (fields["JobState"], fields["ExitCode"], fields["Restarts"]) == ("COMPLETED", "0:0", "1"), log
    stopped = stop_step(log)
    assert 10 <= stopped < 60, log
    record = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in record if "startup/total_s" in line] == [1, stopped + 1], record
    assert train_steps(workdir) == sorted({*range(5, 61, 5), stopped})  # every step once, though the job ran twice
    assert_equal_states(uninterrupted, workdir)


def test_scancel_stops_the_job_after_a_checkpoint_without_a_requeue(cluster, tmp_path):
    workdir = tmp_path / "workdir"
    job_id = submit(cluster, tmp_path, workdir)
    wait_for_checkpoint(workdir, 10, cluster, job_id)
    subprocess.run(["scancel", str(job_id)], env=cluster.env, check=True, timeout=30)
    cluster.wait_for(job_id, ended, "its end", 120)
    time.sleep(6)  # longer than the scheduler's interval: a requeued job would be pending again by now
    fields = cluster.job(job_id)
    log = job_log(tmp_path, job_id)
    assert (fields["JobState"], fields["Restarts"]) == ("CANCELLED", "0"), log
    assert checkpoint.Checkpointer(workdir / "checkpoints").latest_step() == stop_step(log)  # nothing lost
    assert not (workdir / "results.json").exists()


def test_a_config_typo_exits_2_at_once_and_is_not_requeued(cluster, tmp_path):
    job_id = submit(cluster, tmp_path, tmp_path / "workdir", "--config.lerning_rate=0.1")
    fields = cluster.wait_for(job_id, ended, "its end", 120)
    time.sleep(6)
    fields = cluster.job(job_id)
    log = job_log(tmp_path, job_id)
    assert (fields["JobState"], fields["ExitCode"], fields["Restarts"]) == ("FAILED", f"{ExitCode.USER_ERROR}:0", "0")
    assert log.count("error: the config has no field 'lerning_rate'") == TASKS and "Traceback" not in log, log
    assert not (tmp_path / "workdir").exists()


def test_emit_slurm_runs_each_point_of_a_two_point_sweep_as_an_array_task(cluster, tmp_path, capsys):
    """Each array task one process of 2 CPUs, the two at once on the node, 10 steps each."""
    sweep_dir = tmp_path / "sweep"
    arguments = ["--config", "configs/default.py", "--workdir", str(sweep_dir), "--grid", "seed=0,1"]
    flags = [*FLAGS[1:], "--config.num_train_steps=10", "--config.eval_every_steps=10"]
    arguments += [word for flag in flags for word in ("--set", flag.removeprefix("--config."))]
    resources = ["--nodes", "1", "--gpus-per-node", "0", "--tasks-per-node", "1", "--cpus-per-task", "2"]
    assert sweep.main([*arguments, "--emit", "slurm", *resources, "--time", "0:20:00"]) == 0
    script = capsys.readouterr().out
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=?(\S*)", script, flags=re.M))
    assert directives["array"] == "0-1" and "gpus-per-node" not in directives
    assert (directives["nodes"], directives["ntasks-per-node"], directives["cpus-per-task"]) == ("1", "1", "2")
    assert directives["time"] == "0:20:00"
    script = script.replace("--output=slurm-", f"--output={tmp_path}/slurm-")
    script = script.replace('--launcher "${SRUN[*]}"', f'--launcher "{BIND_COORDINATOR_TO_LOOPBACK} ${{SRUN[*]}}"')
    (tmp_path / "sweep.sbatch").write_text(script)
    job_id = cluster.sbatch(tmp_path / "sweep.sbatch", job_environment(), cwd=REPO)
    for task in (0, 1):
        fields = cluster.wait_for(f"{job_id}_{task}", ended, "its end", JOB_TIMEOUT_S)
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), fields
    for seed in (0, 1):
        record = json.loads((sweep_dir / f"seed={seed}" / "config.json").read_text())
        assert record["seed"] == seed and record["devices"] == {**record["devices"], "num_processes": 1}
        assert json.loads((sweep_dir / f"seed={seed}" / "results.json").read_text())["step"] == 10
    logs = [(tmp_path / f"slurm-resnet_jax_sweep-{job_id}_{task}.out").read_text() for task in (0, 1)]
    assert all("finished before, skipped" not in log for log in logs)
    assert [log.count("seed=0: running") for log in logs] == [1, 0]  # task i ran point i
    assert [log.count("seed=1: running") for log in logs] == [0, 1]
