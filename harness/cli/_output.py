"""Where the command line's output goes: the console, files the user names, closed pipes.

* :class:`PipeSafeConsole`: a ``rich`` console whose reader may go away
  (``nvfp4-matrix run | head -1``): the rest of the output is discarded and
  the command finishes with its own exit code (rich's default exits 1 on the
  spot, before the verdict is known).
* :func:`write_output_file`: ``--write``/``-o``: writes a file the user named,
  atomically (:mod:`harness.output.atomic`), refusing a folder that does not
  exist (a typo must not create folders) or a target that is not a regular
  file with an :class:`~harness.errors.OutputError`.
* :func:`discard_stdout`: after a closed pipe or a full disk, points the
  standard output at the null device so the interpreter's last flush cannot
  fail again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

__all__ = ["PipeSafeConsole", "discard_stdout", "stdout_is_closed", "write_output_file"]


class PipeSafeConsole(Console):
    """A console that stops writing, quietly, when its reader has gone away."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        stream = sys.stderr if self.stderr else sys.stdout
        if stream is not None:
            _to_devnull(stream)


def _to_devnull(stream: object) -> None:
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def discard_stdout() -> None:
    """Send whatever is still buffered for stdout, and all that follows, to the null device."""
    if sys.stdout is not None:
        _to_devnull(sys.stdout)


def stdout_is_closed() -> bool:
    """Was the program started with its standard output closed (``>&-``)?"""
    if sys.stdout is None:  # how Python starts when descriptor 1 is closed
        return True
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor: open
        return False
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def write_output_file(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; :class:`OutputError` (one line) when that cannot
    be done (the previous file is then kept)."""
    from harness.output.atomic import write_atomic

    return write_atomic(path, text)
