"""Turn SIGTERM (preemption) and a first Ctrl-C into a request to checkpoint and stop cleanly, at any
moment: during start-up and compilation the request waits for the first step, which is not taken."""

import os
import signal
import sys
import threading

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_now(signum: int, why: str) -> None:
    """End the process at once with one line on stderr (exit code 128 + signal), skipping the
    interpreter's teardown, which native threads (XLA, tf.data, orbax) can crash mid-way."""
    print(f"Stopped by {signal.Signals(signum).name} {why}.", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def exit_on_stop_signals(why: str) -> None:
    """Until a ``StopRequest`` takes over, a stop signal ends the process at once (nothing to save yet)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda number, frame: exit_now(number, why))


class StopRequest:
    """Records a stop signal; a second Ctrl-C ends the process at once, without checkpointing.

    Use as a context manager around the training loop so the previous handlers come back afterwards.
    """

    def __init__(self):
        self.signal_name: str | None = None
        self._event = threading.Event()
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self._event.is_set() and signum == signal.SIGINT:
            exit_now(signum, "twice: exiting without a new checkpoint (the last one stays)")
        self.signal_name = signal.Signals(signum).name
        logging.warning(
            "%s received: stopping before the next step, after a checkpoint once training has started "
            "(Ctrl-C again exits at once).",
            self.signal_name,
        )
        self._event.set()

    def requested(self, at_sync_point: bool) -> bool:
        """Whether to stop now. With several processes all must agree, so they only check at sync points."""
        if jax.process_count() == 1:
            return self._event.is_set()
        if not at_sync_point:
            return False
        flags = multihost_utils.process_allgather(np.array(self._event.is_set()))
        return bool(np.any(flags))
