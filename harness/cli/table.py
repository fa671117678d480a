"""``nvfp4-matrix table``: every profile under the default env and each single forcing variable."""

from __future__ import annotations

import argparse

from rich.table import Table

from harness.cli.common import add_matrix_argument, console, open_session

__all__ = ["add_parser", "table_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="the selection table for every profile")
    add_matrix_argument(p)
    p.add_argument(
        "--markdown", action="store_true", help="print a markdown table (for the README)"
    )
    p.set_defaults(func=table_command)


def table_command(args: argparse.Namespace) -> int:
    from harness.evaluate.table import selection_table
    from harness.output.markdown import markdown_table
    from harness.output.table import table_rows_text

    table = selection_table(open_session(args)[0])
    rows = table_rows_text(table)
    if args.markdown:
        print(markdown_table(list(table.headers), rows))
    else:
        rich_table = Table(
            title="NVFP4 selection: profile x environment -> backend (default layer)",
            title_justify="left",
        )
        for header in table.headers:
            rich_table.add_column(header, overflow="fold")
        for row in rows:
            rich_table.add_row(*row)
        console().print(rich_table)
    if table.disagreements:
        print(
            f"{table.disagreements} cells (marked ≠) disagree with the matrix rules: run `nvfp4-matrix run`"
        )
        return 1
    return 0
