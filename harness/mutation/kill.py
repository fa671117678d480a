"""Killing mutants: one forked process per mutant, a cosmic-ray session per shard, parts.

Each mutant is killed in a process forked from a parent that has imported
the heavy libraries once; the child's exit code is the verdict. Every mutant
is a work item of a cosmic-ray session database beside the shard's report, so
``cosmic-ray dump`` reads the lane's results. A lane split over several
processes runs each part as ``python -m <lane> _part``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.mutation.config import LaneError
from harness.mutation.mutants import Mutant, shard
from harness.output.atomic import write_atomic

__all__ = [
    "KILLED_BY_MATRIX",
    "KILLED_BY_TESTS",
    "SURVIVED",
    "forked",
    "job_count",
    "kill_each",
    "run_parts",
    "write_shard_report",
]

# Exit codes of the forked kill process.
SURVIVED, KILLED_BY_MATRIX, KILLED_BY_TESTS = 0, 10, 11


def forked(stages: Callable[[Path], int], timeout: float, scratch: Path) -> tuple[str, str]:
    """Run ``stages(result_file)`` in a forked child, its output discarded; ``(verdict, detail)``.

    The child's exit code is the verdict (:data:`SURVIVED`, :data:`KILLED_BY_MATRIX`,
    :data:`KILLED_BY_TESTS`) and ``result_file`` its detail. A child that runs past
    ``timeout`` seconds or dies otherwise counts as killed by the matrix.
    """
    result_file = scratch / "kill-result.txt"
    result_file.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = stages(result_file)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "matrix", f"timed out after {timeout:.0f} s"
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    detail = result_file.read_text() if result_file.exists() else ""
    if code == KILLED_BY_MATRIX:
        return "matrix", detail
    if code == KILLED_BY_TESTS:
        return "tests", detail
    if code == SURVIVED:
        return "survived", ""
    return "matrix", f"the kill process died (exit status {code})"


def kill_each(mutants: Sequence[Mutant], label: str, out: Path, progress: bool,
              kill: Callable[[Mutant], tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    """``kill(mutant)`` -> ``(verdict, detail, original text, mutated text)`` for each mutant.

    Every mutant is a work item of a cosmic-ray session database beside ``out``
    (``.sqlite``: ``cosmic-ray dump`` reads it), with its outcome and diff; the
    results come back as the shard report's entries.
    """
    from cosmic_ray.mutating import _make_diff
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import MutationSpec, TestOutcome, WorkerOutcome, WorkItem, WorkResult

    results: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    session = out.with_suffix(".sqlite")
    session.unlink(missing_ok=True)
    with use_db(str(session), WorkDB.Mode.create) as db:
        for n, mutant in enumerate(mutants, 1):
            spec = MutationSpec(
                module_path=mutant.file, operator_name=mutant.operator,
                occurrence=mutant.occurrence, start_pos=tuple(mutant.start),
                end_pos=tuple(mutant.end), definition_name=mutant.unit,
            )
            db.add_work_item(WorkItem.single(mutant.job_id, spec))
            t0 = time.monotonic()
            verdict, detail, orig, mutated = kill(mutant)
            seconds = time.monotonic() - t0
            db.set_result(mutant.job_id, WorkResult(
                worker_outcome=WorkerOutcome.NORMAL,
                test_outcome=TestOutcome.SURVIVED if verdict == "survived" else TestOutcome.KILLED,
                output=f"{verdict}: {detail}",
                diff="\n".join(_make_diff(orig, mutated, mutant.file)),
            ))
            results.append({**dataclasses.asdict(mutant), "key": mutant.key,
                            "verdict": verdict, "detail": detail,
                            "seconds": round(seconds, 2)})
            if progress:
                print(f"[{label}] {n}/{len(mutants)} {verdict:<8} {mutant.describe()}",
                      flush=True)
    return results


def write_shard_report(out: Path, label: str, mutants: Sequence[Mutant], started: float,
                       baseline: float, results: list[dict[str, Any]],
                       **extra: Any) -> dict[str, Any]:
    report = {"shard": label, "mutants": len(mutants), "seconds": round(time.monotonic() - started, 1),
              "baseline_seconds": round(baseline, 2), "results": results, **extra}
    write_atomic(out, json.dumps(report, indent=1), create_folder=True)
    return report


def job_count(requested: int | None, mutants: Sequence[Mutant]) -> int:
    """Processes for ``run --jobs``: as asked (default one per core), never more than mutants."""
    return max(1, min(requested or os.cpu_count() or 1, len(mutants) or 1))


def run_parts(
    mutants: Sequence[Mutant], jobs: int, reports: Path, tag: str, label: str, quiet: bool,
    module: str, run_here: Callable[[Sequence[Mutant], str, Path], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The shard reports of ``mutants``: killed here by ``run_here(mutants, label, out)`` when
    ``jobs`` is 1, else split over ``jobs`` processes (``python -m MODULE _part TODO OUT LABEL``)."""
    if jobs == 1:
        return [run_here(mutants, label, reports / f"{tag}.json")]
    procs = []
    for j in range(jobs):
        part = shard(mutants, j, jobs)
        todo = reports / f"{tag}-part-{j}-of-{jobs}.todo.json"
        todo.write_text(json.dumps([dataclasses.asdict(m) for m in part]))
        out = reports / f"{tag}-part-{j}-of-{jobs}.json"
        cmd = [sys.executable, "-m", module, "_part", str(todo), str(out),
               f"{label} part {j}/{jobs}"]
        cmd += ["--quiet"] if quiet else []
        procs.append((subprocess.Popen(cmd), out))
    failed = [p.args for p, _ in procs if p.wait() != 0]
    if failed:
        raise LaneError(f"{len(failed)} shard process(es) failed; see their output above")
    missing = [str(out) for _, out in procs if not out.is_file()]
    if missing:  # a process that exits 0 without its report ran nothing
        raise LaneError(f"shard process(es) wrote no report ({', '.join(missing)}): "
                        f"python -m {module} _part ran nothing")
    return [json.loads(out.read_text()) for _, out in procs]
