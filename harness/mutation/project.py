"""The project's mutation lane: how much of the selection code can change without the matrix noticing?

cosmic-ray generates the mutants (its operators, its work items and session
database, its in-place apply-and-restore) for the files named in
``mutation/cosmic-ray.toml``; this lane keeps the mutants inside the selection
code (``[mutation.scope]``), splits them into shards, and kills each one in a
process forked from a parent that has already imported torch:

1. the matrix (a :class:`~harness.evaluate.session.Session` on the shipped
   ``matrix/*.yaml``, as ``nvfp4-matrix run`` evaluates it): any mismatch,
   loader error or crash kills;
2. the fast unit tests (``[mutation] tests``), only for mutants the matrix let
   through.

A mutant neither stage kills must be listed in ``mutation/equivalents.yaml``
with a one-line reason; any other survivor fails the lane, named by file,
line and mutation. Each shard works in its own copy of the source tree, so
shards run side by side (``--jobs``) or one per Buildkite job (``--shard``).

    python -m harness.mutation run                   # every mutant, one process per core
    python -m harness.mutation run --shard 3/8       # one shard (Buildkite: --shard buildkite)
    python -m harness.mutation run --ci              # the fixed part CI runs
    python -m harness.mutation list [--shard 3/8]    # the mutants, without running them
    python -m harness.mutation kill                  # both stages once (cosmic-ray's test-command)

Run from the project's checkout. Reports go to ``reports/mutation/`` (one JSON
per shard, ``summary.md``). Exit status: 0 when every non-equivalent mutant is
killed, 1 otherwise, 2 for bad usage or a red baseline (the unmutated code must
pass both stages).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.mutation.cli import command_parser, report_tag, run_command
from harness.mutation.config import LaneError, checkout, load_config, need_cosmic_ray
from harness.mutation.equivalents import load_equivalents
from harness.mutation.kill import (
    KILLED_BY_MATRIX,
    KILLED_BY_TESTS,
    SURVIVED,
    forked,
    job_count,
    kill_each,
    run_parts,
    write_shard_report,
)
from harness.mutation.mutants import Mutant, generate, mutant_from, parse_shard, shard
from harness.mutation.score import markdown, score, summary_text, write_record
from harness.output.atomic import write_atomic

__all__ = ["main", "matrix_stage", "tests_stage"]

#: The equivalents file (in ``mutation/``) and the reports folder (in ``reports/``).
EQUIVALENTS = "equivalents.yaml"
#: How a process of ``run --jobs N`` is started: ``python -m harness.mutation _part ...``.
ENTRY = "harness.mutation"
REPORTS = "mutation"
#: What a shard's private copy of the tree holds (enough for the matrix and the tests).
COPIED = ("kernels", "harness", "matrix", "tests", "pyproject.toml")


def _preload() -> None:
    """Import the heavy third-party modules once, before any fork (never ``kernels``/``harness``)."""
    import hypothesis  # noqa: F401
    import ml_dtypes  # noqa: F401
    import pydantic  # noqa: F401
    import pytest  # noqa: F401
    import rich  # noqa: F401
    import torch  # noqa: F401
    import yaml  # noqa: F401


def matrix_stage(root: Path) -> str | None:
    """Check the matrix's cells, stopping at the first failure.

    ``None`` when every cell passes, else the failure in one line. The golden
    cases go first, then every sweep's cells in a strided order, so that the
    first hundred cells already span every profile, variable and layer.
    """
    from harness.errors import HarnessError
    from harness.evaluate.session import Session
    from harness.load import default_matrix_paths, load_matrix

    try:
        session = Session(load_matrix(default_matrix_paths(root)))
    except HarnessError as exc:
        return f"matrix refused: {str(exc).splitlines()[0]}"
    cells = session.cells()
    cases = [c for c in cells if c.golden is not None]
    rest = [c for c in cells if c.golden is None]
    stride = 61
    ordered = cases + [c for start in range(stride) for c in rest[start::stride]]
    result = session.run(ordered, fail_fast=True)
    if result.ok:
        return None
    first = result.failures[0] if result.failures else None
    where = f"{first.cell.nodeid}: {first.problems[0]}" if first else "stale known failure"
    return f"cell {where}"


def tests_stage(root: Path, tests: Sequence[str]) -> str | None:
    """Run the fast unit tests; ``None`` when green, else the failing test ids."""
    import pytest

    class Failures:
        def __init__(self) -> None:
            self.ids: list[str] = []

        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.failed:
                self.ids.append(report.nodeid)

        def pytest_collectreport(self, report: Any) -> None:
            if report.failed:
                self.ids.append(f"collecting {report.nodeid}")

    failures = Failures()
    args = ["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(root), *tests]
    with open(os.devnull, "w") as sink:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = sink
        try:
            code = pytest.main(args, plugins=[failures])
        finally:
            sys.stdout, sys.stderr = stdout, stderr
    if code == 0:
        return None
    return "failed: " + (", ".join(failures.ids) or f"pytest exit code {int(code)}")


def kill_in_process(root: Path, tests: Sequence[str], result_file: Path | None) -> int:
    """Both stages, here; returns the exit code and writes the detail to ``result_file``."""
    os.chdir(root)
    sys.path.insert(0, str(root))
    os.environ.setdefault("TRITON_INTERPRET", "1")
    try:
        detail = matrix_stage(root)
    except BaseException as exc:  # a mutant may break anything, even the import
        detail = f"matrix crashed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    code = KILLED_BY_MATRIX
    if detail is None:
        try:
            detail = tests_stage(root, tests)
        except BaseException as exc:
            detail = f"tests crashed: {type(exc).__name__}: {exc}"
        code = SURVIVED if detail is None else KILLED_BY_TESTS
    if result_file is not None:
        result_file.write_text(detail or "")
    return code


def kill_forked(root: Path, tests: Sequence[str], timeout: float, scratch: Path) -> tuple[str, str]:
    """Fork, run both stages in the child, return ``(verdict, detail)``."""
    return forked(lambda result_file: kill_in_process(root, tests, result_file), timeout, scratch)


def _copy_tree(dest: Path, root: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def run_shard(
    mutants: Sequence[Mutant], config: dict[str, Any], label: str, out: Path, progress: bool,
    root: Path,
) -> dict[str, Any]:
    """Kill ``mutants`` in a private copy of the tree; write and return the shard's results."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import use_mutation

    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tests = config["mutation"]["tests"]
    _preload()
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nvfp4-mutation-") as tmp:
        work = Path(tmp) / "tree"
        work.mkdir()
        _copy_tree(work, root)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            t0 = time.monotonic()
            verdict, detail = kill_forked(work, tests, 600.0, Path(tmp))
            baseline = time.monotonic() - t0
            if verdict != "survived":
                raise LaneError(f"the unmutated code does not pass the kill stages ({verdict}: {detail})")
            timeout = max(60.0, 10 * baseline)

            def kill(mutant: Mutant) -> tuple[str, str, str, str]:
                operator = cosmic_ray.plugins.get_operator(mutant.operator)()
                with use_mutation(Path(mutant.file), operator, mutant.occurrence) as (orig, mutated):
                    if mutated is None:
                        raise LaneError(f"cosmic-ray no longer applies {mutant.describe()}")
                    verdict, detail = kill_forked(work, tests, timeout, Path(tmp))
                return verdict, detail, orig, mutated

            results = kill_each(mutants, label, out, progress, kill)
        finally:
            os.chdir(cwd)
    return write_shard_report(out, label, mutants, started, baseline, results)


