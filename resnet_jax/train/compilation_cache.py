"""JAX's persistent compilation cache, on by default, so a restarted or repeated run recompiles nothing."""

import os

import jax
from absl import logging

from resnet_jax.paths import resolve

ENVIRONMENT = "JAX_COMPILATION_CACHE_DIR"  # JAX's own setting; used when the config leaves the choice open
OFF = "none"


def default_directory() -> str:
    """The user cache directory: ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/resnet_jax/jax_compilation_cache``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "resnet_jax", "jax_compilation_cache")


def enable(setting: str) -> str | None:
    """Point JAX's persistent cache at ``setting`` ('' = $JAX_COMPILATION_CACHE_DIR or the user cache
    directory; 'none' = off; anything else, a local or ``gs://`` directory); returns the directory used.

    Every compiled program is cached, however quick its compilation, so that a restart after a
    preemption spends its start-up reading executables, not compiling them.
    """
    if setting == OFF:
        return None
    directory = os.fspath(resolve(setting or os.environ.get(ENVIRONMENT) or default_directory()))
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    logging.info("JAX compilation cache: %s", directory)
    return directory
