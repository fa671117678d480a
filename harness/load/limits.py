"""Resource bounds of the matrix format.

A matrix file is data that a CI job reads from a pull request, so reading one
must take bounded time and memory whatever it holds. The bounds are part of
the format (the README states them):

* only regular files are read (never a directory, a FIFO, a device or a
  socket), at most :attr:`Limits.max_file_bytes` each, at most
  :attr:`Limits.max_files` files in all (includes counted);
* a document nests at most :attr:`Limits.max_depth` mappings/lists deep;
* a document holds at most :attr:`Limits.max_nodes` values once YAML aliases
  are expanded (an "alias bomb" of a kilobyte would otherwise expand to
  gigabytes before any key is checked);
* the matrix expands to at most :attr:`Limits.max_cells` cells
  (``--max-cells N`` on the command line raises it, explicitly).

:func:`use_limits` changes them for a block of code (the CLI's
``--max-cells``); :func:`current_limits` is what the loader reads.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

__all__ = ["DEFAULT_LIMITS", "Limits", "current_limits", "use_limits"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """The bounds one load works within (see the module docstring)."""

    max_file_bytes: int = 1 << 20
    max_files: int = 64
    max_depth: int = 32
    max_nodes: int = 50_000
    max_cells: int = 200_000


DEFAULT_LIMITS = Limits()

_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "nvfp4_matrix_limits", default=DEFAULT_LIMITS
)


def current_limits() -> Limits:
    """The limits in force (the defaults unless :func:`use_limits` changed them)."""
    return _LIMITS.get()


@contextlib.contextmanager
def use_limits(**changes: int | None) -> Iterator[Limits]:
    """Within the block, the limits with ``changes`` applied (``None`` values are ignored)."""
    for name, value in changes.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"limit {name} must be a positive integer, got {value!r}")
    limits = dataclasses.replace(
        current_limits(), **{k: v for k, v in changes.items() if v is not None}
    )
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)
