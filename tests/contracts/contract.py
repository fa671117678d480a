"""Binding a recorded call to a real function's signature, and checking literal values.

Every failure names the function, the argument and both sides (what we passed,
what the real function accepts).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import torch

from tests.contracts.support import Call


class ContractError(AssertionError):
    """Our call does not fit the real library function."""


def real_signature(fn: Callable) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError) as exc:  # builtins without text signatures
        raise ContractError(f"{_name(fn)}: no Python signature to bind against ({exc})") from exc


def _name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


def bind(fn: Callable, call: Call) -> inspect.BoundArguments:
    """Bind ``call`` to ``fn``'s real signature (defaults applied) or raise ContractError."""
    sig = real_signature(fn)
    try:
        bound = sig.bind(*call.args, **call.kwargs)
    except TypeError as exc:
        raise ContractError(
            f"{_name(fn)}{sig}: our call with {len(call.args)} positional argument(s) and "
            f"keywords {sorted(call.kwargs)} does not bind: {exc}"
        ) from exc
    bound.apply_defaults()
    return bound


def _hints(fn: Callable) -> dict[str, Any]:
    target = inspect.unwrap(fn)
    try:
        return typing.get_type_hints(target)
    except Exception:
        # Unresolvable forward references: fall back to what the signature holds.
        return {
            name: p.annotation
            for name, p in real_signature(fn).parameters.items()
            if p.annotation is not inspect.Parameter.empty and not isinstance(p.annotation, str)
        }


def _accepts(annotation: Any, value: Any) -> tuple[bool, str]:
    """Does ``value`` fit ``annotation``? Returns (ok, what the annotation accepts)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        return value in allowed, f"one of {list(allowed)}"
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        results = [_accepts(a, value) for a in typing.get_args(annotation)]
        return any(ok for ok, _ in results), " or ".join(w for _, w in results)
    if annotation is type(None):
        return value is None, "None"
    if annotation is bool:
        return isinstance(value, bool), "a bool"
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), "an int"
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a float"
    if annotation is str:
        return isinstance(value, str), "a str"
    if annotation is torch.Tensor:
        return isinstance(value, torch.Tensor), "a torch.Tensor"
    if annotation is torch.dtype:
        return isinstance(value, torch.dtype), "a torch.dtype"
    return True, f"{annotation!r} (not checked)"


def check_values(fn: Callable, bound: inspect.BoundArguments) -> None:
    """Every argument we pass must fit the real annotation (Literal values, bools, dtypes)."""
    hints = _hints(fn)
    for name, value in bound.arguments.items():
        if name not in hints:
            continue
        ok, wanted = _accepts(hints[name], value)
        if not ok:
            raise ContractError(
                f"{_name(fn)}: argument {name!r}: we pass {value!r}, the real function "
                f"accepts {wanted}"
            )


def literal_values(fn: Callable, parameter: str) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` annotation of ``fn``'s ``parameter``."""
    annotation = _hints(fn).get(parameter)
    if typing.get_origin(annotation) is not typing.Literal:
        raise ContractError(
            f"{_name(fn)}: parameter {parameter!r} is not a Literal: {annotation!r}"
        )
    return typing.get_args(annotation)


def schema_signature(schema: torch._C.FunctionSchema) -> inspect.Signature:
    """An ``inspect.Signature`` for a torch operator schema (names, defaults, keyword-only)."""
    params = []
    for arg in schema.arguments:
        kind = (
            inspect.Parameter.KEYWORD_ONLY
            if arg.kwarg_only
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        default = arg.default_value if arg.has_default_value() else inspect.Parameter.empty
        params.append(inspect.Parameter(arg.name, kind, default=default))
    return inspect.Signature(params)


def _declared_types(schema: torch._C.FunctionSchema) -> dict[str, str]:
    """Argument name -> type as the schema spells it (``ScalarType?``), alias marks dropped."""
    text = str(schema).split("(", 1)[1].rsplit(") ->", 1)[0]
    text = re.sub(r"\([^)]*\)", "", text)  # alias annotations: Tensor($0! -> ) output
    types = {}
    for token in text.split(", "):
        if token.strip() == "*" or " " not in token.strip():
            continue
        kind, rest = token.strip().split(" ", 1)
        types[rest.split("=", 1)[0].strip()] = kind
    return types


def bind_schema(schema: torch._C.FunctionSchema, call: Call) -> inspect.BoundArguments:
    """Bind ``call`` to a torch operator schema; check each argument against its declared type."""
    sig = schema_signature(schema)
    try:
        bound = sig.bind(*call.args, **call.kwargs)
    except TypeError as exc:
        raise ContractError(f"{schema}: our call does not bind: {exc}") from exc
    bound.apply_defaults()
    for arg in schema.arguments:
        value = bound.arguments[arg.name]
        kind = _declared_types(schema)[arg.name]
        ok = {
            "Tensor": isinstance(value, torch.Tensor),
            "Tensor?": value is None or isinstance(value, torch.Tensor),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "int?": value is None or (isinstance(value, int) and not isinstance(value, bool)),
            "float": isinstance(value, float),
            "ScalarType?": value is None or isinstance(value, torch.dtype),
            "ScalarType": isinstance(value, torch.dtype),
            "Tensor[]": isinstance(value, (list, tuple))
            and all(isinstance(v, torch.Tensor) for v in value),
            "int[]": isinstance(value, (list, tuple))
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        }.get(kind, True)
        if not ok:
            raise ContractError(
                f"{schema.name}: argument {arg.name!r} is declared {kind}, we pass {value!r}"
            )
    return bound
