"""Workdir, checkpoint, metrics and results paths on any filesystem orbax and TFDS support (``etils.epath``),
and the keys of config.json that are not config fields."""

import os

from etils import epath

RESUME_CHANGES = "resumed_with_changes"  # config.json key: config fields changed when the run was resumed
RECORD_EXTRAS = ("versions", "devices", "derived", RESUME_CHANGES)  # config.json keys that are not config fields


def resolve(path: str | os.PathLike) -> epath.Path:
    """An ``epath.Path``: a URI (``gs://bucket/run``, ``s3://...``) as given, a local path made absolute."""
    text = os.fspath(path)
    return epath.Path(text if "://" in text else os.path.abspath(text))
