"""A full disk, an exceeded quota, a permission withdrawn or a bucket refusing writes, said in one paragraph.

Writes to the workdir happen in this process (metrics, config.json, results.json, the lease) and in
orbax's and tensorstore's threads (checkpoints), whose errors reach the loop when it next waits on a
save. ``reported`` turns any of them into a ``StorageFault``: the path, what the storage said, the
last checkpoint that is intact, and the command that resumes once space or access is back. Orbax
writes each checkpoint into a temporary folder and renames it when complete, so a half-written save
never shadows the last good one; the next run removes it (``Checkpointer`` says so).
"""

import contextlib
import errno
import os
import re
import shlex
import sys
from collections.abc import Iterator

import orbax.checkpoint as ocp

from resnet_jax.errors import UserError

FAULT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)
# How the native writers (tensorstore, TensorFlow's file systems, Google Cloud Storage) word the same faults;
# a device's "RESOURCE_EXHAUSTED: Out of memory" is not one of them.
FAULT_TEXT = re.compile(
    "|".join(
        [
            *(re.escape(os.strerror(number)) for number in FAULT_ERRNOS),
            r"os_error_code='?(?:{})\b".format("|".join(str(number) for number in FAULT_ERRNOS)),
            r"\bPERMISSION_DENIED\b",
            r"\bAccessDenied\b",
            r"\b403\b[^\n]*\bForbidden\b",
            r"(?:storage|bucket|disk) quota",
            r"\bquotaExceeded\b",
            r"does not have storage\.\w+\.\w+ access",
        ]
    ),
    flags=re.IGNORECASE,
)
QUOTED_PATH = re.compile(r"""["']((?:[a-z][a-z0-9+]*://|/)[^"'\s]+)["']""")
MAX_CHAIN = 20  # exceptions followed through __cause__ and __context__


class StorageFault(UserError, OSError):
    """The workdir's storage refused a write: full, over quota, read-only or no longer permitted."""


@contextlib.contextmanager
def naming(path: os.PathLike) -> Iterator[None]:
    """An ``OSError`` in the block that names no file (a write to an open file, say) is given ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            error.filename = os.fspath(path)
        raise


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, outermost first."""
    seen = set()
    while error is not None and id(error) not in seen and len(seen) < MAX_CHAIN:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def fault_of(error: BaseException) -> tuple[str, str | None] | None:
    """(what the storage said, the path it named or None) if ``error`` is a storage fault, else None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in FAULT_ERRNOS:
            return os.strerror(link.errno), link.filename and os.fspath(link.filename)
    for link in _chain(error):
        text = str(link)
        found = FAULT_TEXT.search(text)
        if found:
            path = QUOTED_PATH.search(text)
            return _what_it_said(text, found.group(0)), path and path.group(1)
    return None


def _what_it_said(text: str, fault: str) -> str:
    """The operating system's words for the fault where the text has them, else its first line (300 characters)."""
    strerrors = [os.strerror(number) for number in FAULT_ERRNOS]
    if fault in strerrors:
        return fault
    code = re.search(r"os_error_code='?(\d+)", fault)
    if code:
        return os.strerror(int(code.group(1)))
    return text.strip().splitlines()[0][:300]


def intact_checkpoint(workdir: os.PathLike) -> int | None:
    """The newest complete checkpoint step in ``workdir/checkpoints``, or None (also if it cannot be listed)."""
    try:
        steps = ocp.utils.checkpoint_steps(os.path.join(os.fspath(workdir), "checkpoints"))
    except Exception:  # noqa: BLE001 (the storage that failed may refuse to list, too)
        return None
    return max(steps, default=None)


def resume_command() -> str:
    """The command line that resumes this run: this process's own, when it is the main command."""
    if sys.argv and sys.argv[0].endswith(os.path.join("resnet_jax", "main.py")):
        return shlex.join([os.path.basename(sys.executable), "-m", "resnet_jax.main", *sys.argv[1:]])
    return "the same call (train_and_evaluate with this workdir)"


def describe(workdir: os.PathLike, said: str, path: str | None) -> str:
    """The paragraph a storage fault is reported with."""
    step = intact_checkpoint(workdir)
    kept = (
        f"The last intact checkpoint is step {step} in {os.fspath(workdir)}/checkpoints; a resume goes on from there."
        if step is not None
        else "No checkpoint had been saved yet, so a resume starts from the beginning."
    )
    return (
        f"the workdir's storage failed at {path or os.fspath(workdir)}: {said}. {kept} Free space, raise the "
        f"quota or restore write access (or choose another --workdir), then resume with: {resume_command()}"
    )


@contextlib.contextmanager
def reported(workdir: os.PathLike) -> Iterator[None]:
    """Raise a ``StorageFault`` saying what happened for a storage error that ends the block."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        fault = fault_of(error)
        if fault is None:
            raise
        raise StorageFault(describe(workdir, *fault)) from error
