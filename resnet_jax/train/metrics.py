"""The metric writers: TensorBoard events plus ``metrics.jsonl``, written by process 0 only, with no TensorFlow.

Metrics accumulate on device as clu ``Average`` sums and counts (``program``), masked for eval padding,
so the host reads them only when it writes: exact sums divided by counts, never means of means.
"""

import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from resnet_jax.train import storage
from resnet_jax.train.paths import resolve
from resnet_jax.train.tracking import WandbWriter


class JsonlWriter:
    """Appends one JSON object per write, ``{"step": int, name: value, ...}``, to a file."""

    def __init__(self, path: str | os.PathLike):
        self.path = resolve(path)
        self._open = contextlib.ExitStack()  # epath opens files as context managers
        self._file = self._open.enter_context(self.path.open("a"))

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Write one line holding every scalar of this step."""
        record = {"step": int(step), **{name: float(np.asarray(value)) for name, value in scalars.items()}}
        with storage.naming(self.path):
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def flush(self) -> None:
        """Lines are flushed as they are written."""
        with storage.naming(self.path):
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._open.close()


class TensorBoardWriter:
    """Scalars as a TensorBoard event file, written with tensorboard's protocol buffers and no TensorFlow.

    The file is a sequence of records (length, its masked CRC-32C, the serialised ``Event``, its masked
    CRC-32C), which TensorBoard reads from any directory ``epath`` reaches, ``gs://`` included.
    """

    def __init__(self, directory: str | os.PathLike):
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = resolve(directory) / name
        self._open = contextlib.ExitStack()
        self._file = self._open.enter_context(self.path.open("wb"))
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: "event_pb2.Event") -> None:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        with storage.naming(self.path):
            self._file.write(
                header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))
            )

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """One event holding every scalar of this step."""
        values = [
            summary_pb2.Summary.Value(tag=name, simple_value=float(np.asarray(value)))
            for name, value in scalars.items()
        ]
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values)))

    def flush(self) -> None:
        """Make what was written visible to TensorBoard."""
        with storage.naming(self.path):
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._open.close()


class Writers:
    """Several writers as one (none on processes other than 0)."""

    def __init__(self, writers: list):
        self._writers = writers

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Write the scalars to every writer."""
        for writer in self._writers:
            writer.write_scalars(step, scalars)

    def write_results(self, results: Mapping[str, Any]) -> None:
        """Give the final results to the writers that keep them apart from the scalars (W&B's summary)."""
        for writer in self._writers:
            if hasattr(writer, "write_results"):
                writer.write_results(results)

    def flush(self) -> None:
        """Flush every writer."""
        for writer in self._writers:
            writer.flush()

    def close(self) -> None:
        """Close every writer."""
        for writer in self._writers:
            writer.close()


def create_writer(
    workdir: str | os.PathLike,
    process_index: int,
    wandb_settings: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Writers:
    """Process 0: TensorBoard + metrics.jsonl (+ W&B given ``wandb_settings``, logging ``config``); other
    processes: nothing. The console gets the loop's own progress lines (``progress``), not every scalar."""
    if process_index > 0:
        return Writers([])
    writers = [TensorBoardWriter(workdir), JsonlWriter(resolve(workdir) / "metrics.jsonl")]
    if wandb_settings:
        writers.append(WandbWriter(workdir, wandb_settings, config or {}))
    return Writers(writers)
