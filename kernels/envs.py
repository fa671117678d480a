"""Environment variables that steer NVFP4 kernel selection.

The environment is parsed into a frozen :class:`NvFp4Envs` snapshot by a pure
function of a mapping (:func:`read_envs`). Selection takes the snapshot as
input, so tests pass plain dicts and nothing is cached between calls: the
real ``os.environ`` is read afresh every time :func:`read_envs` is called
without an argument.

Every variable is validated when the snapshot is built, even one that a
higher-precedence rule will make irrelevant: a typo in an environment
variable must never be silently ignored. ``VLLM_DISABLED_KERNELS`` is the one
list whose names are not all ours (engines share it across kernel families),
so a name that matches no NVFP4 kernel is not an error: the selection notes
it in the decision record, with the closest NVFP4 kernel class, and
:func:`kernels.linear.select.init_nvfp4_linear_kernel` logs it as a warning.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from kernels.errors import InvalidEnvironmentError, quoted

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "SELECTION_VARIABLES",
    "NvFp4Envs",
    "check_environ",
    "parse_bool",
    "read_envs",
]

VLLM_BATCH_INVARIANT = "VLLM_BATCH_INVARIANT"
VLLM_USE_FBGEMM = "VLLM_USE_FBGEMM"
VLLM_USE_NVFP4_CT_EMULATIONS = "VLLM_USE_NVFP4_CT_EMULATIONS"
VLLM_NVFP4_GEMM_BACKEND = "VLLM_NVFP4_GEMM_BACKEND"
VLLM_DISABLED_KERNELS = "VLLM_DISABLED_KERNELS"

#: Every variable that can change the NVFP4 selection, in precedence order.
SELECTION_VARIABLES: tuple[str, ...] = (
    VLLM_BATCH_INVARIANT,
    VLLM_USE_FBGEMM,
    VLLM_USE_NVFP4_CT_EMULATIONS,
    VLLM_NVFP4_GEMM_BACKEND,
    VLLM_DISABLED_KERNELS,
)

#: Accepted spellings (compared case-insensitively, surrounding blanks ignored).
BOOL_TRUE: tuple[str, ...] = ("1", "true", "yes", "on")
BOOL_FALSE: tuple[str, ...] = ("0", "false", "no", "off", "")


def parse_bool(name: str, value: str | None) -> bool:
    """Parse a boolean variable; ``None`` (unset) is False.

    Raises :class:`InvalidEnvironmentError` (a ``ValueError``) naming the
    variable, the value and the accepted spellings.
    """
    if value is None:
        return False
    norm = value.strip().lower()
    if norm in BOOL_TRUE:
        return True
    if norm in BOOL_FALSE:
        return False
    raise InvalidEnvironmentError(
        f"{name}={quoted(value)} is not a boolean; accepted spellings: "
        f"true: {', '.join(BOOL_TRUE)}; false: {', '.join(repr(v) for v in BOOL_FALSE)} "
        "(case-insensitive)"
    )


def check_environ(environ: object) -> Mapping[str, str]:
    """``environ`` itself when it is a mapping of ``str`` to ``str``.

    Raises :class:`InvalidEnvironmentError` otherwise: for a value that is not
    a mapping (a list of pairs, a string, ``None`` is the default and allowed
    by the callers), a key that is not a ``str`` (``os.environb``'s bytes keys
    would otherwise hide every variable), or a value that is not a ``str``
    (``None`` does not unset a variable: leave the key out).
    """
    if environ is os.environ:
        return os.environ
    if not isinstance(environ, Mapping):
        raise InvalidEnvironmentError(
            f"environ must be a mapping of str to str (os.environ or a dict), "
            f"got {type(environ).__name__} {quoted(environ)}"
        )
    for key, value in environ.items():
        if not isinstance(key, str):
            hint = (
                ": pass os.environ, not os.environb (bytes keys would hide every variable)"
                if isinstance(key, bytes)
                else ""
            )
            raise InvalidEnvironmentError(
                f"environ keys must be str, got {type(key).__name__} {quoted(key)}{hint}"
            )
        if not isinstance(value, str):
            hint = " (to unset a variable, leave it out)" if value is None else ""
            raise InvalidEnvironmentError(
                f"environ[{quoted(key)}] must be a str, got {type(value).__name__} "
                f"{quoted(value)}{hint}"
            )
    return environ


@dataclasses.dataclass(frozen=True)
class NvFp4Envs:
    """A typed snapshot of the selection variables.

    Built by :func:`read_envs`, the one place that says what an unset or empty
    variable means (``read_envs({})`` is the empty environment); a snapshot
    built by hand states every field.
    """

    batch_invariant: bool
    use_fbgemm: bool
    use_ct_emulations: bool
    gemm_backend: str | None
    disabled_kernels: frozenset[str]
    #: the raw values of the variables that were set, for decision records
    raw: tuple[tuple[str, str], ...]

    def raw_value(self, name: str) -> str | None:
        return dict(self.raw).get(name)


def read_envs(environ: Mapping[str, str] | None = None) -> NvFp4Envs:
    """Build a snapshot from ``environ`` (default: ``os.environ``, read now).

    ``environ`` must be a mapping of ``str`` to ``str``, as ``os.environ`` is;
    anything else is an :class:`InvalidEnvironmentError` naming what is wrong
    (:func:`check_environ`), never a silently empty environment.
    """
    env = os.environ if environ is None else check_environ(environ)
    raw = tuple((k, env[k]) for k in SELECTION_VARIABLES if k in env)
    backend = env.get(VLLM_NVFP4_GEMM_BACKEND)
    if backend is not None:
        backend = backend.strip()
        if backend == "":
            backend = None  # an empty value means unset, as for the booleans
    disabled = frozenset(
        part.strip() for part in env.get(VLLM_DISABLED_KERNELS, "").split(",") if part.strip()
    )
    return NvFp4Envs(
        batch_invariant=parse_bool(VLLM_BATCH_INVARIANT, env.get(VLLM_BATCH_INVARIANT)),
        use_fbgemm=parse_bool(VLLM_USE_FBGEMM, env.get(VLLM_USE_FBGEMM)),
        use_ct_emulations=parse_bool(
            VLLM_USE_NVFP4_CT_EMULATIONS, env.get(VLLM_USE_NVFP4_CT_EMULATIONS)
        ),
        gemm_backend=backend,
        disabled_kernels=disabled,
        raw=raw,
    )
