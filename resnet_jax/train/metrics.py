"""The metric writers: TensorBoard events (tensorboardX) plus ``metrics.jsonl``, written by process 0 only, with no
TensorFlow.

Each step appears once, also after a resume: before a resumed run writes, ``metrics.jsonl`` is cut back to the
step of the checkpoint it restored, and its TensorBoard event file starts with a purge of the steps after it,
so what a killed run logged after its last checkpoint is replaced by what the resumed run logs again. A run
that starts from scratch in a workdir with earlier metrics (killed before its first checkpoint, or whose
checkpoints were deleted) restored step 0: the earlier lines and events are dropped likewise.

Metrics accumulate on device as clu ``Average`` sums and counts (``program``), masked for eval padding,
so the host reads them only when it writes: exact sums divided by counts, never means of means.
"""

import importlib
import itertools
import json
import os
import struct
import sys
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from absl import logging
from etils import epath

from resnet_jax.paths import resolve
from resnet_jax.runtime import storage
from resnet_jax.train.tracking import WandbWriter

METRICS_FILE = "metrics.jsonl"
EVENT_FILES = "events.out.tfevents.*"
WRITE_TIMEOUT_S = 300  # how long a write waits for tensorboardX's thread to have written its events


def cut_jsonl(path: str | os.PathLike, step: int) -> int:
    """Drop the lines of ``path`` whose step is after ``step``, and torn ones, atomically; how many it dropped."""
    path = resolve(path)
    if not path.exists() or ("://" not in os.fspath(path) and not os.path.isfile(path)):  # a device: not cut
        return 0
    with storage.naming(path):
        text = path.read_text()
    lines = [line for line in text.split("\n") if line.strip()]  # a kill may have cut the last one short
    kept = [line for line in lines if (logged := _step_of(line)) is not None and logged <= step]
    dropped = len(lines) - len(kept)
    if dropped or (text and not text.endswith("\n")):  # the next line must not be appended to the last
        partial = path.with_name(f"{path.name}.tmp")  # then replaced: a kill now leaves the file whole
        with storage.naming(partial):
            partial.write_text("".join(line + "\n" for line in kept))
        partial.replace(path)
        logging.info("Cut %s back to step %d: %d lines logged after it (or torn) dropped.", path, step, dropped)
    return dropped


def _step_of(line: str) -> int | None:
    """The step of one metrics.jsonl line; None for a line that is not a whole record (a torn last line)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


class RewrittenObject:
    """A file in an object store (``gs://``) written as if appended to. An object cannot be appended to (gcsfs
    opens mode 'a' as 'w'), and one being uploaded is not visible until it is closed, so each flush rewrites
    the whole object: what was flushed is there, and whole, at any moment."""

    def __init__(self, path: epath.Path, keep: bool):
        self.path = path
        self._content = bytearray(path.read_bytes() if keep and path.exists() else b"")

    def write(self, data: bytes | str) -> None:
        """Add ``data`` to the object's next upload."""
        self._content += data.encode() if isinstance(data, str) else data

    def flush(self) -> None:
        """Upload the whole object."""
        self.path.write_bytes(bytes(self._content))

    def close(self) -> None:
        """Upload what was written since the last flush."""
        self.flush()


def open_for_appending(path: epath.Path, *, binary: bool, keep: bool):
    """A file to write, flush and close at ``path``: a local file opened for appending (``keep``) or afresh, or
    a ``RewrittenObject`` in an object store."""
    if "://" in os.fspath(path):
        return RewrittenObject(path, keep)
    return open(path, ("a" if keep else "w") + ("b" if binary else ""))  # noqa: SIM115 (the writers close it)


class JsonlWriter:
    """Appends one JSON object per write, ``{"step": int, name: value, ...}``, to a file."""

    def __init__(self, path: str | os.PathLike):
        self.path = resolve(path)
        with storage.naming(self.path):
            self._file = open_for_appending(self.path, binary=False, keep=True)

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
        with storage.naming(self.path):
            self._file.close()


class TensorBoardWriter:
    """Scalars as a TensorBoard event file, written by tensorboardX's ``SummaryWriter`` through ``epath``.

    ``purge_step`` starts the file with a purge: TensorBoard then drops what earlier event files in the
    directory hold from that step on. tensorboardX writes on a thread of its own; each write here returns once
    its events are in the file and flushed (as ``metrics.jsonl``'s lines are), so a run killed after saving a
    checkpoint has every event up to it, and a failed write raises here, naming the file.
    """

    def __init__(self, directory: str | os.PathLike, purge_step: int | None = None):
        summary_writer = _summary_writer_class()
        _OPENING.files = []
        suffix = f".{os.getpid()}.{next(_WRITERS)}"  # tensorboardX names files by the second: two never clash
        self._writer = summary_writer(
            f"{_EPATH_SCHEME}:{resolve(directory)}", purge_step=purge_step, filename_suffix=suffix
        )
        (self._file,) = _OPENING.files
        self.path = self._file.path
        self._scalars = 0  # written with add_scalar: one event each

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """One event per scalar of this step; returns once they are in the file."""
        for name, value in scalars.items():
            self._writer.add_scalar(name, float(np.asarray(value)), int(step))
        self._scalars += len(scalars)
        self.flush()

    def flush(self) -> None:
        """Wait until every event is in the file, then flush it: TensorBoard sees them."""
        file = self._file
        with file.written:
            done = file.written.wait_for(lambda: file.summaries >= self._scalars or file.error, WRITE_TIMEOUT_S)
        with storage.naming(self.path):
            file.raise_error()
            if not done:
                raise TimeoutError(f"tensorboardX wrote no event to {self.path} for {WRITE_TIMEOUT_S} s")
            self._writer.flush()
            file.raise_error()

    def close(self) -> None:
        """Write what is left and close the file."""
        with storage.naming(self.path):
            self._writer.close()
            self._file.raise_error()


