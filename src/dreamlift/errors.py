"""The one error family of the library, and how an exception is told in one line.

Library code raises :class:`UsageError` for input the user can fix; the entry points (exit code 2) and the batch
runner (a job refused, not retried) translate it the same way, by its type. Everything else is a
failure: a bug, an out-of-memory error, a lost machine.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input that the user can fix: an empty prompt, an unknown config key or a value out of range, a missing
    or mismatched model folder, an unwritable output path. Its message is one line that says what to change.

    It is a ``ValueError`` (a value the library cannot use), so a dataclass config's ``__post_init__`` may raise
    either; :func:`dreamlift.config.from_dict` turns a ``ValueError`` there into a UsageError naming the section.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def describe(err: BaseException) -> str:
    """``Type: first line`` of an exception, as a batch's status records it."""
    return f"{type(err).__name__}: {first_line(err)}"
