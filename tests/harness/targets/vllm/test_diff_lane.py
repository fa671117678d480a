"""``nvfp4-matrix diff`` and release lines as data, on the installed vLLM release.

Run in every ``vllm-*`` lane: the 39129 regression shows as batch-invariance cells only,
a release against itself changes nothing (twice the same), and a release line is a matrix
file: a copy under another name runs the same, and changing one of its facts changes
what the runtime answers, with no Python edited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

BI = "VLLM_BATCH_INVARIANT"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "ERROR", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def regression_diff(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("diff") / "d.json"
    run = _cli("diff", "--target", "vllm", "--head-mutant", "vllm-39129", "--json", str(out))
    assert out.is_file(), run.stdout + run.stderr
    return run, json.loads(out.read_text())


def test_the_39129_regression_changes_batch_invariant_cells_only(regression_diff) -> None:
    run, data = regression_diff
    assert run.returncode == 1, run.stdout + run.stderr
    assert data["changed"], "the regression changes what vLLM selects"
    # set, whatever its value: the regression no longer reads it (a value vLLM refuses,
    # such as 'true', stops being an error too)
    for cell in data["changed"]:
        assert BI in cell["env"], cell["cell"]
    # every group is described by the variable, and covers every changed cell once
    for group in data["groups"]:
        assert any(BI in part for part in group["where"]), group["where"]
    grouped = sorted(k for g in data["groups"] for k in g["cells"])
    assert grouped == sorted(c["cell"] for c in data["changed"])
    assert data["head"]["target"].endswith("(mutant vllm-39129)")
    assert run.stdout.rstrip().splitlines()[-1].startswith("CHANGED: ")


def test_the_regression_changes_as_many_cells_as_the_matrix_catches(regression_diff, matrix) -> None:
    """The diff and the plain run agree: every cell the mutant fails against the matrix is a
    changed cell (the diff may see more: log-only changes the matrix does not pin)."""
    from harness.evaluate.session import Session
    from harness.targets import get_target

    _, data = regression_diff
    failed = {r.cell.nodeid for r in Session(matrix, get_target("vllm").mutant("vllm-39129")).run().failures}
    changed = {c["cell"] for c in data["changed"]}
    assert failed and failed <= changed, sorted(failed - changed)[:5]


def test_a_release_against_itself_changes_nothing_twice(tmp_path: Path) -> None:
    """Both sides the same variant, in two processes each time: nothing changes, and the two
    reports are the same (nothing in a cell's outcome depends on the process or the order)."""
    reports = []
    for n in range(2):
        out = tmp_path / f"self-{n}.json"
        run = _cli("diff", "--target", "vllm", "--base-mutant", "vllm-39129",
                   "--head-mutant", "vllm-39129", "--json", str(out))
        assert run.returncode == 0, run.stdout + run.stderr
        assert "NO CHANGE: " in run.stdout
        data = json.loads(out.read_text())
        assert data["changed"] == [] and data["unchanged"] == data["cells"] > 0
        reports.append({k: v for k, v in data.items() if k not in ("base", "head")})
    assert reports[0] == reports[1]


def test_another_lines_matrix_runs_leniently_with_its_mismatches_grouped(target) -> None:
    """``run --line`` with a line that does not cover the installed release: a notice, the
    mismatches grouped as a diff groups changes, never a traceback."""
    installed = Path(target.default_matrix(ROOT)[0]).stem
    lines = sorted((p.stem for p in (ROOT / "matrix" / "vllm").glob("*.yaml")),
                   key=lambda s: tuple(int(x) for x in s.split(".")))
    index = lines.index(installed)
    other = lines[index - 1] if index else lines[index + 1]
    run = _cli("run", "--target", "vllm", "--line", other, "--no-table", "--no-reports")
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert f"checked against the {other} line's matrix" in run.stdout
    if run.returncode == 1:
        assert "Mismatches, grouped" in run.stdout


# --- release lines as data ----------------------------------------------------------------------
def _line_copy(tmp_path: Path, matrix_file: Path, edit=None) -> Path:
    """The installed line's matrix file copied under a new name (its includes beside it),
    optionally edited: a new release line written as data."""
    text = yaml.safe_load(matrix_file.read_text())
    includes = [(matrix_file.parent / inc).resolve() for inc in text.get("include", [])]
    for inc in includes:
        (tmp_path / inc.name).write_text(inc.read_text())
    text["include"] = [inc.name for inc in includes]
    if edit is not None:
        edit(text)
    path = tmp_path / "next.yaml"
    path.write_text(yaml.safe_dump(text, sort_keys=False))
    return path


def _run(path: Path, target):
    from harness.evaluate.session import Session
    from harness.load import load_matrix

    matrix = load_matrix([path])
    return matrix, Session(matrix, target).run()


def test_a_line_copied_under_another_name_runs_the_same(tmp_path, target, result) -> None:
    path = _line_copy(tmp_path, Path(target.default_matrix(ROOT)[0]))
    _, copied = _run(path, target)
    assert copied.ok and len(copied.results) == len(result.results)
    assert sorted(r.cell.nodeid for r in copied.failures) == sorted(r.cell.nodeid for r in result.failures)


def test_a_compiled_probe_fact_changed_in_data_changes_the_answers(tmp_path, target) -> None:
    """The CUTLASS probe's capability rule is read from the file: narrowing it to sm_10x
    makes vLLM's CUTLASS unsupported on sm_12x, and the matrix (which still says sm_12x is
    supported) catches it on the sm_12x cells only."""
    def narrow(data: dict[str, Any]) -> None:
        (probe,) = data["target"]["release"]["compiled_probes"]
        probe["capability_ranges"] = [[100, 120]]

    matrix, run = _run(_line_copy(tmp_path, Path(target.default_matrix(ROOT)[0]), narrow), target)
    assert not run.ok and run.failures
    sm12x = {pid for pid, p in matrix.profiles.items()
             if p.capability_tuple is not None and p.capability_tuple >= (12, 0)}
    assert sm12x
    for failure in run.failures:
        assert failure.cell.profile in sm12x, failure.cell.nodeid


def _entry(field: str, value: str):
    def edit(data: dict[str, Any]) -> None:
        data["target"]["release"]["entry"][field] = value
    return edit


def _probe(value: str):
    def edit(data: dict[str, Any]) -> None:
        data["target"]["release"]["package_probes"][0]["name"] = value
    return edit


@pytest.mark.parametrize(("edit", "field", "named"), [
    (_entry("function", "init_nvfp4_linear_kernel_v2"), "release.entry.function",
     "init_nvfp4_linear_kernel_v2"),
    (_entry("kernel_base", "NvFp4KernelBase"), "release.entry.kernel_base", "NvFp4KernelBase"),
    (_entry("candidates", "_NVFP4_CANDIDATES"), "release.entry.candidates", "_NVFP4_CANDIDATES"),
    (_probe("has_flashinfer_v2"), "release.package_probes[0]", "has_flashinfer_v2"),
], ids=["function", "kernel_base", "candidates", "probe"])
def test_a_line_naming_what_the_release_lacks_is_refused_naming_file_field_and_name(
    tmp_path, target, edit, field, named
) -> None:
    from harness.errors import MatrixError

    path = _line_copy(tmp_path, Path(target.default_matrix(ROOT)[0]), edit)
    with pytest.raises(MatrixError) as caught:
        _run(path, target)
    message = str(caught.value)
    assert f"{path}:" in message and f"target.{field}" in message and named in message, message
