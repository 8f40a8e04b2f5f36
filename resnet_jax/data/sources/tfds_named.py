"""``tfds:NAME[/CONFIG][:VERSION]``: any prepared TFDS image-classification dataset, found from its features.

The image and label features are the builder's ``Image`` and ``ClassLabel`` features (``image_key`` and
``label_key`` name them when there is more than one); the train split is ``train`` and the test split is
``test``, else ``validation`` (``train_split`` and ``eval_split`` override both, in TFDS's split syntax).
Images of one size up to ``spec.IN_MEMORY_MAX_SIDE`` are read once through TFDS and kept as a numpy copy,
as the named in-memory datasets are, so later runs need no TensorFlow; larger or varying images are
streamed from the dataset's own records (``pipeline`` overrides the choice).
"""

import dataclasses
import hashlib
import json

import numpy as np
from absl import logging

from resnet_jax.data import spec
from resnet_jax.data.sources import arrays, records, tfds_source
from resnet_jax.errors import ConfigError, MissingFilesError

TEST_SPLITS = ("test", "validation")


def builder_of(name: str, data_dir: str):
    """TFDS's builder ``name`` (NAME[/CONFIG][:VERSION]) over ``data_dir``, prepared or not; ConfigError when
    TFDS knows no such dataset."""
    tfds_source.tensorflow()
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except Exception as error:  # noqa: BLE001  (TFDS raises several types for an unknown name)
        raise ConfigError(
            f"dataset 'tfds:{name}' is not a TFDS dataset this TFDS knows ({str(error).splitlines()[0]}). Check the "
            "name at https://www.tensorflow.org/datasets/catalog, or register your builder by importing its module."
        ) from None


def open_builder(name: str, data_dir: str, download: bool = False):
    """The prepared TFDS builder ``name``, downloaded by TFDS first if ``download`` and the network answers;
    otherwise one paragraph naming the prepare command (and the files TFDS expects in --manual_dir)."""
    builder = builder_of(name, data_dir)
    if builder.is_prepared():
        return builder
    manual = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
    manual_text = (
        f" TFDS builds it offline from files you place in --manual_dir: {' '.join(manual.split())}"
        if manual
        else " TFDS downloads its files when prepared on a machine with internet; copy the prepared "
        f"{builder.info.full_name} directory here under --config.data_dir."
    )
    offline = (
        f"dataset 'tfds:{name}' is not prepared in {builder.data_dir}. Prepare it once with "
        f"python -m resnet_jax.data.prepare tfds:{name} --data_dir {data_dir or '~/tensorflow_datasets'} "
        f"[--manual_dir DIR], then train with --config.data_dir set to the same directory.{manual_text}"
    )
    if not download or manual:
        raise MissingFilesError(offline)
    tfds_source.download_or_explain(builder, offline)
    return builder


def find_keys(info, image_key: str, label_key: str, name: str) -> tuple[str, str]:
    """The image and label feature names: given, or the only ``Image`` and ``ClassLabel`` features."""
    import tensorflow_datasets as tfds

    features = info.features
    listing = ", ".join(f"{key} ({type(feature).__name__})" for key, feature in features.items())
    found = {}
    for role, given, kind in (
        ("image", image_key, tfds.features.Image),
        ("label", label_key, tfds.features.ClassLabel),
    ):
        candidates = [key for key, feature in features.items() if isinstance(feature, kind)]
        if given:
            if given not in candidates:
                raise ConfigError(
                    f"{role}_key={given!r}: tfds:{name} has no {kind.__name__} feature of that name; its features "
                    f"are {listing}."
                )
            found[role] = given
        elif len(candidates) == 1:
            found[role] = candidates[0]
        else:
            what = f"{len(candidates)} {kind.__name__} features" if candidates else f"no {kind.__name__} feature"
            raise ConfigError(
                f"tfds:{name} has {what}; its features are {listing}. "
                + (
                    f"Name the {role} with --config.{role}_key=KEY."
                    if candidates
                    else "An image-classification dataset needs an image and a class label."
                )
            )
    return found["image"], found["label"]


