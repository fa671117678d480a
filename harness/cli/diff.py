"""``nvfp4-matrix diff``: what a change did to the selection, between two versions of an engine.

Each side is an interpreter with the engine installed (``--base-python``,
``--head-python``; default: this one) and/or a source tree put first on its
path (``--base-path``, ``--head-path``: a checkout, or a release unpacked from
its wheel), optionally a mutant of the target (``--head-mutant vllm-39129``).
Both run the same cells (the named matrix, else the base's own release-line
file), no oracle needed. Exit 0 when nothing changed (or every change is
accepted), 1 when a change is not accepted or an accept entry is stale, 2 for
bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import add_matrix_argument, console
from harness.diff.sides import Side

__all__ = ["add_parser", "diff_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="what changed in the selection between two versions of an engine")
    add_matrix_argument(p, engine_path=False)
    for side in ("base", "head"):
        p.add_argument(f"--{side}-python", metavar="PATH",
                       help=f"the {side}'s interpreter, with the engine installed (default: this one)")
        p.add_argument(f"--{side}-path", metavar="DIR", type=Path,
                       help=f"a source tree put first on the {side}'s path (a checkout, or a "
                       "release's Python files)")
        p.add_argument(f"--{side}-mutant", metavar="NAME",
                       help=f"run the {side} as this broken variant of the target")
    p.add_argument("--markdown", metavar="PATH", help="also write the diff as Markdown")
    p.add_argument("--json", metavar="PATH", help="also write every changed cell and group as JSON")
    p.add_argument("--record", metavar="FILE",
                   help="also write the diff's figures as JSON, without times or paths "
                   "(docs/records/, which tools/readme.py turns into the README's figures)")
    p.add_argument("--accept", metavar="FILE", type=Path,
                   help="YAML of the changes this comparison expects, each with its reason")
    p.set_defaults(func=diff_command)


def diff_command(args: argparse.Namespace) -> int:
    from harness.cli._output import write_output_file
    from harness.diff.accept import accepted_changes, load_accepted
    from harness.diff.changes import compute
    from harness.diff.sides import run_sides
    from harness.errors import UsageError
    from harness.evaluate.session import cell_groups
    from harness.load import load_matrix
    from harness.load.yamlsrc import display_path
    from harness.output.diff import DiffReport, markdown, record, terminal_lines, to_json
    from harness.targets import DEFAULT_TARGET, get_target

    sides = [
        Side(label, getattr(args, f"{label}_python"), getattr(args, f"{label}_path"),
             getattr(args, f"{label}_mutant"))
        for label in ("base", "head")
    ]
    if sides[0] == Side("base") and sides[1] == Side("head"):
        raise UsageError("the two sides are the same engine: give --base-* or --head-* options")
    for side in sides:
        side.check()
    entries = load_accepted(args.accept) if args.accept is not None else None

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    line = getattr(args, "line", None)
    if args.matrix:
        if line is not None:
            raise UsageError("--line chooses the target's own matrix: drop the matrix files")
        files = list(args.matrix)
        target_name = args.target or load_matrix([Path(f) for f in files]).target_name
    else:
        target_name = args.target or DEFAULT_TARGET
        (resolved,) = run_sides(sides[:1], {"target": target_name, "resolve": True, "line": line}, say)
        files = [display_path(Path(p)) for p in resolved["matrix"]]
        engine = f"{target_name} {resolved['version']}" if resolved["version"] else target_name
        say(f"base: {engine} is described by {', '.join(files)}")
    target_name = target_name or DEFAULT_TARGET
    matrix = load_matrix([Path(f) for f in files])
    target = get_target(target_name)
    cells = [c for _, group in cell_groups(matrix, target) for c in group]
    base, head = run_sides(sides, {"target": target_name, "matrix": files}, say)
    paths = [str(s.path.resolve()) for s in sides if s.path is not None]
    diff = compute(matrix, target.vocabulary, cells, base, head, paths)
    acceptance = (
        accepted_changes(diff.changes, entries, display_path(args.accept))
        if entries is not None else None
    )
    report = DiffReport(target_name, tuple(files), base, head,
                        _prefix(sides[0]), _prefix(sides[1]),
                        diff.unchanged + len(diff.changes), diff, acceptance,
                        sides[0].mutant, sides[1].mutant)
    out = console()
    for line in terminal_lines(report):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if args.markdown:
        write_output_file(args.markdown, markdown(report))
    if args.json:
        write_output_file(args.json, json.dumps(to_json(report), indent=1))
    if args.record:
        write_output_file(args.record, json.dumps(record(report), indent=1) + "\n")
    return 0 if report.ok else 1


def _prefix(side: Side) -> str:
    return side.command_prefix()
