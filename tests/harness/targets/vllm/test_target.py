"""vLLM's own init_nvfp4_linear_kernel, checked through the matrix of its release line."""

from __future__ import annotations

import dataclasses
import json

from harness.cli import main
from harness.evaluate.session import Session
from harness.models import KnownFailure
from harness.targets.vllm import VllmTarget

BI = "VLLM_BATCH_INVARIANT"


def _golden(matrix, case_id):
    return next(c for c in matrix.cases if c.id == case_id)


def test_the_release_line_matrix_passes(result, target):
    assert result.ok, "\n\n".join(r.report() for r in result.failures[:3])
    assert len(result.results) > 1000
    print(f"{target.describe()}: {result.verdict()}")


def test_known_failures_are_reported_not_hidden(result, matrix):
    assert matrix.known_failures, "every release line so far has findings"
    assert result.known
    for r in result.known:
        assert r.problems and r.known is not None and r.known.upstream
        assert f"known    : {r.known.reason}" in r.report()


def test_the_39129_regression_is_caught_naming_batch_invariance(matrix):
    result = Session(matrix, VllmTarget().mutant("vllm-39129")).run()
    assert not result.ok
    assert result.failures, "the mutant must fail cells that are not known failures"
    for failure in result.failures:
        env = dict(failure.cell.env)
        assert BI in env and env[BI] != "0", failure.cell.id
    witness = next(r for r in result.failures if r.cell.id == f"b200-{BI}=1")
    report = witness.report()
    assert f"precedence rule batch_invariant at {matrix.files[0].name}" in report
    assert f"({BI})" in report
    expected = _golden(matrix, "b200-batch-invariant").expect.backend
    assert f"expected : backend {expected} by rule batch_invariant" in report
    assert "compared : outcome only" in report


def test_explain_answers_one_cell_with_vllms_class_names(matrix, capsys):
    expected = matrix.backends[_golden(matrix, "b200-batch-invariant").expect.backend].kernel
    code = main(["explain", "--target", "vllm", "--gpu", "b200", "--env", f"{BI}=1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["kernel"] == expected and out["error"] is None
    assert out["target"].startswith("vllm ")
    assert out["oracle"]["agrees"] is True
    assert out["decision_record"] is False


def test_explain_mock_takes_a_backend_away(matrix, capsys):
    default = _golden(matrix, "b200-default").expect.backend
    assert main(["explain", "--target", "vllm", "--gpu", "b200", "--mock", f"{default}=no:gone", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kernel"] != matrix.backends[default].kernel
    assert out["mocks"] == {default: {"supported": False, "reason": "gone"}}
    assert out["oracle"]["agrees"] is True


def test_explain_error_is_vllms_message(capsys):
    code = main(["explain", "--target", "vllm", "--gpu", "cpu", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["kernel"] is None
    assert out["error"].startswith("Failed to find a kernel that can implement the NVFP4 linear layer")


def test_a_known_failure_no_cell_shows_fails_the_run(matrix, target):
    # b200 is an sm_100 machine: FBGEMM there is right, so no b200 cell shows this "finding".
    fixed = dataclasses.replace(
        matrix,
        known_failures=[*matrix.known_failures, KnownFailure(cells="b200-*", got="backend fbgemm", reason="x", upstream="y")],
    )
    fixed._origins = dict(matrix._origins)
    fixed._origins[("known_failure", str(len(matrix.known_failures)))] = matrix._origins[("case", "b200-default")]
    result = Session(fixed, target).run()
    assert not result.ok and not result.failures
    (stale,) = result.stale_known
    assert "is shown by no cell any more: the code was fixed or the entry no longer matches" in stale


def test_the_process_environment_never_leaks_into_vllm(matrix, target, monkeypatch):
    monkeypatch.setenv(BI, "1")
    monkeypatch.setenv("VLLM_DISABLED_KERNELS", "EmulationNvFp4LinearKernel")
    runner = Session(matrix, target)
    cells = [c for c in runner.cells() if c.group == "cases"]
    result = runner.run(cells)
    assert not result.failures, result.failures[0].report()


def _spied(target, matrix, layer, profile="b200", env=None, packages=None):
    """Evaluate one query with the selection function wrapped: (outcome, the calls' arguments)."""
    from harness.targets.protocol import Query

    facts = target.facts_of(matrix)[0]
    rt = target.runtime(facts)
    calls = []
    real = rt.selection_function

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    platform = matrix.profile(profile).platform(packages)
    with rt.selection_replaced(spy):
        outcome = target.evaluate(Query(platform, env or {}, layer), matrix)
    return outcome, calls


def test_a_w4a4_layer_is_asked_without_arguments_so_the_default_counts(target, matrix):
    outcome, calls = _spied(target, matrix, matrix.layer())
    assert calls == [((), {})]
    assert outcome.kind == "backend"


def test_a_weight_only_layer_is_asked_with_use_a16(target, matrix, runtime):
    from harness.models import LayerSpec

    layer = LayerSpec(in_features=4096, out_features=4096, weight_only=True)
    if not runtime.accepts_use_a16:
        # a release without the parameter has no weight-only path: the matrix is refused
        problems = target.check_matrix(_with_layer(matrix, "w4a16", layer))
        assert any("takes no use_a16" in p.message for p in problems), problems
        outcome, calls = _spied(target, matrix, layer)
        assert outcome.kind == "crash" and "has no use_a16 parameter" in (outcome.error or "")
        assert calls == []
        return
    assert not [p for p in target.check_matrix(matrix) if "use_a16" in p.message]
    outcome, calls = _spied(target, matrix, layer)
    assert calls == [((), {"use_a16": True})]
    assert outcome.kind == "backend" and "W4A16" in outcome.kernel
    assert matrix.backends[outcome.backend].implements.weight_only


def _with_layer(matrix, layer_id, layer):
    changed = dataclasses.replace(matrix, layers={**matrix.layers, layer_id: layer})
    changed._origins = dict(matrix._origins)
    changed._origins[("layer", layer_id)] = matrix._origins[("layer", matrix.default_layer_id)]
    return changed


def test_vllms_log_lines_are_the_outcomes_notes_with_their_levels(target, matrix):
    import logging

    # nothing but the emulation fits a V100 without the optional libraries: vLLM warns
    outcome, _ = _spied(target, matrix, matrix.layer(), profile="v100", packages=())
    assert outcome.backend == "emulation"
    assert outcome.logged is not None
    assert [f"{logging.getLevelName(level)}: {text}" for level, text in outcome.logged] == list(
        outcome.messages
    )
    levels = dict((text.split(" ")[0], level) for level, text in outcome.logged)
    assert levels["NVFP4"] == logging.WARNING  # "NVFP4 linear falling back to ... emulation"
    assert levels["Using"] == logging.INFO  # "Using EmulationNvFp4LinearKernel for NVFP4 GEMM"
