"""Mistakes a user can fix (a missing dataset file, say): the commands print them as one paragraph
that says what to do, with no traceback, and exit non-zero. Anything else is a bug and keeps its traceback.
"""

import sys
from collections.abc import Callable
from typing import Any

USER_ERROR_EXIT_CODE = 1


class UserError(Exception):
    """A mistake in what the user asked for or provided; the message says how to fix it."""


class MissingFilesError(UserError, FileNotFoundError):
    """Files a command needs (a dataset's archives, a prepared dataset) are not where they should be."""


class InvalidFilesError(UserError, ValueError):
    """Files are there but are not what they should be (a checksum or a header differs)."""


def exit_on_user_error(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args)``; a UserError prints 'error: MESSAGE' on stderr and exits non-zero."""
    try:
        return function(*args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(USER_ERROR_EXIT_CODE)
