"""Mistakes a user can fix (a misspelt config field, a missing dataset file): the commands print them as
one paragraph that says what to do, with no traceback, and exit with ``ExitCode.USER_ERROR``. Anything else
is a bug and keeps its traceback; ``--debug`` (or ``RESNET_JAX_DEBUG=1``) keeps the traceback of every error.
"""

import difflib
import enum
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

DEBUG_ENVIRONMENT = "RESNET_JAX_DEBUG"


class ExitCode(enum.IntEnum):
    """The main command's exit codes, which the launch files (SLURM, JobSet) and the sweep driver act on.

    ``RESUME`` is sysexits.h's EX_TEMPFAIL ("a temporary failure; the user is invited to retry"): distinct
    from 1 and 2, from the 126-165 that shells and Kubernetes report for a command not run or killed by a
    signal (128 + N), and from Python's own exits, so a scheduler that sees it knows a checkpoint was kept.
    """

    FINISHED = 0  # training and evaluation done; results.json written
    FAILED = 1  # a crash or a bug (a traceback says where): a retry may help, a bounded number of times
    USER_ERROR = 2  # the user's mistake (config, command line, data, storage, workdir in use): do not retry
    RESUME = 75  # stopped by a signal with nothing lost: run the same command to resume


class UserError(Exception):
    """A mistake in what the user asked for or provided; the message says how to fix it."""


class ConfigError(UserError, ValueError):
    """A config field or command-line value that cannot work."""


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


def not_registered(kind: str, names: Iterable[str], registry: Iterable[str]) -> str:
    """Why the first of ``names`` that ``registry`` lacks cannot be used (the registered names, the closest one
    and how to register it), or '' when all are registered."""
    registered = list(registry)
    for name in names:
        if name not in registered:
            close = difflib.get_close_matches(name, registered, n=1)
            return (
                f"{kind} {name!r} is not registered (registered: {', '.join(map(repr, registered)) or 'none'})"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + ": import the module that registers it in your config file"
            )
    return ""


def debugging() -> bool:
    """Whether tracebacks are wanted for users' mistakes too (``--debug`` or ``RESNET_JAX_DEBUG=1``)."""
    return "--debug" in sys.argv or os.environ.get(DEBUG_ENVIRONMENT, "") not in ("", "0")


def exit_with(error: UserError) -> NoReturn:
    """Print 'error: MESSAGE' on stderr and exit with ``ExitCode.USER_ERROR``: the same command fails again."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(ExitCode.USER_ERROR)


def exit_on_user_error(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args)``; a UserError is printed as one paragraph and exits (re-raised when debugging)."""
    try:
        return function(*args)
    except UserError as error:
        if debugging():
            raise
        exit_with(error)
