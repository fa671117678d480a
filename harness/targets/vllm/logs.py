"""vLLM's log during one selection call: kept as the outcome's, not printed.

A capture handler on vLLM's logger keeps the records while a selection runs;
a filter on vLLM's own handlers holds their output back meanwhile, so a
machine-readable output (``explain --json``) stays pure whatever
``VLLM_LOGGING_LEVEL`` says.
"""

from __future__ import annotations

import logging

__all__ = ["LogCapture", "Silenced", "install_log_capture"]


class LogCapture(logging.Handler):
    """Keeps the records of the ``vllm`` logger while a selection runs; idle otherwise."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[int, str]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.lines is not None:
            self.lines.append((record.levelno, record.getMessage()))


class Silenced(logging.Filter):
    """Set on vLLM's own handlers while a selection runs: its records are the outcome's, not
    the terminal's (a machine-readable output stays pure)."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.on


def install_log_capture(name: str) -> tuple[LogCapture, Silenced]:
    """Attach one capture handler to vLLM's logger (once per process), and a filter to its
    own handlers that holds their output back while a selection runs.

    The logger's level is lowered to INFO so that info records reach the capture handler;
    vLLM's own handlers keep their level (``VLLM_LOGGING_LEVEL``).
    """
    logger = logging.getLogger(name)
    capture = next((h for h in logger.handlers if isinstance(h, LogCapture)), None)
    if capture is None:
        capture = LogCapture()
        logger.addHandler(capture)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            for handler in logger.handlers:
                if handler is not capture and handler.level == logging.NOTSET:
                    handler.setLevel(logger.getEffectiveLevel())
            logger.setLevel(logging.INFO)
    silence = next(
        (f for h in logger.handlers for f in h.filters if isinstance(f, Silenced)), None
    )
    if silence is None:
        silence = Silenced()
        for handler in logger.handlers:
            if handler is not capture:
                handler.addFilter(silence)
    return capture, silence

