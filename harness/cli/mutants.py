"""``nvfp4-matrix mutants``: run every deliberately broken selection; each must be caught."""

from __future__ import annotations

import argparse

from rich.table import Table

from harness.cli.common import add_matrix_argument, console, load_with_target, use_engine_path

__all__ = ["add_parser", "mutants_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mutants", help="prove the matrix catches known selection bugs")
    add_matrix_argument(p)
    p.add_argument(
        "--record",
        metavar="FILE",
        help="also write each mutant's run figures as JSON to FILE (for the README)",
    )
    p.set_defaults(func=mutants_command)


def mutants_command(args: argparse.Namespace) -> int:
    from harness.evaluate.session import Session

    use_engine_path(args.engine_path)
    matrix, target = load_with_target(args.matrix, args.target, args.line)
    notice = target.matrix_notice  # another release line's file: its mismatches are expected
    if notice is not None:
        print(f"note: {notice}")
    mutants = list(target.mutants())
    if not mutants:
        print(f"target {target.name} has no built-in mutants")
        return 0
    table = Table(title="Mutants (each must be caught)", title_justify="left")
    for col in ("mutant", "what is broken", "mismatches", "first caught at", "rule", "verdict"):
        table.add_column(col, overflow="fold")
    survivors = 0
    runs: dict[str, object] = {}
    for mutant in mutants:
        result = Session(matrix, target.mutant(mutant.name), lenient=notice is not None).run()
        if args.record:
            from harness.output.record import run_record

            files = [s.name for s in matrix.files]
            covers = matrix.target.versions if matrix.target is not None else None
            runs[mutant.name] = run_record(
                result, files, target.name, target.version(), mutant.name, covers
            )
        failures = result.failures
        first = failures[0] if failures else None
        caught = bool(failures)
        survivors += not caught
        table.add_row(
            mutant.name,
            mutant.title,
            str(len(failures)),
            first.cell.id if first else "-",
            first.rule if first else "-",
            "[green]caught[/]" if caught else "[bold red]SURVIVED[/]",
        )
    console().print(table)
    if args.record:
        from harness.output.record import RECORD_FORMAT, write_run_record

        record = {"record": RECORD_FORMAT, "target": target.name, "version": target.version(),
                  "mutants": runs}
        print(f"record: {write_run_record(args.record, record)}")
    if survivors:
        print(f"{survivors} mutant(s) survived: the matrix misses a known bug class")
        return 1
    print(f"all {len(mutants)} mutants of target {target.name} caught")
    return 0
