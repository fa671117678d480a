"""SIGINT and SIGTERM end a command with one line, never a traceback or a half-written file.

Python turns SIGINT into ``KeyboardInterrupt``; SIGTERM kills the process on
the spot by default, leaving whatever was being written. Within
:func:`signals_as_exceptions` SIGTERM raises :class:`Terminated` instead, so
both unwind the stack: a file being written is abandoned and its temporary file
removed (:mod:`harness.output.atomic`), and ``harness.cli.main`` prints one
line and exits with the shell's code for the signal (130 for SIGINT, 143 for
SIGTERM). Both exceptions derive from ``BaseException``, so the ``except
Exception`` clauses that turn a broken selection into a cell's outcome do not
swallow them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "exit_code", "signal_name", "signals_as_exceptions"]


class Terminated(BaseException):
    """The process received SIGTERM (or another signal handled like it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """What a shell reports for a process ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (SIGINT already raises
    ``KeyboardInterrupt``). Only the main thread can install handlers; elsewhere the
    block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    # A SIGTERM that the caller chose to ignore stays ignored.
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
