"""The vLLM mutation lane's own logic (:mod:`harness.mutation.vllm`), on a tiny fake vLLM.

A package written to a temporary folder stands in for vLLM: a module with an
``init_nvfp4_linear_kernel`` that reads module globals, a helper and a
module-level table. Everything but mutant generation needs neither vLLM nor
cosmic-ray; the generation test runs where cosmic-ray is installed (the
``mutation-vllm-*`` tox lanes run this file too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.mutation import vllm as vlane
from harness.mutation.config import LaneError, checkout, load_config
from harness.mutation.equivalents import load_listed
from harness.mutation.kill import forked
from harness.mutation.mutants import Mutant
from harness.mutation.score import markdown, score, summary_text
from harness.targets.vllm.recompile import RecompileError, compile_functions
from tests.support.paths import ROOT

#: The function the shipped scope names (the release lines' facts name it too).
SELECTION = "init_nvfp4_linear_kernel"

FAKE = '''\
"""A stand-in for vLLM's kernels module."""
from __future__ import annotations

ORDER = ["Fast", "Slow"]
FORCED: str | None = None


def _supported(name: str) -> bool:
    return name != "Fast"


def init_nvfp4_linear_kernel(use_a16: bool = False) -> str:
    if FORCED is not None:
        return FORCED
    for name in ORDER:
        if not _supported(name):
            continue
        return name + ("-a16" if use_a16 else "")
    raise ValueError("nothing fits")


