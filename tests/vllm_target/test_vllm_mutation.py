"""The vLLM mutation lane (mutation/vllm_lane.py) on the installed vLLM release.

Applying a mutant and killing it need vLLM only (the vllm-* lanes run these);
generating mutants needs cosmic-ray too (the mutation-vllm-* lanes run all).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from pathlib import Path

import pytest

from harness.evaluate.runner import Runner
from harness.models import KnownFailure

ROOT = Path(__file__).resolve().parents[2]
BI_TEST = "if envs.VLLM_BATCH_INVARIANT:"


sys.path.insert(0, str(ROOT / "mutation"))
import vllm_lane as vlane  # noqa: E402  (mutation/vllm_lane.py, a script beside lane.py)


@pytest.fixture(scope="module")
def kernels(target):
    return importlib.import_module(vlane.KERNELS_MODULE)


@pytest.fixture(scope="module")
def source(target):
    path, _ = vlane.installed_file()
    return path.read_text()


def _stage(target, kernels, runner, text: str) -> str | None:
    """The lane's kill stage, in process, for the module text ``text``."""
    path, _ = vlane.installed_file()
    functions = vlane.compile_functions(text, str(path), [vlane.SELECTION_FUNCTION], vars(kernels))
    with vlane.applied(target.runtime, kernels, functions):
        return vlane.matrix_stage(runner)


def test_the_lane_mutates_the_function_the_runtime_calls(target, kernels) -> None:
    path, name = vlane.installed_file()
    real = target.runtime.selection_function
    assert Path(inspect.getsourcefile(real)) == path
    assert name == vlane.KERNELS_MODULE.replace(".", "/") + "/__init__.py"
    (chosen,) = vlane.scope_functions(path.read_text(), [vlane.SELECTION_FUNCTION], name)
    assert chosen.lineno == real.__code__.co_firstlineno


def test_the_unmutated_function_compiled_like_a_mutant_passes(target, kernels, matrix, source) -> None:
    runner = Runner(matrix, target)
    assert _stage(target, kernels, runner, source) is None
    assert target.runtime.selection_function is kernels.init_nvfp4_linear_kernel


def test_the_batch_invariant_branch_skipped_is_killed_naming_the_variable(
    target, kernels, matrix, source
) -> None:
    # the 39129-style regression as text: the branch's test made false, the rest as it is
    assert source.count(BI_TEST) == 1
    detail = _stage(target, kernels, Runner(matrix, target), source.replace(BI_TEST, "if False:"))
    assert detail is not None and detail.startswith("cell ")
    assert "VLLM_BATCH_INVARIANT" in detail.split(": ")[0]  # the failing cell's id names it
    # and the runtime is back to vLLM's own function
    assert Runner(matrix, target).run().ok


def test_a_known_failure_no_cell_shows_any_more_kills(target, kernels, matrix, source) -> None:
    extra = KnownFailure(cells="b200-*", got="backend fbgemm", reason="x", upstream="y")
    pinned = dataclasses.replace(matrix, known_failures=[*matrix.known_failures, extra])
    pinned._origins = dict(matrix._origins)
    pinned._origins[("known_failure", str(len(matrix.known_failures)))] = matrix._origins[("case", "b200-default")]
    detail = _stage(target, kernels, Runner(pinned, target), source)
    assert detail is not None and detail.startswith("stale known failure: known failure at ")
    assert "is shown by no cell any more" in detail


def test_generated_mutants_and_the_release_lines_list_agree(target) -> None:
    pytest.importorskip("cosmic_ray")
    lane = vlane.lane
    config = lane.load_config()
    subj = vlane.subject(config)
    mutants = vlane.generate(config, subj)
    real = target.runtime.selection_function
    first = real.__code__.co_firstlineno
    last = first + len(inspect.getsource(real).splitlines()) - 1
    assert mutants and all(first <= m.line <= last for m in mutants)
    assert any(m.operator == "core/AddNot" and m.before == BI_TEST for m in mutants)
    equivalent, accepted = vlane.load_listed(vlane.equivalents_path(target.runtime.line))
    keys = {m.key for m in mutants}
    for entry in [*equivalent, *accepted]:
        assert entry.key in keys, f"{entry.source}:{entry.line} matches no generated mutant"
