"""Buildkite ``parallelism``: each job keeps only its slice of the collected tests.

The slice (``BUILDKITE_PARALLEL_JOB`` of ``BUILDKITE_PARALLEL_JOB_COUNT``) is
chosen by a stable hash of the node id, the same on every machine and run.
Locally, use pytest-xdist (``-n auto``) instead.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest

__all__ = ["SHARD_COUNT_ENV", "SHARD_ENV", "select_shard", "shard_of"]

SHARD_ENV = "BUILDKITE_PARALLEL_JOB"
SHARD_COUNT_ENV = "BUILDKITE_PARALLEL_JOB_COUNT"


def shard_of(nodeid: str, count: int) -> int:
    """The shard (0-based) that runs ``nodeid``: stable across machines and runs."""
    return zlib.crc32(nodeid.encode()) % count


def _shard(environ: Any) -> tuple[int, int] | None:
    raw_job, raw_count = environ.get(SHARD_ENV), environ.get(SHARD_COUNT_ENV)
    if raw_count is None:
        return None
    try:
        job, count = int(raw_job or ""), int(raw_count)
    except ValueError:
        raise pytest.UsageError(
            f"{SHARD_ENV}={raw_job!r} / {SHARD_COUNT_ENV}={raw_count!r}: expected integers"
        ) from None
    if count < 1 or not 0 <= job < count:
        raise pytest.UsageError(f"{SHARD_ENV}={job} is not in 0..{count - 1}")
    return job, count


def select_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = _shard(os.environ)
    if shard is None or shard[1] == 1:
        return
    job, count = shard
    keep = [i for i in items if shard_of(i.nodeid, count) == job]
    drop = [i for i in items if shard_of(i.nodeid, count) != job]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


