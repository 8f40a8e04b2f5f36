"""Start-up time: seconds from a process's launch to its first training step, by phase (jax and absl only)."""

import os
import time
from typing import Any

import jax
from absl import logging


class Startup:
    """Seconds from the process's start to its first training step, in phases: launch (interpreter,
    imports, flags, up to ``train_and_evaluate``; in a notebook, the whole session before the call),
    data, init or restore, and the first step (compiled, or read from the compilation cache)."""

    def __init__(self):
        self.phases = {"launch": time.time() - process_start_time()}
        self._last = time.perf_counter()
        self.reported = False

    def mark(self, phase: str) -> None:
        """End ``phase`` now."""
        now = time.perf_counter()
        self.phases[phase] = now - self._last
        self._last = now

    def report(self, writer, step: int, first_step: Any) -> None:
        """Wait for the first step, then log the phases and write them as ``startup/*`` scalars."""
        jax.block_until_ready(first_step)
        self.mark("first_step")
        total = sum(self.phases.values())
        logging.info(
            "First step after %.1f s: %s.", total, ", ".join(f"{name} {s:.1f} s" for name, s in self.phases.items())
        )
        writer.write_scalars(step, {"startup/total_s": total, **{f"startup/{k}_s": v for k, v in self.phases.items()}})
        self.reported = True


def process_start_time() -> float:
    """When this process started (Unix time), from the kernel where it says; else the time of this call."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime_file:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            uptime = float(uptime_file.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()
