"""Text that cannot break a report: the characters a matrix may not hold, wherever they come from.

Everything a matrix says ends up in a report: cell ids, environment values,
messages, file names go into ``junit.xml`` (XML 1.0), ``summary.md`` and the
console. XML 1.0 cannot hold most control characters at all (not even
escaped), and a non-character or a lone surrogate cannot be encoded as UTF-8.
YAML refuses such characters written raw, but lets any of them through as an
escape in a double-quoted string (``"a\\x01b"``, ``"tri\\0ton"``,
``"\\uFFFF"``, ``"\\ud800"``). The loader therefore checks every key and every
string value after YAML has read it, and every file name, with
:func:`unsafe_char`, and refuses the first offending character with its file
and line.

Refused: C0 controls other than tab, line feed and carriage return; DEL and
the C1 controls (U+007F-U+009F, NEL included: YAML reads a raw NEL as a line
break, so one left in a value was written as ``\\N`` or ``\\x85``); lone
surrogates; the 66 Unicode non-characters (U+FDD0-U+FDEF and the last two code
points of every plane). Line and paragraph separators (U+2028, U+2029) are
text: they are allowed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "NONCHARACTERS",
    "UNSAFE",
    "char_kind",
    "describe_char",
    "escape_unsafe",
    "short_repr",
    "unsafe_char",
]

#: The Unicode non-characters, as the inside of a regular-expression class.
NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
#: Characters that no string of a matrix may hold (see the module docstring).
UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff" + NONCHARACTERS + "]"
)


def unsafe_char(text: str) -> str | None:
    """The first character of ``text`` that no report can hold, or ``None``."""
    found = UNSAFE.search(text)
    return None if found is None else found.group()


def char_kind(char: str) -> str:
    """``a control character``, ``a Unicode non-character``, ``a lone surrogate``, ..."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "a lone surrogate: not a character"
    if unicodedata.category(char) == "Cc":
        return "a control character"
    if unicode_noncharacter(code):
        return "a Unicode non-character"
    return f"{unicodedata.name(char, 'an unnamed character').lower()}"


def unicode_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def describe_char(char: str) -> str:
    """``U+0001 (a control character)``, ``U+FFFF (a Unicode non-character)``, ..."""
    return f"U+{ord(char):04X} ({char_kind(char)})"


def escape_unsafe(text: str) -> str:
    """``text`` with each unsafe character written as an escape (``\\x01``, ``\\ud800``)."""
    return UNSAFE.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def short_repr(value: str, limit: int = 200) -> str:
    """``repr(value)``, at most about ``limit`` characters of it: ``'xxx...'... (N characters)``.

    The harness's own (the oracle owns every fact it prints, so it does not borrow the
    kernels' ``quoted``, which the code under test uses for its messages).
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"
