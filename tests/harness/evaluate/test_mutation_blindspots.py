"""The blind spots the mutation lane found, closed as classes (each with a selection it now catches).

* every support-rule boundary is crossed by a profile, and the loader says
  which one is not;
* the oracle owns every fact it checks (nothing from ``kernels.envs``);
* decoy selection variables sit in ``os.environ`` while cells run;
* messages are compared whole where they are the interface, and the error
  types are checked;
* the variables a decision consulted, and detection of the machine itself.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from harness.errors import MatrixError
from harness.evaluate.cells import Cell
from harness.evaluate.compare import compare
from harness.evaluate.session import Session, decoy_environment
from harness.load import Matrix, load_matrix
from harness.load.declared import uncrossed_boundaries
from harness.targets.project import ProjectTarget
from harness.targets.protocol import Outcome
from tests.support.paths import MATRIX_DIR, ROOT


def _without_profiles(tmp_path: Path, profiles: list[str]) -> Path:
    for name in ("gpus.yaml", "selection.yaml"):
        shutil.copy(MATRIX_DIR / name, tmp_path / name)
    gpus = tmp_path / "gpus.yaml"
    selection = tmp_path / "selection.yaml"
    for profile in profiles:
        text = gpus.read_text()
        start = text.index(f"\n  {profile}:\n")
        end = text.find("\n\n  ", start + 1)
        gpus.write_text(text[:start] + (text[end:] if end != -1 else "\n"))
        # golden cases of the removed profile go too
        cases = selection.read_text().split("\n\n")
        selection.write_text(
            "\n\n".join(c for c in cases if f"profile: {profile}\n" not in c + "\n")
        )
    return selection


def test_shipped_profiles_cross_every_rule_boundary(shipped: Matrix) -> None:
    assert uncrossed_boundaries(shipped) == []


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("thor", "is in the unlisted family sm_11x"),
        ("b200-cuda127", "is at 12.7 (just below)"),
        ("gb200,b200-torch27-flashinfer", "is at 12.8"),
        ("cpu-interpret-no-triton", "TRITON_INTERPRET=1) is without triton"),
        ("b200-torch27,b200-torch27-flashinfer", "whose torch lacks float4_e2m1fn_x2"),
    ],
)
def test_binding_names_an_uncrossed_boundary(tmp_path: Path, profile: str, message: str) -> None:
    with pytest.raises(MatrixError) as info:  # checked when the matrix is bound to its target
        Session(load_matrix([_without_profiles(tmp_path, profile.split(","))]))
    text = str(info.value)
    assert message in text, text
    assert re.search(r"selection\.yaml:\d+: backends\.[a-z-]+\.support\[\d\]\.", text)


def test_the_oracle_owns_its_facts() -> None:
    """Nothing in the oracle's stages imports the code under test's environment grammar."""
    for folder in ("harness/evaluate", "harness/rules"):
        for path in sorted((ROOT / folder).glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                bad = [n for n in names if n == "kernels.envs" or n.startswith("kernels.envs.")]
                bad += [n for n in names if n == "kernels" and isinstance(node, ast.ImportFrom)
                        and any(a.name == "envs" for a in node.names)]
                assert not bad, f"{path.relative_to(ROOT)}:{node.lineno} imports {bad}"
    for path in [ROOT / "harness/evaluate/oracle.py", *sorted((ROOT / "harness/rules").glob("*.py"))]:
        text = path.read_text()
        kernels_imports = re.findall(r"^\s*(?:from|import) (kernels[\w.]*)", text, re.M)
        assert set(kernels_imports) <= {"kernels.platform"}, (path.name, kernels_imports)


def test_decoys_cover_every_environment_variable(shipped: Matrix) -> None:
    decoys = decoy_environment(shipped, ProjectTarget().vocabulary)
    assert set(decoys) == {
        "VLLM_BATCH_INVARIANT",
        "VLLM_USE_FBGEMM",
        "VLLM_USE_NVFP4_CT_EMULATIONS",
        "VLLM_NVFP4_GEMM_BACKEND",
        "VLLM_DISABLED_KERNELS",
    }
    kernels = decoys["VLLM_DISABLED_KERNELS"].split(",")
    assert {spec.kernel for spec in shipped.backends.values()} <= set(kernels)
    assert Session(shipped).decoys == decoys
    assert Session(shipped, ProjectTarget(entry="init")).decoys == {}  # init reads os.environ


def test_a_selection_that_falls_back_to_os_environ_on_an_empty_mapping_is_caught(shipped):
    from kernels.linear.select import decide

    def falls_back(config, platform=None, environ=None, backends=None):
        return decide(config, platform, environ or None, backends)  # {} -> os.environ

    runner = Session(shipped, ProjectTarget(select=falls_back))
    result = runner.run([c for c in runner.cells() if c.group == "cases"])
    assert result.failures and all(not r.cell.env for r in result.failures)
    assert "holds decoy values" in result.failures[0].report()


def _cells(runner: Session, group: str) -> list[Cell]:
    return [c for c in runner.cells() if c.group == group]


def test_dropping_the_also_tried_list_is_caught(shipped: Matrix) -> None:
    from kernels.linear.select import decide

    def terse(config, platform=None, environ=None, backends=None):
        d = decide(config, platform, environ, backends)
        if d.error and " (also tried:" in d.error:
            return dataclasses.replace(d, error=d.error.split(" (also tried:")[0])
        return d

    runner = Session(shipped, ProjectTarget(select=terse))
    result = runner.run(_cells(runner, "precedence-mocked"))
    assert result.failures
    assert "error text: expected exactly" in result.failures[0].report()


def test_a_decision_that_misreports_the_consulted_variables_is_caught(shipped: Matrix) -> None:
    from kernels.linear.select import decide

    def forgetful(config, platform=None, environ=None, backends=None):
        d = decide(config, platform, environ, backends)
        return dataclasses.replace(d, variables=d.variables[:-1])

    runner = Session(shipped, ProjectTarget(select=forgetful))
    result = runner.run(_cells(runner, "cases")[:5])
    assert len(result.failures) == 5
    assert "variables consulted: expected" in result.failures[0].report()


def test_exception_types_are_checked(shipped: Matrix) -> None:
    runner = Session(shipped)
    cell = next(c for c in runner.cells() if c.id == "invalid-boolean")
    expected = runner.expected(cell)
    plain = Outcome("invalid-env", error="VLLM_BATCH_INVARIANT='maybe' is bad", error_type="ValueError")
    assert "exception: expected InvalidEnvironmentError, got ValueError" in compare(
        expected, plain, shipped
    )


def test_golden_error_exact_pins_the_whole_message(shipped: Matrix) -> None:
    from harness.models import GoldenExpect

    runner = Session(shipped)
    case = next(c for c in runner.cells() if c.id == "h100-fbgemm-is-sm100-only")
    assert case.golden is not None and case.golden.error_exact
    shorter = GoldenExpect(
        error="Forced NVFP4 kernel FbgemmNvFp4LinearKernel is not supported", error_exact=True
    )
    result = runner.check(dataclasses.replace(case, golden=shorter))
    assert any("golden: the error must be exactly" in p for p in result.problems)


def test_golden_messages_exact_pins_every_note(shipped: Matrix) -> None:
    from harness.models import GoldenExpect

    runner = Session(shipped)
    case = next(c for c in runner.cells() if c.id == "h100-default")
    assert runner.check(case).ok
    noisy = GoldenExpect(backend="triton", messages=["a note the code does not log"],
                         messages_exact=True)
    result = runner.check(dataclasses.replace(case, golden=noisy))
    assert any("golden: the notes must be exactly" in p for p in result.problems)


def test_detection_cells_catch_a_misread_machine(shipped: Matrix, monkeypatch) -> None:
    import kernels.platform as platform

    runner = Session(shipped)
    cells = _cells(runner, "detection")
    assert {c.profile for c in cells} == set(shipped.profiles)
    assert runner.run(cells).ok
    real = platform._parse_version
    monkeypatch.setattr(
        platform, "_parse_version", lambda text: None if real(text) is None else real(text)[::-1]
    )
    result = runner.run(cells)
    assert result.failures
    assert "detection: cuda_version is (8, 12) on this profile's machine, the profile says (12, 8)" in (
        "\n".join(f.report() for f in result.failures)
    )
