"""``profile=True``: a ``jax.profiler`` trace of a few train steps, written into the workdir for
TensorBoard's profile plugin (``plugins/profile``), with no TensorFlow."""

import os

import jax
from absl import logging

WARMUP_STEPS = 10  # steps after the run (re)starts before tracing, so compilation stays out of the trace
TRACED_STEPS = 5


class StepTrace:
    """Starts a trace ``WARMUP_STEPS`` after ``start_step`` and stops it ``TRACED_STEPS`` steps later (never,
    unless ``enabled``)."""

    def __init__(self, logdir: str | os.PathLike, start_step: int, enabled: bool = True):
        self._logdir = os.fspath(logdir)
        self._first_step = start_step + WARMUP_STEPS
        self._tracing = False
        self._pending = enabled  # a trace still to take

    def __call__(self, step: int) -> None:
        """Called after each dispatch, with the step it reached (several steps a dispatch may pass the marks)."""
        if self._pending and step >= self._first_step:
            jax.profiler.start_trace(self._logdir)
            self._tracing, self._pending = True, False
        elif self._tracing and step >= self._first_step + TRACED_STEPS:
            self.stop()
            logging.info("Profiled steps %d-%d into %s.", self._first_step + 1, step, self._logdir)

    def stop(self) -> None:
        """End the trace if one is running (a run that ends or stops inside the traced steps)."""
        if self._tracing:
            jax.profiler.stop_trace()
            self._tracing = False
