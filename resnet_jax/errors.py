"""Mistakes a user can fix (a misspelt config field, a missing dataset file): the commands print them as
one paragraph that says what to do, with no traceback, and exit non-zero (2 for a config or command-line
mistake). Anything else is a bug and keeps its traceback; ``--debug`` (or ``RESNET_JAX_DEBUG=1``) keeps
the traceback of every error.
"""

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

USER_ERROR_EXIT_CODE = 1
USAGE_EXIT_CODE = 2
DEBUG_ENVIRONMENT = "RESNET_JAX_DEBUG"


class UserError(Exception):
    """A mistake in what the user asked for or provided; the message says how to fix it."""


class ConfigError(UserError, ValueError):
    """A config field or command-line value that cannot work (exit code 2)."""


class MissingFilesError(UserError, FileNotFoundError):
    """Files a command needs (a dataset's archives, a prepared dataset) are not where they should be."""


class InvalidFilesError(UserError, ValueError):
    """Files are there but are not what they should be (a checksum or a header differs)."""


class IncompatibleCheckpoint(UserError, ValueError):
    """A readable checkpoint or weights file of another model or optimizer (not a damaged one)."""


class MissingDependency(UserError, ImportError):
    """An optional package that the request needs is not installed (the message names the extra)."""


def require(condition: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def debugging() -> bool:
    """Whether tracebacks are wanted for users' mistakes too (``--debug`` or ``RESNET_JAX_DEBUG=1``)."""
    return "--debug" in sys.argv or os.environ.get(DEBUG_ENVIRONMENT, "") not in ("", "0")


def exit_with(error: UserError) -> NoReturn:
    """Print 'error: MESSAGE' on stderr and exit: 2 for a ConfigError, 1 for another user error."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(USAGE_EXIT_CODE if isinstance(error, ConfigError) else USER_ERROR_EXIT_CODE)


def exit_on_user_error(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args)``; a UserError is printed as one paragraph and exits (re-raised when debugging)."""
    try:
        return function(*args)
    except UserError as error:
        if debugging():
            raise
        exit_with(error)
