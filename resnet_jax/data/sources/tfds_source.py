"""Opening prepared TFDS datasets on the host CPU, with one plain error when a dataset is missing."""

import functools
import importlib.util
import socket
import urllib.parse
from collections.abc import Callable

import numpy as np
from absl import logging

from resnet_jax.data import spec
from resnet_jax.errors import MissingDependency, MissingFilesError

TFDS_EXTRA = "pip install 'resnet_jax[tfds]' (from a checkout: pip install -e '.[tfds]')"
CONNECT_TIMEOUT_S = 5.0  # how long the network gets to answer before a download is given up


def require_tfds() -> None:
    """A MissingDependency naming the extra unless TensorFlow and TFDS are installed (looked up, not imported)."""
    missing = [name for name in ("tensorflow", "tensorflow_datasets") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(
            f"this needs {' and '.join(missing)}, which the core install leaves out: TensorFlow and TFDS prepare "
            f"datasets and stream ImageNet and photos. Install them with {TFDS_EXTRA}."
        )


@functools.cache
def tensorflow():
    """TensorFlow, told to see no GPU: the input pipeline stays on the host CPU, the devices stay JAX's.

    Every use of TensorFlow in the package starts here, so TensorFlow never takes GPU memory. Without
    TensorFlow installed it is a MissingDependency naming the extra that brings it. Cached: the crops call
    it inside tf.data functions, where autograph would otherwise try to convert the import machinery."""
    require_tfds()
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    return tf


def stateless_key(seed: int, stream: int, *counters):
    """A TF stateless-RNG key for one stream of ``seed``, folded with each counter (epoch, step, position) in turn."""
    tf = tensorflow()
    key = tf.constant([seed, stream], tf.int64)
    for counter in counters:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(counter, tf.int64))
    return key


def network_answers(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the host of ``url`` resolves and accepts a TCP connection within ``timeout_s``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def download_or_explain(builder, offline_message: str) -> None:
    """Let TFDS download and prepare ``builder`` when the network answers (its homepage's host, asked with a
    short timeout first, so that an offline machine gets ``offline_message`` within seconds); otherwise, or
    when the download fails, a MissingFilesError of ``offline_message``."""
    homepage = builder.info.homepage or ""
    if not network_answers(homepage):
        raise MissingFilesError(
            f"{offline_message} (No download was tried: {homepage or 'its homepage'} does not answer.)"
        )
    logging.warning(
        "%s is not prepared in %s: downloading and preparing it with TFDS (--config.download=False turns this off).",
        builder.info.full_name,
        builder.data_dir,
    )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30 * CONNECT_TIMEOUT_S)  # a stalled connection ends; TFDS retries it
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001  (requests, TFDS and OS errors: any failed download)
        raise MissingFilesError(
            f"{offline_message} (TFDS could not download it: {str(error).splitlines()[0]})"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def prepared_builder(
    name: str,
    data_dir: str,
    build_locally: Callable[[], object] | None = None,
    numpy_copy=None,
    download: bool = False,
    register: Callable[[], object] | None = None,
):
    """The TFDS builder of a prepared dataset; calls ``build_locally`` first when there is one and the dataset
    is not prepared.

    ``build_locally`` makes the dataset from files already on this machine (digits: scikit-learn's copy;
    fashion_mnist: Debian's package); the caller hands it in, so that opening datasets does not import
    their preparation. Others, with ``download``, are downloaded by TFDS where the
    network answers. A dataset that is not prepared otherwise stops here, within seconds, with the
    command that prepares it, instead of TFDS failing deep inside. ``numpy_copy`` is where an in-memory
    dataset's numpy copy was looked for (for the message when TFDS is not installed either).
    """
    try:
        require_tfds()
    except MissingDependency as error:
        if numpy_copy is None:
            raise
        raise MissingDependency(
            f"dataset {name!r} has no numpy copy at {numpy_copy}, and making one needs TensorFlow Datasets, "
            f"which is not installed. Either prepare it where TFDS is installed (python -m resnet_jax.data.prepare "
            f"{name} --data_dir DIR) and bring DIR/{numpy_copy.parent.name}/{numpy_copy.name} here under "
            f"--config.data_dir, or install TFDS here: {TFDS_EXTRA}."
        ) from error
    tensorflow()
    import tensorflow_datasets as tfds

    if register is not None:
        register()  # makes the dataset's own TFDS builder known to tfds.builder
    builder = tfds.builder(name, data_dir=data_dir or None)
    if builder.is_prepared():
        return builder
    if not build_locally:
        offline = (
            f"dataset {name!r} is not prepared in {builder.data_dir}. Prepare it once, with no network, from "
            f"the original archive(s): python -m resnet_jax.data.prepare {name} --data_dir "
            f"{data_dir or '~/tensorflow_datasets'} --manual_dir DIR_HOLDING_THE_ARCHIVES; then train with "
            "--config.data_dir set to the same --data_dir."
        )
        if not download or getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
            raise MissingFilesError(offline)
        download_or_explain(builder, offline)
        return builder
    build_locally()
    return tfds.builder(name, data_dir=data_dir or None)


def load_split(name: str, split: str, data_dir: str) -> dict[str, np.ndarray]:
    """``{'image': uint8 NHWC, 'label': int32}`` of a prepared split (TFDS slicing such as 'train[:-5000]' works);
    a named dataset's own TFDS builder is registered first."""
    named = spec.NAMED_DATASETS.get(name)
    register = named.preparation if named is not None and named.build_locally else None
    return split_arrays(prepared_builder(name, data_dir, register=register), split)


def split_arrays(builder, split: str) -> dict[str, np.ndarray]:
    """A split of an open TFDS builder as arrays in host memory; an empty split is a plain error."""
    import tensorflow_datasets as tfds

    if builder.info.splits[split].num_examples == 0:
        raise ValueError(
            f"split {split!r} of {builder.info.name!r} in {builder.data_dir} is empty; check the split, "
            "validation_examples and data_dir"
        )
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return {"image": arrays["image"], "label": arrays["label"].astype(np.int32)}
