"""The plain numpy copy of a prepared in-memory dataset: what runs read, with no TensorFlow or TFDS.

TFDS stays the format of record and the way datasets are built. The first time an in-memory dataset
is read through TFDS (or when ``python -m resnet_jax.data.prepare`` builds it), its uint8 splits and
class count are also written to ``DATA_DIR/resnet_jax_arrays/NAME.npz``; every later run loads that
file in well under a second, on a machine with or without TensorFlow. Splits are stored whole, in
TFDS's canonical order, so TFDS slices such as ``train[:-5000]`` are plain numpy slices of them. The
dataset's ``DatasetSpec`` is stored with them.
"""

import io
import json
import os
import socket

import numpy as np
from etils import epath

from resnet_jax.data.spec import DatasetSpec
from resnet_jax.paths import resolve

Splits = dict[str, dict[str, np.ndarray]]
DIRECTORY = "resnet_jax_arrays"
SPEC_KEY = "spec.json"  # the npz member holding the DatasetSpec


def default_data_dir() -> str:
    """TFDS's default data directory (``TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), found without TFDS."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def copy_path(name: str, data_dir: str) -> epath.Path:
    """Where the numpy copy of dataset ``name`` lives under ``data_dir`` ('' = TFDS's default)."""
    return resolve(os.path.expanduser(data_dir) if data_dir else default_data_dir()) / DIRECTORY / f"{name}.npz"


def save(path: epath.Path, splits: Splits, spec: DatasetSpec) -> None:
    """Write ``splits`` (``{split: {'image', 'label'}}``) and their spec atomically."""
    members = {f"{split}/{field}": values for split, arrays in splits.items() for field, values in arrays.items()}
    members[SPEC_KEY] = np.frombuffer(json.dumps(spec.to_json()).encode(), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.partial")  # processes may race
    buffer = io.BytesIO()  # zip needs a seekable file, which a gs:// object being written is not
    np.savez_compressed(buffer, **members)
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)


def read_spec(path: epath.Path) -> DatasetSpec:
    """The spec of a numpy copy, without reading its arrays."""
    with path.open("rb") as file, np.load(file) as members:
        return _spec(members, path)


def load(path: epath.Path) -> tuple[Splits, DatasetSpec]:
    """The splits and the spec of a numpy copy."""
    with path.open("rb") as file, np.load(file) as members:
        splits: Splits = {}
        for member in members.files:
            if member != SPEC_KEY:
                split, field = member.split("/")
                splits.setdefault(split, {})[field] = members[member]
        return splits, _spec(members, path)


def _spec(members, path: epath.Path) -> DatasetSpec:
    stored = json.loads(members[SPEC_KEY].tobytes().decode())
    if "train_split" not in stored:  # a copy written before specs: {num_classes, source, splits} of train and test
        stored = dict(name=path.stem, train_split="train", test_split="test", **stored)
    return DatasetSpec.from_json(stored)
