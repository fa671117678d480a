"""The mutation lane's own logic (mutation/lane.py): units, scope, shards, equivalents, verdict.

These parts need neither cosmic-ray nor a run; the lane itself (``tox -e
mutation``) exercises the rest on every CI run through its fixed shard.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_lane():
    spec = importlib.util.spec_from_file_location("mutation_lane", ROOT / "mutation" / "lane.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_lane"] = module
    spec.loader.exec_module(module)
    return module


lane = _load_lane()

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
    units = lane.units_of(SOURCE)
    at = {line: lane.unit_at(units, line) for line in range(1, SOURCE.count("\n") + 1)}
    assert at[3] == "LIMIT"
    assert at[9] == "Backend.name" and at[10] == "Backend.FAMILIES"
    assert at[12] == at[14] == "Backend.is_supported"  # the decorator and the lambda belong to it
    assert at[18] == "Backend._apply"


def test_scope_patterns() -> None:
    assert lane.in_scope("Backend.is_supported", ["Backend.*"])
    assert lane.in_scope("LIMIT", ["*"])
    assert not lane.in_scope("Backend._apply", ["Backend.is_supported", "Backend.FAMILIES"])


def test_annotations_are_spans_only_under_lazy_annotations() -> None:
    spans = lane.annotation_spans(SOURCE)
    assert lane.in_annotation(spans, (3, 7))  # tuple[int, int]
    assert lane.in_annotation(spans, (13, 40))  # str | None
    assert not lane.in_annotation(spans, (18, 15))  # 1 + 2
    eager = SOURCE.replace("from __future__ import annotations\n", "")
    assert lane.annotation_spans(eager) == []


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", (0, 1)), ("3/8", (3, 8)), ("7/8", (7, 8))]
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert lane.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "-1/8", "1/0", "3", "a/b"])
def test_parse_shard_refuses_bad_values(text: str) -> None:
    with pytest.raises(lane.LaneError, match="--shard"):
        lane.parse_shard(text)


def test_buildkite_shard_comes_from_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB", "5")
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB_COUNT", "8")
    assert lane.parse_shard("buildkite") == (5, 8)


def _mutant(line: int, after: str = "b", unit: str = "f", nth: int = 0):
    return lane.Mutant("kernels/x.py", line, unit, "core/Op", 0, "a", after, (line, 0), (line, 1), nth)


def test_shards_partition_the_mutants() -> None:
    mutants = [_mutant(i, after=str(i)) for i in range(1, 24)]
    shards = [lane.shard(mutants, i, 5) for i in range(5)]
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
    (entry,) = lane.load_equivalents(good)
    assert entry.key == _mutant(1).key and entry.line == 2
    missing = _equivalents(tmp_path, "equivalent:\n  - {file: kernels/x.py, unit: f}\n")
    with pytest.raises(lane.LaneError, match="equivalents.yaml:2: an equivalent needs"):
        lane.load_equivalents(missing)
    two_lines = _equivalents(tmp_path, (
        "equivalent:\n  - {file: k, unit: f, operator: o, before: a, after: b, reason: \"x\\ny\"}\n"
    ))
    with pytest.raises(lane.LaneError, match="'reason' must be one line"):
        lane.load_equivalents(two_lines)


def _result(mutant, verdict: str) -> dict:
    import dataclasses

    return {**dataclasses.asdict(mutant), "key": mutant.key, "verdict": verdict, "detail": "d"}


def test_score_counts_and_names_every_survivor(tmp_path: Path) -> None:
    eq_path = _equivalents(tmp_path, (
        "equivalent:\n"
        "  - {file: kernels/x.py, unit: f, operator: core/Op, before: a, after: '3', reason: r}\n"
    ))
    equivalents = lane.load_equivalents(eq_path)
    results = [
        _result(_mutant(1, "1"), "matrix"),
        _result(_mutant(2, "2"), "tests"),
        _result(_mutant(3, "3"), "survived"),  # listed: equivalent
        _result(_mutant(4, "4"), "survived"),  # not listed: fails the lane
    ]
    s = lane.score(results, equivalents, complete=True)
    assert (s.total, s.counted, s.by_matrix, s.by_tests) == (4, 3, 1, 1)
    assert [r["line"] for r in s.survivors] == [4] and not s.ok
    text = lane.summary_text(s, "shard 0/1", 1.0)
    assert "matrix alone kills      : 1/3 (33.3%)" in text
    assert "kernels/x.py:4: [f] core/Op: 'a' -> '4'" in text


def test_an_equivalent_that_is_killed_or_unmatched_fails(tmp_path: Path) -> None:
    eq_path = _equivalents(tmp_path, (
        "equivalent:\n"
        "  - {file: kernels/x.py, unit: f, operator: core/Op, before: a, after: '1', reason: r}\n"
        "  - {file: kernels/x.py, unit: g, operator: core/Op, before: a, after: b, reason: r}\n"
    ))
    s = lane.score([_result(_mutant(1, "1"), "matrix")], lane.load_equivalents(eq_path), True)
    assert not s.ok
    assert any("equivalents.yaml:2: listed as equivalent but killed" in x for x in s.stale)
    assert any("equivalents.yaml:3: matches no mutant" in x for x in s.stale)
    partial = lane.score([_result(_mutant(1, "1"), "matrix")], lane.load_equivalents(eq_path), False)
    assert not any("matches no mutant" in x for x in partial.stale)  # one shard sees only part


def test_shipped_configuration_is_consistent() -> None:
    config = lane.load_config()
    modules = config["cosmic-ray"]["module-path"]
    assert sorted(modules) == sorted(config["mutation"]["scope"])
    for module in modules:
        assert (ROOT / module).is_file(), module
    for test in config["mutation"]["tests"]:
        assert (ROOT / test.split("::")[0]).is_file(), test
    lane.parse_shard(config["mutation"]["ci_shard"])
    assert lane.load_equivalents()  # parses, every entry has its reason


def test_shipped_scope_names_existing_units() -> None:
    """A scope pattern that matches nothing is a stale name (a renamed method)."""
    config = lane.load_config()
    for module, patterns in config["mutation"]["scope"].items():
        units = [name for _, _, name in lane.units_of((ROOT / module).read_text())]
        for pattern in patterns:
            assert any(lane.in_scope(u, [pattern]) for u in units), f"{module}: {pattern}"


def test_report_tags_are_file_names_of_bounded_length() -> None:
    assert lane.report_tag("shard 3/8") == "shard-3-of-8"
    many = "shard 0/1 matching " + " or ".join(repr(f"[unit_{i}]") for i in range(40))
    tag = lane.report_tag(many)
    assert len(tag) <= 80 and "/" not in tag and "'" not in tag and "[" not in tag
    assert tag != lane.report_tag(many + " or 'x'")  # different selections, different files
