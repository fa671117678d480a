"""Deliberately broken selections: proof that the matrix can fail.

Each mutant reproduces a bug that selection code really gets (several were
shipped by inference engines): the harness must catch every one, with a
message that names the cell and the rule. ``nvfp4-matrix mutants`` runs them
all; ``nvfp4-matrix run --mutant NAME`` shows one failing.

A mutant of this project's kernels is a selection function with
:func:`~kernels.linear.select.decide`'s signature and/or a backend table,
handed to :class:`~harness.targets.project.ProjectTarget`; the real module is
never modified for longer than one call (the precedence-table mutants swap
``PRECEDENCE`` for the duration of the call, exactly as if the row had been
edited in the source).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

from harness.targets.protocol import MutantInfo

__all__ = ["MUTANTS", "ProjectMutant"]

#: ``() -> (select, backends)``: the broken selection function and/or backend table
#: (``None`` keeps the real one). Built lazily: importing this module imports no torch.
Build = Callable[[], tuple[Callable[..., Any] | None, Mapping[str, type] | None]]


@dataclasses.dataclass(frozen=True)
class ProjectMutant:
    """A broken variant of this project's selection: what it is, and how to build it."""

    info: MutantInfo
    build: Build


def _with_precedence(transform: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> Callable[..., Any]:
    """``decide`` running with ``transform(PRECEDENCE)`` in place of the real table."""
    from kernels.linear import select

    broken = transform(select.PRECEDENCE)

    def decide(config, platform=None, environ=None, backends=None):
        with mock.patch.object(select, "PRECEDENCE", broken):
            return select.decide(config, platform, environ, backends)

    return decide


def _rule(table: tuple[Any, ...], rule_id: str) -> Any:
    for rule in table:
        if rule.id == rule_id:
            return rule
    raise LookupError(f"the precedence table has no rule {rule_id!r}: update the mutant")


# --- (a) the batch-invariant branch removed -------------------------------------------------


def _no_batch_invariant() -> tuple[Callable[..., Any], None]:
    def drop(table: tuple[Any, ...]) -> tuple[Any, ...]:
        _rule(table, "batch_invariant")
        return tuple(r for r in table if r.id != "batch_invariant")

    return _with_precedence(drop), None


# --- (b) VLLM_USE_FBGEMM and VLLM_USE_NVFP4_CT_EMULATIONS swapped --------------------------------


def _swapped_fbgemm_ct() -> tuple[Callable[..., Any], None]:
    def swap(table: tuple[Any, ...]) -> tuple[Any, ...]:
        fb, ct = _rule(table, "use_fbgemm"), _rule(table, "ct_emulations")
        # Each rule now reads the other one's flag: a copy-paste slip in the table.
        fixed = {
            "use_fbgemm": dataclasses.replace(fb, active=ct.active),
            "ct_emulations": dataclasses.replace(ct, active=fb.active),
        }
        return tuple(fixed.get(r.id, r) for r in table)

    return _with_precedence(swap), None


# --- (c) an sm100 rule written as capability >= 10.0 -----------------------------------------------


def _sm100_as_ge() -> tuple[None, dict[str, type]]:
    from kernels.linear.base import requirement_verdict
    from kernels.linear.flashinfer_trtllm import FlashInferTrtllmNvFp4LinearKernel as Real
    from kernels.linear.registry import NVFP4_BACKENDS
    from kernels.platform import current_platform

    class FlashInferTrtllmNvFp4LinearKernel(Real):  # same class name, as in a real edit
        @classmethod
        def is_supported(cls, platform=None):
            p = platform or current_platform()
            # BUG: ">= 10.0" lets sm_120/sm_121 (RTX 50, GB10) in; they lack tcgen05/TMEM.
            return requirement_verdict(
                cls.name, p, min_capability=(10, 0), min_cuda=cls.MIN_CUDA, packages=("flashinfer",)
            )

    table = dict(NVFP4_BACKENDS)
    table[Real.name] = FlashInferTrtllmNvFp4LinearKernel
    return None, table


# --- (d) a FlashInfer backend that only checks the package imports ------------------------------


def _flashinfer_import_only() -> tuple[None, dict[str, type]]:
    from kernels.linear.flashinfer_cutlass import FlashInferCutlassNvFp4LinearKernel as Real
    from kernels.linear.registry import NVFP4_BACKENDS
    from kernels.platform import current_platform

    class FlashInferCutlassNvFp4LinearKernel(Real):
        @classmethod
        def is_supported(cls, platform=None):
            p = platform or current_platform()
            # BUG: "flashinfer imports" is not "this GPU has FP4 tensor cores".
            if p.has_package("flashinfer"):
                return True, None
            return False, "FlashInfer required"

    table = dict(NVFP4_BACKENDS)
    table[Real.name] = FlashInferCutlassNvFp4LinearKernel
    return None, table


# --- (e) a forced unsupported kernel silently falls back to automatic selection -------------------


def _forced_falls_back() -> tuple[Callable[..., Any], None]:
    from kernels import envs
    from kernels.linear import select

    def decide(config, platform=None, environ=None, backends=None):
        decision = select.decide(config, platform, environ, backends)
        if decision.backend is None and decision.rule != "auto":
            # BUG: "be helpful" - drop the forcing variables and try again.
            env = dict(environ or {})
            kept = {k: v for k, v in env.items() if k == envs.VLLM_DISABLED_KERNELS}
            return select.decide(config, platform, kept, backends)
        return decision

    return decide, None


# --- (f) the selection lets the process environment fill what its mapping lacks ------------------


def _reads_process_environment() -> tuple[Callable[..., Any], None]:
    import os

    from kernels import envs
    from kernels.linear import select

    def decide(config, platform=None, environ=None, backends=None):
        # BUG: "the caller may have forgotten one": every variable the mapping leaves out is
        # read from os.environ, so a shell variable decides for a caller that said nothing.
        merged = {k: os.environ[k] for k in envs.SELECTION_VARIABLES if k in os.environ}
        merged.update(environ or {})
        return select.decide(config, platform, merged, backends)

    return decide, None


MUTANTS: tuple[ProjectMutant, ...] = (
    ProjectMutant(
        MutantInfo(
            "no-batch-invariant",
            "the VLLM_BATCH_INVARIANT branch is gone from the precedence table",
            "a refactor that moved backends into classes dropped the batch-invariance hook (vLLM #39129, restored by #39820)",
            ("b200-VLLM_BATCH_INVARIANT=1", "batch_invariant"),
        ),
        _no_batch_invariant,
    ),
    ProjectMutant(
        MutantInfo(
            "swapped-fbgemm-ct",
            "VLLM_USE_FBGEMM and VLLM_USE_NVFP4_CT_EMULATIONS read each other's flag",
            "two adjacent rows of a precedence chain edited by copy and paste",
            ("b200-VLLM_USE_FBGEMM=1", "use_fbgemm"),
        ),
        _swapped_fbgemm_ct,
    ),
    ProjectMutant(
        MutantInfo(
            "sm100-as-ge",
            "flashinfer-trtllm's sm100 rule written as capability >= 10.0",
            "sm_120/sm_121 are numerically >= 10.0 but lack tcgen05 and TMEM (vLLM #54306, sglang #31365)",
            ("rtx5090-VLLM_NVFP4_GEMM_BACKEND=flashinfer-trtllm", "gemm_backend"),
        ),
        _sm100_as_ge,
    ),
    ProjectMutant(
        MutantInfo(
            "flashinfer-import-only",
            "flashinfer-cutlass checks only that FlashInfer imports",
            "early FlashInfer NVFP4 backends in vLLM checked has_flashinfer() and nothing else",
            ("v100-default", "auto"),
        ),
        _flashinfer_import_only,
    ),
    ProjectMutant(
        MutantInfo(
            "forced-falls-back",
            "a forced unsupported kernel silently falls back to automatic selection",
            "a well-meant fallback that turns 'you asked for fbgemm and cannot have it' into a silent slowdown",
            ("v100-VLLM_USE_FBGEMM=1", "use_fbgemm"),
        ),
        _forced_falls_back,
    ),
    ProjectMutant(
        MutantInfo(
            "reads-process-environment",
            "the selection lets os.environ fill the variables its mapping lacks",
            "a convenience fallback to the process environment, so a variable left in the shell "
            "decides for a caller that passed its own environment",
            ("b200-default", "auto"),
        ),
        _reads_process_environment,
    ),
)
