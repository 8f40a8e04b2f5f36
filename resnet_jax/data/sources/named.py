"""The named datasets (``spec.NAMED_DATASETS``: ``digits``, ``fashion_mnist``, ``cifar10``, ``cifar100``,
``imagenet2012`` and any registered from outside), prepared, and opened for their pipeline: the numpy copy of an
in-memory one, or the TFDS records of a streamed one."""

import contextlib
import dataclasses
import io

from absl import logging

from resnet_jax.data import spec
from resnet_jax.data.sources import arrays, records, tfds_source
from resnet_jax.errors import MissingFilesError

Splits = arrays.Splits


def prepare(dataset: str, data_dir: str, manual_dir: str | None = None, skip_checksum: bool = False) -> str:
    """Build named ``dataset`` under ``data_dir`` (no-op if already there); returns its TFDS directory."""
    if dataset not in spec.NAMED_DATASETS:
        raise ValueError(f"cannot prepare {dataset!r}; preparable datasets: {', '.join(spec.NAMED_DATASETS)}")
    tfds_source.require_tfds()  # TFDS builds every dataset: without it, one paragraph naming the extra
    entry = spec.NAMED_DATASETS[dataset]
    if entry.needs_archives and not manual_dir:
        raise MissingFilesError(
            f"{dataset} is prepared from its original archive(s): pass --manual_dir DIR_HOLDING_THEM"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # TFDS prints "Downloading and preparing", with nothing to fetch
        return entry.preparation()(data_dir, manual_dir, skip_checksum)


def _builder(name: str, data_dir: str, download: bool, numpy_copy=None):
    """The prepared TFDS builder of ``name``, built from this machine's files first where it can be."""
    entry = spec.NAMED_DATASETS[name]

    def build_here() -> str:
        where = data_dir or arrays.default_data_dir()
        logging.info("%s is not prepared in %s: preparing it from the files on this machine, once.", name, where)
        return prepare(name, data_dir)

    local = build_here if entry.build_locally else None
    register = entry.preparation if entry.build_locally else None  # its module registers the TFDS builder
    return tfds_source.prepared_builder(name, data_dir, local, numpy_copy, download, register)


def named_arrays(name: str, data_dir: str, download: bool = False) -> tuple[Splits, spec.DatasetSpec]:
    """A named in-memory dataset's stored splits and spec: from the numpy copy when there is one (no
    TensorFlow), else from TFDS, which then writes the copy."""
    path = arrays.copy_path(name, data_dir)
    return arrays.load(path) if path.exists() else write_numpy_copy(name, data_dir, download)


def write_numpy_copy(name: str, data_dir: str, download: bool = False) -> tuple[Splits, spec.DatasetSpec]:
    """Read a named in-memory dataset's whole train and test splits through TFDS (preparing it first if it
    builds from local files) and write their numpy copy; returns what ``arrays.load`` would, without reading it back."""
    known = spec.known(name)
    path = arrays.copy_path(name, data_dir)
    builder = _builder(name, data_dir, download, numpy_copy=path)
    stored = {split: tfds_source.split_arrays(builder, split) for split in (known.train_split, known.test_split)}
    label = builder.info.features["label"]
    dataset_spec = dataclasses.replace(
        known,
        splits={split: len(values["label"]) for split, values in stored.items()},
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        source=f"tfds {builder.info.full_name}",
        **spec.image_facts(stored[known.train_split]["image"]),
    )
    arrays.save(path, stored, dataset_spec)
    logging.info("Wrote the numpy copy of %s to %s: later runs read it without TensorFlow.", name, path)
    return stored, dataset_spec


def named_records(name: str, data_dir: str, download: bool = False) -> records.RecordSource:
    """A named dataset's TFDS records for the streamed pipeline (ImageNet's, or another's when asked for),
    with its spec; statistics the spec lacks are computed once and stored."""
    known = spec.known(name)
    builder = _builder(name, data_dir, download)
    label = builder.info.features["label"]
    dataset_spec = dataclasses.replace(
        known,
        splits={split: builder.info.splits[split].num_examples for split in known.splits},
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        pipeline=spec.STREAMED,
        source=f"tfds {builder.info.full_name}",
    )
    if known.mean is None:
        dataset_spec = records.with_statistics(builder, "image", dataset_spec, name, data_dir)
    return records.RecordSource(builder, "image", "label", dataset_spec)
