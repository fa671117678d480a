"""The verdict over every shard's results: the score, the survivors, the stale list entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.mutation.equivalents import Equivalent
from harness.mutation.mutants import Mutant, mutant_from

__all__ = ["Score", "describe_result", "markdown", "score", "summary_text", "write_record"]


@dataclasses.dataclass
class Score:
    total: int
    by_matrix: int
    by_tests: int
    equivalent: list[tuple[dict[str, Any], Equivalent]]
    survivors: list[dict[str, Any]]
    #: equivalents that were run and killed (the entry is wrong) or matched no mutant
    stale: list[str]
    #: survivors listed as accepted (behaviour the matrix deliberately does not pin)
    accepted: list[tuple[dict[str, Any], Equivalent]] = dataclasses.field(default_factory=list)

    @property
    def counted(self) -> int:
        """Non-equivalent mutants."""
        return self.total - len(self.equivalent)

    def percent(self, killed: int) -> float:
        return 100.0 * killed / self.counted if self.counted else 100.0

    @property
    def ok(self) -> bool:
        return not self.survivors and not self.stale


def score(results: Sequence[dict[str, Any]], equivalents: Sequence[Equivalent],
          complete: bool, accepted: Sequence[Equivalent] = ()) -> Score:
    """Classify every result; ``complete``: every shard ran (stale entries are then errors).

    ``accepted``: survivors that are listed, with a reason, as behaviour the matrix does
    not pin; they count (they are not equivalent) but do not fail the lane.
    """
    by_key = {e.key: ("equivalent", e) for e in equivalents}
    by_key.update({e.key: ("accepted", e) for e in accepted})
    seen: set[str] = set()
    equivalent: list[tuple[dict[str, Any], Equivalent]] = []
    kept: list[tuple[dict[str, Any], Equivalent]] = []
    survivors: list[dict[str, Any]] = []
    stale: list[str] = []
    by_matrix = by_tests = 0
    for r in results:
        kind, entry = by_key.get(r["key"], ("", None))
        if entry is not None:
            seen.add(entry.key)
        if r["verdict"] == "matrix":
            by_matrix += 1
        elif r["verdict"] == "tests":
            by_tests += 1
        if entry is not None and r["verdict"] != "survived":
            stale.append(f"{entry.source}:{entry.line}: listed as {kind} but killed by the "
                         f"{r['verdict']} ({r['detail']}): remove the entry")
        elif entry is not None:
            (equivalent if kind == "equivalent" else kept).append((r, entry))
        elif r["verdict"] == "survived":
            survivors.append(r)
    if complete:
        for e in [*equivalents, *accepted]:
            if e.key not in seen:
                stale.append(f"{e.source}:{e.line}: matches no mutant the tool generates "
                             f"({e.file} [{e.unit}] {e.operator}): remove or update it")
    return Score(len(results), by_matrix, by_tests, equivalent, survivors, stale, kept)


def describe_result(r: dict[str, Any]) -> str:
    return mutant_from({f.name: r[f.name] for f in dataclasses.fields(Mutant)}).describe()


def summary_text(s: Score, shards: str, seconds: float, *, title: str = "mutation lane",
                 listed_in: str = "mutation/equivalents.yaml", tests_stage: bool = True) -> str:
    """The lane's closing lines; ``tests_stage=False`` for a lane whose only stage is the matrix."""
    lines = [
        f"{title} ({shards}): {s.total} mutants, {len(s.equivalent)} equivalent, "
        f"{s.counted} counted",
        f"  matrix alone kills      : {s.by_matrix}/{s.counted} ({s.percent(s.by_matrix):.1f}%)",
    ]
    if tests_stage:
        lines.append(f"  matrix + unit tests kill: {s.by_matrix + s.by_tests}/{s.counted} "
                     f"({s.percent(s.by_matrix + s.by_tests):.1f}%)")
    if s.accepted:
        lines.append(f"  accepted survivors      : {len(s.accepted)}")
    lines += [
        f"  survivors               : {len(s.survivors)}",
        f"  time                    : {seconds:.0f} s",
    ]
    if s.survivors:
        lines.append(f"SURVIVORS (not killed, not listed in {listed_in}):")
        lines += [f"  {describe_result(r)}" for r in s.survivors]
    if s.stale:
        lines.append("EQUIVALENTS FILE OUT OF DATE:")
        lines += [f"  {x}" for x in s.stale]
    return "\n".join(lines)


def markdown(s: Score, results: Sequence[dict[str, Any]], shards: str, *,
             title: str = "Mutation lane", tests_stage: bool = True) -> str:
    if tests_stage:
        head = "| mutants | equivalent | counted | matrix alone | matrix + tests | survivors |"
        killed = (f"{s.by_matrix} ({s.percent(s.by_matrix):.1f}%) | {s.by_matrix + s.by_tests} "
                  f"({s.percent(s.by_matrix + s.by_tests):.1f}%)")
    else:
        head = "| mutants | equivalent | counted | killed by the matrix | accepted | survivors |"
        killed = f"{s.by_matrix} ({s.percent(s.by_matrix):.1f}%) | {len(s.accepted)}"
    out = [
        f"# {title} ({shards})", "", head, "|---|---|---|---|---|---|",
        f"| {s.total} | {len(s.equivalent)} | {s.counted} | {killed} | {len(s.survivors)} |", "",
    ]
    if s.survivors:
        out += ["## Survivors", ""] + [f"- `{describe_result(r)}`" for r in s.survivors] + [""]
    if s.accepted:
        out += ["## Accepted survivors", ""]
        out += [f"- `{describe_result(r)}`: {e.reason}" for r, e in s.accepted] + [""]
    tests = [r for r in results if r["verdict"] == "tests"]
    if tests:
        out += ["## Killed by the unit tests only", ""]
        out += [f"- `{describe_result(r)}`: {r['detail']}" for r in tests] + [""]
    return "\n".join(out)


def write_record(records: Path, name: str, s: Score, **facts: Any) -> Path:
    """The lane's figures, for the README (no time: the same run writes the same bytes)."""
    from harness.output.atomic import write_json_atomic

    record = {
        "record": 1, "lane": name, **facts, "mutants": s.total, "equivalent": len(s.equivalent),
        "counted": s.counted, "killed_by_matrix": s.by_matrix, "killed_by_tests": s.by_tests,
        "accepted": len(s.accepted), "survivors": len(s.survivors),
    }
    return write_json_atomic(records / f"{name}.json", record, create_folder=True)
