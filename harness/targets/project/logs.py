"""What ``init_nvfp4_linear_kernel`` logs during one cell, kept from the process's handlers.

The selection logs its notes through a :class:`~kernels.linear.select.NoteLog`
the caller may pass. A cell passes a fresh one that writes to a private
logger (registered nowhere, so no handler of the process sees the fake
cells) with a handler that keeps every record: what one cell logs does not
depend on the cells before it, and a real selection later in the process
still logs its first notes.
"""

from __future__ import annotations

import logging

from kernels.linear.select import NoteLog

__all__ = ["CapturedNotes"]


class _Keep(logging.Handler):
    def __init__(self, sink: list[tuple[int, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((record.levelno, record.getMessage()))


class CapturedNotes(NoteLog):
    """A :class:`NoteLog` whose records are kept in :attr:`records` (``(level, message)``)."""

    def __init__(self) -> None:
        logger = logging.Logger("kernels.linear", logging.DEBUG)
        logger.propagate = False
        self.records: list[tuple[int, str]] = []
        logger.addHandler(_Keep(self.records))
        super().__init__(logger)
