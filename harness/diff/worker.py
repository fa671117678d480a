"""One side of a diff, in its own process: every cell's outcome under that side's engine.

``python -m harness.diff.worker REQUEST.json RESULT.json`` loads the matrix
the request names, binds it to the target leniently (the target's objections,
such as a release line's file run against another release, are notes: the
cells still run and what differs shows in them), evaluates every cell through
the :class:`~harness.evaluate.session.Session` and writes, atomically, each
cell's outcome and log lines. The interpreter and ``PYTHONPATH`` the parent
started it with are the side's engine. Progress goes to stderr; the engine's
own prints never reach the result.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_side"]


def _say(label: str, text: str) -> None:
    print(f"{label}: {text}", file=sys.stderr, flush=True)


def run_side(request: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the request's cells; the result as plain data."""
    from harness.evaluate.session import Session
    from harness.load import load_matrix
    from harness.targets import get_target

    label = request.get("label", "side")
    started = time.perf_counter()
    target = get_target(request["target"])
    if request.get("resolve"):  # only which matrix describes this side's engine
        return {"matrix": [str(p) for p in target.default_matrix(Path.cwd(), request.get("line"))],
                "version": target.version()}
    matrix = load_matrix([Path(p) for p in request["matrix"]])
    if request.get("mutant"):
        target = target.mutant(request["mutant"])
    _say(label, f"loading {target.describe()} ...")
    session = Session(matrix, target, lenient=True)
    loaded = time.perf_counter() - started
    cells = session.cells()
    _say(label, f"{target.describe()} loaded in {loaded:.1f} s; {len(cells)} cells ...")
    out = []
    with session.environment():
        for cell in cells:
            outcome = session.evaluate(session.query(cell))
            out.append(
                {
                    "key": cell.nodeid,
                    "kind": outcome.kind,
                    "kernel": outcome.kernel,
                    "error": outcome.error if outcome.kind != "backend" else None,
                    "error_type": outcome.error_type if outcome.kind != "backend" else None,
                    "logged": [list(pair) for pair in outcome.logged or ()],
                    "messages": list(outcome.messages),
                }
            )
    seconds = time.perf_counter() - started
    _say(label, f"{len(out)} cells in {seconds - loaded:.1f} s")
    return {
        "label": label,
        "target": target.describe(),
        "version": target.version(),
        "notes": list(session.notes),
        "cells": out,
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from harness.errors import HarnessError
    from kernels.errors import NvFp4Error

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m harness.diff.worker REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        result = run_side(request)
    except (HarnessError, NvFp4Error) as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"{request.get('label', 'side')}: error: {line}", file=sys.stderr)
        return 2
    from harness.output.atomic import write_atomic

    write_atomic(Path(args[1]), json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
