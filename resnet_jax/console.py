"""What the main command prints: this package's lines (start-up, progress, evaluations, summary) and
every library's warnings; the libraries' INFO lines (orbax, TFDS, JAX) only when ``--verbosity`` is given."""

import logging
import os

from absl import logging as absl_logging

OWN_SOURCE = os.path.join("resnet_jax", "")  # INFO lines from files under a resnet_jax/ folder are the run's own


class LibraryInfoFilter(logging.Filter):
    """Passes warnings and errors from anywhere, and INFO lines from this package only."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is printed."""
        return record.levelno >= logging.WARNING or OWN_SOURCE in record.pathname


def quiet_libraries() -> None:
    """Hide the libraries' INFO lines: absl's handler filters them, TensorFlow's C++ logs start at WARNING,
    and progress bars (TFDS preparing a dataset on first use) are off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # read when TensorFlow is imported, later
    os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm's default for every bar it draws
    absl_logging.get_absl_handler().addFilter(LibraryInfoFilter())
