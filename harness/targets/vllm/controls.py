"""The per-cell controls of vLLM: its environment, and fixed support verdicts on its classes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["exact_environment", "fixed_support"]


@contextlib.contextmanager
def exact_environment(
    envs: Any, clear: Sequence[str], mapping: Mapping[str, str | None]
) -> Iterator[None]:
    """Run the block with exactly ``mapping``'s vLLM variables set.

    Every variable of ``clear`` not in ``mapping`` is removed from ``os.environ`` (a value
    of ``None`` also means unset); vLLM's envs cache (module ``envs``) is disabled so each
    read goes to ``os.environ``. Everything is restored afterwards, the cache state included.
    """
    for key, value in mapping.items():
        if not key.startswith("VLLM_"):
            raise ValueError(f"env: {key!r} is not a vLLM variable (VLLM_*)")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"env: {key}={value!r}: values are strings (or None for unset)")
    keys = tuple(dict.fromkeys(tuple(clear) + tuple(mapping)))
    environ = os.environ
    saved = {key: environ.get(key) for key in keys}
    check = getattr(envs, "_is_envs_cache_enabled", None)

    def cache_on() -> bool:
        return bool(check()) if check is not None else False

    cache_was_on = cache_on()
    try:
        for key in keys:
            value = mapping.get(key)
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        if cache_was_on:
            envs.disable_envs_cache()
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                environ.pop(key, None)
            else:
                environ[key] = old
        if cache_was_on and not cache_on():
            envs.enable_envs_cache()


def _fixed_verdict(verdict: tuple[bool, str | None]) -> Callable[..., tuple[bool, str | None]]:
    def is_supported(cls: type, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return verdict

    return is_supported


@contextlib.contextmanager
def fixed_support(verdicts: Mapping[type, tuple[bool, str | None]]) -> Iterator[None]:
    """Replace ``is_supported`` on the given classes with a fixed ``(ok, reason)``.

    A subclass that does not define its own ``is_supported`` inherits the replacement, as
    it inherits the real one. Restored afterwards.
    """
    patches = []
    for cls, verdict in verdicts.items():
        if (
            not isinstance(verdict, tuple)
            or len(verdict) != 2
            or not isinstance(verdict[0], bool)
            or not (verdict[1] is None or isinstance(verdict[1], str))
        ):
            raise ValueError(
                f"mock_support: {cls.__name__}: expected (bool, str | None), got {verdict!r}"
            )
        patches.append((cls, cls.__dict__.get("is_supported"), verdict))
    try:
        for cls, _old, verdict in patches:
            cls.is_supported = classmethod(_fixed_verdict(verdict))  # type: ignore[attr-defined]
        yield
    finally:
        for cls, old, _verdict in reversed(patches):
            if old is None:
                delattr(cls, "is_supported")
            else:
                cls.is_supported = old
