"""What the main command prints: this package's lines (start-up, progress, evaluations, summary) and
every library's warnings; the libraries' INFO lines (orbax, TFDS, JAX) only when ``--verbosity`` is given.

A failed asynchronous checkpoint save (a full disk, say) reaches the main thread, which reports it
once (``train.storage``); the tracebacks orbax's threads log on the way, those that asyncio logs for orbax's
write tasks whose failure nobody awaited, and those of tensorstore's late callbacks into the closed event
loop (reported as unraisable), are hidden with the libraries' INFO lines.
"""

import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import traceback

from absl import logging as absl_logging

OWN_SOURCE = os.path.join("resnet_jax", "")  # INFO lines from files under a resnet_jax/ folder are the run's own
ORBAX_SOURCE = os.path.join("orbax", "checkpoint", "")
ASYNCIO_LOOP_SOURCE = os.path.join("asyncio", "base_events.py")
# Libraries' warnings about what is normal here, which read like errors to a newcomer.
EXPECTED_WARNINGS = (
    "Given directory is read only",  # orbax, opening a checkpoint only to read it (init_from)
    "has no dataset_info.json",  # TFDS, looking into a dataset folder it is about to prepare for the first time
)
# What TensorFlow's C++ code prints while it is imported: from 2.21 it logs through absl before absl's logging
# is initialised, which ignores TF_CPP_MIN_LOG_LEVEL and prints every line (its oneDNN notice twice).
TENSORFLOW_IMPORT_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on")


def raised_in_orbax(record: logging.LogRecord) -> bool:
    """Whether ``record`` carries an exception that orbax logged, or that came up through orbax's code (an
    asyncio task of its write that failed, logged by asyncio as "Task exception was never retrieved")."""
    if not record.exc_info:
        return False
    if ORBAX_SOURCE in record.pathname:
        return True
    error = record.exc_info[1]
    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    return any(ORBAX_SOURCE in frame.filename for frame in frames)


class LibraryInfoFilter(logging.Filter):
    """Passes warnings and errors from anywhere, and INFO lines from this package only; orbax's failed writes
    are left to the error that reaches the main thread, without their tracebacks, and the libraries'
    ``EXPECTED_WARNINGS`` are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is printed."""
        if raised_in_orbax(record):
            return False
        if OWN_SOURCE in record.pathname:
            return True
        if record.levelno == logging.WARNING and any(text in record.getMessage() for text in EXPECTED_WARNINGS):
            return False
        return record.levelno >= logging.WARNING


def is_late_write_callback(error: BaseException) -> bool:
    """Whether ``error`` is a callback into an event loop that orbax had already closed (after a failed save)."""
    frames = traceback.extract_tb(error.__traceback__)
    return (
        isinstance(error, RuntimeError)
        and str(error) == "Event loop is closed"
        and bool(frames)
        and all(frame.filename.endswith(ASYNCIO_LOOP_SOURCE) for frame in frames)
    )


def _quiet_unraisablehook(previous):
    def hook(unraisable):
        if not is_late_write_callback(unraisable.exc_value):
            previous(unraisable)

    return hook


class _FilteredStderrLoader(importlib.abc.Loader):
    """``loader``, executing its module with the process's stderr (file descriptor 2) caught, then written on
    without the lines that contain one of ``noise``."""

    def __init__(self, loader, noise: tuple[str, ...]):
        self.loader, self.noise = loader, noise

    def create_module(self, spec):
        """The wrapped loader's module."""
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        """Run the module's code; what it wrote to stderr follows, filtered, whether or not it raised."""
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile(mode="w+b") as caught:
            os.dup2(caught.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                lines = caught.read().decode(errors="replace").splitlines(keepends=True)
                sys.stderr.write("".join(line for line in lines if not any(text in line for text in self.noise)))

    def __getattr__(self, name):
        return getattr(self.loader, name)


class QuietNativeImport(importlib.abc.MetaPathFinder):
    """Filters ``noise`` from what module ``name``'s native code prints to stderr while it is imported."""

    def __init__(self, name: str, noise: tuple[str, ...]):
        self.name, self.noise = name, noise

    def find_spec(self, name, path=None, target=None):
        """``name``'s spec, as the other finders find it, with a filtering loader; None for every other module."""
        if name != self.name:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *_: None)(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _FilteredStderrLoader(spec.loader, self.noise)
                return spec
        return None


def quiet_libraries() -> None:
    """Hide the libraries' INFO lines: absl's handler filters them, TensorFlow's C++ logs start at WARNING,
    and progress bars (TFDS preparing a dataset on first use) are off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # read when TensorFlow is imported, later (before 2.21)
    if "tensorflow" not in sys.modules and not any(isinstance(hook, QuietNativeImport) for hook in sys.meta_path):
        sys.meta_path.insert(0, QuietNativeImport("tensorflow", TENSORFLOW_IMPORT_NOISE))
    os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm's default for every bar it draws
    absl_logging.get_absl_handler().addFilter(LibraryInfoFilter())
    sys.unraisablehook = _quiet_unraisablehook(sys.unraisablehook)
