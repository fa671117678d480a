"""Buildkite parallelism: each job runs its own slice, and the slices cover everything once."""

from __future__ import annotations

import pytest

from harness.plugin.shards import shard_of
from tests.support.paths import plugin_args

pytest_plugins = ["pytester"]

TESTS = "\n".join(f"def test_{i}():\n    pass\n" for i in range(40))


def collected(pytester: pytest.Pytester, env: dict[str, str]) -> set[str]:
    for key, value in env.items():
        pytester._monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(*plugin_args(), "--collect-only", "-q", "-p", "no:cacheprovider")
    return {line for line in result.outlines if "::test_" in line}


def test_shards_partition_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many=TESTS)
    everything = collected(pytester, {})
    assert len(everything) == 40
    slices = [
        collected(pytester, {"BUILDKITE_PARALLEL_JOB": str(j), "BUILDKITE_PARALLEL_JOB_COUNT": "3"})
        for j in range(3)
    ]
    assert set().union(*slices) == everything
    assert sum(len(s) for s in slices) == 40  # disjoint
    assert all(slices), "a shard got nothing: the hash does not spread 40 tests over 3 jobs"
    for job, names in enumerate(slices):
        assert all(shard_of(n, 3) == job for n in names)


def test_bad_shard_variables_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many=TESTS)
    pytester._monkeypatch.setenv("BUILDKITE_PARALLEL_JOB", "5")
    pytester._monkeypatch.setenv("BUILDKITE_PARALLEL_JOB_COUNT", "3")
    result = pytester.runpytest_subprocess(*plugin_args(), "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*BUILDKITE_PARALLEL_JOB=5 is not in 0..2*"])


def test_shard_of_is_stable() -> None:
    assert shard_of("tests/a.py::test_x", 4) == shard_of("tests/a.py::test_x", 4)
    assert {shard_of(f"t::{i}", 4) for i in range(50)} == {0, 1, 2, 3}
