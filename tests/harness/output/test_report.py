"""JUnit XML and the markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.evaluate.session import Session
from harness.evaluate.table import selection_table
from harness.load import Matrix
from harness.output.junit import write_junit
from harness.output.markdown import write_markdown
from harness.output.table import table_rows_text
from harness.targets.project import ProjectTarget


def test_junit_has_one_testcase_per_cell(shipped_result, tmp_path):
    path = write_junit(shipped_result, tmp_path / "junit.xml")
    suite = ET.parse(path).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(shipped_result.results) == int(suite.get("tests"))
    assert suite.get("failures") == "0"
    first = cases[0]
    assert (
        first.get("classname") == "nvfp4-matrix.env-cross" and first.get("name") == "v100-default"
    )
    assert first.get("file").endswith("selection.yaml") and int(first.get("line")) > 0


def test_failures_come_first_in_markdown_and_are_in_junit(shipped: Matrix, tmp_path):
    runner = Session(shipped, ProjectTarget().mutant("no-batch-invariant"))
    cells = [c for c in runner.cells() if c.group == "cases"]
    result = runner.run(cells)
    assert not result.ok
    table = selection_table(runner)
    md = write_markdown(
        result, table, tmp_path / "summary.md", ["matrix/selection.yaml"]
    ).read_text()
    assert md.startswith("## NVFP4 selection matrix: ❌ FAIL")
    assert md.index("### Mismatches") < md.index("### Selection table")
    assert "`b200-batch-invariant`" in md
    assert "≠" in md  # the table marks where the code disagrees with the rules
    junit = ET.parse(write_junit(result, tmp_path / "j.xml")).getroot()
    failed = [c for c in junit.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == len(result.failures)
    assert "MISMATCH b200-batch-invariant" in "".join(c.find("failure").text for c in failed)


def test_selection_table_rows(shipped: Matrix):
    table = selection_table(Session(shipped))
    assert table.disagreements == 0
    assert table.headers[:3] == ("profile", "arch", "default")
    rows = {row[0]: row for row in table_rows_text(table)}
    assert rows["b200"][2:6] == ["flashinfer-cutlass", "triton", "fbgemm", "emulation"]
    assert rows["v100"][2:6] == ["emulation", "emulation", "✗ unsupported", "emulation"]
    assert (
        rows["rtx5090"][-1] == "flashinfer-cutlass, cublaslt, flashinfer-cudnn, triton, emulation"
    )
