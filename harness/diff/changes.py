"""What changed between two sides: cell by cell, then grouped and described.

A cell changed when its outcome (the kernel class, or the error: its type and
its text with volatile parts such as object addresses and the sides' own paths
normalised) or what it logged (level and text of each line, in order) differs.
Changed cells are grouped and described by :mod:`harness.diff.grouping`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.diff.attributes import cell_attributes
from harness.diff.grouping import Group, Item, group_changes
from harness.evaluate.cells import Cell
from harness.evaluate.compare import CellResult
from harness.load import Matrix
from harness.targets import Vocabulary

__all__ = ["CellChange", "Diff", "compute", "mismatch_groups", "normalise", "outcome_summary"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def normalise(text: str | None, paths: Sequence[str] = ()) -> str | None:
    """``text`` without what differs between two runs of the same code: object addresses,
    the sides' own folders."""
    if text is None:
        return None
    for path in paths:
        if path:
            text = text.replace(path, "<tree>")
    return _ADDRESS.sub("0x…", text)


def outcome_summary(cell: Mapping[str, Any]) -> str:
    """One line: the kernel class, or the error type and the error's first line."""
    if cell["kind"] == "backend":
        return str(cell["kernel"])
    first = (cell.get("error") or "").splitlines()
    text = first[0] if first else ""
    if cell["kind"] == "crash":
        return f"crash: {text}"
    return f"{cell.get('error_type') or cell['kind']}: {text}"


def _logged(cell: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    return tuple((int(level), str(text)) for level, text in cell.get("logged") or ())


@dataclasses.dataclass(frozen=True)
class CellChange:
    """One changed cell: where, and each side's outcome and log."""

    cell: Cell
    attributes: frozenset[str]
    base: Mapping[str, Any]
    head: Mapping[str, Any]

    @property
    def summary(self) -> tuple[str, str]:
        """Each side's outcome in one line, the cell's own input values written as
        ``<NAME>`` (so cells that differ only by the value their log echoes group together)."""
        base, head = outcome_summary(self.base), outcome_summary(self.head)
        if base == head:  # only the log changed
            base, head = f"{base} (log)", f"{head} (log: {_log_change(self.base, self.head)})"
        return self._generic(base), self._generic(head)

    def _generic(self, text: str) -> str:
        for name, value in self.cell.env:
            if value:
                text = text.replace(f"{name}={value}", f"{name}=<{name}>")
        return text

    def to_json(self) -> dict[str, Any]:
        def side(data: Mapping[str, Any]) -> dict[str, Any]:
            return {
                "kernel": data.get("kernel") if data["kind"] == "backend" else None,
                "error": data.get("error"),
                "error_type": data.get("error_type"),
                "kind": data["kind"],
                "logged": [
                    {"level": logging.getLevelName(level), "text": text}
                    for level, text in _logged(data)
                ],
            }

        return {
            "cell": self.cell.nodeid,
            "profile": self.cell.profile,
            "env": dict(self.cell.env),
            "layer": self.cell.layer,
            "packages": None if self.cell.packages is None else list(self.cell.packages),
            "mocks": {n: ok for n, ok, _ in self.cell.mocks},
            "base": side(self.base),
            "head": side(self.head),
        }


def _log_change(base: Mapping[str, Any], head: Mapping[str, Any]) -> str:
    before, after = _logged(base), _logged(head)
    gone = [t for t in before if t not in after]
    new = [t for t in after if t not in before]
    parts = []
    if gone:
        parts.append("gone " + "; ".join(f"{logging.getLevelName(lv)} {tx}" for lv, tx in gone))
    if new:
        parts.append("new " + "; ".join(f"{logging.getLevelName(lv)} {tx}" for lv, tx in new))
    return ", ".join(parts) or "the same lines in another order"


@dataclasses.dataclass(frozen=True)
class Diff:
    """Every changed cell, the groups that describe them, and how many cells did not change."""

    changes: tuple[CellChange, ...]
    groups: tuple[Group, ...]
    unchanged: int
    only_one_side: tuple[str, ...] = ()

    def change_of(self, key: str) -> CellChange:
        return next(c for c in self.changes if c.cell.nodeid == key)


def _differs(base: Mapping[str, Any], head: Mapping[str, Any], paths: Sequence[str]) -> bool:
    def key(data: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            data["kind"],
            data.get("kernel") if data["kind"] == "backend" else None,
            data.get("error_type"),
            normalise(data.get("error"), paths),
            tuple((lv, normalise(tx, paths)) for lv, tx in _logged(data)),
            tuple(normalise(m, paths) for m in data.get("messages") or ()),
        )

    return key(base) != key(head)


def compute(
    matrix: Matrix,
    vocabulary: Vocabulary,
    cells: Sequence[Cell],
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    paths: Sequence[str] = (),
) -> Diff:
    """Compare the two sides' results over ``cells`` (the matrix's, as both sides ran them)."""
    base_by = {c["key"]: c for c in base["cells"]}
    head_by = {c["key"]: c for c in head["cells"]}
    items, changes = [], []
    for cell in cells:
        b, h = base_by.get(cell.nodeid), head_by.get(cell.nodeid)
        if b is None or h is None:
            continue
        attrs = cell_attributes(matrix, cell, vocabulary.inputs, vocabulary.packages)
        if _differs(b, h, paths):
            change = CellChange(cell, attrs, b, h)
            changes.append(change)
            items.append(Item(cell.nodeid, attrs, change.summary))
        else:
            items.append(Item(cell.nodeid, attrs, None))
    known = {c.nodeid for c in cells}
    one_side = tuple(sorted((set(base_by) ^ set(head_by)) | (set(base_by) - known)))
    return Diff(tuple(changes), tuple(group_changes(items)), len(items) - len(changes), one_side)


def mismatch_groups(
    matrix: Matrix, vocabulary: Vocabulary, results: Sequence[CellResult]
) -> list[Group]:
    """A run's failing cells, described the way a diff describes changes: the oracle's
    expectation is the base, what the code did the head, passing cells the unchanged."""
    items = []
    for r in results:
        attrs = cell_attributes(matrix, r.cell, vocabulary.inputs, vocabulary.packages)
        failed = not r.ok and r.known is None
        change = None
        if failed:
            expected, got = r.expected.summary(), r.actual.summary()
            if expected == got and r.problems:  # the same outcome, judged wrong on another point
                got = f"{got} ({r.problems[0]})"
            change = (expected, got)
        items.append(Item(r.cell.nodeid, attrs, change))
    return group_changes(items)
