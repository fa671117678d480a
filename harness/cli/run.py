"""``nvfp4-matrix run [MATRIX...]``: evaluate every cell, print the table and a verdict, write reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from harness.cli.common import add_matrix_argument, console, load
from harness.errors import UsageError

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
        "--entry",
        choices=("decide", "init"),
        default="decide",
        help="check decide() (default) or init_nvfp4_linear_kernel() with os.environ set per cell",
    )
    p.add_argument(
        "--mutant", metavar="NAME", help="run a deliberately broken selection (see `mutants`)"
    )
    p.add_argument(
        "--max-failures",
        type=int,
        default=5,
        metavar="N",
        help="mismatches printed in full (default 5; all are in the reports)",
    )
    p.add_argument("--no-table", action="store_true", help="do not print the selection table")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from harness.report import selection_table, table_rows_text, write_junit, write_markdown
    from harness.runner import Runner

    matrix = load(args.matrix)
    select = backends = None
    title = "NVFP4 selection matrix"
    if args.mutant:
        from harness.mutants import get_mutant

        try:
            mutant = get_mutant(args.mutant)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if args.entry == "init":
            raise UsageError("--mutant checks decide() only; drop --entry init")
        select, backends = mutant.build()
        title += f" (mutant {mutant.name}: {mutant.title})"
    runner = Runner(matrix, select=select, backends=backends, entry=args.entry)
    result = runner.run()
    out = console()
    files = [s.name for s in matrix.files]
    out.print(f"[bold]{title}[/bold]  ({', '.join(files)}; entry {args.entry})")

    table = selection_table(runner)
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
    for col in ("group", "cells", "mismatches"):
        groups.add_column(col)
    for group, (n, f) in result.groups().items():
        groups.add_row(group, str(n), f"[red]{f}[/]" if f else "0")
    out.print(groups)

    failures = result.failures
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
    verdict = result.verdict()
    out.print(f"[bold {'green' if result.ok else 'red'}]{verdict}[/]")
    return 0 if result.ok else 1
