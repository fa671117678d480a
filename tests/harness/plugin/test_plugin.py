"""The pytest plugin, tested from outside: ids, locations, failure text, skips, exit codes."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.support.paths import MATRIX_DIR, plugin_args

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _import_native_modules_once():
    """Import the registry (and so Triton) in this process before any in-process pytest run.

    pytester drops the modules an inner run imported; a native extension such
    as Triton's cannot be imported a second time in one process (it aborts).
    """
    import harness.evaluate.session  # noqa: F401
    import kernels.linear.registry  # noqa: F401


def _write_matrix(pytester: pytest.Pytester, sweeps: list, cases: list) -> str:
    """The shipped profiles, backends and precedence with small sweeps/cases; returns selection.yaml."""
    folder = pytester.path / "matrix"
    folder.mkdir(exist_ok=True)
    shutil.copy(MATRIX_DIR / "gpus.yaml", folder / "gpus.yaml")
    data = yaml.safe_load((MATRIX_DIR / "selection.yaml").read_text())
    data["sweeps"], data["cases"] = sweeps, cases
    text = yaml.safe_dump(data, sort_keys=False)
    (folder / "selection.yaml").write_text(text)
    return text


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


TINY = [
    {"id": "tiny", "profiles": ["b200", "v100"], "cross": {"VLLM_BATCH_INVARIANT": [None, "1"]}}
]
CASE = {
    "id": "b200-bi",
    "profile": "b200",
    "env": {"VLLM_BATCH_INVARIANT": "1"},
    "expect": {"backend": "triton", "rule": "batch_invariant"},
}


def test_one_item_per_cell_with_readable_ids(pytester):
    _write_matrix(pytester, TINY, [CASE])
    result = pytester.runpytest(*plugin_args(), "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    detection = [i for i in ids if "::detection::" in i]
    assert [i for i in ids if i not in detection] == [
        "matrix/selection.yaml::tiny::b200-default",
        "matrix/selection.yaml::tiny::v100-default",
        "matrix/selection.yaml::tiny::b200-VLLM_BATCH_INVARIANT=1",
        "matrix/selection.yaml::tiny::v100-VLLM_BATCH_INVARIANT=1",
        "matrix/selection.yaml::cases::b200-bi",
    ]
    # the detection cells, as `nvfp4-matrix run` checks them: one per profile, then the
    # TRITON_INTERPRET spellings on every profile with Triton
    profiles = yaml.safe_load((MATRIX_DIR / "gpus.yaml").read_text())["profiles"]
    assert detection[: len(profiles)] == [
        f"matrix/selection.yaml::detection::{pid}-default-detected" for pid in profiles
    ]
    assert ids[-1] == detection[-1]  # after every sweep and case
    pytester.runpytest(*plugin_args()).assert_outcomes(passed=5 + len(detection))


def test_location_is_the_yaml_line(pytester):
    text = _write_matrix(pytester, TINY, [CASE])
    items, _ = pytester.inline_genitems(*plugin_args())
    case = next(i for i in items if i.name == "b200-bi")
    assert case.location == (
        "matrix/selection.yaml",
        _line_of(text, "id: b200-bi") - 1,
        "cell b200-bi",
    )
    cross = next(i for i in items if i.name == "b200-default")
    assert cross.location[1] == _line_of(text, "cross:") - 1


def test_failure_shows_expected_actual_and_decision_record_not_a_traceback(pytester):
    wrong = {"id": "b200-wrong", "profile": "b200", "expect": {"backend": "cublaslt"}}
    _write_matrix(pytester, [], [wrong])
    result = pytester.runpytest(*plugin_args())
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    for text in (
        "MISMATCH b200-wrong",
        "golden   : backend cublaslt",
        "the matrix rules (oracle) predict backend flashinfer-cutlass by rule auto",
        "golden: expected backend cublaslt, got backend flashinfer-cutlass by rule auto",
        "decision record:",
        "flashinfer-cutlass selected",
    ):
        assert text in out, text
    assert "Traceback" not in out and "def runtest" not in out and "raise CellMismatch" not in out
    result.stdout.fnmatch_lines(["FAILED matrix/selection.yaml::cases::b200-wrong*"])


def test_invalid_matrix_is_a_one_line_collection_error(pytester):
    bad = {"id": "x", "profile": "b2000", "expect": {"backend": "triton"}}
    text = _write_matrix(pytester, [], [bad])
    result = pytester.runpytest(*plugin_args())
    assert result.ret == pytest.ExitCode.INTERRUPTED
    line = _line_of(text, "profile: b2000")
    result.stdout.fnmatch_lines(
        [
            f"*matrix/selection.yaml:{line}: cases[[]0[]].profile: unknown profile 'b2000'; did you mean 'b200'?*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_only_matrix_files_are_collected(pytester):
    _write_matrix(pytester, TINY, [])
    other = pytester.path / "other"
    other.mkdir()
    shutil.move(pytester.path / "matrix" / "selection.yaml", other / "m.yaml")
    (other / "m.yaml").write_text(
        (other / "m.yaml").read_text().replace("- gpus.yaml", "- ../matrix/gpus.yaml")
    )
    (pytester.path / "unrelated.yaml").write_text("just: data\n")
    assert pytester.runpytest(*plugin_args()).ret == pytest.ExitCode.NO_TESTS_COLLECTED
    from harness.evaluate.detection import detection_cells
    from harness.load import load_matrix

    detected = len(detection_cells(load_matrix([other / "m.yaml"])))
    args = ("-k", "not detection")  # the file's cells: 4, beside the detection cells
    pytester.runpytest(*plugin_args(), *args, "--nvfp4-matrix", "other/*.yaml").assert_outcomes(
        passed=4, deselected=detected
    )
    pytester.runpytest(*plugin_args(), *args, "other/m.yaml").assert_outcomes(
        passed=4, deselected=detected
    )


def _here_profile(pytester: pytest.Pytester, real_tests: str) -> None:
    """``matrix/gpus.yaml`` with one profile, ``here``, describing this very machine."""
    from kernels.platform import detect_platform

    p = detect_platform()
    hw = "    device_type: cpu\n"
    if p.is_cuda:
        cap, cuda = p.capability, p.cuda_version or (12, 8)
        hw = f'    device_type: cuda\n    capability: "{cap[0]}.{cap[1]}"\n    cuda: "{cuda[0]}.{cuda[1]}"\n'
    folder = pytester.path / "matrix"
    folder.mkdir(exist_ok=True)
    (folder / "gpus.yaml").write_text(
        f"version: 1\nprofiles:\n  here:\n    name: this machine\n{hw}    supported: []\n"
        f"    real_tests:\n{real_tests}"
    )


def test_hardware_markers_skip_with_the_reason(pytester):
    from kernels.platform import detect_platform

    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gpu
        def test_needs_gpu():
            pass

        @pytest.mark.blackwell
        def test_needs_blackwell():
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest(*plugin_args(), "-rs", "--strict-markers")
    here = detect_platform()
    if not here.is_cuda:
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines([f"*needs a CUDA GPU; this machine is {here.describe()}*"])
    elif not (here.is_family(10) or here.is_family(12)):
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines(["*needs a Blackwell GPU (sm_10x or sm_12x); this machine is*"])
    else:
        result.assert_outcomes(passed=3)


_SKIPPY = """
import pytest

