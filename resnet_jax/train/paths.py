"""Workdir, checkpoint, metrics and results paths on any filesystem orbax and TFDS support (``etils.epath``)."""

import os

from etils import epath


def resolve(path: str | os.PathLike) -> epath.Path:
    """An ``epath.Path``: a URI (``gs://bucket/run``, ``s3://...``) as given, a local path made absolute."""
    text = os.fspath(path)
    return epath.Path(text if "://" in text else os.path.abspath(text))
