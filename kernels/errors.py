"""The exceptions of the ``kernels`` package.

One root, :class:`NvFp4Error`. Each concrete error also subclasses the
built-in exception that callers already catch (``ValueError`` for bad input,
``RuntimeError`` for an unavailable library), so ordinary ``except`` clauses
keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernels.linear.decision import SelectionDecision

__all__ = [
    "BackendUnavailableError",
    "FormatError",
    "InvalidEnvironmentError",
    "KernelSelectionError",
    "NvFp4Error",
]


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
