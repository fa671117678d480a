"""The mutation lane: how much of the selection code can change without the matrix noticing?

cosmic-ray generates the mutants (its operators, its work items and session
database, its in-place apply-and-restore) for the files named in
``mutation/cosmic-ray.toml``; this script keeps the mutants inside the
selection code (``[mutation.scope]``), splits them into shards, and kills each
one in a process forked from a parent that has already imported torch:

1. the matrix (the Runner API on the shipped ``matrix/*.yaml``, as
   ``nvfp4-matrix run`` does): any mismatch, loader error or crash kills;
2. the fast unit tests (``[mutation] tests``), only for mutants the matrix let
   through.

A mutant neither stage kills must be listed in ``mutation/equivalents.yaml``
with a one-line reason; any other survivor fails the lane, named by file,
line and mutation. Each shard works in its own copy of the source tree, so
shards run side by side (``--jobs``) or one per Buildkite job (``--shard``).

    python mutation/lane.py run                      # every mutant, one process per core
    python mutation/lane.py run --shard 3/8          # one shard (Buildkite: --shard buildkite)
    python mutation/lane.py run --ci                 # the fixed part CI runs
    python mutation/lane.py list [--shard 3/8]       # the mutants, without running them
    python mutation/lane.py kill                     # both stages once (cosmic-ray's test-command)

Reports go to ``reports/mutation/`` (one JSON per shard, ``summary.md``).
Exit status: 0 when every non-equivalent mutant is killed, 1 otherwise, 2 for
bad usage or a red baseline (the unmutated code must pass both stages).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mutation" / "cosmic-ray.toml"
EQUIVALENTS = ROOT / "mutation" / "equivalents.yaml"
REPORTS = ROOT / "reports" / "mutation"
#: The committed figures of the last complete run of each lane (tools/readme.py reads them).
RECORDS = ROOT / "docs" / "records"
#: What a shard's private copy of the tree holds (enough for the matrix and the tests).
COPIED = ("kernels", "harness", "matrix", "tests", "pyproject.toml")

# Exit codes of the forked kill process.
SURVIVED, KILLED_BY_MATRIX, KILLED_BY_TESTS = 0, 10, 11


class LaneError(Exception):
    """Bad configuration or usage: one line, exit code 2."""


# --- configuration -------------------------------------------------------------------------------


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: cosmic-ray depends on toml
        import toml

        return toml.loads(path.read_text())
    return tomllib.loads(path.read_text())


# --- units: which function or attribute a line belongs to ----------------------------------------


def units_of(source: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, qualified name)`` of every unit of a module.

    A unit is a function or method (decorators included; nested functions and
    lambdas belong to it), or a class- or module-level statement, named after
    the attribute it assigns (``Class.ATTR``) or ``<module>``/``Class.<body>``.
    """
    out: list[tuple[int, int, str]] = []

    def walk(body: Sequence[ast.stmt], prefix: str) -> None:
        for node in body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            last = node.end_lineno or node.lineno
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((first, last, prefix + node.name))
            elif isinstance(node, ast.ClassDef):
                out.append((first, node.lineno, prefix + node.name))
                walk(node.body, prefix + node.name + ".")
            else:
                out.append((first, last, prefix + _assigned_name(node)))

    walk(ast.parse(source).body, "")
    return out


