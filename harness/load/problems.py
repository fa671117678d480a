"""Pydantic's validation errors, turned into problems a person can act on.

Each problem names the file, the YAML line and the dotted key, and where it
can, what would be right (the valid keys or values, the closest spelling).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import Problem
from harness.load.yamlsrc import PathKey, Source
from harness.models import (
    DISTRIBUTION_NAME_PATTERN,
    PRINTED_VERSION_PATTERN,
    VERSION_PATTERN,
    MatrixFile,
)
from kernels.errors import QUOTE_LIMIT, quoted

__all__ = ["closest", "translate", "unknown_name", "validate_file"]


def validate_file(source: Source, problems: list[Problem]) -> MatrixFile | None:
    if not isinstance(source.data, dict):
        kind = "empty" if source.data is None else f"a {_yaml_type(source.data)}"
        problems.append(
            source.problem(
                (), f"a matrix file is a mapping with 'version: 1' at the top; this one is {kind}"
            )
        )
        return None
    try:
        model = MatrixFile.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(translate(source, exc))
        return None
    for pid, profile in model.profiles.items():
        profile._id = pid
    return model


def translate(
    source: Source, exc: ValidationError, root: type[BaseModel] = MatrixFile
) -> list[Problem]:
    """Pydantic errors -> problems with the YAML line and a readable message (``root``: the
    model the whole document was validated as: a matrix file, or another file of the tool's)."""
    out: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(source.data, error["loc"])
        message = _message(error, path, root)
        if error["type"] == "value_error":
            path = _point_at_field(source.data, path, message)
        problem = source.problem(path, message)
        key = (problem.line or 0, problem.key, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Keep the parts of a pydantic ``loc`` that are real keys/indexes of ``data``.

    Pydantic inserts tags (``"function-after[...]"``, union member names) that
    are not in the document; a missing key is kept as the last part so the
    message can name it.
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if part == "[key]":  # pydantic's tag for "the key itself is invalid"
            continue
        key = _document_key(node, part) if isinstance(node, dict) else _MISSING
        if key is not _MISSING:
            node = node[key]
            path.append(key)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            path.append(part)
    return tuple(path)


_MISSING: Any = object()


def _document_key(node: dict[Any, Any], part: Any) -> Any:
    """The key of ``node`` that pydantic's ``loc`` part stands for, or ``_MISSING``.

    Pydantic writes a key true/false as 1/0, and a null or float key as its
    ``str()`` (``'None'``, ``'1.5'``): keep the document's own key, so that the
    problem is reported at that key's line.
    """
    for key in node:
        if key == part and type(key) is type(part):
            return key
    for key in node:
        if key == part:
            return key
    if isinstance(part, str):
        for key in node:
            if not isinstance(key, str) and str(key) == part:
                return key
    return _MISSING


def _point_at_field(data: Any, path: PathKey, message: str) -> PathKey:
    """A model-level check names fields in quotes: point at the first one that is present."""
    node = data
    for part in path:
        node = node[part]
    if isinstance(node, dict):
        for name in re.findall(r"'([A-Za-z_]+)'", message):
            if name in node:
                return path + (name,)
    return path


def _message(error: Any, path: PathKey, root: type[BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        valid = _valid_keys(error["loc"][:-1], root)
        hint = ""
        if valid:
            close = closest(str(path[-1]), valid) if len(str(path[-1])) <= QUOTE_LIMIT else None
            hint = f"; did you mean {close!r}?" if close else ""
            hint += f" (valid keys: {', '.join(valid)})"
        return f"unknown key {quoted(path[-1])}{hint}"
    if kind == "missing":
        return f"missing required key {error['loc'][-1]!r}"
    if kind == "literal_error" and not isinstance(value, bool):
        options = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", "")) or [
            o.strip()
            for o in re.split(r",| or ", error.get("ctx", {}).get("expected", ""))
            if o.strip()
        ]
        if str(value) in options:
            # '1' for 1: the spelling is right, the YAML type is not.
            return (
                f"wrong type: expected {', '.join(options)} unquoted, got {_yaml_type(value)} "
                f"{_short(value)}"
            )
        close = closest(str(value), options) if isinstance(value, str) else None
        hint = f"; did you mean {close!r}?" if close else ""
        return f"{_short(value)} is not one of: {', '.join(options)}{hint}"
    if kind in (
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "dict_type",
        "list_type",
        "model_type",
        "literal_error",
        "int_from_float",
        "model_attributes_type",
    ):
        expected = error["msg"].removeprefix("Input should be ").removeprefix("a valid ")
        got = f"got {_yaml_type(value)} {_short(value)}"
        hint = ""
        if isinstance(value, bool) and kind in ("string_type", "literal_error"):
            hint = " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
        elif isinstance(value, (int, float)) and kind in ("string_type", "literal_error"):
            hint = f' (quote it: "{value}")'
        return f"wrong type: expected {expected}, {got}{hint}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern == VERSION_PATTERN:
            return f'expected a version "major.minor" such as "10.0", got {_short(value)}'
        if pattern == PRINTED_VERSION_PATTERN:
            return (
                'expected a version as the machine prints it, such as "2.9.1+cu128", '
                f'"3.6.0+git5261b273" or "2.9", got {_short(value)}'
            )
        if pattern == DISTRIBUTION_NAME_PATTERN:
            return (
                f"{_short(value)} is not a distribution name: letters, digits, '.', '_' and '-', "
                "starting and ending with a letter or digit"
            )
        if pattern.startswith("^[a-z0-9]"):
            return f"{_short(value)} is not a valid id: use lowercase letters, digits, '.', '_' and '-'"
        return f"{_short(value)} does not match {pattern}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "too_short" and isinstance(value, list) and not value:
        field = _field_at(error["loc"], root)
        if field is not None and not field.is_required():
            return "an empty list is not allowed here (omit the key for the default)"
        return "needs at least one item, got an empty list"
    if kind == "invalid_key":
        hint = ""
        if isinstance(value, bool):
            hint = " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote the key)"
        return f"keys must be strings, got {_yaml_type(value)} {_short(value)}{hint}"
    if kind in ("less_than_equal", "string_too_long"):
        limit = error.get("ctx", {}).get("le", error.get("ctx", {}).get("max_length"))
        what = "at most" if kind == "less_than_equal" else "at most this many characters:"
        return f"must be {what} {limit} (a bound of the format), got {_short(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_short(value)}"
    return f"{error['msg']} (got {_short(value)})"


def _valid_keys(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """Field names of the model found at ``loc`` (walking ``root``'s annotations)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict and args:
            current = args[1]
        elif origin is list and args:
            current = args[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _field_at(loc: tuple[Any, ...], root: type[BaseModel]) -> Any:
    """The pydantic ``FieldInfo`` of the model field at ``loc`` (``None`` when it is not one)."""
    if not loc or not isinstance(loc[-1], str):
        return None
    current: Any = root
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            current = field.annotation
            continue
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is dict and args:
            current = args[1]
        elif origin is list and args:
            current = args[0]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current.model_fields.get(loc[-1])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType) and args:
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                annotation = non_none[0]
                continue
        return annotation


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, ignoring case; never ``name`` itself.

    ``B200`` -> ``b200`` (not ``h200``): a name that differs only in case is
    the closest of all.
    """
    known = [k for k in known if k != name]
    folded = {k.casefold(): k for k in reversed(known)}
    if name.casefold() in folded:
        return folded[name.casefold()]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1)
    return folded[close[0]] if close else None


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = closest(name, known) if len(name) <= QUOTE_LIMIT else None
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown {kind} {quoted(name)}{hint} (known: {', '.join(known) or 'none'})"
