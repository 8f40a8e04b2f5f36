"""Turn SIGTERM (preemption) and a first Ctrl-C into a request to checkpoint and stop cleanly."""

import signal
import threading

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Records a stop signal; a second Ctrl-C still interrupts immediately.

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
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        logging.warning("%s received: will checkpoint and stop after the current step.", self.signal_name)
        self._event.set()

    def requested(self, at_sync_point: bool) -> bool:
        """Whether to stop now. With several processes all must agree, so they only check at sync points."""
        if jax.process_count() == 1:
            return self._event.is_set()
        if not at_sync_point:
            return False
        flags = multihost_utils.process_allgather(np.array(self._event.is_set()))
        return bool(np.any(flags))
