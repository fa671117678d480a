"""What the project target checks beyond the decision: the explicit platform, and what init shows.

* every cell passes its platform explicitly while the seam holds a decoy
  (:func:`harness.targets.project.seam.decoy_platform`), so code that reads the seam
  where it was handed a platform picks differently and fails;
* golden cases also go through ``init_nvfp4_linear_kernel``, twice, and are
  judged on what a user sees: the exception's message, the notes logged (each
  once per process) and their levels;
* the matrix's batch-invariance claims must match the registered classes.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from harness.errors import MatrixError
from harness.evaluate.session import Session
from harness.load import Matrix
from harness.models import GoldenExpect
from harness.targets.project import ProjectTarget
from harness.targets.project.logs import CapturedNotes
from harness.targets.project.seam import decoy_platform
from kernels.platform import Platform


def _case(runner: Session, case_id: str):
    return next(c for c in runner.cells() if c.group == "cases" and c.id == case_id)


def test_the_decoy_differs_in_every_fact_a_rule_reads(shipped: Matrix) -> None:
    for profile in shipped.profiles.values():
        real = profile.platform()
        decoy = decoy_platform(real)
        assert decoy.is_cuda != real.is_cuda
        if real.is_cuda:
            assert decoy.packages == frozenset() and not decoy.has_fp4_dtype
        else:
            assert decoy.is_family(10) and {"flashinfer", "triton"} <= decoy.packages


def test_a_rule_that_reads_the_seam_instead_of_its_argument_is_caught(
    shipped: Matrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernels.linear.registry import NVFP4_BACKENDS
    from kernels.platform import current_platform

    cutlass = NVFP4_BACKENDS["flashinfer-cutlass"]
    real = cutlass.is_supported.__func__  # type: ignore[attr-defined]
    # the mistake a refactor makes: `platform and current_platform()` for `platform or ...`
    monkeypatch.setattr(
        cutlass, "is_supported", classmethod(lambda cls, platform=None: real(cls, platform and current_platform()))
    )
    runner = Session(shipped)
    result = runner.run([_case(runner, "b200-default"), _case(runner, "h100-default")])
    assert [r.cell.id for r in result.failures] == ["b200-default"]
    assert "expected backend flashinfer-cutlass" in result.failures[0].report()


def test_a_kernel_built_for_the_seam_not_for_its_argument_is_caught(
    shipped: Matrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kernels.linear.select as select
    from kernels.platform import current_platform

    real = select.init_nvfp4_linear_kernel

    def builds_for_the_seam(config, platform=None, environ=None, notes=None):
        kernel, decision = real(config, platform, environ, notes)
        return type(kernel)(config, current_platform()), decision  # the decoy: refused

    monkeypatch.setattr(select, "init_nvfp4_linear_kernel", builds_for_the_seam)
    runner = Session(shipped)
    result = runner.check(_case(runner, "b200-default"))
    assert any(
        p.startswith("via the init entry point: the selection raised ValueError")
        for p in result.problems
    ), result.problems


def test_init_is_judged_on_the_message_it_raises(shipped: Matrix, monkeypatch: pytest.MonkeyPatch) -> None:
    import kernels.linear.select as select
    from kernels.errors import KernelSelectionError

    real = select.init_nvfp4_linear_kernel

    def vague(config, platform=None, environ=None, notes=None):
        try:
            return real(config, platform, environ, notes)
        except KernelSelectionError as exc:  # the record is right, the message is not
            raise KernelSelectionError("no NVFP4 kernel selected", exc.decision) from None

    monkeypatch.setattr(select, "init_nvfp4_linear_kernel", vague)
    runner = Session(shipped)
    result = runner.check(_case(runner, "h100-fbgemm-is-sm100-only"))
    assert any("via the init entry point: golden: the error must be exactly" in p
               for p in result.problems)


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ("silent", "init_nvfp4_linear_kernel logged [], but its decision's notes are"),
        ("twice", "logged again when called again for the same layer"),
        ("levels", "golden: logged at INFO, expected WARNING"),
    ],
)
def test_init_must_log_each_note_once_at_its_level(
    shipped: Matrix, monkeypatch: pytest.MonkeyPatch, broken: str, problem: str
) -> None:
    import kernels.linear.select as select

    real = select.init_nvfp4_linear_kernel

    def silent(config, platform=None, environ=None, notes=None):
        void = logging.Logger("void")
        void.disabled = True
        return real(config, platform, environ, select.NoteLog(void))

    def forgetful(config, platform=None, environ=None, notes=None):
        notes.forget()
        return real(config, platform, environ, notes)

    if broken == "levels":  # the fallback note logged as information
        monkeypatch.setattr(select, "WARNING_NOTES", ("no note starts like this",))
    else:
        monkeypatch.setattr(
            select, "init_nvfp4_linear_kernel", silent if broken == "silent" else forgetful
        )
    runner = Session(shipped)
    result = runner.check(_case(runner, "v100-with-flashinfer-falls-back"))
    assert any(problem in p for p in result.problems), result.problems


def test_golden_warnings_name_the_warning_notes(shipped: Matrix) -> None:
    runner = Session(shipped)
    case = _case(runner, "disabled-kernel-typo")
    assert runner.check(case).ok
    assert case.golden is not None and case.golden.warnings
    quiet = case.golden.model_copy(update={"warnings": []})
    result = runner.check(dataclasses.replace(case, golden=quiet))
    assert any("golden: logged at WARNING, expected INFO" in p for p in result.problems)
    missing = GoldenExpect(backend="flashinfer-cutlass", warnings=["a warning nobody logs"])
    result = runner.check(dataclasses.replace(case, golden=missing))
    assert any("no warning logged contains 'a warning nobody logs'" in p for p in result.problems)


def test_the_capture_leaves_the_log_as_it_found_it() -> None:
    from harness.targets.project import layer_config
    from kernels.linear.select import PROCESS_NOTES, init_nvfp4_linear_kernel
    from kernels.platform import use_platform

    log = logging.getLogger("kernels.linear")
    before = (log.disabled, log.level, log.propagate, list(log.handlers), set(PROCESS_NOTES.seen))
    v100 = Platform("V100", "cuda", (7, 0), (12, 8), frozenset({"flashinfer"}))
    notes = CapturedNotes()
    with use_platform(v100):
        init_nvfp4_linear_kernel(layer_config(None), v100, {}, notes)
    after = (log.disabled, log.level, log.propagate, list(log.handlers), set(PROCESS_NOTES.seen))
    assert after == before
    assert [level for level, _ in notes.records if level >= logging.INFO] == [logging.WARNING]


def test_the_matrix_must_state_each_backends_batch_invariance(shipped: Matrix) -> None:
    spec = shipped.backends["fbgemm"]
    wrong = dataclasses.replace(
        shipped, backends={**shipped.backends, "fbgemm": spec.model_copy(update={"batch_invariant": True})}
    )
    with pytest.raises(MatrixError, match="FbgemmNvFp4LinearKernel.batch_invariant is False, the matrix says True"):
        Session(wrong, ProjectTarget())


def test_golden_warnings_a_target_cannot_observe_are_a_problem(shipped: Matrix) -> None:
    deaf = ProjectTarget()  # e.g. an engine whose log the target cannot capture
    deaf.capabilities = dataclasses.replace(
        deaf.capabilities, observes_log=False, golden_entries=()
    )
    runner = Session(shipped, deaf)
    result = runner.check(_case(runner, "disabled-kernel-typo"))
    assert any("'warnings' cannot be checked" in p for p in result.problems), result.problems
    assert Session(shipped).check(_case(runner, "disabled-kernel-typo")).ok


def test_binding_a_matrix_to_this_project_does_not_import_torch():
    """Loading and binding a matrix (and refusing a bad one) stays light: the selection and its
    backends, which import torch, are imported when a cell is first evaluated."""
    import subprocess
    import sys

    from tests.support.paths import ROOT

    code = (
        "import sys\n"
        "from harness.evaluate.session import Session\n"
        "from harness.load import load_matrix\n"
        "from harness.targets import get_target\n"
        "target = get_target('kernels')\n"
        "assert 'torch' not in sys.modules, 'the target imported torch'\n"
        "from harness.errors import MatrixError\n"
        "try:\n"
        "    Session(load_matrix(['tests/harness/load/corpus/cases/109-package-unknown.yaml']), target)\n"
        "except MatrixError:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'binding imported torch'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
