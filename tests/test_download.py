"""Online preparation as TFDS users expect: a dataset that is not prepared is downloaded by TFDS when the
network answers (a builder written here, whose URL is a local HTTP server on 127.0.0.1 serving a miniature
archive), and stops with the offline paragraph when it does not answer or ``download`` is off."""

import functools
import http.server
import io
import textwrap
import threading

import numpy as np
import pytest

from resnet_jax import data
from resnet_jax.data import fields as data_fields
from resnet_jax.data.sources import tfds_source
from resnet_jax.errors import MissingFilesError
from resnet_jax.train.settings import default_values

pytestmark = pytest.mark.xdist_group("download")  # the builder registers its name once per process
BUILDER = '''
import numpy as np
import tensorflow_datasets as tfds

URL = "http://127.0.0.1:{port}/online_toy.npz"


class OnlineToy(tfds.core.GeneratorBasedBuilder):
    """A miniature dataset downloaded from a local server."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {{"image": tfds.features.Image(shape=(5, 5, 1)), "label": tfds.features.ClassLabel(num_classes=2)}}
            ),
            homepage="http://127.0.0.1:{port}/",
        )

    def _split_generators(self, dl_manager):
        arrays = np.load(dl_manager.download(URL))
        return {{split: self._generate_examples(arrays, split) for split in ("train", "test")}}

    def _generate_examples(self, arrays, split):
        for index, (image, label) in enumerate(zip(arrays[split + "_image"], arrays[split + "_label"])):
            yield index, {{"image": image, "label": int(label)}}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 serving online_toy.npz; yields (port, the archive's arrays)."""
    served = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    archive = {
        "train_image": rng.integers(0, 256, (6, 5, 5, 1), dtype=np.uint8),
        "train_label": np.arange(6) % 2,
        "test_image": rng.integers(0, 256, (3, 5, 5, 1), dtype=np.uint8),
        "test_label": np.arange(3) % 2,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **archive)
    (served / "online_toy.npz").write_bytes(buffer.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield httpd.server_address[1], archive
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def builder_module(server, tmp_path_factory):
    """The builder, written as a module of a package (TFDS looks for its checksums beside it) and imported."""
    import importlib
    import sys

    root = tmp_path_factory.mktemp("builders")
    package = root / "online_builders"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "online_toy.py").write_text(textwrap.dedent(BUILDER.format(port=server[0])))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("online_builders.online_toy")
    finally:
        sys.path.remove(str(root))


def _read(data_dir, download: bool):
    config = default_values() | {
        "dataset": "tfds:online_toy",
        "data_dir": str(data_dir),
        "download": download,
    }
    return data.open_dataset(data_fields.SECTION.settings(config))


def test_with_download_off_the_offline_paragraph_names_the_prepare_command(builder_module, tmp_path):
    with pytest.raises(MissingFilesError, match=r"not prepared in .*python -m resnet_jax.data.prepare tfds:online_toy"):
        _read(tmp_path, download=False)
    assert not (tmp_path / "online_toy").exists()


def test_a_dataset_that_is_not_prepared_is_downloaded_from_the_local_server_exactly(builder_module, server, tmp_path):
    _, archive = server
    stored, spec = _read(tmp_path, download=True)
    for split in ("train", "test"):
        got = sorted(
            (int(label), image.tobytes())
            for image, label in zip(stored[split]["image"], stored[split]["label"], strict=True)
        )
        want = sorted(
            (int(label), image.tobytes())
            for image, label in zip(archive[f"{split}_image"], archive[f"{split}_label"], strict=True)
        )
        assert got == want
    assert spec.splits == {"train": 6, "test": 3} and (tmp_path / "online_toy" / "1.0.0").is_dir()


def test_when_the_network_does_not_answer_the_offline_paragraph_comes_without_a_download(tmp_path):
    import socket

    with socket.socket() as closed:  # a port that nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not tfds_source.network_answers(f"http://127.0.0.1:{port}/", timeout_s=2)

    class Unreachable:
        info = type("Info", (), {"homepage": f"http://127.0.0.1:{port}/", "full_name": "x/1.0.0"})()
        data_dir = str(tmp_path)

        def download_and_prepare(self):
            raise AssertionError("no download may start when the network does not answer")

    with pytest.raises(
        MissingFilesError, match=r"OFFLINE \(No download was tried: http://127.0.0.1:\d+/ does not answer.\)"
    ):
        tfds_source.download_or_explain(Unreachable(), "OFFLINE")
