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

from kernels.errors import InvalidEnvironmentError

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "SELECTION_VARIABLES",
    "NvFp4Envs",
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
        f"{name}={value!r} is not a boolean; accepted spellings: "
        f"true: {', '.join(BOOL_TRUE)}; false: {', '.join(repr(v) for v in BOOL_FALSE)} "
        "(case-insensitive)"
    )


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
    """Build a snapshot from ``environ`` (default: ``os.environ``, read now)."""
    env = os.environ if environ is None else environ
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
