"""Checking that an archive in ``--manual_dir`` is the official release, before preparing from it."""

import dataclasses
import hashlib
import logging
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Archive:
    """An official release archive: its file name and its digest (``algorithm`` as hashlib names it)."""

    filename: str
    digest: str
    algorithm: str = "sha256"


def verify_archive(path: Path, archive: Archive, skip_checksum: bool) -> None:
    """Fail unless ``path`` is the official archive (or ``skip_checksum`` accepts a subset or mirror)."""
    if not path.is_file():
        raise FileNotFoundError(f"{archive.filename} not found in {path.parent}; put the original archive there")
    if skip_checksum:
        return
    logging.info("Checking the %s of %s (%.1f GB)...", archive.algorithm, path, path.stat().st_size / 1e9)
    digest = hashlib.new(archive.algorithm)
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 22), b""):
            digest.update(chunk)
    if digest.hexdigest() != archive.digest:
        raise ValueError(
            f"{path} is not the official {archive.filename} ({archive.algorithm} {digest.hexdigest()}, expected "
            f"{archive.digest}); pass --skip_checksum to accept a subset or a mirror."
        )
