"""Reports: the selection table, JUnit XML and a markdown summary.

The markdown summary is meant for a Buildkite annotation
(``buildkite-agent annotate --style error < reports/summary.md``):
mismatches first, then the profile x environment -> backend table. It stays
well under Buildkite's 1 MiB annotation limit: at most
:data:`MAX_FAILURE_ROWS` mismatches are listed.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.cells import Cell, cell_id
from harness.runner import Runner, RunResult, compare

__all__ = [
    "MAX_FAILURE_ROWS",
    "SelectionTable",
    "TableCell",
    "selection_table",
    "write_junit",
    "write_markdown",
]

MAX_FAILURE_ROWS = 100


@dataclasses.dataclass(frozen=True)
class TableCell:
    text: str  # backend name, or a short error
    ok: bool  # a backend was selected
    agrees: bool  # the oracle predicts the same
    detail: str = ""  # the error, or the oracle's disagreement


@dataclasses.dataclass(frozen=True)
class SelectionTable:
    """Rows: profiles. Columns: the default env and each single forcing variable.

    ``forcible`` lists, per profile, the backends ``VLLM_NVFP4_GEMM_BACKEND``
    (the backend-name rule) can force without an error.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[TableCell, ...]], ...]  # profile, "sm_100", cells
    named_variable: str | None
    forcible: dict[str, tuple[str, ...]]
    disagreements: int


def _short_error(actual_error: str | None) -> str:
    text = actual_error or ""
    if "cannot implement" in text:
        return "✗ cannot implement"
    if "is not supported" in text:
        return "✗ unsupported"
    return "✗ no kernel"


def selection_table(runner: Runner) -> SelectionTable:
    """The real selection's choice for every profile under the default and each forcing variable."""
    m = runner.matrix
    assert m.precedence is not None
    columns: list[tuple[str, dict[str, str]]] = [("default", {})]
    named: str | None = None
    for rule in m.precedence.forcing:
        if rule.value == "boolean":
            columns.append((f"{rule.variable}=1", {rule.variable: "1"}))
        else:
            named = rule.variable
    rows = []
    forcible: dict[str, tuple[str, ...]] = {}
    disagreements = 0
    layer = m.default_layer_id

    def evaluate(pid: str, env: dict[str, str]) -> TableCell:
        env_t = tuple(env.items())
        cell = Cell(cell_id(pid, env_t, None), "table", pid, env_t, layer)
        actual = runner.evaluate(cell)
        problems = compare(runner.expected(cell), actual, m)
        if actual.kind == "backend":
            text, ok, detail = str(actual.backend), True, ""
        else:
            text, ok, detail = _short_error(actual.error), False, actual.error or ""
        if problems:
            detail = "; ".join(problems)
        return TableCell(text, ok, not problems, detail)

    from harness.runner import clean_environment, quiet_selection_logs

    with clean_environment(), quiet_selection_logs():
        for pid, profile in m.profiles.items():
            cells = tuple(evaluate(pid, env) for _, env in columns)
            disagreements += sum(not c.agrees for c in cells)
            label = (
                "cpu" if profile.capability is None else f"sm_{profile.capability.replace('.', '')}"
            )
            rows.append((pid, label, cells))
            if named is not None:
                ok_names = []
                for backend in m.backends:
                    tc = evaluate(pid, {named: backend})
                    disagreements += not tc.agrees
                    if tc.ok:
                        ok_names.append(backend)
                forcible[pid] = tuple(ok_names)
    headers = ("profile", "arch") + tuple(name for name, _ in columns)
    if named is not None:
        headers += (f"{named}= accepts",)
    return SelectionTable(headers, tuple(rows), named, forcible, disagreements)


def table_rows_text(table: SelectionTable) -> list[list[str]]:
    """Plain-text rows (``≠`` marks a cell where the code and the oracle disagree)."""
    out = []
    for pid, label, cells in table.rows:
        row = [pid, label] + [c.text + ("" if c.agrees else " ≠") for c in cells]
        if table.named_variable is not None:
            row.append(", ".join(table.forcible.get(pid, ())) or "-")
        out.append(row)
    return out


def markdown_table(headers: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(
    result: RunResult,
    table: SelectionTable | None,
    path: Path,
    files: list[str],
    title: str = "NVFP4 selection matrix",
) -> Path:
    """Write the summary: verdict, mismatches first, then the selection table."""
    failures = result.failures
    status = "✅ PASS" if result.ok else "❌ FAIL"
    out = [
        f"## {title}: {status}",
        "",
        f"**{len(result.results)} cells, {len(failures)} mismatches** in {result.seconds:.2f} s "
        f"(matrix: {', '.join(f'`{f}`' for f in files)})",
        "",
    ]
    if failures:
        out += [f"### Mismatches ({len(failures)})", ""]
        rows = [
            [
                f"`{r.cell.id}`",
                r.cell.group,
                r.expected.summary(),
                r.actual.summary(),
                r.rule,
                str(r.cell.location),
            ]
            for r in failures[:MAX_FAILURE_ROWS]
        ]
        out.append(
            markdown_table(["cell", "group", "expected", "actual", "rule", "defined at"], rows)
        )
        if len(failures) > MAX_FAILURE_ROWS:
            out.append(f"\n… and {len(failures) - MAX_FAILURE_ROWS} more (see the JUnit report).")
        out += [
            "",
            "<details><summary>First mismatch, in full</summary>",
            "",
            "```text",
            failures[0].report(),
            "```",
            "</details>",
            "",
        ]
    if table is not None:
        out += ["### Selection table (profile x environment -> backend)", ""]
        out.append(markdown_table(list(table.headers), table_rows_text(table)))
        out += [
            "",
            "Default layer; `✗` = the selection reports an error; `≠` = the code and the matrix rules disagree.",
            "",
        ]
    out += ["### Cells per group", ""]
    groups = result.groups()
    out.append(
        markdown_table(
            ["group", "cells", "mismatches"], [[g, str(n), str(f)] for g, (n, f) in groups.items()]
        )
    )
    out.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def write_junit(result: RunResult, path: Path, suite: str = "nvfp4-matrix") -> Path:
    """One ``testcase`` per cell (``classname`` = group, ``name`` = cell id)."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(result.results)),
        failures=str(len(result.failures)),
        errors="0",
        skipped="0",
        time=f"{result.seconds:.3f}",
    )
    for r in result.results:
        attrs = {"classname": f"{suite}.{r.cell.group}", "name": r.cell.id, "time": "0"}
        if r.cell.location is not None:
            attrs["file"] = r.cell.location.file
            attrs["line"] = str(r.cell.location.line)
        case = ET.SubElement(ts, "testcase", attrs)
        if not r.ok:
            failure = ET.SubElement(
                case, "failure", message=r.problems[0][:500], type="CellMismatch"
            )
            failure.text = r.report()
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