# tensorboardX opens an event file by what precedes the first ':' of its path: its own writers for gs:// and
# s3:// (whole-file uploads through google-cloud-storage or boto3), a local file for any other path (an az://
# workdir would become a local folder named az:). Under this prefix it gets an ``_EventFile`` instead: epath,
# as every other workdir file, and the count of events written that lets a write wait for them.
_EPATH_SCHEME = "resnet-jax-epath"
_OPENING = threading.local()  # the event files that the SummaryWriter being created opened
_WRITERS = itertools.count()  # this process's TensorBoard writers, numbered into their file names


def _summary_writer_class():
    """tensorboardX's ``SummaryWriter``, with our file opener registered; imported without torch."""
    if "tensorboardX" not in sys.modules and "torch" not in sys.modules:
        # tensorboardX imports torch where it is installed, only to annotate its arguments: seconds of
        # start-up and a second framework's threads beside JAX. A None entry makes that import fail, as
        # tensorboardX allows; torch itself imports normally afterwards.
        sys.modules["torch"] = None
        try:
            importlib.import_module("tensorboardX")
        finally:
            del sys.modules["torch"]
    from tensorboardX import SummaryWriter, record_writer

    record_writer.register_writer_factory(_EPATH_SCHEME, _EpathOpener())
    return SummaryWriter


class _EpathOpener:
    """tensorboardX's writer factory for ``_EPATH_SCHEME:PATH``: PATH through epath."""

    def directory_check(self, path: str) -> None:
        """Make the directory, as tensorboardX does before it opens a file in it."""
        directory = resolve(path.split(":", 1)[1])
        with storage.naming(directory):
            directory.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> "_EventFile":
        """Open the event file for writing."""
        event_file = _EventFile(resolve(path.split(":", 1)[1]))
        _OPENING.files.append(event_file)
        return event_file


class _EventFile:
    """An event file as tensorboardX's record writer uses it (write, flush, close), through epath.

    tensorboardX calls it from its own thread: it counts the summary events written (``written`` is notified
    at each) and keeps the first error, for the writer to raise in the training loop's thread.
    """

    def __init__(self, path: epath.Path):
        self.path = path
        with storage.naming(path):
            self._file = open_for_appending(path, binary=True, keep=False)
        self.written = threading.Condition()
        self.summaries = 0
        self.error: Exception | None = None
        self._pending = bytearray()  # the bytes of records not yet whole

    def write(self, data: bytes) -> None:
        """Write, then count the summary events that are now whole (length, CRC, event, CRC)."""
        if self.error is not None:
            return
        try:
            self._file.write(data)
        except Exception as error:  # kept for the writer to raise in the training loop's thread
            self._fail(error)
            return
        from tensorboardX.proto.event_pb2 import Event

        self._pending += data
        while len(self._pending) >= 12:
            (length,) = struct.unpack("<Q", self._pending[:8])
            if len(self._pending) < 12 + length + 4:
                break
            event = Event.FromString(bytes(self._pending[12 : 12 + length]))
            del self._pending[: 12 + length + 4]
            if event.HasField("summary"):
                with self.written:
                    self.summaries += 1
                    self.written.notify_all()

    def flush(self) -> None:
        """Flush what was written; an error is kept, not raised on tensorboardX's thread."""
        if self.error is None:
            try:
                self._file.flush()
            except Exception as error:
                self._fail(error)

    def close(self) -> None:
        """Close the file; an error is kept, as at a write."""
        try:
            self._file.close()
        except Exception as error:
            self._fail(error)

    def raise_error(self) -> None:
        """Raise the first error a write or flush met."""
        if self.error is not None:
            raise self.error

    def _fail(self, error: Exception) -> None:
        with self.written:
            self.error = error
            self.written.notify_all()


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
    *,
    restored_step: int,
) -> Writers:
    """Process 0: TensorBoard + metrics.jsonl (+ W&B given ``wandb_settings``, logging ``config``), set up to
    follow ``restored_step`` (the step of the checkpoint the run resumed from, 0 for none): metrics.jsonl cut
    back to it, TensorBoard purging the later steps of earlier event files. Other processes: nothing. The
    console gets the loop's own progress lines (``progress``), not every scalar."""
    if process_index > 0:
        return Writers([])
    workdir = resolve(workdir)
    earlier_events = any(workdir.glob(EVENT_FILES))
    cut_jsonl(workdir / METRICS_FILE, restored_step)
    writers = [
        TensorBoardWriter(workdir, purge_step=restored_step + 1 if earlier_events else None),
        JsonlWriter(workdir / METRICS_FILE),
    ]
    if wandb_settings:
        writers.append(WandbWriter(workdir, wandb_settings, config or {}))
    return Writers(writers)