def unrelated(x: int) -> int:
    return x + 1
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``fakevllm.model.linear`` on ``sys.path``, imported; removed afterwards."""
    package = tmp_path / "site" / "fakevllm"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text("")
    (package / "model" / "linear.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module("fakevllm.model.linear")
    yield module
    for name in [n for n in sys.modules if n == "fakevllm" or n.startswith("fakevllm.")]:
        del sys.modules[name]


def test_the_installed_file_is_found_without_importing_the_package(fake) -> None:
    path, name = vlane.installed_file("fakevllm.model.linear")
    assert path == Path(fake.__file__) and name == "fakevllm/model/linear.py"
    with pytest.raises(LaneError, match="fakevllm .* has no module fakevllm.model.gone"):
        vlane.installed_file("fakevllm.model.gone")
    with pytest.raises(LaneError, match="nosuchvllm is not installed here"):
        vlane.installed_file("nosuchvllm.x")


def test_the_scope_names_top_level_functions_only() -> None:
    (chosen,) = vlane.scope_functions(FAKE, ["init_nvfp4_linear_kernel"], "f.py")
    assert chosen.name == "init_nvfp4_linear_kernel" and chosen.lineno == 12
    assert [f.name for f in vlane.scope_functions(FAKE, ["_*", "init_*"], "f.py")] == [
        "_supported", "init_nvfp4_linear_kernel"]
    # a module-level table is no function: swapping it would mean re-running module code
    with pytest.raises(LaneError, match="f.py: .*scope 'ORDER' names no top-level function"):
        vlane.scope_functions(FAKE, ["init_nvfp4_linear_kernel", "ORDER"], "f.py")


def test_the_scoped_source_keeps_every_line_number_and_comments_out_the_rest() -> None:
    functions = vlane.scope_functions(FAKE, ["init_nvfp4_linear_kernel"], "f.py")
    text = vlane.scoped_source(FAKE, functions)
    lines, original = text.splitlines(), FAKE.splitlines()
    assert len(lines) == len(original)
    assert lines[1] == "from __future__ import annotations"  # annotations stay lazy
    assert lines[11:19] == original[11:19]  # the function, line for line
    assert [lines[n] for n in (0, 3, 7, 21, 22)] == ["# 1", "# 4", "# 8", "# 22", "# 23"]
    assert "def unrelated" not in text and "ORDER = " not in text


def _mutated(old: str, new: str) -> str:
    assert FAKE.count(old) == 1
    return FAKE.replace(old, new)


def test_a_compiled_mutant_runs_against_the_module_which_stays_unchanged(fake) -> None:
    text = _mutated("if not _supported(name):", "if _supported(name):")
    (name, func), = compile_functions(
        text, fake.__file__, ["init_nvfp4_linear_kernel"], vars(fake)).items()
    assert name == "init_nvfp4_linear_kernel"
    assert fake.init_nvfp4_linear_kernel() == "Slow"  # the module's own function
    assert func() == "Fast"  # the mutant, reading the module's ORDER and _supported
    fake.FORCED = "Forced"  # globals are the module's, live
    assert func() == "Forced"
    assert func.__code__.co_filename == fake.__file__
    assert func.__code__.co_firstlineno == 12


def test_a_mutated_default_is_the_mutants_own(fake) -> None:
    text = _mutated("use_a16: bool = False", "use_a16: bool = True")
    func = compile_functions(text, "f.py", ["init_nvfp4_linear_kernel"], vars(fake))[
        "init_nvfp4_linear_kernel"]
    assert func() == "Slow-a16" and fake.init_nvfp4_linear_kernel() == "Slow"


def test_compiling_a_name_the_text_lacks_is_refused(fake) -> None:
    with pytest.raises(RecompileError, match="f.py: no function gone"):
        compile_functions(FAKE, "f.py", ["gone"], vars(fake))


class FakeRuntime:
    """The two members of VllmRuntime the lane uses."""

    def __init__(self, module) -> None:
        self.facts = SimpleNamespace(entry=SimpleNamespace(function=SELECTION))
        self.selection_function = module.init_nvfp4_linear_kernel
        self.current = self.selection_function

    @contextlib.contextmanager
    def selection_replaced(self, func) -> Iterator[None]:
        saved, self.current = self.current, func
        try:
            yield
        finally:
            self.current = saved


def test_applied_swaps_the_selection_through_the_runtime_and_helpers_in_the_module(fake) -> None:
    rt = FakeRuntime(fake)
    text = _mutated('return name != "Fast"', 'return name == "Fast"')
    functions = compile_functions(
        text, "f.py", ["_supported", "init_nvfp4_linear_kernel"], vars(fake))
    with vlane.applied(rt, fake, functions):
        assert rt.current is functions["init_nvfp4_linear_kernel"]
        assert fake._supported is functions["_supported"]
        assert fake.init_nvfp4_linear_kernel is rt.selection_function  # never the module's
        assert rt.current() == "Fast"
    assert rt.current is rt.selection_function
    assert fake._supported("Fast") is False  # restored


@dataclasses.dataclass
class FakeResult:
    failures: list
    stale_known: list

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stale_known


class FakeSession:
    """Stands in for the Session: checks one "cell", the selection's answer against 'Slow',
    and a known failure ("nothing is ever Forced") that only the real function shows."""

    def __init__(self, rt: FakeRuntime, module) -> None:
        self.rt, self.module = rt, module

    def run(self, fail_fast: bool = False) -> FakeResult:
        assert fail_fast
        try:
            got = self.rt.current()
        except Exception as exc:  # a crash is the cell's outcome
            got = f"error {exc}"
        failures = []
        if got not in ("Slow", "Slow-a16"):
            cell = SimpleNamespace(nodeid="fake::h100-default")
            failures.append(SimpleNamespace(cell=cell, problems=[f"expected Slow, got {got}\nmore"]))
        stale = [] if self.rt.current.__defaults__ == (False,) else [
            "known failure at x.yaml:3 is shown by no cell any more"]
        return FakeResult(failures, stale)


def _kill(fake, tmp_path: Path, text: str) -> tuple[str, str]:
    rt = FakeRuntime(fake)
    session = FakeSession(rt, fake)

    def build():
        return compile_functions(text, "f.py", ["init_nvfp4_linear_kernel"], vars(fake))

    return forked(lambda rf: vlane.kill_with(build, rt, fake, session, rf), 30.0, tmp_path)


def test_a_forked_kill_tells_survivors_mismatches_stale_known_failures_and_crashes(
    fake, tmp_path: Path
) -> None:
    assert _kill(fake, tmp_path, FAKE) == ("survived", "")
    verdict, detail = _kill(fake, tmp_path, _mutated("if not _supported(name):", "if _supported(name):"))
    assert (verdict, detail) == ("matrix", "cell fake::h100-default: expected Slow, got Fast")
    # a known failure no cell shows any more is a kill: the mutant changed pinned behaviour
    verdict, detail = _kill(fake, tmp_path, _mutated("use_a16: bool = False", "use_a16: bool = True"))
    assert verdict == "matrix"
    assert detail == "stale known failure: known failure at x.yaml:3 is shown by no cell any more"
    # a mutant that breaks its own definition (a default that raises) is killed, not a lane error
    verdict, detail = _kill(fake, tmp_path, _mutated("use_a16: bool = False", "use_a16: bool = 1 // 0"))
    assert (verdict, detail) == ("matrix", "matrix crashed: ZeroDivisionError: integer division or modulo by zero")


def test_a_hanging_mutant_is_killed_by_the_time_limit(fake, tmp_path: Path) -> None:
    rt = FakeRuntime(fake)
    text = _mutated("    if FORCED is not None:", "    while True:\n        pass\n    if FORCED is not None:")
    session = FakeSession(rt, fake)

    def build():
        return compile_functions(text, "f.py", ["init_nvfp4_linear_kernel"], vars(fake))

    verdict, detail = forked(lambda rf: vlane.kill_with(build, rt, fake, session, rf), 1.0, tmp_path)
    assert (verdict, detail) == ("matrix", "timed out after 1 s")


ENTRY = "{file: f.py, unit: init_nvfp4_linear_kernel, operator: core/Op, before: a, after: %s, reason: r}"


def test_a_release_lines_list_has_both_sections_and_no_entry_twice(tmp_path: Path) -> None:
    path = tmp_path / "vllm-0.99-equivalents.yaml"
    with pytest.raises(LaneError, match="vllm-0.99-equivalents.yaml is missing"):
        load_listed(path)
    path.write_text(f"equivalent:\n  - {ENTRY % 'b'}\naccepted:\n  - {ENTRY % 'c'}\n")
    (eq,), (acc,) = load_listed(path)
    assert (eq.after, acc.after, acc.source, acc.line) == ("b", "c", path.name, 4)
    path.write_text(f"equivalent:\n  - {ENTRY % 'b'}\naccepted:\n  - {ENTRY % 'b'}\n")
    with pytest.raises(LaneError, match="listed as equivalent and as accepted"):
        load_listed(path)
    path.write_text("accepted:\n  - {file: f.py, unit: u}\n")
    with pytest.raises(LaneError, match=":2: an accepted survivor needs file, unit"):
        load_listed(path)


def _result(after: str, verdict: str, line: int = 1) -> dict:
    m = Mutant("f.py", line, "init_nvfp4_linear_kernel", "core/Op", 0, "a", after)
    return {**dataclasses.asdict(m), "key": m.key, "verdict": verdict, "detail": "cell x"}


def test_accepted_survivors_count_but_do_not_fail_and_cannot_rot(tmp_path: Path) -> None:
    path = tmp_path / "vllm-0.99-equivalents.yaml"
    path.write_text(f"equivalent:\n  - {ENTRY % 'b'}\naccepted:\n  - {ENTRY % 'c'}\n  - {ENTRY % 'z'}\n")
    equivalent, accepted = load_listed(path)
    results = [_result("b", "survived"), _result("c", "survived"), _result("d", "matrix")]
    s = score(results, equivalent, False, accepted)
    assert s.ok and (s.total, s.counted, s.by_matrix, len(s.accepted)) == (3, 2, 1, 1)
    text = summary_text(s, "every mutant", 3.0, title="vLLM 0.99 mutation lane",
                             listed_in="mutation/vllm-0.99-equivalents.yaml", tests_stage=False)
    assert text.splitlines()[:3] == [
        "vLLM 0.99 mutation lane (every mutant): 3 mutants, 1 equivalent, 2 counted",
        "  matrix alone kills      : 1/2 (50.0%)",
        "  accepted survivors      : 1",
    ]
    assert "unit tests" not in text
    md = markdown(s, results, "every mutant", title="vLLM 0.99 mutation lane", tests_stage=False)
    assert "| 3 | 1 | 2 | 1 (50.0%) | 1 | 0 |" in md
    assert "## Accepted survivors\n\n- `f.py:1: [init_nvfp4_linear_kernel] core/Op: 'a' -> 'c'`: r" in md
    # complete: the entry no mutant matches is stale; a killed accepted entry is too
    complete = score(results, equivalent, True, accepted)
    assert not complete.ok
    assert complete.stale == [f"{path.name}:5: matches no mutant the tool generates "
                              "(f.py [init_nvfp4_linear_kernel] core/Op): remove or update it"]
    killed = score([_result("c", "matrix")], [], False, accepted)
    assert killed.stale == [f"{path.name}:4: listed as accepted but killed by the matrix "
                            "(cell x): remove the entry"]
    unlisted = score([_result("q", "survived", line=9)], equivalent, False, accepted)
    assert not unlisted.ok and [r["line"] for r in unlisted.survivors] == [9]


def test_a_real_regression_that_survives_fails_the_lane() -> None:
    killed = {"name": "r1", "title": "t", "verdict": "matrix", "detail": "cell b200-x: ..."}
    shape = {"name": "r2", "title": "t", "verdict": "not applicable", "detail": "no branch"}
    lines, ok = vlane.regression_lines([killed, shape])
    assert ok and lines == ["regression r1: killed: cell b200-x: ...",
                            "regression r2: not applicable (no branch)"]
    lines, ok = vlane.regression_lines([{**killed, "verdict": "survived"}])
    assert not ok and lines == ["regression r1: SURVIVED (t)"]


def test_the_shipped_configuration_and_lists() -> None:
    here = checkout(ROOT)
    config = load_config(here.config)
    assert config["mutation"]["vllm"]["scope"] == [SELECTION]
    lines = sorted(p.stem for p in (ROOT / "matrix" / "vllm").glob("*.yaml"))
    assert lines
    for line in lines:  # every release line has its list, and every entry its reason
        equivalent, accepted = load_listed(vlane.equivalents_path(here, line))
        for entry in [*equivalent, *accepted]:
            assert entry.unit == SELECTION
            assert entry.file == "vllm/model_executor/kernels/linear/__init__.py"


def test_generation_covers_the_scoped_function_only(fake) -> None:
    pytest.importorskip("cosmic_ray")
    config = {"cosmic-ray": {}, "mutation": {"vllm": {"scope": ["init_nvfp4_linear_kernel"]}}}
    path, name = vlane.installed_file("fakevllm.model.linear")
    functions = vlane.scope_functions(FAKE, ["init_nvfp4_linear_kernel"], name)
    subj = vlane.Subject(path, name, vlane.scoped_source(FAKE, functions), ("init_nvfp4_linear_kernel",))
    mutants = vlane.generate(config, subj)
    assert mutants and all(12 <= m.line <= 19 and m.unit == "init_nvfp4_linear_kernel" for m in mutants)
    described = [m.describe() for m in mutants]
    assert ("fakevllm/model/linear.py:16: [init_nvfp4_linear_kernel] core/ReplaceUnaryOperator_Delete_Not: "
            "'if not _supported(name):' -> 'if  _supported(name):'") in described
    assert [m.line for m in mutants] == sorted(m.line for m in mutants)
    # each mutant's text compiles to a function that differs from the original's code
    original = compile_functions(FAKE, name, subj.names, vars(fake))["init_nvfp4_linear_kernel"]
    for m in mutants:
        func = compile_functions(vlane.mutated_text(subj, m), name, subj.names, vars(fake))[
            "init_nvfp4_linear_kernel"]
        assert (func.__code__.co_code, func.__code__.co_consts, func.__defaults__) != (
            original.__code__.co_code, original.__code__.co_consts, original.__defaults__), m.describe()
