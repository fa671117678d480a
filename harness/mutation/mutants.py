"""cosmic-ray's mutants, located and named: generation, the stable key, shards.

cosmic-ray generates the mutants (its operators, its in-place mutation of a
text); each is kept when it falls inside the units the scope names, outside
annotations a module never evaluates, and is described as the line it
changes. The key (file, unit, operator, the changed text) is stable across
unrelated edits, so the lists of equivalents stay valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.mutation import units
from harness.mutation.config import LaneError
from harness.output.atomic import write_atomic

__all__ = [
    "Mutant",
    "generate",
    "mutant_from",
    "mutant_key",
    "number_twins",
    "parse_shard",
    "shard",
    "source_mutants",
]


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One cosmic-ray mutation, located and shown as the line it changes."""

    file: str
    line: int
    unit: str
    operator: str
    occurrence: int
    before: str
    after: str
    #: cosmic-ray's position of the mutated node: (line, col) start and end
    start: tuple[int, int] = (0, 0)
    end: tuple[int, int] = (0, 0)
    #: 1 for the second mutant with the same file, unit, operator and text (the
    #: same line written twice in one function), 2 for the third, ...
    nth: int = 0

    @property
    def key(self) -> str:
        """Stable across unrelated edits: file, unit, operator and the changed text."""
        return mutant_key(self.file, self.unit, self.operator, self.before, self.after, self.nth)

    @property
    def job_id(self) -> str:
        return hashlib.sha1(f"{self.key}#{self.occurrence}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        after = self.after if self.after else "(line removed)"
        nth = f" (#{self.nth})" if self.nth else ""
        return (
            f"{self.file}:{self.line}: [{self.unit}]{nth} {self.operator}: "
            f"{self.before!r} -> {after!r}"
        )


def mutant_key(file: str, unit: str, operator: str, before: str, after: str, nth: int) -> str:
    base = f"{file}::{unit}::{operator}::{before} => {after}"
    return base if nth == 0 else f"{base} #{nth}"


def _changed_text(original: str, mutated: str, line: int) -> tuple[str, str]:
    """The original and mutated text around ``line`` (stripped, lines joined by ' / ')."""
    before, after = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        a=original.splitlines(), b=mutated.splitlines(), autojunk=False
    ).get_opcodes():
        if tag != "equal":
            before += original.splitlines()[i1:i2]
            after += mutated.splitlines()[j1:j2]
    if not before and not after:  # cosmetic: a mutation that prints the same text
        text = original.splitlines()[line - 1]
        return text.strip(), text.strip()
    return (
        " / ".join(s.strip() for s in before if s.strip()),
        " / ".join(s.strip() for s in after if s.strip()),
    )


def _module_mutants(module: str, patterns: Sequence[str], operator_cfg: dict[str, Any],
                    root: Path) -> list[Mutant]:
    return source_mutants((root / module).read_text(), module, patterns, operator_cfg)


def source_mutants(source: str, module: str, patterns: Sequence[str],
                   operator_cfg: dict[str, Any]) -> list[Mutant]:
    """cosmic-ray's mutants of ``source`` inside the units ``patterns`` name (``module``: its name
    in the reports), in cosmic-ray's order (operator, then occurrence)."""
    from cosmic_ray.ast import ast_nodes, get_ast
    from cosmic_ray.commands.init import _operators
    from cosmic_ray.mutating import mutate_code

    unit_spans = units.units_of(source)
    spans = units.annotation_spans(source)
    tree = get_ast(source)
    out = []
    for name, _args, operator in _operators(operator_cfg):
        positions = [pos for node in ast_nodes(tree) for pos in operator.mutation_positions(node)]
        for occurrence, (start, end) in enumerate(positions):
            line = start[0]
            unit = units.unit_at(unit_spans, line)
            if not units.in_scope(unit, patterns) or units.in_annotation(spans, start):
                continue
            mutated = mutate_code(source, operator, occurrence)
            if mutated is None:
                continue
            before, after = _changed_text(source, mutated, line)
            out.append(Mutant(module, line, unit, name, occurrence, before, after, start, end))
    return out


def generate(config: dict[str, Any], root: Path, jobs: int = 1) -> list[Mutant]:
    """Every in-scope mutant of the configured modules, in a stable order.

    Cached in ``reports/mutation/`` under a hash of the configuration, the
    cosmic-ray version and the modules' text (parsing once per mutant is slow).
    """
    import importlib.metadata
    from concurrent.futures import ProcessPoolExecutor

    scope: dict[str, list[str]] = config["mutation"]["scope"]
    modules: list[str] = config["cosmic-ray"]["module-path"]
    missing = sorted(set(modules) ^ set(scope))
    if missing:
        raise LaneError(
            "every module in cosmic-ray.module-path needs a [mutation.scope] entry and vice "
            f"versa: {', '.join(missing)}"
        )
    operator_cfg = config["cosmic-ray"].get("operators", {})
    digest = hashlib.sha1(json.dumps(
        [importlib.metadata.version("cosmic-ray"), scope, modules, operator_cfg,
         [(root / m).read_text() for m in modules], _lane_code()]
    ).encode()).hexdigest()[:16]
    cache = root / "reports" / "mutation" / f"mutants-{digest}.json"
    if cache.exists():
        return [mutant_from(m) for m in json.loads(cache.read_text())]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        parts = pool.map(_module_mutants, modules, [scope[m] for m in modules],
                         [operator_cfg] * len(modules), [root] * len(modules))
        out = [m for part in parts for m in part]
    out.sort(key=lambda m: (modules.index(m.file), m.line, m.operator, m.occurrence))
    out = number_twins(out)
    write_atomic(cache, json.dumps([dataclasses.asdict(m) for m in out]), create_folder=True)
    return out


def _lane_code() -> str:
    """The text of the code that generates mutants (part of the cache key)."""
    return Path(__file__).read_text() + Path(units.__file__).read_text()


def number_twins(mutants: Sequence[Mutant]) -> list[Mutant]:
    """Set ``nth`` on the second, third, ... mutant with the same key (in the given order)."""
    out = list(mutants)
    seen: dict[str, int] = {}
    for i, m in enumerate(out):
        n = seen.get(m.key, 0)
        seen[m.key] = n + 1
        if n:
            out[i] = dataclasses.replace(m, nth=n)
    return out


def mutant_from(data: dict[str, Any]) -> Mutant:
    return Mutant(**{**data, "start": tuple(data["start"]), "end": tuple(data["end"])})


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``; ``"buildkite"`` reads ``BUILDKITE_PARALLEL_JOB(_COUNT)``."""
    if text == "buildkite":
        job = os.environ.get("BUILDKITE_PARALLEL_JOB", "0")
        jobs = os.environ.get("BUILDKITE_PARALLEL_JOB_COUNT", "1")
        text = f"{job}/{jobs}"
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise LaneError(f"--shard takes INDEX/COUNT (e.g. 0/8), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise LaneError(f"--shard {text}: need 0 <= INDEX < COUNT")
    return index, count


def shard(mutants: Sequence[Mutant], index: int, count: int) -> list[Mutant]:
    """Round-robin slice ``index`` of ``count``: every file spread over every shard."""
    return [m for i, m in enumerate(mutants) if i % count == index]
