"""The exceptions of the ``kernels`` package.

One root, :class:`NvFp4Error`. Each concrete error also subclasses the
built-in exception that callers already catch (``ValueError`` for bad input,
``RuntimeError`` for an unavailable library), so ordinary ``except`` clauses
keep working.

Messages quote a bad value with :func:`quoted`: at most about
:data:`QUOTE_LIMIT` characters of it, so a megabyte of garbage in an
environment variable or a matrix file is not echoed whole.
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernels.linear.decision import SelectionDecision

__all__ = [
    "BackendUnavailableError",
    "FormatError",
    "InvalidEnvironmentError",
    "KernelSelectionError",
    "NvFp4Error",
    "QUOTE_LIMIT",
    "quoted",
]

#: Characters of a bad value that a message quotes at most (about: the quote is a repr).
QUOTE_LIMIT = 200


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, shortened to about ``limit`` characters.

    A long string keeps its head and says how long it was:
    ``'xxxx...'... (1048576 characters)``. Other values are shortened by
    :mod:`reprlib` (which never builds the full repr of a huge container).
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, bytes):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} bytes)"
    short = reprlib.Repr()
    short.maxstring = short.maxother = short.maxlong = limit
    return short.repr(value)



class NvFp4Error(Exception):
    """Root of every error raised by this package."""


class InvalidEnvironmentError(NvFp4Error, ValueError):
    """An environment variable holds a value that does not parse."""


class FormatError(NvFp4Error, ValueError):
    """A tensor has the wrong shape, dtype or value for the NVFP4 format."""


class KernelSelectionError(NvFp4Error, ValueError):
    """No kernel could be selected; ``decision`` holds the full record."""

    def __init__(self, message: str, decision: SelectionDecision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


class BackendUnavailableError(NvFp4Error, RuntimeError):
    """A backend's library is missing or refused the call on this machine."""
