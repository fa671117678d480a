"""The project's mutation lane's logic (:mod:`harness.mutation`): units, scope, shards,
equivalents, verdict.

These parts need neither cosmic-ray nor a run; the lane itself (``tox -e
mutation``) exercises the rest on every CI run through its fixed shard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mutation.cli import report_tag
from harness.mutation.config import LaneError, checkout, load_config
from harness.mutation.equivalents import load_equivalents
from harness.mutation.mutants import Mutant, parse_shard, shard
from harness.mutation.score import score, summary_text
from harness.mutation.units import annotation_spans, in_annotation, in_scope, unit_at, units_of
from tests.support.paths import ROOT

HERE = checkout(ROOT)

SOURCE = '''\
from __future__ import annotations

LIMIT: tuple[int, int] = (12, 8)


class Backend:
    """Doc."""

    name = "x"
    FAMILIES = (10, 12)

    @classmethod
    def is_supported(cls, platform: str | None = None) -> bool:
        check = lambda p: p == "cuda"
        return check(platform)

    def _apply(self) -> int:
        return 1 + 2
'''


def test_units_name_functions_methods_and_attributes() -> None:
    units = units_of(SOURCE)
    at = {line: unit_at(units, line) for line in range(1, SOURCE.count("\n") + 1)}
    assert at[3] == "LIMIT"
    assert at[9] == "Backend.name" and at[10] == "Backend.FAMILIES"
    assert at[12] == at[14] == "Backend.is_supported"  # the decorator and the lambda belong to it
    assert at[18] == "Backend._apply"


def test_scope_patterns() -> None:
    assert in_scope("Backend.is_supported", ["Backend.*"])
    assert in_scope("LIMIT", ["*"])
    assert not in_scope("Backend._apply", ["Backend.is_supported", "Backend.FAMILIES"])


def test_annotations_are_spans_only_under_lazy_annotations() -> None:
    spans = annotation_spans(SOURCE)
    assert in_annotation(spans, (3, 7))  # tuple[int, int]
    assert in_annotation(spans, (13, 40))  # str | None
    assert not in_annotation(spans, (18, 15))  # 1 + 2
    eager = SOURCE.replace("from __future__ import annotations\n", "")
    assert annotation_spans(eager) == []


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", (0, 1)), ("3/8", (3, 8)), ("7/8", (7, 8))]
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "-1/8", "1/0", "3", "a/b"])
def test_parse_shard_refuses_bad_values(text: str) -> None:
    with pytest.raises(LaneError, match="--shard"):
        parse_shard(text)


def test_buildkite_shard_comes_from_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB", "5")
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB_COUNT", "8")
    assert parse_shard("buildkite") == (5, 8)


def _mutant(line: int, after: str = "b", unit: str = "f", nth: int = 0):
    return Mutant("kernels/x.py", line, unit, "core/Op", 0, "a", after, (line, 0), (line, 1), nth)


def test_shards_partition_the_mutants() -> None:
    mutants = [_mutant(i, after=str(i)) for i in range(1, 24)]
    shards = [shard(mutants, i, 5) for i in range(5)]
    assert sorted(m.line for s in shards for m in s) == list(range(1, 24))
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1


def test_keys_survive_line_moves_and_tell_twins_apart() -> None:
    assert _mutant(10).key == _mutant(99).key
    assert _mutant(10).key != _mutant(10, nth=1).key
    assert "kernels/x.py:10: [f] core/Op: 'a' -> 'b'" == _mutant(10).describe()


def _equivalents(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "equivalents.yaml"
    path.write_text(body)
    return path


def test_equivalents_need_every_field_and_a_one_line_reason(tmp_path: Path) -> None:
    good = _equivalents(tmp_path, (
        "equivalent:\n"
        "  - {file: kernels/x.py, unit: f, operator: core/Op, before: a, after: b, reason: same}\n"
    ))
    (entry,) = load_equivalents(good)
    assert entry.key == _mutant(1).key and entry.line == 2
    missing = _equivalents(tmp_path, "equivalent:\n  - {file: kernels/x.py, unit: f}\n")
    with pytest.raises(LaneError, match="equivalents.yaml:2: an equivalent needs"):
        load_equivalents(missing)
    two_lines = _equivalents(tmp_path, (
        "equivalent:\n  - {file: k, unit: f, operator: o, before: a, after: b, reason: \"x\\ny\"}\n"
    ))
    with pytest.raises(LaneError, match="'reason' must be one line"):
        load_equivalents(two_lines)


def _result(mutant, verdict: str) -> dict:
    import dataclasses

    return {**dataclasses.asdict(mutant), "key": mutant.key, "verdict": verdict, "detail": "d"}


def test_score_counts_and_names_every_survivor(tmp_path: Path) -> None:
    eq_path = _equivalents(tmp_path, (
        "equivalent:\n"
        "  - {file: kernels/x.py, unit: f, operator: core/Op, before: a, after: '3', reason: r}\n"
    ))
    equivalent_entries = load_equivalents(eq_path)
    results = [
        _result(_mutant(1, "1"), "matrix"),
        _result(_mutant(2, "2"), "tests"),
        _result(_mutant(3, "3"), "survived"),  # listed: equivalent
        _result(_mutant(4, "4"), "survived"),  # not listed: fails the lane
    ]
    s = score(results, equivalent_entries, complete=True)
    assert (s.total, s.counted, s.by_matrix, s.by_tests) == (4, 3, 1, 1)
    assert [r["line"] for r in s.survivors] == [4] and not s.ok
    text = summary_text(s, "shard 0/1", 1.0)
    assert "matrix alone kills      : 1/3 (33.3%)" in text
    assert "kernels/x.py:4: [f] core/Op: 'a' -> '4'" in text


def test_an_equivalent_that_is_killed_or_unmatched_fails(tmp_path: Path) -> None:
    eq_path = _equivalents(tmp_path, (
        "equivalent:\n"
        "  - {file: kernels/x.py, unit: f, operator: core/Op, before: a, after: '1', reason: r}\n"
        "  - {file: kernels/x.py, unit: g, operator: core/Op, before: a, after: b, reason: r}\n"
    ))
    s = score([_result(_mutant(1, "1"), "matrix")], load_equivalents(eq_path), True)
    assert not s.ok
    assert any("equivalents.yaml:2: listed as equivalent but killed" in x for x in s.stale)
    assert any("equivalents.yaml:3: matches no mutant" in x for x in s.stale)
    partial = score([_result(_mutant(1, "1"), "matrix")], load_equivalents(eq_path), False)
    assert not any("matches no mutant" in x for x in partial.stale)  # one shard sees only part


def test_shipped_configuration_is_consistent() -> None:
    config = load_config(HERE.config)
    modules = config["cosmic-ray"]["module-path"]
    assert sorted(modules) == sorted(config["mutation"]["scope"])
    for module in modules:
        assert (ROOT / module).is_file(), module
    for test in config["mutation"]["tests"]:
        assert (ROOT / test.split("::")[0]).is_file(), test
    parse_shard(config["mutation"]["ci_shard"])
    assert load_equivalents(HERE.mutation / "equivalents.yaml")  # parses, each with a reason


def test_shipped_scope_names_existing_units() -> None:
    """A scope pattern that matches nothing is a stale name (a renamed method)."""
    config = load_config(HERE.config)
    for module, patterns in config["mutation"]["scope"].items():
        units = [name for _, _, name in units_of((ROOT / module).read_text())]
        for pattern in patterns:
            assert any(in_scope(u, [pattern]) for u in units), f"{module}: {pattern}"


def test_report_tags_are_file_names_of_bounded_length() -> None:
    assert report_tag("shard 3/8") == "shard-3-of-8"
    many = "shard 0/1 matching " + " or ".join(repr(f"[unit_{i}]") for i in range(40))
    tag = report_tag(many)
    assert len(tag) <= 80 and "/" not in tag and "'" not in tag and "[" not in tag
    assert tag != report_tag(many + " or 'x'")  # different selections, different files


def test_outside_a_checkout_the_lane_says_so_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for module in ("harness.mutation", "harness.mutation.vllm"):
        run = subprocess.run([sys.executable, "-m", module, "list"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, run.stderr
        (line,) = run.stderr.strip().splitlines()
        assert "run from the project's source checkout" in line or "cosmic-ray" in line, line
