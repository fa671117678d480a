"""Proof that the matrix can fail: every known bug class is caught, naming the cell and the rule."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.evaluate.session import Session
from harness.load import Matrix
from harness.targets.project import ProjectTarget

#: The mutants of this project's kernels (vLLM's are checked in tests/harness/targets/vllm).
NATIVE = list(ProjectTarget().mutants())

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
    "reads-process-environment": [
        "expected : backend flashinfer-cutlass by rule auto",
        "the selection read os.environ, which holds decoy values while cells run",
    ],
}


def test_every_mutant_has_a_check():
    assert set(DETAILS) == {m.name for m in NATIVE}


@pytest.mark.parametrize("mutant", NATIVE, ids=lambda m: m.name)
def test_mutant_is_caught_with_cell_and_rule(shipped: Matrix, mutant):
    result = Session(shipped, ProjectTarget().mutant(mutant.name)).run()
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
    if failures[0].actual.has_record:  # an environment refused has no decision record
        assert "decision record:" in report


def test_mutants_leave_the_real_selection_untouched(shipped: Matrix):
    from kernels.linear import select
    from kernels.linear.registry import NVFP4_BACKENDS

    table, registry = select.PRECEDENCE, dict(NVFP4_BACKENDS)
    for mutant in NATIVE:
        Session(shipped, ProjectTarget().mutant(mutant.name)).run(Session(shipped).cells()[:200])
    assert select.PRECEDENCE is table and NVFP4_BACKENDS == registry
    assert Session(shipped).run(Session(shipped).cells()[:200]).ok


def test_unknown_mutant_name():
    with pytest.raises(UsageError, match="unknown mutant of target kernels 'nope'"):
        ProjectTarget().mutant("nope")


def test_a_mutant_of_another_target_is_refused_for_this_one():
    with pytest.raises(UsageError, match="'vllm-39129'"):
        ProjectTarget().mutant("vllm-39129")


def test_a_mutant_target_says_what_it_is():
    target = ProjectTarget().mutant("no-batch-invariant")
    assert isinstance(target, ProjectTarget) and not target.real
    assert target.describe() == "kernels (mutant no-batch-invariant)"
