"""How the precedence table reads a variable's raw value.

The oracle's own grammar: the spellings a boolean accepts come from the
matrix (``precedence.booleans``), never from the code under test, so a
spelling added to the code's list is a mismatch, not a silent change of the
expectation.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["InvalidValue", "parse_flag", "parse_list"]


class InvalidValue(Exception):
    """The raw value does not parse under the variable's declared grammar."""


def parse_flag(
    raw: str | None, kind: str, true: Sequence[str] = (), false: Sequence[str] = ()
) -> bool:
    """A flag's value; ``None`` (unset) is false.

    ``kind`` is ``boolean`` (words from ``true``/``false``, compared
    case-insensitively, surrounding blanks ignored) or ``int-flag`` (an
    integer as Python's ``int()`` reads it; any non-zero value is true).
    Raises :class:`InvalidValue` when the value does not parse.
    """
    if raw is None:
        return False
    if kind == "boolean":
        norm = raw.strip().lower()
        if norm in true:
            return True
        if norm in false:
            return False
        raise InvalidValue(raw)
    if kind == "int-flag":
        try:
            return int(raw) != 0
        except ValueError:
            raise InvalidValue(raw) from None
    raise ValueError(f"not a flag grammar: {kind!r}")


def parse_list(raw: str | None, match: str = "stripped") -> frozenset[str]:
    """A comma-separated list of names.

    ``stripped``: blanks around names and empty entries are dropped; ``exact``:
    the parts exactly as split (``"A, B"`` holds ``" B"``, which names nothing).
    """
    if raw is None:
        return frozenset()
    if match == "exact":
        return frozenset(raw.split(","))
    return frozenset(part.strip() for part in raw.split(",") if part.strip())
