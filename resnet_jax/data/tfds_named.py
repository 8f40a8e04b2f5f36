"""``tfds:NAME[/CONFIG][:VERSION]``: any prepared TFDS image-classification dataset, found from its features.

The image and label features are the builder's ``Image`` and ``ClassLabel`` features (``image_key`` and
``label_key`` name them when there is more than one); the train split is ``train`` and the test split is
``test``, else ``validation`` (``train_split`` and ``eval_split`` override both, in TFDS's split syntax).
The chosen splits are read once through TFDS and kept as a numpy copy, as the named datasets are, so
later runs need no TensorFlow.
"""

import hashlib
import json

import numpy as np
from absl import logging

from resnet_jax.data import arrays, spec, tfds_source
from resnet_jax.errors import ConfigError, InvalidFilesError, MissingFilesError

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


def read(
    dataset: str, data_dir: str, keys: tuple[str, str], splits: tuple[str, str], download: bool = False
) -> tuple[dict, spec.DatasetSpec]:
    """The train and test splits of ``tfds:NAME`` and their spec, from the numpy copy (written on first use)."""
    name = spec.tfds_name(dataset)
    choice = json.dumps([name, *keys, *splits])
    target = arrays.copy_path(f"tfds_{_file_stem(name)}_{hashlib.sha256(choice.encode()).hexdigest()[:12]}", data_dir)
    if target.exists():
        return arrays.load(target)
    builder = open_builder(name, data_dir, download)
    image_key, label_key = find_keys(builder.info, *keys, name)
    train_split, test_split = find_splits(builder.info, *splits, name)
    label = builder.info.features[label_key]
    stored = {
        "train": _split(builder, train_split, image_key, label_key),
        "test": _split(builder, test_split, image_key, label_key),
    }
    dataset_spec = spec.DatasetSpec(
        name=dataset,
        splits={split: len(values["label"]) for split, values in stored.items()},
        train_split="train",
        test_split="test",
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        source=f"tfds {builder.info.full_name}: {image_key!r} and {label_key!r} of {train_split!r} and {test_split!r}",
        **spec.image_facts(stored["train"]["image"]),
    )
    arrays.save(target, stored, dataset_spec)
    logging.info("Wrote the numpy copy of %s to %s (%s).", dataset, target, dataset_spec.source)
    return stored, dataset_spec


def _split(builder, split: str, image_key: str, label_key: str) -> dict[str, np.ndarray]:
    """One split as uint8 images of one shape and int32 labels; mixed sizes are a plain error."""
    import tensorflow_datasets as tfds

    info = builder.info
    shape = info.features[image_key].shape
    if None in shape[:2]:
        raise InvalidFilesError(
            f"tfds:{info.name} has images of varying size {shape}; tfds: datasets are held in memory, which needs "
            f"one image size up to {spec.IN_MEMORY_MAX_SIDE} pixels. Resize them (e.g. export to a folder of one "
            "size and use folder:PATH)."
        )
    dataset = builder.as_dataset(split=split, batch_size=-1)
    values = tfds.as_numpy(dataset)
    images = values[image_key]
    return {"image": images.astype(np.uint8), "label": values[label_key].astype(np.int32)}


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
