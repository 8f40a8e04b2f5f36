"""Joining a multi-process job (``jax.distributed.initialize``) within ``join_timeout_s``.

When the job does not form in time, JAX's own deadline aborts the process from C++ with a stack trace that
names no process. A watchdog therefore fires first (JAX is given ``GRACE_S`` more) and ends the process with
one paragraph saying which process did not arrive, as far as this process can tell: any process can see
whether the coordinator (process 0) answers; process 0 of a two-process job knows the missing one is
process 1. Every process that did arrive says so in its own paragraph, so the job's merged log (SLURM's
output file, say) lists the arrivals and, by their absence, the others.
"""

import os
import socket
import threading

import jax
from absl import logging

from resnet_jax.errors import ConfigError, ExitCode, MissingDependency
from resnet_jax.runtime.preemption import exit_with_message

GRACE_S = 30  # JAX's own deadline comes this much after ours, so that ours is the one that fires
PROBE_TIMEOUT_S = 3.0


def coordinator_answers(address: str) -> bool:
    """Whether something accepts TCP connections at ``address`` ('HOST:PORT' or '[IPV6]:PORT')."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def missing_processes_message(address: str | None, num_processes: int | None, process_id: int | None, timeout_s: int):
    """The paragraph for a job that did not form within ``timeout_s``: who arrived, and who did not."""
    if address is None or num_processes is None or process_id is None:
        return (
            f"error: this process waited {timeout_s} s to join a multi-process job described by the cluster's "
            "environment, and the job did not form. Check that every process of the job was started, then run the "
            "same command again; raise --config.join_timeout_s if the processes start far apart."
        )
    if process_id != 0 and not coordinator_answers(address):
        missing = f"process 0, the coordinator at {address}, did not arrive: nothing answers there"
    elif process_id != 0:
        missing = f"process 0 answers at {address}, so another of processes 1 to {num_processes - 1} did not arrive"
    elif num_processes == 2:
        missing = "process 1 did not arrive"
    else:
        missing = (
            f"at least one of processes 1 to {num_processes - 1} did not arrive; those that did say so in their "
            "own logs"
        )
    return (
        f"error: process {process_id} of {num_processes} arrived at {address} and waited {timeout_s} s for the "
        f"job to form, but {missing}. Check that every process was started (the scheduler's log), with the same "
        "coordinator and number of processes, then run the same command again; raise --config.join_timeout_s "
        "if the processes start far apart."
    )


def _give_up(timeout_s: int) -> None:
    from jax._src import distributed  # the job's shape as JAX resolved it (flags or cluster detection)

    state = distributed.global_state
    message = missing_processes_message(
        getattr(state, "coordinator_address", None),
        getattr(state, "num_processes", None),
        getattr(state, "process_id", None),
        timeout_s,
    )
    exit_with_message(message, ExitCode.FAILED)


def refuse_to_run_alone_in_an_indexed_job() -> None:
    """Raise ``MissingDependency`` in a pod of an Indexed Kubernetes Job that JAX did not recognise: each pod
    would train alone, on the same workdir."""
    if "KUBERNETES_SERVICE_HOST" in os.environ and "JOB_COMPLETION_INDEX" in os.environ:
        raise MissingDependency(
            f"this pod is index {os.environ['JOB_COMPLETION_INDEX']} of an Indexed Kubernetes Job, but JAX found no "
            'job to join: install the image with JAX\'s Kubernetes detection (pip install -e ".[k8s]", which '
            "brings the kubernetes package; the pod's service account must be allowed to list pods and get jobs, "
            "see experiments/launch/gke_jobset.yaml), or give --coordinator_address, --num_processes and "
            "--process_id."
        )


def join(coordinator_address: str | None, num_processes: int | None, process_id: int | None, timeout_s: int) -> None:
    """Join the job that the flags (all three, or none) or the cluster's environment (SLURM, TPU, Kubernetes,
    Open MPI) describe, within ``timeout_s``; without either, stay a single process."""
    explicit = coordinator_address is not None
    watchdog = threading.Timer(timeout_s, _give_up, args=(timeout_s,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id, initialization_timeout=timeout_s + GRACE_S
        )
    except ValueError as error:  # raised before any connection: nothing describes a multi-process job
        if explicit:
            raise ConfigError(f"{error} Check --coordinator_address, --num_processes and --process_id.") from None
        refuse_to_run_alone_in_an_indexed_job()
        logging.info("One process, on %d %s device(s).", jax.local_device_count(), jax.default_backend())
        return
    finally:
        watchdog.cancel()
    logging.info("Process %d of %d joined the job.", jax.process_index(), jax.process_count())
