"""clu metric collections and writers: TensorBoard plus ``metrics.jsonl``, written by process 0 only.

Metrics accumulate on device as clu ``Average`` sums and counts (masked for eval padding), so the
host reads them only when it writes: exact sums divided by counts, never means of means.
"""

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from clu import metric_writers
from clu import metrics as clu_metrics

from resnet_jax.train.paths import resolve
from resnet_jax.train.sharding import to_host

EVAL_OUTPUTS = ("loss", "top1", "top5")


def _field(output_name: str) -> str:
    """Collection field for a step output: dataclass fields cannot contain '/'."""
    return output_name.replace("/", "__")


def collection(output_names: Iterable[str]) -> type[clu_metrics.Collection]:
    """A clu Collection averaging each named step output (masked by the ``mask`` output when present)."""
    return clu_metrics.Collection.create(
        **{_field(name): clu_metrics.Average.from_output(name) for name in output_names if name != "mask"}
    )


def compute(metrics: clu_metrics.Collection, prefix: str) -> dict[str, float]:
    """Host values ``{'prefix/name': value}`` of an accumulated collection (a sync point)."""
    values = to_host(metrics.compute())
    return {f"{prefix}/{name.replace('__', '/')}": float(value) for name, value in values.items()}


def eval_count(metrics: clu_metrics.Collection) -> int:
    """How many real (unmasked) examples an eval collection has seen."""
    return int(to_host(metrics.top1.count))


class JsonlWriter(metric_writers.interface.MetricWriter):
    """Appends one JSON object per write, ``{"step": int, name: value, ...}``, to a file."""

    def __init__(self, path: str | os.PathLike):
        self._open = contextlib.ExitStack()  # epath opens files as context managers
        self._file = self._open.enter_context(resolve(path).open("a"))

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Write one line holding every scalar of this step."""
        record = {"step": int(step), **{name: float(np.asarray(value)) for name, value in scalars.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def write_summaries(self, step, values, metadata=None):
        """Non-scalar summaries are left to TensorBoard."""

    def write_images(self, step, images):
        """Images are left to TensorBoard."""

    def write_videos(self, step, videos):
        """Videos are left to TensorBoard."""

    def write_audios(self, step, audios, *, sample_rate):
        """Audio is left to TensorBoard."""

    def write_texts(self, step, texts):
        """Texts are left to TensorBoard."""

    def write_histograms(self, step, arrays, num_buckets=None):
        """Histograms are left to TensorBoard."""

    def write_hparams(self, hparams):
        """Hyper-parameters live in config.json."""

    def flush(self):
        """Lines are flushed as they are written."""
        self._file.flush()

    def close(self):
        """Close the file."""
        self._open.close()


def create_writer(workdir: str | os.PathLike, process_index: int) -> metric_writers.MetricWriter:
    """Process 0: TensorBoard (asynchronous) + metrics.jsonl; other processes: nothing. The console gets
    the loop's own progress lines (``progress``), not every scalar."""
    if process_index > 0:
        return metric_writers.MultiWriter([])
    tensorboard = metric_writers.AsyncWriter(metric_writers.SummaryWriter(os.fspath(workdir)))
    return metric_writers.MultiWriter([tensorboard, JsonlWriter(resolve(workdir) / "metrics.jsonl")])
