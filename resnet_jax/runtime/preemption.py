"""Turn SIGTERM (preemption), SIGHUP (a closed terminal or ssh session) and a first Ctrl-C into a request to
checkpoint and stop cleanly, at any moment: during start-up and compilation the request waits for the first
step, which is not taken. A run stopped this way exits with ``ExitCode.RESUME``: nothing was lost.

A SIGHUP that was ignored when the process started stays ignored: ``nohup`` ignores it so that the run
outlives its terminal, as the user asked. SIGTERM and Ctrl-C are always a stop request.
"""

import os
import signal
import sys
import threading

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from resnet_jax.errors import ExitCode

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_IGNORED_AT_START = frozenset({signal.SIGHUP} if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else ())


def exit_with_message(message: str, code: int) -> None:
    """Print ``message`` on stderr and end the process at once with ``code``, skipping the interpreter's
    teardown, which native threads (XLA, tf.data, orbax) can crash mid-way."""
    print(message, file=sys.stderr, flush=True)
    os._exit(code)


def exit_now(signum: int, why: str, code: int = ExitCode.RESUME) -> None:
    """End the process at once with one line on stderr."""
    exit_with_message(f"Stopped by {signal.Signals(signum).name} {why}.", code)


def handle_stop_signals(handler) -> dict:
    """Install ``handler`` for every stop signal but a SIGHUP ignored at start (main thread only); returns the
    handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, handler) for number in STOP_SIGNALS if number not in _IGNORED_AT_START}


def exit_on_stop_signals(why: str) -> None:
    """Until a ``StopRequest`` takes over, a stop signal ends the process at once (nothing to save yet, so
    nothing is lost: the exit code says to run the same command again)."""
    handle_stop_signals(lambda number, frame: exit_now(number, why))


class StopRequest:
    """Records a stop signal; a second Ctrl-C ends the process at once, without checkpointing.

    Use as a context manager around the training loop so the previous handlers come back afterwards.
    With several processes, a signal to any one stops them all at the same step: each train step takes
    every process's ``vote`` and returns whether any is set (its ballot), and the loop reads a step's
    ballot once that step is done, so all read the same answer at the same step, with no extra
    collective to keep in order and no host barrier.
    """

    def __init__(self):
        self.signal_name: str | None = None
        self._event = threading.Event()
        self._previous = {}
        self._votes: dict[tuple[Mesh, bool], jax.Array] = {}

    def __enter__(self) -> "StopRequest":
        self._previous = handle_stop_signals(self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self._event.is_set() and signum == signal.SIGINT:
            exit_now(signum, "twice: exiting without a new checkpoint (the last one stays)", 128 + signum)
        self.signal_name = signal.Signals(signum).name
        logging.warning(
            "%s received: stopping before the next step, after a checkpoint once training has started "
            "(Ctrl-C again exits at once).",
            self.signal_name,
        )
        self._event.set()

    @property
    def reason(self) -> str:
        """What stopped the run: this process's signal, or another process's."""
        return self.signal_name or "a stop signal to another process"

    def vote(self, mesh: Mesh) -> jax.Array:
        """This process's flag on each of its devices of ``mesh``, sharded like a batch: a train step's
        input (each value is sent to the devices once, not every step)."""
        flag = self._event.is_set()
        if (mesh, flag) not in self._votes:
            flags = np.full(len(mesh.local_devices), flag)
            by_device = NamedSharding(mesh, PartitionSpec(mesh.axis_names))  # one flag per device, as a batch
            self._votes[mesh, flag] = jax.make_array_from_process_local_data(by_device, flags)
        return self._votes[mesh, flag]

    def requested(self, ballot: jax.Array | None) -> bool:
        """Whether to stop now, during training. One process: its own flag. Several: the ballot (any
        vote set) of a finished step, the same step's on every process; no stop without one."""
        if jax.process_count() == 1:
            return self._event.is_set()
        return ballot is not None and bool(ballot)

    def requested_before_training(self) -> bool:
        """Whether a signal came during start-up or compilation, to any process (a barrier: call it
        only while no computation is in flight)."""
        if jax.process_count() == 1:
            return self._event.is_set()
        return bool(np.any(multihost_utils.process_allgather(np.array(self._event.is_set()))))