def test_allowed_to_skip():
    pytest.skip("needs a dataset this runner does not have")

def test_silently_skipped():
    pytest.skip("dependency failed to install")

def test_fine():
    pass

@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert False
"""


def test_unexpected_skip_fails_on_a_profiled_runner(pytester):
    _here_profile(pytester, "      may_skip: ['test_x.py::test_allowed_*']\n")
    pytester.makepyfile(test_x=_SKIPPY)
    result = pytester.runpytest(
        *plugin_args(), "--nvfp4-profile", "here", "-rs", "--nvfp4-reports", "out"
    )
    result.assert_outcomes(passed=1, skipped=1, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "unexpected skip on profile here: dependency failed to install",
            "  no may_skip pattern matches it (may_skip: ?'test_x.py::test_allowed_*'?);"
            " the profile's real_tests are at matrix/gpus.yaml:*",
            "*UNEXPECTED SKIP (reported as a failure): test_x.py::test_silently_skipped*",
            "SKIPPED * needs a dataset this runner does not have",
        ]
    )
    summary = (pytester.path / "out" / "summary.md").read_text()
    assert summary.startswith("## pytest on profile `here`: ❌ FAIL")
    assert "UNEXPECTED SKIP (reported as a failure): `test_x.py::test_silently_skipped`" in summary
    assert summary.index("### Failures") < summary.index("### Skips")
    assert (pytester.path / "out" / "junit.xml").is_file()
    # without the profile, the same run is a plain skip
    pytester.runpytest(*plugin_args()).assert_outcomes(passed=1, skipped=2, xfailed=1)


def test_must_run_patterns(pytester):
    _here_profile(
        pytester,
        "      must_run: ['test_x.py::test_fine', 'test_x.py::test_needed', 'test_x.py::test_silently_skipped']\n"
        "      may_skip: ['test_x.py::test_allowed_*', 'test_x.py::test_silently_skipped']\n",
    )
    pytester.makepyfile(test_x=_SKIPPY)
    result = pytester.runpytest(*plugin_args(), "--nvfp4-profile", "here")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*unexpected skip on profile here*",
            "*it matches must_run 'test_x.py::test_silently_skipped'*",
            "*must_run 'test_x.py::test_fine': 1 test(s) ran*",
            "*VIOLATION: must_run pattern 'test_x.py::test_needed' of profile here matches no collected test*",
        ]
    )
    # a run that selects a subset is no violation: the deselected tests still exist
    result = pytester.runpytest(
        *plugin_args(), "--nvfp4-profile", "here", "-k", "test_needed or test_allowed"
    )
    assert "VIOLATION: must_run pattern 'test_x.py::test_fine'" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*VIOLATION: must_run pattern 'test_x.py::test_needed'*"])


def test_profile_must_match_the_machine(pytester):
    from kernels.platform import detect_platform

    here = detect_platform()
    _write_matrix(pytester, [], [])
    pytester.makepyfile(test_x="def test_a(): pass")
    other, kind = ("cpu", "cpu") if here.is_cuda else ("b200", "cuda 10.0")
    result = pytester.runpytest(*plugin_args(), "--nvfp4-profile", other)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [
            f"*--nvfp4-profile {other}: this machine is {here.describe()}*but the profile is {kind}*wrong runner queue?*"
        ]
    )
    result = pytester.runpytest(*plugin_args(), "--nvfp4-profile", "b2000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*unknown profile 'b2000'; did you mean 'b200'?*"])


def test_plugin_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, harness.plugin; print(sorted(m for m in ('torch', 'pydantic', 'triton', 'kernels.linear') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_pytest_is_as_strict_as_run_a_selection_reading_os_environ_fails_both(pytester):
    """One evaluation path: the same broken selection fails the same cells under
    ``pytest`` and under ``nvfp4-matrix run`` (the decoys, the detection cells, the golden
    entry points are the session's, whichever entry point asks)."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    mutant = "reads-process-environment"  # lets os.environ fill what the mapping lacks
    _write_matrix(pytester, TINY, [CASE])
    reports = pytester.path / "reports"
    run = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--mutant", mutant, "--no-table",
         "--reports", str(reports), "matrix/selection.yaml"],
        capture_output=True, text=True, cwd=pytester.path, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    cases = ET.parse(reports / "junit.xml").getroot().iter("testcase")
    failed_run = {
        f"{c.get('classname').split('.', 1)[1]}::{c.get('name')}"
        for c in cases if c.find("failure") is not None
    }
    result = pytester.runpytest(*plugin_args(), "--nvfp4-mutant", mutant, "-q", "-rf",
                                "matrix/selection.yaml")
    failed_pytest = {
        line.split(" ", 1)[1].split(" - ")[0].removeprefix("matrix/selection.yaml::")
        for line in result.outlines if line.startswith("FAILED ")
    }
    assert failed_run, "the mutant must fail cells"
    assert {c.split("::")[0] for c in failed_run} == {"tiny", "cases"}
    assert failed_pytest == failed_run
    # the real selection passes both
    assert pytester.runpytest(*plugin_args(), "-q", "matrix/selection.yaml").ret == 0


def test_the_shipped_matrix_folder_collects_as_the_docs_show_it():
    """``pytest matrix/`` on this checkout: every file under matrix/ is a matrix and collects
    (the vLLM lines as a skip where vLLM is not installed), nothing is a collection error."""
    import subprocess
    import sys

    from tests.support.paths import ROOT

    run = subprocess.run([sys.executable, "-m", "pytest", "matrix/", "--co", "-q",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "error" not in run.stdout.lower().split("collected")[-1]
    for name in sorted(p.name for p in (ROOT / "matrix" / "vllm").glob("*.yaml")):
        assert f"matrix/vllm/{name}::" in run.stdout, name
