"""``nvfp4-matrix run --record FILE``: the figures of one run, as a small JSON file.

The README quotes figures that only a long lane or an installed engine can
produce (the cells and known failures of each vLLM release line, what the
``vllm-39129`` regression fails). Those lanes write a record of their run into
``docs/records/`` (committed), and ``tools/readme.py`` regenerates the README's
marked blocks from the records; CI checks that the README matches them, so
that a figure never drifts from the run it comes from.

A record holds only what the run decides (counts, the findings, the first
mismatch as printed), never a time or a date, so that running a lane again on
the same code writes the same bytes: a changed record in ``git status`` means
the figures changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.evaluate.session import RunResult
from harness.output.atomic import write_json_atomic

__all__ = ["RECORD_FORMAT", "finding_key", "run_record", "untimed", "write_run_record"]

#: Bumped when a field changes meaning (tools/readme.py refuses other versions).
RECORD_FORMAT = 1


def finding_key(got: str) -> str:
    """A stable key for a known-failure entry across release lines: its ``got`` glob, slugged.

    ``"ValueError: invalid literal for int()*"`` -> ``valueerror-invalid-literal-for-int``.
    """
    return "-".join(re.findall(r"[a-z0-9]+", got.lower()))


def untimed(text: str) -> str:
    """A verdict line without its run time: ``(0.51 s, target ...)`` -> ``(target ...)``."""
    return re.sub(r"\(\d+(?:\.\d+)? s, ", "(", text)


def run_record(
    result: RunResult,
    files: Sequence[str],
    target_name: str,
    target_version: str | None,
    mutant: str | None,
    covers: str | None = None,
) -> dict[str, Any]:
    """The run's figures as plain data (see the module docstring); ``covers``: the releases
    the matrix says it covers (its ``target: versions``)."""
    findings: dict[str, dict[str, Any]] = {}
    for r in result.known:
        known = r.known
        assert known is not None
        entry = findings.setdefault(
            finding_key(known.got), {"got": known.got, "upstream": known.upstream, "cells": 0}
        )
        entry["cells"] += 1
    failures = result.failures
    return {
        "record": RECORD_FORMAT,
        "target": target_name,
        "version": target_version,
        "mutant": mutant,
        "matrix": list(files),
        "covers": covers,
        "ok": result.ok,
        "cells": len(result.results),
        "mismatches": len(failures),
        "known_failures": len(result.known),
        "stale_known": list(result.stale_known),
        "groups": {
            group: {"cells": n, "mismatches": f, "known_failures": k}
            for group, (n, f, k) in result.groups().items()
        },
        "findings": findings,
        "first_mismatch": failures[0].report() if failures else None,
        "verdict": untimed(result.verdict()),
    }


def write_run_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically (its folder must exist)."""
    return write_json_atomic(path, record)
