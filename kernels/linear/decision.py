"""The decision record: what the selection looked at and why it chose what it chose."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = ["CandidateStatus", "CandidateVerdict", "SelectionDecision"]

CandidateStatus = Literal[
    "selected",  # this backend was returned
    "unsupported",  # is_supported() said no
    "cannot-implement",  # can_implement() said no for this layer
    "disabled",  # named in VLLM_DISABLED_KERNELS (automatic selection only)
    "not-reached",  # an earlier candidate was selected first
]


@dataclasses.dataclass(frozen=True)
class CandidateVerdict:
    backend: str
    kernel: str
    status: CandidateStatus
    reason: str | None = None

    def line(self) -> str:
        tail = f": {self.reason}" if self.reason else ""
        return f"{self.backend:<18} {self.status:<16} {self.kernel}{tail}"


@dataclasses.dataclass(frozen=True)
class SelectionDecision:
    """Everything a person needs to see why a backend was (not) chosen.

    Attributes:
        rule: id of the precedence rule that decided (``batch_invariant``,
            ``use_fbgemm``, ``ct_emulations``, ``gemm_backend`` or ``auto``).
        variable: the environment variable behind that rule (``None`` for auto).
        variables: the selection variables that were consulted, in precedence
            order, with their raw values (``None`` = unset).
        platform: one-line description of the platform.
        layer: one-line description of the layer config.
        candidates: every backend that was looked at, with its verdict.
        backend: the chosen backend's registry name, or ``None`` on error.
        error: the error message when nothing could be chosen.
        messages: log lines emitted while deciding (info and warnings).
    """

    rule: str
    variable: str | None
    variables: tuple[tuple[str, str | None], ...]
    platform: str
    layer: str
    candidates: tuple[CandidateVerdict, ...]
    backend: str | None
    error: str | None = None
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.backend is not None

    def format(self) -> str:
        lines = [
            f"platform : {self.platform}",
            f"layer    : {self.layer}",
            "variables: "
            + (", ".join(f"{k}={v if v is not None else '<unset>'}" for k, v in self.variables) or "-"),
            f"rule     : {self.rule}" + (f" ({self.variable})" if self.variable else ""),
            f"result   : {self.backend}" if self.ok else f"error    : {self.error}",
            "candidates:",
        ]
        lines += [f"  {c.line()}" for c in self.candidates]
        lines += [f"note     : {m}" for m in self.messages]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "variable": self.variable,
            "variables": {k: v for k, v in self.variables},
            "platform": self.platform,
            "layer": self.layer,
            "backend": self.backend,
            "error": self.error,
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "messages": list(self.messages),
        }
