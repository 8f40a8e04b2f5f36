"""Workdir, checkpoint, metrics and results paths on any filesystem orbax and TFDS support (``etils.epath``),
and the keys of config.json that are not config fields.

Every path a user gives (workdir, data_dir, init_from, compilation cache, a folder dataset) is resolved here,
so a ``gs://`` path that this install cannot open stops here, with the extra to install, before it is used.
"""

import importlib.util
import os

from etils import epath

from resnet_jax.errors import MissingDependency

RESUME_CHANGES = "resumed_with_changes"  # config.json key: config fields changed when the run was resumed
RECORD_EXTRAS = ("versions", "devices", "derived", RESUME_CHANGES)  # config.json keys that are not config fields
GCS_EXTRA = 'pip install -e ".[gcs]"'  # the tpu and cuda12 extras include it


def resolve(path: str | os.PathLike) -> epath.Path:
    """An ``epath.Path``: a URI (``gs://bucket/run``, ``s3://...``) as given, a local path made absolute."""
    text = os.fspath(path)
    require_filesystem(text)
    return epath.Path(text if "://" in text else os.path.abspath(text))


def _epath_can_use_tensorflow() -> bool:
    """Whether etils.epath opens ``gs://`` with TensorFlow's filesystem: TensorFlow is installed and
    ``EPATH_USE_TF`` (etils' own switch) does not turn it off."""
    switched_off = os.environ.get("EPATH_USE_TF", "").lower() in ("false", "no", "f", "0")
    return not switched_off and importlib.util.find_spec("tensorflow") is not None


def require_filesystem(path: str | os.PathLike, given: str = "") -> None:
    """Raise MissingDependency, naming the extra to install, for a ``gs://`` path that etils.epath cannot
    open here (it needs gcsfs, or TensorFlow's filesystem); ``given`` is how the user gave it (a flag)."""
    text = os.fspath(path)
    if not text.startswith("gs://") or importlib.util.find_spec("gcsfs") is not None or _epath_can_use_tensorflow():
        return
    raise MissingDependency(
        f"{given or text} is in Google Cloud Storage, which this install cannot reach: etils.epath opens gs:// paths "
        f"with gcsfs (or with TensorFlow's filesystem, where TensorFlow is installed), and neither is installed. "
        f"Install gcsfs with `{GCS_EXTRA}` (the tpu and cuda12 extras include it), or use a local path."
    )
