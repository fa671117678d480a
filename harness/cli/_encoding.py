"""Any output encoding works: plain fallbacks for the symbols the console prints.

The console output uses a few symbols (``✗`` for an error in the selection
table, ``≠`` for a disagreement, arrows and dashes in messages) and prints
text from the matrix files, which may hold any character. A standard output
that cannot encode them (``PYTHONIOENCODING=ascii``, ``LC_ALL=C`` without
Python's UTF-8 mode, a Windows code page) would otherwise end the command with
a ``UnicodeEncodeError``. :func:`plain_fallbacks` gives such a stream an error
handler that writes each symbol's plain spelling (``✗`` -> ``x``, ``≠`` ->
``!=``) and any other character as a ``\\u`` escape. Files (reports,
summaries) are always UTF-8 and keep the symbols.
"""

from __future__ import annotations

import codecs
import sys

__all__ = ["ERROR_HANDLER", "PLAIN", "plain_fallbacks", "plain_text"]

#: Plain spellings of the symbols the tool prints.
PLAIN: dict[str, str] = {
    "✗": "x",
    "✓": "ok",
    "≠": "!=",
    "≥": ">=",
    "≤": "<=",
    "→": "->",
    "←": "<-",
    "×": "x",
    "…": "...",
    "—": "-",
    "–": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "±": "+-",
    "✅": "[PASS]",
    "❌": "[FAIL]",
}

ERROR_HANDLER = "nvfp4-matrix-plain"


def _fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    out = []
    for char in text:
        plain = PLAIN.get(char)
        if plain is None:
            code = ord(char)
            plain = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
        out.append(plain)
    return "".join(out), error.end


codecs.register_error(ERROR_HANDLER, _fallback)


def plain_text(text: str, encoding: str) -> str:
    """``text`` as it prints on a stream of ``encoding`` (the fallbacks applied)."""
    return text.encode(encoding, ERROR_HANDLER).decode(encoding)


def _needs_fallbacks(stream: object) -> bool:
    """A stream whose encoding lacks a symbol, or that refuses what it cannot encode.

    Even a UTF-8 stream cannot encode a lone surrogate (a file name that was not
    UTF-8); one that already escapes (``surrogateescape``, ``backslashreplace``)
    is left as it is.
    """
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return False
    if getattr(stream, "errors", "strict") == "strict":
        return True
    try:
        "".join(PLAIN).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


def plain_fallbacks() -> None:
    """Give standard output and standard error the fallbacks when their encoding needs them.

    Streams that cannot be reconfigured (replaced by a test runner, closed) are left alone.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or not _needs_fallbacks(stream):
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            reconfigure(errors=ERROR_HANDLER)
        except (OSError, ValueError, AttributeError):
            pass