def _select(args: argparse.Namespace, config: dict[str, Any]) -> tuple[list[Mutant], str, bool]:
    mutants = generate(config, checkout().root,
                       jobs=getattr(args, "jobs", None) or os.cpu_count() or 1)
    if args.ci:
        spec = config["mutation"]["ci_shard"]
    else:
        spec = args.shard or "0/1"
    index, count = parse_shard(spec)
    selected = shard(mutants, index, count)
    match = getattr(args, "match", None)
    if match:
        selected = [m for m in selected if any(text in m.describe() for text in match)]
        return selected, f"shard {index}/{count} matching {' or '.join(map(repr, match))}", False
    return selected, f"shard {index}/{count}", count == 1


def cmd_list(args: argparse.Namespace) -> int:
    need_cosmic_ray()
    config = load_config(checkout().config)
    mutants, label, _ = _select(args, config)
    for m in mutants:
        print(m.describe())
    print(f"{len(mutants)} mutants ({label})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    need_cosmic_ray()
    here = checkout()
    config = load_config(here.config)
    mutants, label, complete = _select(args, config)
    equivalents = load_equivalents(here.mutation / EQUIVALENTS)
    jobs = job_count(args.jobs, mutants)
    reports = here.reports(REPORTS)
    reports.mkdir(parents=True, exist_ok=True)
    tag = report_tag(label)
    started = time.monotonic()
    print(f"mutation lane: {len(mutants)} mutants ({label}) in {jobs} process(es)", flush=True)
    parts = run_parts(
        mutants, jobs, reports, tag, label, args.quiet, ENTRY,
        lambda todo, part_label, out: run_shard(todo, config, part_label, out,
                                                not args.quiet, here.root),
    )
    results = [r for rep in parts for r in rep["results"]]
    s = score(results, equivalents, complete)
    text = summary_text(s, label, time.monotonic() - started)
    write_atomic(reports / "summary.md", markdown(s, results, label), create_folder=True)
    print(text)
    if complete:  # the README's figures come from the last complete run (tools/readme.py)
        import importlib.metadata
        import platform

        import torch

        ci_index, ci_count = parse_shard(config["mutation"]["ci_shard"])
        facts = {
            "cosmic-ray": importlib.metadata.version("cosmic-ray"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ci_shard": {"shard": config["mutation"]["ci_shard"],
                         "mutants": len(shard(mutants, ci_index, ci_count))},
        }
        print(f"record: {write_record(here.records, 'mutation', s, **facts)}")
    return 0 if s.ok else 1


def cmd_part(args: argparse.Namespace) -> int:
    """One process of ``run --jobs N``: the mutants listed in ``args.todo``."""
    here = checkout()
    config = load_config(here.config)
    mutants = [mutant_from(m) for m in json.loads(Path(args.todo).read_text())]
    run_shard(mutants, config, args.label, Path(args.out), not args.quiet, here.root)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    """Both kill stages on the tree as it is (cosmic-ray's test-command): 0 = survived."""
    here = checkout()
    config = load_config(here.config)
    code = kill_in_process(here.root, config["mutation"]["tests"], None)
    return 0 if code == SURVIVED else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = command_parser("python -m harness.mutation", __doc__.splitlines()[0], shards=True)
    sub.add_parser("kill", help="(cosmic-ray's test command) the unit-test stage on the "
                   "mutant cosmic-ray applied")
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "list": cmd_list, "_part": cmd_part, "kill": cmd_kill}
    return run_command(commands, args, "mutation lane")
