"""``nvfp4-matrix run [MATRIX...]``: evaluate every cell, print the table and a verdict, write reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.cli.common import (
    add_matrix_argument,
    console,
    non_negative_int,
    open_session,
)

if TYPE_CHECKING:
    from harness.evaluate.session import RunResult, Session

__all__ = ["add_parser", "run_command"]

DEFAULT_REPORTS = "reports"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate every cell of the matrix (the main job)")
    add_matrix_argument(p)
    p.add_argument(
        "--reports",
        default=DEFAULT_REPORTS,
        metavar="DIR",
        help="folder for junit.xml and summary.md (default: reports)",
    )
    p.add_argument("--no-reports", action="store_true", help="write no report files")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="also write the run's figures as JSON to FILE (the lanes' docs/records/, "
        "which tools/readme.py turns into the README's figures)",
    )
    p.add_argument(
        "--entry",
        metavar="NAME",
        default=None,
        help="check the target through another of its entry points (this project's kernels: "
        "decide, the default; init: init_nvfp4_linear_kernel() with os.environ set per cell; "
        "seam: decide() reading the platform through the seam)",
    )
    p.add_argument(
        "--mutant", metavar="NAME", help="run a deliberately broken selection (see `mutants`)"
    )
    p.add_argument(
        "--max-failures",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="mismatches printed in full (default 5; all are in the reports)",
    )
    p.add_argument("--no-table", action="store_true", help="do not print the selection table")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """The run; it holds its reports folder throughout, so two runs never mix their reports."""
    from harness.output.folder import hold_folder

    if args.no_reports:
        return _run(args)
    with hold_folder(args.reports):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from harness.evaluate.table import selection_table
    from harness.output.junit import write_junit
    from harness.output.markdown import write_markdown
    from harness.output.table import table_rows_text

    session, info = open_session(args, mutant=args.mutant, entry=args.entry)
    matrix, target = session.matrix, session.target
    title = "NVFP4 selection matrix"
    if info is not None:
        title += f" (mutant {info.name}: {info.title})"
    result = session.run()
    out = console()
    files = [s.name for s in matrix.files]
    out.print(f"[bold]{title}[/bold]")
    out.print(f"target : {target.describe()}", markup=False)
    out.print(f"matrix : {', '.join(files)}", markup=False)
    for note in session.notes:
        out.print(f"note   : {note}", markup=False)
    if not target.capabilities.decision_record:
        out.print(
            "compare: outcomes only (this target exposes no rule or candidate verdicts)",
            markup=False,
        )

    table = selection_table(session)
    if not args.no_table:
        rich_table = Table(
            title="Selection: profile x environment -> backend (default layer)",
            title_justify="left",
        )
        for header in table.headers:
            rich_table.add_column(header, overflow="fold")
        for row, (_, _, cells) in zip(table_rows_text(table), table.rows, strict=True):
            styled = (
                row[:2]
                + [
                    f"[{'green' if c.ok else 'red'}]{text}[/]"
                    if c.agrees
                    else f"[bold magenta]{text}[/]"
                    for text, c in zip(row[2 : 2 + len(cells)], cells, strict=True)
                ]
                + row[2 + len(cells) :]
            )
            rich_table.add_row(*styled)
        out.print(rich_table)

    groups = Table(title="Cells per group", title_justify="left")
    for col in ("group", "cells", "mismatches", "known failures"):
        groups.add_column(col)
    for group, (n, f, k) in result.groups().items():
        groups.add_row(group, str(n), f"[red]{f}[/]" if f else "0", str(k))
    out.print(groups)
    _print_known(out, result)

    failures = result.failures
    if failures and (session.lenient or len(failures) > args.max_failures):
        _print_grouped(out, session, result)
    for failure in failures[: args.max_failures]:
        out.print(failure.report(), markup=False, highlight=False, soft_wrap=True)
        out.print()
    if len(failures) > args.max_failures:
        out.print(
            f"... and {len(failures) - args.max_failures} more mismatches (all in the reports)"
        )

    if not args.no_reports:
        reports = Path(args.reports)
        junit = write_junit(result, reports / "junit.xml")
        summary = write_markdown(result, table, reports / "summary.md", files, title)
        out.print(f"reports: {junit}, {summary}")
    if args.record:
        from harness.output.record import run_record, write_run_record

        covers = matrix.target.versions if matrix.target is not None else None
        record = run_record(result, files, target.name, target.version(), args.mutant, covers)
        out.print(f"record : {write_run_record(args.record, record)}", markup=False)
    for line in result.stale_known:
        out.print(f"STALE {line}", markup=False, style="red")
    verdict = result.verdict()
    out.print(f"[bold {'green' if result.ok else 'red'}]{verdict}[/]")
    return 0 if result.ok else 1


def _print_grouped(out: Any, session: Session, result: RunResult) -> None:
    """The mismatches described as a diff describes changes: expected -> got, and where."""
    from harness.diff.changes import mismatch_groups
    from harness.output.diff import plural

    out.print(f"Mismatches, grouped ({plural(len(result.failures), 'cell')}):", markup=False)
    found = mismatch_groups(session.matrix, session.vocabulary, result.results)
    for index, where in enumerate(found, 1):
        out.print(f"[{index}] {plural(len(where.keys), 'cell')} where {' · '.join(where.description)}:",
                  markup=False, soft_wrap=True)
        for change in where.changes:
            out.print(f"  {len(change.keys)} x expected {change.base}", markup=False,
                      soft_wrap=True)
            out.print(f"      got {change.head}   e.g. {change.keys[0]}", markup=False,
                      soft_wrap=True)
    out.print()


def _print_known(out: object, result: object) -> None:
    """The known failures, one row per finding (every cell is in the reports)."""
    known = result.known  # type: ignore[attr-defined]
    if not known:
        return
    groups: dict[int, list[object]] = {}
    for r in known:
        groups.setdefault(id(r.known), []).append(r)
    table = Table(
        title=f"Known failures: {len(known)} cells where the code disagrees with the rules it "
        f"should follow ({len(groups)} findings; every cell in the reports)",
        title_justify="left",
    )
    for col in ("code does", "cells", "for example", "why", "upstream"):
        table.add_column(col, overflow="fold")
    for rows in groups.values():
        finding = rows[0].known  # type: ignore[attr-defined]
        examples = ", ".join(r.cell.id for r in rows[:3])  # type: ignore[attr-defined]
        table.add_row(finding.got, str(len(rows)), examples, finding.reason, finding.upstream)
    out.print(table)  # type: ignore[attr-defined]
