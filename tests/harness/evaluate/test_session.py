"""The shipped matrix passes, fast, in a clean environment; broken selections fail."""

from __future__ import annotations

import os

import pytest

from harness.evaluate.cells import Cell
from harness.evaluate.session import Session
from harness.load import Matrix
from harness.targets.project import ProjectTarget


def test_shipped_matrix_passes(shipped_result):
    assert shipped_result.ok, "\n\n".join(r.report() for r in shipped_result.failures[:3])
    assert len(shipped_result.results) > 5000
    groups = shipped_result.groups()
    assert set(groups) == {"env-cross", "layers", "precedence-mocked", "cases", "detection"}


def test_every_shipped_cell_passes(shipped: Matrix):
    # How long a run takes is measured by `nvfp4-matrix run` (its verdict line), not here:
    # a timed unit test fails on a loaded machine and proves nothing about speed.
    runner = Session(shipped)
    result = runner.run()
    assert len(result.results) == len(runner.cells()) > 5000
    assert result.ok, result.failures[0].report() if result.failures else result.stale_known


def test_the_callers_environment_never_leaks_in(shipped: Matrix, monkeypatch):
    for name, value in {
        "VLLM_BATCH_INVARIANT": "1",
        "VLLM_USE_FBGEMM": "nonsense",
        "VLLM_NVFP4_GEMM_BACKEND": "cublaslt",
    }.items():
        monkeypatch.setenv(name, value)
    runner = Session(shipped)
    cells = [c for c in runner.cells() if c.group == "cases"]
    result = runner.run(cells)  # golden cases also go through init_nvfp4_linear_kernel (os.environ)
    assert result.ok, result.failures[0].report()
    assert os.environ["VLLM_USE_FBGEMM"] == "nonsense"  # restored afterwards


def test_init_entry_point_agrees_on_every_cell(shipped: Matrix):
    runner = Session(shipped, ProjectTarget(entry="init"))
    result = runner.run()
    assert result.ok, result.failures[0].report()


def test_a_selection_that_reads_os_environ_is_caught(shipped: Matrix):
    from kernels.linear.select import decide

    def reads_real_environment(config, platform=None, environ=None, backends=None):
        return decide(config, platform, None, backends)  # BUG: ignores the environ it was given

    runner = Session(shipped, ProjectTarget(select=reads_real_environment))
    cell = Cell("b200-bi", "t", "b200", (("VLLM_BATCH_INVARIANT", "1"),), shipped.default_layer_id)
    result = runner.run([cell])
    assert not result.ok
    # os.environ holds a decoy of every selection variable while cells run
    report = result.failures[0].report()
    assert "the selection read os.environ, which holds decoy values" in report
    assert "VLLM_BATCH_INVARIANT='harness-decoy-boolean' is not a boolean" in report


def test_a_crashing_selection_is_a_failure_not_an_abort(shipped: Matrix):
    def crashes(*args, **kwargs):
        raise KeyError("boom")

    runner = Session(shipped, ProjectTarget(select=crashes))
    cells = runner.cells()[:3]
    result = runner.run(cells)
    assert len(result.failures) == 3
    assert "the selection raised KeyError: 'boom'" in result.failures[0].report()


def test_golden_case_checks_the_oracle_too(shipped: Matrix):
    """A golden case that contradicts the declared rules is reported as a matrix bug."""
    from harness.models import GoldenExpect

    runner = Session(shipped)
    wrong = GoldenExpect(backend="cublaslt", rule="auto")
    cell = Cell("b200-wrong", "cases", "b200", (), shipped.default_layer_id, golden=wrong)
    result = runner.check(cell)
    assert not result.ok
    text = result.report()
    assert (
        "the matrix rules (oracle) predict backend flashinfer-cutlass by rule auto, but the golden case says backend cublaslt"
        in text
    )
    assert "golden: expected backend cublaslt, got backend flashinfer-cutlass" in text


def test_init_entry_refuses_a_mutant(shipped: Matrix):
    with pytest.raises(ValueError, match="real selection only"):
        Session(shipped, ProjectTarget(select=lambda *a, **k: None, entry="init"))


def test_real_logging_is_untouched_after_a_run(caplog):
    """The fake cells' log lines are silenced and forgotten: a real fallback still warns once."""
    import torch

    from harness.load import load_matrix
    from kernels.linear.config import NvFp4LinearConfig
    from kernels.linear.select import init_nvfp4_linear_kernel
    from tests.support.paths import SHIPPED

    matrix = load_matrix(SHIPPED)
    # A machine name no other test uses, so the warning text is new to this process.
    probe = matrix.profiles["cpu"].model_copy(update={"name": "harness-logging-probe"})
    probe._id = "cpu"
    matrix.profiles["cpu"] = probe
    runner = Session(matrix)
    with caplog.at_level("WARNING", logger="kernels.linear"):
        result = runner.run([c for c in runner.cells() if c.profile == "cpu" and c.env == ()])
        assert result.ok and not caplog.records
        init_nvfp4_linear_kernel(NvFp4LinearConfig(4096, 4096, torch.bfloat16), probe.platform(), {})
    assert any(
        "falling back to the slow emulation backend" in r.getMessage() for r in caplog.records
    )
