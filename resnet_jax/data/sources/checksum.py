"""Checking that an archive in ``--manual_dir`` is the official release, before preparing from it."""

import dataclasses
import gzip
import hashlib
import logging
from pathlib import Path

from resnet_jax.errors import InvalidFilesError, MissingFilesError


@dataclasses.dataclass(frozen=True)
class Archive:
    """An official release file: its name and digest (``algorithm`` as hashlib names it).

    ``gunzipped_digest``, for a ``.gz`` file, is the digest of its decompressed content: a copy that
    was re-compressed (different gzip bytes, same content, as Debian ships Fashion-MNIST) is accepted too.
    """

    filename: str
    digest: str
    algorithm: str = "sha256"
    gunzipped_digest: str = ""


def _digest(file, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    for chunk in iter(lambda: file.read(1 << 22), b""):
        digest.update(chunk)
    return digest.hexdigest()


def verify_archive(path: Path, archive: Archive, skip_checksum: bool) -> None:
    """Fail unless ``path`` is the official file or its re-compressed content (``skip_checksum`` accepts any)."""
    if not path.is_file():
        raise MissingFilesError(f"{archive.filename} not found in {path.parent}; put the original archive there")
    if skip_checksum:
        return
    logging.info("Checking the %s of %s (%.1f GB)...", archive.algorithm, path, path.stat().st_size / 1e9)
    with path.open("rb") as file:
        found = _digest(file, archive.algorithm)
    if found == archive.digest:
        return
    expected = f"expected {archive.digest}"
    if archive.gunzipped_digest:
        try:
            with gzip.open(path, "rb") as file:
                content = _digest(file, archive.algorithm)
        except (OSError, EOFError) as error:
            content = f"unreadable gzip: {error}"
        if content == archive.gunzipped_digest:
            logging.info("%s is a re-compressed copy of the official file: its content matches.", path)
            return
        found += f"; decompressed content {content}"
        expected += f", or decompressed content {archive.gunzipped_digest}"
    raise InvalidFilesError(
        f"{path} is not the official {archive.filename} ({archive.algorithm} {found}; {expected}); "
        "pass --skip_checksum to accept a subset or a mirror."
    )
