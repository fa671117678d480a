"""Contracts of the selection that no matrix cell can see (found by the mutation lane).

The matrix checks what the selection returns for each machine and
environment; these tests pin what it guarantees beyond that: the precedence
table cannot be edited at run time, and a batch-invariant preference that
names a backend without the property is refused instead of forcing it.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.registry import NVFP4_BACKENDS
from kernels.linear.select import PRECEDENCE, PrecedenceRule, decide
from kernels.platform import Platform

H100 = Platform("H100", "cuda", (9, 0), (12, 9), frozenset({"triton"}), triton_version=(3, 6))
CONFIG = NvFp4LinearConfig(4096, 4096, torch.bfloat16)


@pytest.mark.parametrize("rule", PRECEDENCE, ids=[r.id for r in PRECEDENCE])
def test_precedence_rows_are_immutable(rule: PrecedenceRule) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.id = "renamed"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["triton", "emulation"])
def test_batch_invariant_preference_must_be_batch_invariant(name: str) -> None:
    impostor = type(
        NVFP4_BACKENDS[name].__name__, (NVFP4_BACKENDS[name],), {"batch_invariant": False}
    )
    table = {**NVFP4_BACKENDS, name: impostor}
    with pytest.raises(AssertionError, match=f"{impostor.__name__} is in the batch-invariant"):
        decide(CONFIG, H100, {"VLLM_BATCH_INVARIANT": "1"}, table)


def test_other_forcing_rules_do_not_require_batch_invariance() -> None:
    impostor = type("EmulationNvFp4LinearKernel", (NVFP4_BACKENDS["emulation"],), {
        "batch_invariant": False
    })
    table = {**NVFP4_BACKENDS, "emulation": impostor}
    decision = decide(CONFIG, H100, {"VLLM_USE_NVFP4_CT_EMULATIONS": "1"}, table)
    assert decision.backend == "emulation" and decision.rule == "ct_emulations"


def test_requirement_verdict_min_capability() -> None:
    # No registered backend states min_capability through requirement_verdict
    # today (triton checks its own), so the matrix cannot reach this branch.
    from kernels.linear.base import requirement_verdict

    v100 = Platform("V100", "cuda", (7, 0), (12, 8))
    a100 = Platform("A100", "cuda", (8, 0), (12, 8))
    assert requirement_verdict("x", a100, min_capability=(8, 0)) == (True, None)
    assert requirement_verdict("x", v100, min_capability=(8, 0)) == (
        False,
        "x needs compute capability >= 8.0, platform is sm_70",
    )
    assert requirement_verdict("x", a100, min_capability=(8, 6))[0] is False


def test_only_triton_and_emulation_claim_batch_invariance() -> None:
    claims = {name for name, cls in NVFP4_BACKENDS.items() if cls.batch_invariant}
    assert claims == {"triton", "emulation"}


def test_a_kernel_keeps_the_platform_it_was_built_for() -> None:
    from kernels.linear.emulation import EmulationNvFp4LinearKernel

    kernel = EmulationNvFp4LinearKernel(CONFIG, H100)
    assert kernel.platform is H100


def test_requirement_verdict_needs_no_fp4_dtype_unless_asked() -> None:
    from kernels.linear.base import requirement_verdict

    old_torch = Platform("B200", "cuda", (10, 0), (12, 8), has_fp4_dtype=False)
    assert requirement_verdict("x", old_torch) == (True, None)
    assert requirement_verdict("x", old_torch, needs_fp4_dtype=True)[0] is False


def test_a_backend_must_state_its_support_rule() -> None:
    from kernels.linear.base import NvFp4LinearKernel

    class Incomplete(NvFp4LinearKernel):
        name = "incomplete"

        def process_weights(self, layer: object) -> None:
            return None

        def _apply(self, layer: object, x2d: object, bias: object) -> object:
            return x2d

    with pytest.raises(TypeError, match="is_supported"):
        Incomplete(CONFIG, H100)
