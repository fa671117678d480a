"""The vLLM mutation lane (:mod:`harness.mutation.vllm`) on the installed vLLM release.

Applying a mutant and killing it need vLLM only (the vllm-* lanes run these);
generating mutants needs cosmic-ray too (the mutation-vllm-* lanes run all).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from harness.evaluate.session import Session
from harness.models import KnownFailure
from harness.mutation import vllm as vlane
from harness.mutation.config import checkout, load_config
from harness.mutation.equivalents import load_listed
from harness.targets.vllm.recompile import compile_functions
from tests.support.paths import ROOT

BI_TEST = "if envs.VLLM_BATCH_INVARIANT:"


@pytest.fixture(scope="module")
def kernels(runtime):
    return runtime.kernels_module


@pytest.fixture(scope="module")
def entry(runtime):
    """The module and function the release line's facts name."""
    return runtime.facts.entry


@pytest.fixture(scope="module")
def source(entry):
    path, _ = vlane.installed_file(entry.module)
    return path.read_text()


def _stage(runtime, kernels, session, text: str) -> str | None:
    """The lane's kill stage, in process, for the module text ``text``."""
    entry = runtime.facts.entry
    path, _ = vlane.installed_file(entry.module)
    functions = compile_functions(text, str(path), [entry.function], vars(kernels))
    with vlane.applied(runtime, kernels, functions):
        return vlane.matrix_stage(session)


def test_the_lane_mutates_the_function_the_runtime_calls(runtime, entry) -> None:
    path, name = vlane.installed_file(entry.module)
    real = runtime.selection_function
    assert Path(inspect.getsourcefile(real)) == path
    assert name == entry.module.replace(".", "/") + "/__init__.py"
    (chosen,) = vlane.scope_functions(path.read_text(), [entry.function], name)
    assert chosen.lineno == real.__code__.co_firstlineno


def test_the_unmutated_function_compiled_like_a_mutant_passes(
    target, runtime, kernels, matrix, source
) -> None:
    assert _stage(runtime, kernels, Session(matrix, target), source) is None
    assert runtime.selection_function is kernels.init_nvfp4_linear_kernel


def test_the_batch_invariant_branch_skipped_is_killed_naming_the_variable(
    target, runtime, kernels, matrix, source
) -> None:
    # the 39129-style regression as text: the branch's test made false, the rest as it is
    assert source.count(BI_TEST) == 1
    detail = _stage(runtime, kernels, Session(matrix, target), source.replace(BI_TEST, "if False:"))
    assert detail is not None and detail.startswith("cell ")
    assert "VLLM_BATCH_INVARIANT" in detail.split(": ")[0]  # the failing cell's id names it
    # and the runtime is back to vLLM's own function
    assert Session(matrix, target).run().ok


def test_a_known_failure_no_cell_shows_any_more_kills(
    target, runtime, kernels, matrix, source
) -> None:
    extra = KnownFailure(cells="b200-*", got="backend fbgemm", reason="x", upstream="y")
    pinned = dataclasses.replace(matrix, known_failures=[*matrix.known_failures, extra])
    pinned._origins = dict(matrix._origins)
    pinned._origins[("known_failure", str(len(matrix.known_failures)))] = matrix._origins[("case", "b200-default")]
    detail = _stage(runtime, kernels, Session(pinned, target), source)
    assert detail is not None and detail.startswith("stale known failure: known failure at ")
    assert "is shown by no cell any more" in detail


def test_generated_mutants_and_the_release_lines_list_agree(runtime, entry, matrix) -> None:
    pytest.importorskip("cosmic_ray")
    here = checkout(ROOT)
    config = load_config(here.config)
    subj = vlane.subject(config, entry.module)
    mutants = vlane.generate(config, subj)
    real = runtime.selection_function
    first = real.__code__.co_firstlineno
    last = first + len(inspect.getsource(real).splitlines()) - 1
    assert mutants and all(first <= m.line <= last for m in mutants)
    assert any(m.operator == "core/AddNot" and m.before == BI_TEST for m in mutants)
    line = Path(matrix.files[0].name).stem
    equivalent, accepted = load_listed(vlane.equivalents_path(here, line))
    keys = {m.key for m in mutants}
    for entry in [*equivalent, *accepted]:
        assert entry.key in keys, f"{entry.source}:{entry.line} matches no generated mutant"
