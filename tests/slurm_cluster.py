"""A real one-node SLURM cluster on 127.0.0.1 for the tests: Debian's slurm-wlm (slurmctld, slurmd) and munge.

Everything lives in one temporary directory: munge's key and socket, slurm.conf, the state and spool
directories and the daemons' logs. Every daemon listens on 127.0.0.1 only (``NoInAddrAny``). The node is
called ``localhost`` so that the job step's first node, from which JAX derives the coordinator's host,
resolves to the loopback address. Its CPUs are declared above the machine's (``config_overrides``) so
that a job asks for what a real node would have. A requeued job starts again within about 15 s
(``sched_interval=5``, ``cred_expire=10``) instead of the defaults' two minutes.

Needs root (slurmd starts jobs as their user) and the Debian packages ``slurm-wlm`` and ``munge``:
``unavailable_reason`` says which is missing.
"""

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel")
NODE_CPUS = 8
START_TIMEOUT_S = 60
POLL_S = 0.25


def unavailable_reason() -> str | None:
    """Why a cluster cannot start on this machine, or None if it can."""
    missing = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """slurmctld, slurmd and munged started in ``directory``; ``stop()`` ends them. Use ``env`` for clients."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.conf = directory / "slurm.conf"
        self.munge_socket = directory / "munge" / "socket"
        self._daemons: list[subprocess.Popen] = []
        self._logs = []

    @property
    def env(self) -> dict[str, str]:
        """What a client command (sbatch, scontrol) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        munge = self.directory / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for name in ("state", "spool", "log"):
            (self.directory / name).mkdir()
        settings = {
            "ClusterName": "resnetjax",
            "SlurmctldHost": "localhost(127.0.0.1)",
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "SlurmctldPort": _free_port(),
            "SlurmdPort": _free_port(),
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket},cred_expire=10",
            "CommunicationParameters": "NoInAddrAny,NoCtldInAddrAny",
            "StateSaveLocation": self.directory / "state",
            "SlurmdSpoolDir": self.directory / "spool",
            "SlurmctldPidFile": self.directory / "slurmctld.pid",
            "SlurmdPidFile": self.directory / "slurmd.pid",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_CPU",
            "SchedulerParameters": "sched_interval=5",
            "SlurmdParameters": "config_overrides",
            "ReturnToService": 2,
            "MpiDefault": "none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
        }
        lines = [f"{name}={value}" for name, value in settings.items()]
        lines += [
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _start(self, name: str, *arguments: str) -> None:
        log = open(self.directory / "log" / f"{name}.out", "w")  # noqa: SIM115 (closed in stop)
        self._logs.append(log)
        environment = dict(os.environ, **self.env)
        self._daemons.append(
            subprocess.Popen([_binary(name), *arguments], stdout=log, stderr=subprocess.STDOUT, env=environment)
        )

    def start(self) -> "SlurmCluster":
        """Start the daemons and wait (bounded) until the node takes jobs."""
        self._write_config()
        munge = self.directory / "munge"
        self._start(
            "munged",
            "--foreground",
            "--force",
            f"--key-file={munge / 'munge.key'}",
            f"--socket={self.munge_socket}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={munge / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        self._wait(lambda: self.munge_socket.exists(), "munged to open its socket")
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._start("slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(lambda: self.node_state() == "IDLE", "the node to become idle")
        return self

    def stop(self) -> None:
        """End every job and daemon."""
        if self._daemons:
            subprocess.run(["scancel", "--full", "--user=root"], env=dict(os.environ, **self.env), timeout=30)
        for daemon in reversed(self._daemons):
            daemon.terminate()
        for daemon in reversed(self._daemons):
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        for log in self._logs:
            log.close()

    def _wait(self, condition, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if any(daemon.poll() is not None for daemon in self._daemons) or time.monotonic() > deadline:
                logs = "\n".join(path.read_text()[-2000:] for path in (self.directory / "log").glob("*"))
                raise RuntimeError(f"the SLURM cluster did not come up (waiting for {what}):\n{logs}")
            time.sleep(POLL_S)

    def scontrol(self, *arguments: str) -> str:
        """``scontrol ARGUMENTS``' output."""
        return subprocess.run(
            ["scontrol", *arguments], env=dict(os.environ, **self.env), capture_output=True, text=True, timeout=30
        ).stdout

    def node_state(self) -> str:
        """The node's state (IDLE, ALLOCATED, DOWN, ...)."""
        found = re.search(r"\bState=(\w+)", self.scontrol("show", "node", "localhost"))
        return found.group(1) if found else ""

    def job(self, job_id: int | str) -> dict[str, str]:
        """``scontrol show job``'s fields (JobState, Restarts, ExitCode, ...)."""
        return dict(re.findall(r"(\w+)=(\S*)", self.scontrol("show", "job", "--oneliner", str(job_id))))

    def sbatch(self, script: Path, env: dict[str, str], cwd: Path) -> int:
        """Submit ``script`` from ``cwd`` with ``env`` (plus this cluster's) as its environment; returns the job id."""
        submitted = subprocess.run(
            ["sbatch", "--parsable", str(script)],
            cwd=cwd,
            env={**env, **self.env},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return int(submitted.stdout.strip().split(";")[0])

    def wait_for(self, job_id: int | str, condition, what: str, timeout_s: float) -> dict[str, str]:
        """Poll job ``job_id`` until ``condition(fields)`` holds (bounded); returns its fields."""
        deadline = time.monotonic() + timeout_s
        while True:
            fields = self.job(job_id)
            if condition(fields):
                return fields
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not reach {what} in {timeout_s} s: {fields}")
            time.sleep(POLL_S)
