"""Proof that the matrix can fail: every known bug class is caught, naming the cell and the rule."""

from __future__ import annotations

import pytest

from harness.evaluate.runner import Runner
from harness.load import Matrix
from harness.targets.mutants import MUTANTS, get_mutant
from harness.targets.native import NativeTarget

#: The mutants of this project's kernels (vLLM's are checked in tests/vllm).
NATIVE = [m for m in MUTANTS if m.target == "nvfp4-matrix"]

# mutant -> text the witness cell's failure report must contain (beyond the cell id and the rule)
DETAILS = {
    "no-batch-invariant": [
        "expected : backend triton by rule batch_invariant",
        "actual   : backend flashinfer-cutlass by rule auto",
    ],
    "swapped-fbgemm-ct": [
        "expected : backend fbgemm by rule use_fbgemm",
        "actual   : backend emulation by rule ct_emulations",
    ],
    "sm100-as-ge": [
        "actual   : backend flashinfer-trtllm by rule gemm_backend",
        "support rule of flashinfer-trtllm at ",
        "cuda, family sm_10x, CUDA >= 12.8, packages flashinfer",
        "flashinfer-trtllm expected unsupported, got selected",
    ],
    "flashinfer-import-only": [
        "expected : backend emulation by rule auto",
        "actual   : backend flashinfer-cutlass by rule auto",
        "support rule of flashinfer-cutlass at ",
        "family sm_10x or sm_12x",
    ],
    "forced-falls-back": [
        "expected : error by rule use_fbgemm: Forced NVFP4 kernel FbgemmNvFp4LinearKernel is not supported",
        "actual   : backend emulation by rule auto",
    ],
}


def test_every_mutant_has_a_check():
    assert set(DETAILS) == {m.name for m in NATIVE}


@pytest.mark.parametrize("mutant", NATIVE, ids=lambda m: m.name)
def test_mutant_is_caught_with_cell_and_rule(shipped: Matrix, mutant):
    result = Runner(shipped, mutant.make_target()).run()
    assert not result.ok, f"mutant {mutant.name} survived the matrix"
    cell_id, rule = mutant.witness
    failures = [r for r in result.failures if r.cell.id == cell_id]
    assert failures, (
        f"{mutant.name}: {cell_id} did not fail (first failure: {result.failures[0].cell.id})"
    )
    report = failures[0].report()
    assert report.startswith(f"MISMATCH {cell_id}  [")
    assert f"rule     : precedence rule {rule} at " in report
    for text in DETAILS[mutant.name]:
        assert text in report, f"{mutant.name}: {text!r} missing from\n{report}"
    assert "decision record:" in report


def test_mutants_leave_the_real_selection_untouched(shipped: Matrix):
    from kernels.linear import select
    from kernels.linear.registry import NVFP4_BACKENDS

    table, registry = select.PRECEDENCE, dict(NVFP4_BACKENDS)
    for mutant in NATIVE:
        Runner(shipped, mutant.make_target()).run(Runner(shipped).cells()[:200])
    assert select.PRECEDENCE is table and NVFP4_BACKENDS == registry
    assert Runner(shipped).run(Runner(shipped).cells()[:200]).ok


def test_unknown_mutant_name():
    with pytest.raises(KeyError, match="known: no-batch-invariant"):
        get_mutant("nope")


def test_a_mutant_of_another_target_is_refused_for_this_one():
    with pytest.raises(KeyError, match="breaks target vllm, not nvfp4-matrix"):
        get_mutant("vllm-39129", "nvfp4-matrix")


def test_a_mutant_target_says_what_it_is():
    target = get_mutant("no-batch-invariant").make_target()
    assert isinstance(target, NativeTarget) and not target.real
    assert target.describe() == "nvfp4-matrix (mutant no-batch-invariant)"
