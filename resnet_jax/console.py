"""What the main command prints: this package's progress, metrics and results, and every library's
warnings; the libraries' INFO lines (orbax, TFDS, TensorFlow, JAX) only when ``--verbosity`` is given."""

import logging
import os

from absl import logging as absl_logging

# Sources whose INFO lines are the run's own: this package, and clu's metric lines.
OWN_SOURCES = (os.path.join("resnet_jax", ""), os.path.join("clu", "metric_writers", "logging_writer.py"))


class LibraryInfoFilter(logging.Filter):
    """Passes warnings and errors from anywhere, and INFO lines from ``OWN_SOURCES`` only."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is printed."""
        return record.levelno >= logging.WARNING or any(source in record.pathname for source in OWN_SOURCES)


def quiet_libraries() -> None:
    """Hide the libraries' INFO lines: absl's handler filters them, TensorFlow's C++ logs start at WARNING."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # read when TensorFlow is imported, later
    absl_logging.get_absl_handler().addFilter(LibraryInfoFilter())