def find_splits(info, train_split: str, eval_split: str, name: str) -> tuple[str, str]:
    """The train and test splits: given (TFDS split syntax), else ``train`` and ``test`` or ``validation``."""
    available = list(info.splits)
    train = train_split or ("train" if "train" in available else "")
    test = eval_split or next((split for split in TEST_SPLITS if split in available), "")
    if not train or not test:
        missing = " and ".join(field for field, value in (("train_split", train), ("eval_split", test)) if not value)
        raise ConfigError(
            f"tfds:{name} has the splits {', '.join(available)}, none of which is the default; set --config.{missing} "
            "(TFDS split syntax works, e.g. 'train[:90%]' and 'train[90%:]')."
        )
    return train, test


def open_tfds(
    name: str,
    data_dir: str,
    keys: tuple[str, str],
    splits: tuple[str, str],
    download: bool = False,
    pipeline: str = spec.AUTO,
) -> tuple[arrays.Splits, spec.DatasetSpec] | records.RecordSource:
    """``tfds:NAME`` (``name``: NAME[/CONFIG][:VERSION]) for its pipeline: the train and test splits and spec of
    an in-memory one (from the numpy copy, written on first use; no TensorFlow after that), or the records of a
    streamed one.

    ``pipeline`` 'auto' holds images of one size up to ``spec.IN_MEMORY_MAX_SIDE`` in memory and streams
    larger or varying ones."""
    dataset = f"{spec.TFDS_PREFIX}{name}"
    choice = json.dumps([name, *keys, *splits])
    stem = f"tfds_{_file_stem(name)}_{hashlib.sha256(choice.encode()).hexdigest()[:12]}"
    numpy_copy = arrays.copy_path(stem, data_dir)
    if pipeline != spec.STREAMED and numpy_copy.exists():
        return arrays.load(numpy_copy)
    builder = open_builder(name, data_dir, download)
    image_key, label_key = find_keys(builder.info, *keys, name)
    train_split, test_split = find_splits(builder.info, *splits, name)
    shape = builder.info.features[image_key].shape
    sizes = None if None in shape[:2] else {tuple(shape[:2])}
    label = builder.info.features[label_key]
    dataset_spec = spec.DatasetSpec(
        name=dataset,
        splits={"train": 0, "test": 0},
        train_split="train",
        test_split="test",
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        pipeline=spec.choose_pipeline(sizes, pipeline, dataset),
        source=f"tfds {builder.info.full_name}: {image_key!r} and {label_key!r} of {train_split!r} and {test_split!r}",
    )
    if dataset_spec.pipeline == spec.STREAMED:
        return _records(builder, stem, (image_key, label_key), (train_split, test_split), dataset_spec, data_dir)
    stored = {
        "train": _split(builder, train_split, image_key, label_key),
        "test": _split(builder, test_split, image_key, label_key),
    }
    dataset_spec = dataclasses.replace(
        dataset_spec,
        splits={split: len(values["label"]) for split, values in stored.items()},
        **spec.image_facts(stored["train"]["image"]),
    )
    arrays.save(numpy_copy, stored, dataset_spec)
    logging.info("Wrote the numpy copy of %s to %s (%s).", dataset, numpy_copy, dataset_spec.source)
    return stored, dataset_spec


def _records(builder, stem: str, keys: tuple[str, str], splits: tuple[str, str], dataset_spec, data_dir: str):
    """The streamed form of a ``tfds:`` dataset: its own records, with a spec whose statistics are computed
    once from the train split and stored."""
    image_key, label_key = keys
    train_split, test_split = splits
    height, width, channels = builder.info.features[image_key].shape
    dataset_spec = dataclasses.replace(
        dataset_spec,
        splits={split: builder.info.splits[split].num_examples for split in (train_split, test_split)},
        train_split=train_split,
        test_split=test_split,
        image_shape=(height, width, channels or 3),  # an Image feature of unstated channels is decoded as colour
    )
    dataset_spec = records.with_statistics(builder, image_key, dataset_spec, stem, data_dir)
    return records.RecordSource(builder, image_key, label_key, dataset_spec)


def _split(builder, split: str, image_key: str, label_key: str) -> dict[str, np.ndarray]:
    """One split as uint8 images of one shape and int32 labels."""
    import tensorflow_datasets as tfds

    values = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return {"image": values[image_key].astype(np.uint8), "label": values[label_key].astype(np.int32)}


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
