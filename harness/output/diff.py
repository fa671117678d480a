"""A diff, rendered: lines for the terminal, Markdown for a pull request, JSON for tools.

Every group is a line a reviewer reads (where it changed, from what, to what,
how many cells), with an example cell and the ``explain`` command that shows
that cell on either side.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import Any

from harness.diff.accept import Acceptance
from harness.diff.changes import Diff
from harness.diff.grouping import Change, Group
from harness.evaluate.cells import Cell
from harness.output.markdown import markdown_table

__all__ = ["DiffReport", "explain_command", "markdown", "terminal_lines", "to_json"]

#: Cells listed per group in the Markdown (the JSON has them all).
MAX_CELLS_PER_GROUP = 20


@dataclasses.dataclass(frozen=True)
class DiffReport:
    """Everything one diff says: the sides, the matrix, the changes, what is accepted."""

    target: str
    matrix: tuple[str, ...]
    base: dict[str, Any]
    head: dict[str, Any]
    base_prefix: str
    head_prefix: str
    cells: int
    diff: Diff
    acceptance: Acceptance | None = None
    #: each side's mutant, for the ``explain`` command that replays a cell there
    base_mutant: str | None = None
    head_mutant: str | None = None

    @property
    def unaccepted(self) -> list[str]:
        """The changed cells no accept entry covers."""
        accepted = self.acceptance.accepted if self.acceptance else {}
        return [c.cell.nodeid for c in self.diff.changes if c.cell.nodeid not in accepted]

    @property
    def ok(self) -> bool:
        stale = self.acceptance.stale if self.acceptance else ()
        return not self.unaccepted and not stale

    def one_side_line(self) -> str | None:
        """The cells only one side ran (a mutant without detection, a cell one engine cannot
        run): never compared, and said so."""
        keys = self.diff.only_one_side
        if not keys:
            return None
        shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        return (f"not compared: {plural(len(keys), 'cell')} ran on one side only "
                f"(in the --json report): {shown}")

    def verdict(self) -> str:
        d = self.diff
        if not d.changes:
            return f"NO CHANGE: {plural(self.cells, 'cell')}, the same on both sides"
        accepted = len(self.acceptance.accepted) if self.acceptance else 0
        stale = len(self.acceptance.stale) if self.acceptance else 0
        word = "CHANGED (all accepted)" if self.ok else "CHANGED"
        extra = f", {plural(stale, 'stale accept entry', 'stale accept entries')}" if stale else ""
        return (
            f"{word}: {len(d.changes)} of {plural(self.cells, 'cell')} in "
            f"{plural(len(d.groups), 'group')}, {accepted} accepted{extra}"
        )


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 cell``, ``2 cells``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def explain_command(
    prefix: str, matrix: Sequence[str], target: str, cell: Cell, mutant: str | None = None
) -> str:
    """The ``explain`` command line that shows ``cell`` on one side."""
    parts = [prefix, "explain", *(shlex.quote(m) for m in matrix), "--target", target,
             "--gpu", cell.profile]
    parts += [f"--env {shlex.quote(f'{k}={v}')}" for k, v in cell.env]
    if cell.packages is not None:
        parts.append(f"--packages {shlex.quote(','.join(cell.packages))}")
    parts.append(f"--layer {cell.layer}")
    for name, ok, reason in cell.mocks:
        verdict = "yes" if ok else f"no:{reason}" if reason else "no"
        parts.append(f"--mock {shlex.quote(f'{name}={verdict}')}")
    if mutant is not None:
        parts.append(f"--mutant {shlex.quote(mutant)}")
    return " ".join(parts)


def _where(group: Group) -> str:
    text = " · ".join(group.description)
    if group.exact:
        return text
    return f"{text} (its attributes are also those of {group.overlap} unchanged cells)"


#: Changes listed per group on the terminal (Markdown and JSON list them all).
MAX_CHANGES_SHOWN = 4


def _commands(report: DiffReport, change: Change) -> tuple[str, str, str]:
    cell = report.diff.change_of(change.keys[0]).cell
    return (
        cell.nodeid,
        explain_command(report.base_prefix, report.matrix, report.target, cell,
                        report.base_mutant),
        explain_command(report.head_prefix, report.matrix, report.target, cell,
                        report.head_mutant),
    )


def _accepted(report: DiffReport, keys: Sequence[str]) -> str | None:
    """The reason every one of ``keys`` is accepted for, when one entry accepts them all."""
    if report.acceptance is None:
        return None
    accepted = report.acceptance.accepted
    reasons = {accepted[k][1].reason for k in keys if k in accepted}
    if len(reasons) == 1 and all(k in accepted for k in keys):
        return reasons.pop()
    return None


def terminal_lines(report: DiffReport) -> list[str]:
    """The diff for a terminal or a CI log: a line per group, a few per change in it."""
    lines = [
        f"base : {report.base['target']} ({report.base_prefix})",
        f"head : {report.head['target']} ({report.head_prefix})",
        f"cells: {report.cells} of {', '.join(report.matrix)}",
    ]
    if (one_side := report.one_side_line()) is not None:
        lines.append(one_side)
    for side in (report.base, report.head):
        lines += [f"note ({side['label']}): {n}" for n in side.get("notes", [])]
    for index, group in enumerate(report.diff.groups, 1):
        lines += ["", f"[{index}] {plural(len(group.keys), 'cell')} where {_where(group)}:"]
        for change in group.changes[:MAX_CHANGES_SHOWN]:
            cell, base_cmd, head_cmd = _commands(report, change)
            accepted = _accepted(report, change.keys)
            lines += [
                f"  {len(change.keys)} x {change.base}",
                f"      -> {change.head}",
                f"      e.g. {cell}",
                f"      base: {base_cmd}",
                f"      head: {head_cmd}",
            ]
            if accepted:
                lines.append(f"      accepted: {accepted}")
        hidden = group.changes[MAX_CHANGES_SHOWN:]
        if hidden:
            lines.append(f"  ... and {plural(sum(len(c.keys) for c in hidden), 'cell')} in "
                         f"{plural(len(hidden), 'more change')} (in --markdown and --json)")
    if report.acceptance is not None:
        lines += [f"STALE {s}" for s in report.acceptance.stale]
    lines += ["", report.verdict()]
    return lines


def markdown(report: DiffReport) -> str:
    """The diff as a pull-request comment or a Buildkite annotation."""
    status = "✅" if report.ok else "❌"
    out = [
        f"## {status} NVFP4 selection diff: {report.base['target']} → {report.head['target']}",
        "",
        f"{report.verdict()}",
        "",
        f"Matrix: `{'`, `'.join(report.matrix)}`.",
        "",
    ]
    if (one_side := report.one_side_line()) is not None:
        out += [one_side, ""]
    if report.diff.groups:
        rows = []
        for index, group in enumerate(report.diff.groups, 1):
            for change in group.changes:
                accepted = _accepted(report, change.keys)
                rows.append([str(index), _where(group), str(len(change.keys)), change.base,
                             change.head, f"✅ {accepted}" if accepted else "❌"])
        out.append(markdown_table(["#", "where", "cells", "base", "head", "accepted"], rows))
        out.append("")
        for index, group in enumerate(report.diff.groups, 1):
            out += [f"<details><summary>[{index}] {plural(len(group.keys), 'cell')} where "
                    f"{_where(group)}</summary>", ""]
            for change in group.changes:
                _, base_cmd, head_cmd = _commands(report, change)
                out += [f"{len(change.keys)} x `{change.base}` → `{change.head}`", "",
                        "```", base_cmd, head_cmd, "```", ""]
                shown = change.keys[:MAX_CELLS_PER_GROUP]
                out += [f"- `{k}`" for k in shown]
                if len(change.keys) > len(shown):
                    out.append(f"- ... and {len(change.keys) - len(shown)} more (in the JSON)")
                out.append("")
            out += ["</details>", ""]
    if report.acceptance is not None and report.acceptance.stale:
        out += ["### Stale accept entries", ""] + [f"- {s}" for s in report.acceptance.stale]
    return "\n".join(out).rstrip() + "\n"


def to_json(report: DiffReport) -> dict[str, Any]:
    """Every changed cell and every group, as data."""
    groups = []
    for group in report.diff.groups:
        changes = []
        for change in group.changes:
            _, base_cmd, head_cmd = _commands(report, change)
            changes.append({
                "base": change.base,
                "head": change.head,
                "cells": list(change.keys),
                "accepted": _accepted(report, change.keys),
                "explain": {"base": base_cmd, "head": head_cmd},
            })
        groups.append({
            "where": list(group.description),
            "exact": group.exact,
            "overlap": group.overlap,
            "cells": list(group.keys),
            "changes": changes,
        })
    return {
        "target": report.target,
        "matrix": list(report.matrix),
        "base": {k: report.base.get(k) for k in ("target", "version", "notes", "seconds")},
        "head": {k: report.head.get(k) for k in ("target", "version", "notes", "seconds")},
        "cells": report.cells,
        "unchanged": report.diff.unchanged,
        "one_side_only": list(report.diff.only_one_side),
        "changed": [c.to_json() for c in report.diff.changes],
        "groups": groups,
        "stale_accepted": list(report.acceptance.stale) if report.acceptance else [],
        "ok": report.ok,
    }


def record(report: DiffReport) -> dict[str, Any]:
    """The diff's figures for the README (``diff --record``): counts, groups and each change's
    two outcomes; no time and no path, so the same comparison writes the same bytes."""
    from harness.output.record import RECORD_FORMAT

    return {
        "record": RECORD_FORMAT,
        "target": report.target,
        "matrix": list(report.matrix),
        "base": {k: report.base.get(k) for k in ("target", "version")},
        "head": {k: report.head.get(k) for k in ("target", "version")},
        "cells": report.cells,
        "one_side_only": len(report.diff.only_one_side),
        "changed": len(report.diff.changes),
        "accepted": len(report.acceptance.accepted) if report.acceptance else 0,
        "ok": report.ok,
        "groups": [
            {
                "where": list(group.description),
                "cells": len(group.keys),
                "changes": [
                    {"base": c.base, "head": c.head, "cells": len(c.keys),
                     "accepted": _accepted(report, c.keys)}
                    for c in group.changes
                ],
            }
            for group in report.diff.groups
        ],
    }