def _assigned_name(node: ast.stmt) -> str:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return names[0] if names else "<body>"


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations are, when the module never evaluates them.

    Under ``from __future__ import annotations`` an annotation is a string that
    nothing in the selection reads, so a mutant inside one (``str | None`` ->
    ``str % None``) is equivalent by construction: the lane does not generate
    them (it counts them). Empty when the module lacks the future import.
    """
    tree = ast.parse(source)
    lazy = any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not lazy:
        return []
    spans = []
    for node in ast.walk(tree):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for ann in found:
            if ann is not None:
                spans.append(((ann.lineno, ann.col_offset),
                              (ann.end_lineno or ann.lineno, ann.end_col_offset or 0)))
    return spans


def in_annotation(spans: Sequence[tuple[tuple[int, int], tuple[int, int]]],
                  pos: tuple[int, int]) -> bool:
    return any(start <= tuple(pos) < end for start, end in spans)


def unit_at(units: Iterable[tuple[int, int, str]], line: int) -> str:
    """The innermost unit holding ``line`` (``<module>`` when none does)."""
    best: tuple[int, str] | None = None
    for first, last, name in units:
        if first <= line <= last and (best is None or last - first <= best[0]):
            best = (last - first, name)
    return best[1] if best else "<module>"


def in_scope(unit: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(unit, p) for p in patterns)


# --- mutants -------------------------------------------------------------------------------------


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

    units = units_of(source)
    spans = annotation_spans(source)
    tree = get_ast(source)
    out = []
    for name, _args, operator in _operators(operator_cfg):
        positions = [pos for node in ast_nodes(tree) for pos in operator.mutation_positions(node)]
        for occurrence, (start, end) in enumerate(positions):
            line = start[0]
            unit = unit_at(units, line)
            if not in_scope(unit, patterns) or in_annotation(spans, start):
                continue
            mutated = mutate_code(source, operator, occurrence)
            if mutated is None:
                continue
            before, after = _changed_text(source, mutated, line)
            out.append(Mutant(module, line, unit, name, occurrence, before, after, start, end))
    return out


def generate(config: dict[str, Any], root: Path = ROOT, jobs: int = 1) -> list[Mutant]:
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
         [(root / m).read_text() for m in modules], Path(__file__).read_text()]
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
    write_summary(cache, json.dumps([dataclasses.asdict(m) for m in out]))  # whole or absent
    return out


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
        index = os.environ.get("BUILDKITE_PARALLEL_JOB", "0")
        count = os.environ.get("BUILDKITE_PARALLEL_JOB_COUNT", "1")
        text = f"{index}/{count}"
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


# --- equivalents -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Equivalent:
    file: str
    unit: str
    operator: str
    before: str
    after: str
    reason: str
    line: int  # where the entry is written in equivalents.yaml
    nth: int = 0
    #: the name of the file the entry is written in
    source: str = "equivalents.yaml"

    @property
    def key(self) -> str:
        return mutant_key(self.file, self.unit, self.operator, self.before, self.after, self.nth)


#: What an entry of each section of an equivalents file is called in messages.
SECTIONS = {"equivalent": "an equivalent", "accepted": "an accepted survivor"}


def load_equivalents(path: Path = EQUIVALENTS, section: str = "equivalent") -> list[Equivalent]:
    """The entries of one section of an equivalents file (``equivalent``, or ``accepted``:
    survivors that change behaviour the matrix deliberately does not pin)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        data = loader.construct_mapping(node)
        data["__line__"] = node.start_mark.line + 1
        return data

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    data = yaml.load(path.read_text(), Loader=_Loader) or {}
    entries = data.get(section, []) or []
    out = []
    fields = ("file", "unit", "operator", "before", "after", "reason")
    for entry in entries:
        missing = [f for f in fields if not isinstance(entry.get(f), str)]
        extra = sorted(set(entry) - set(fields) - {"__line__", "nth"})
        where = f"{path.name}:{entry['__line__']}"
        if missing or extra:
            raise LaneError(f"{where}: {SECTIONS[section]} needs {', '.join(fields)} (strings); "
                            f"missing {missing or 'none'}, unknown {extra or 'none'}")
        if not entry["reason"].strip() or "\n" in entry["reason"].strip():
            raise LaneError(f"{where}: 'reason' must be one line")
        nth = entry.get("nth", 0)
        if not isinstance(nth, int) or nth < 0:
            raise LaneError(f"{where}: 'nth' is a count (0, 1, ...)")
        out.append(Equivalent(*(entry[f] for f in fields), line=entry["__line__"], nth=nth,
                              source=path.name))
    keys = [e.key for e in out]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise LaneError(f"{path.name}: listed twice: {twice[0]}")
    return out


# --- killing one mutant ------------------------------------------------------------------------


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
    from harness.evaluate.runner import Runner
    from harness.load import default_matrix_paths, load_matrix

    try:
        runner = Runner(load_matrix(default_matrix_paths(root)))
    except HarnessError as exc:
        return f"matrix refused: {str(exc).splitlines()[0]}"
    cells = runner.cells()
    cases = [c for c in cells if c.golden is not None]
    rest = [c for c in cells if c.golden is None]
    stride = 61
    ordered = cases + [c for start in range(stride) for c in rest[start::stride]]
    result = runner.run(ordered, fail_fast=True)
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


# --- one shard -----------------------------------------------------------------------------------


