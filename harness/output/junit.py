"""JUnit XML: one ``testcase`` per cell; known failures are ``skipped`` with their reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness import TOOL
from harness.evaluate.session import RunResult
from harness.output.atomic import write_atomic

__all__ = ["write_junit"]


def write_junit(result: RunResult, path: Path, suite: str = TOOL) -> Path:
    """One ``testcase`` per cell (``classname`` = group, ``name`` = cell id)."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(result.results)),
        failures=str(len(result.failures)),
        errors="0",
        skipped=str(len(result.known)),
        time=f"{result.seconds:.3f}",
    )
    for r in result.results:
        attrs = {"classname": f"{suite}.{r.cell.group}", "name": r.cell.id, "time": "0"}
        if r.cell.location is not None:
            attrs["file"] = r.cell.location.file
            attrs["line"] = str(r.cell.location.line)
        case = ET.SubElement(ts, "testcase", attrs)
        if r.known is not None:
            skipped = ET.SubElement(
                case, "skipped", message=f"known failure: {r.known.reason} [{r.known.upstream}]"
            )
            skipped.text = r.report()
        elif not r.ok:
            failure = ET.SubElement(
                case, "failure", message=r.problems[0][:500], type="CellMismatch"
            )
            failure.text = r.report()
    # Written complete or not at all: an interrupted or failed write keeps the previous report.
    return write_atomic(path, ET.tostring(root, encoding="utf-8", xml_declaration=True), True)
