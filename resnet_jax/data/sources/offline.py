"""TFDS's own builders, prepared from local files instead of a download (no network).

A subclass of the stock builder keeps its name, version, features and parsing; only its download
manager is replaced, so that each URL is answered with the file of the same name in a local directory.
The result is the standard TFDS directory: ``tfds.builder(NAME, data_dir=DIR)`` loads it.
"""

import posixpath
import types
from pathlib import Path


class LocalFilesInsteadOfDownload:
    """Stands in for TFDS's download manager: 'downloading' a URL extracts the local file of that name."""

    def __init__(self, download_manager, directory: Path):
        self._download_manager = download_manager
        self._directory = directory

    def local_path(self, url: str) -> Path:
        """The local file that stands in for ``url``: same file name, in the local directory."""
        return self._directory / posixpath.basename(url)

    def download_and_extract(self, urls: str | dict[str, str]):
        """Extract the local file of a URL, or of each URL of a dict, as TFDS would extract the download."""
        if isinstance(urls, dict):
            return {key: self.download_and_extract(url) for key, url in urls.items()}
        return self._download_manager.extract(self.local_path(urls))


def offline_builder(base: type, directory: Path, mixin: type | None = None) -> type:
    """A subclass of TFDS builder ``base``, under the same name and version, reading files from ``directory``.

    ``mixin``'s methods, if given, come before ``base``'s (and reach them through ``super()``).
    """

    def split_generators(self, dl_manager):
        return super(offline, self)._split_generators(LocalFilesInsteadOfDownload(dl_manager, directory))

    def body(namespace: dict) -> None:
        namespace.update(name=base.name, _split_generators=split_generators)

    bases = (base,) if mixin is None else (mixin, base)
    offline = types.new_class(f"Offline{base.__name__}", bases, {"skip_registration": True}, body)
    return offline
