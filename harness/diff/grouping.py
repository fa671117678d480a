"""Describing a set of changed cells in a handful of lines.

The changed cells are covered by the shortest conjunctions of cell attributes
(:mod:`harness.diff.attributes`) that hold for no unchanged cell: each is a
group, "where" something changed, such as ``VLLM_BATCH_INVARIANT true ·
weight-only layer``. Inside a group the cells are split by what changed (the
base outcome and the head outcome, as one-line summaries), most cells first:
a reviewer reads a line per group and a line per change in it. The cover is
greedy (each step the shortest, most telling conjunction that covers the most
remaining cells); groups whose descriptions differ in one input's value only
are merged into one (``--linear-backend in {'cutlass', 'marlin'}``), a
disjunction a conjunction cannot write. Where no short conjunction separates
a cell from the unchanged ones, its group says how many unchanged cells match.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

__all__ = ["Change", "Group", "Item", "group_changes"]

#: Conjunctions longer than this are not tried (a description a reviewer can read).
MAX_TERMS = 4
#: Attribute kinds, most telling first (ties in length go to the more telling description).
_RANKS = (
    (" true", 0), (" false", 0), (" invalid", 0), (" unset", 1), ("=", 2),
    ("weight-only layer", 3), ("W4A4 layer", 3), (" installed", 4), (" absent", 4),
    (" mocked ", 5), (" supported", 5), (" unsupported", 5),
    ("family ", 6), ("device ", 6), ("torch FP4", 7),
    ("capability ", 8), ("CUDA ", 9), ("profile ", 10), ("layer ", 11),
)


def _rank(attribute: str) -> int:
    for marker, rank in _RANKS:
        if marker in attribute:
            return rank
    return 12


@dataclasses.dataclass(frozen=True)
class Item:
    """One cell: its key, its attributes, and what changed (``None``: nothing)."""

    key: str
    attributes: frozenset[str]
    change: tuple[str, str] | None


@dataclasses.dataclass(frozen=True)
class Change:
    """One way the cells of a group changed: the base outcome, the head outcome, the cells."""

    base: str
    head: str
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Group:
    """Changed cells described by one conjunction of attributes, split by what changed.

    ``exact``: no unchanged cell has every attribute of ``description`` (else
    ``overlap`` of them do: the description is the closest the attributes allow).
    """

    description: tuple[str, ...]
    keys: tuple[str, ...]
    changes: tuple[Change, ...]
    exact: bool = True
    overlap: int = 0


def _mask(items: Sequence[frozenset[str]], attribute: str) -> int:
    bits = 0
    for index, attrs in enumerate(items):
        if attribute in attrs:
            bits |= 1 << index
    return bits


def group_changes(items: Sequence[Item]) -> list[Group]:
    """The changed items, covered by short descriptions, most cells first."""
    unchanged = [i.attributes for i in items if i.change is None]
    changed = [i for i in items if i.change is not None]
    cache: dict[str, int] = {}

    def outside(attribute: str) -> int:
        if attribute not in cache:
            cache[attribute] = _mask(unchanged, attribute)
        return cache[attribute]

    everyone = (1 << len(unchanged)) - 1
    clauses = _merge_values(_cover(changed, outside, everyone))
    by_key = {i.key: i for i in changed}
    groups = []
    for description, keys, exact, overlap in clauses:
        split: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            change = by_key[key].change
            assert change is not None
            split.setdefault(change, []).append(key)
        changes = tuple(
            Change(base, head, tuple(ks))
            for (base, head), ks in sorted(split.items(), key=lambda kv: -len(kv[1]))
        )
        groups.append(Group(description, tuple(keys), changes, exact, overlap))
    return sorted(groups, key=lambda g: -len(g.keys))


Clause = tuple[tuple[str, ...], tuple[str, ...], bool, int]


def _cover(members: list[Item], outside: Callable[[str], int], everyone: int) -> list[Clause]:
    """Greedy cover of ``members`` by the shortest conjunctions that exclude every unchanged cell:
    ``(description, keys, exact, overlap)`` per clause."""
    remaining = list(members)
    out: list[Clause] = []
    while remaining:
        inside = [m.attributes for m in remaining]
        # every attribute a conjunction may use holds for the first remaining cell and sets
        # it apart from some unchanged cell
        candidates = sorted(
            (a for a in remaining[0].attributes if outside(a) != everyone),
            key=lambda a: (_rank(a), a),
        )
        covers = {a: _mask(inside, a) for a in candidates}
        best: tuple[tuple[int, int, int], tuple[str, ...], int] | None = None
        for size in range(1, min(MAX_TERMS, len(candidates)) + 1):
            for combo in itertools.combinations(candidates, size):
                excluded = everyone
                for attribute in combo:
                    excluded &= outside(attribute)
                    if not excluded:
                        break
                if excluded:
                    continue
                covered = (1 << len(inside)) - 1
                for attribute in combo:
                    covered &= covers[attribute]
                score = (-bin(covered).count("1"), size, sum(_rank(a) for a in combo))
                if best is None or score < best[0]:
                    best = (score, combo, covered)
            if best is not None:
                break
        if best is None:  # unchanged cells have every attribute this one has: name it
            first = remaining[0]
            overlap = everyone
            for attribute in first.attributes:
                overlap &= outside(attribute)
            out.append(((f"cell {first.key}",), (first.key,), False, bin(overlap).count("1")))
            remaining = remaining[1:]
            continue
        _, combo, covered = best
        out.append((combo, tuple(m.key for i, m in enumerate(remaining) if covered >> i & 1),
                    True, 0))
        remaining = [m for i, m in enumerate(remaining) if not covered >> i & 1]
    return out


def _merge_values(clauses: list[Clause]) -> list[Clause]:
    """Exact clauses that differ only in one input's value, as one clause
    (``--linear-backend in {'cutlass', 'marlin'}``): still exact, one line for the reader."""
    merged: dict[tuple[tuple[str, ...], str], list[tuple[str, Clause]]] = {}
    order: list[tuple[tuple[str, ...], str]] = []
    out: list[Clause] = []
    for clause in clauses:
        description, _, exact, _ = clause
        values = [a for a in description if "=" in a]
        if len(values) != 1 or not exact:
            out.append(clause)
            continue
        name, _, value = values[0].partition("=")
        key = (tuple(a for a in description if a != values[0]), name)
        if key not in merged:
            order.append(key)
        merged.setdefault(key, []).append((value, clause))
    for key in order:
        parts = merged[key]
        if len(parts) == 1:
            out.append(parts[0][1])
            continue
        others, name = key
        listed = ", ".join(v for v, _ in parts)
        keys = tuple(k for _, c in parts for k in c[1])
        out.append((others + (f"{name} in {{{listed}}}",), keys, True, 0))
    return out