def _copy_tree(dest: Path, root: Path = ROOT) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def run_shard(
    mutants: Sequence[Mutant], config: dict[str, Any], label: str, out: Path, progress: bool
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
        _copy_tree(work)
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
    write_summary(out, json.dumps(report, indent=1))
    return report


# --- the verdict over shards -------------------------------------------------------------------


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
    equivalent, survivors, stale, kept = [], [], [], []
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


def write_summary(path: Path, text: str) -> Path:
    """A summary, report or cache of the lane, written complete or not at all."""
    from harness.output.atomic import write_atomic

    return write_atomic(path, text, create_folder=True)


def write_record(name: str, s: Score, **facts: Any) -> Path:
    """The lane's figures, for the README (no time: the same run writes the same bytes)."""
    from harness.output.atomic import write_json_atomic

    record = {
        "record": 1, "lane": name, **facts, "mutants": s.total, "equivalent": len(s.equivalent),
        "counted": s.counted, "killed_by_matrix": s.by_matrix, "killed_by_tests": s.by_tests,
        "accepted": len(s.accepted), "survivors": len(s.survivors),
    }
    return write_json_atomic(RECORDS / f"{name}.json", record, create_folder=True)


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


# --- commands ------------------------------------------------------------------------------------


def _select(args: argparse.Namespace, config: dict[str, Any]) -> tuple[list[Mutant], str, bool]:
    mutants = generate(config, jobs=getattr(args, "jobs", None) or os.cpu_count() or 1)
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
    config = load_config()
    mutants, label, _ = _select(args, config)
    for m in mutants:
        print(m.describe())
    print(f"{len(mutants)} mutants ({label})")
    return 0


def report_tag(label: str) -> str:
    """A file-name stem for a run's reports: the label, shortened with a hash when long
    (``--match`` patterns can make it longer than a file name may be)."""
    tag = "".join(c if c.isalnum() or c in "._-" else "-" for c in label.replace("/", "-of-"))
    if len(tag) > 80:
        tag = tag[:60] + "-" + hashlib.sha1(label.encode()).hexdigest()[:12]
    return tag


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config()
    mutants, label, complete = _select(args, config)
    equivalents = load_equivalents()
    jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(mutants) or 1))
    REPORTS.mkdir(parents=True, exist_ok=True)
    tag = report_tag(label)
    started = time.monotonic()
    print(f"mutation lane: {len(mutants)} mutants ({label}) in {jobs} process(es)", flush=True)
    reports = run_parts(
        mutants, jobs, REPORTS, tag, label, args.quiet, Path(__file__),
        lambda todo, part_label, out: run_shard(todo, config, part_label, out, not args.quiet),
    )
    results = [r for rep in reports for r in rep["results"]]
    s = score(results, equivalents, complete)
    text = summary_text(s, label, time.monotonic() - started)
    write_summary(REPORTS / "summary.md", markdown(s, results, label))
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
        print(f"record: {write_record('mutation', s, **facts)}")
    return 0 if s.ok else 1


def run_parts(
    mutants: Sequence[Mutant], jobs: int, reports: Path, tag: str, label: str, quiet: bool,
    script: Path, run_here: Callable[[Sequence[Mutant], str, Path], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The shard reports of ``mutants``: killed here by ``run_here(mutants, label, out)`` when
    ``jobs`` is 1, else split over ``jobs`` processes (``script _part TODO OUT LABEL``)."""
    if jobs == 1:
        return [run_here(mutants, label, reports / f"{tag}.json")]
    procs = []
    for j in range(jobs):
        part = shard(mutants, j, jobs)
        todo = reports / f"{tag}-part-{j}-of-{jobs}.todo.json"
        todo.write_text(json.dumps([dataclasses.asdict(m) for m in part]))
        out = reports / f"{tag}-part-{j}-of-{jobs}.json"
        cmd = [sys.executable, str(script), "_part", str(todo), str(out), f"{label} part {j}/{jobs}"]
        cmd += ["--quiet"] if quiet else []
        procs.append((subprocess.Popen(cmd), out))
    failed = [p.args for p, _ in procs if p.wait() != 0]
    if failed:
        raise LaneError(f"{len(failed)} shard process(es) failed; see their output above")
    return [json.loads(out.read_text()) for _, out in procs]


def cmd_part(args: argparse.Namespace) -> int:
    """One process of ``run --jobs N``: the mutants listed in ``args.todo``."""
    config = load_config()
    mutants = [mutant_from(m) for m in json.loads(Path(args.todo).read_text())]
    run_shard(mutants, config, args.label, Path(args.out), not args.quiet)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    """Both kill stages on the tree as it is (cosmic-ray's test-command): 0 = survived."""
    config = load_config()
    code = kill_in_process(ROOT, config["mutation"]["tests"], None)
    return 0 if code == SURVIVED else 1


def command_parser(prog: str, description: str, shards: bool) -> tuple[argparse.ArgumentParser, Any]:
    """``run``, ``list`` and the internal ``_part`` (``shards``: with ``--shard``/``--ci``);
    returns the parser and its subparsers, for more commands."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "list"):
        p = sub.add_parser(name)
        if shards:
            which = p.add_mutually_exclusive_group()
            which.add_argument("--shard", help="INDEX/COUNT, or 'buildkite' (BUILDKITE_PARALLEL_JOB)")
            which.add_argument("--ci", action="store_true", help="the fixed part CI runs")
        p.add_argument("--match", action="append", help="only mutants whose report line "
                       "contains this text (a file, 'file:line', a unit, an operator); repeatable")
        if name == "run":
            p.add_argument("--quiet", action="store_true", help="no line per mutant")
            p.add_argument("--jobs", type=int, default=None,
                           help="processes, one shard each (default: one per core)")
    part = sub.add_parser("_part", help="(internal) one process of run --jobs")
    part.add_argument("todo")
    part.add_argument("out")
    part.add_argument("label")
    part.add_argument("--quiet", action="store_true")
    return parser, sub


def run_command(commands: dict[str, Callable[[argparse.Namespace], int]],
                args: argparse.Namespace, name: str) -> int:
    """The chosen command; a :class:`LaneError` is one line on stderr and exit code 2."""
    try:
        return commands[args.command](args)
    except LaneError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = command_parser("mutation/lane.py", __doc__.splitlines()[0], shards=True)
    sub.add_parser("kill")
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "list": cmd_list, "_part": cmd_part, "kill": cmd_kill}
    return run_command(commands, args, "mutation lane")


if __name__ == "__main__":
    sys.exit(main())
