"""The markdown summary, meant for a Buildkite annotation.

``buildkite-agent annotate --style error < reports/summary.md``: mismatches
first, then known failures, then the profile x environment -> backend table.
It stays well under Buildkite's 1 MiB annotation limit: at most
:data:`MAX_FAILURE_ROWS` rows per list.
"""

from __future__ import annotations

from pathlib import Path

from harness.evaluate.session import RunResult
from harness.evaluate.table import SelectionTable
from harness.output.atomic import write_atomic
from harness.output.table import table_rows_text

__all__ = ["MAX_FAILURE_ROWS", "markdown_table", "write_markdown"]

MAX_FAILURE_ROWS = 100


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
        f"**{len(result.results)} cells, {len(failures)} mismatches, {len(result.known)} known "
        f"failures** in {result.seconds:.2f} s (target `{result.target}`; matrix: "
        f"{', '.join(f'`{f}`' for f in files)})",
        "",
    ]
    if result.stale_known:
        out += ["### Stale known failures", ""]
        out += [f"- {line}" for line in result.stale_known] + [""]
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
    if result.known:
        out += [f"### Known failures ({len(result.known)}): the code disagrees with its rules", ""]
        rows = [
            [
                f"`{r.cell.id}`",
                r.expected.summary(),
                r.actual.summary(),
                r.known.reason if r.known else "",
                r.known.upstream if r.known else "",
            ]
            for r in result.known[:MAX_FAILURE_ROWS]
        ]
        out += [markdown_table(["cell", "rules say", "code does", "why", "upstream"], rows), ""]
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
            ["group", "cells", "mismatches", "known failures"],
            [[g, str(n), str(f), str(k)] for g, (n, f, k) in groups.items()],
        )
    )
    out.append("")
    return write_atomic(path, "\n".join(out), create_folder=True)
