"""The vLLM mutation lane: how much of vLLM's own NVFP4 selection can change unnoticed?

cosmic-ray's stock operators generate the mutants of the installed vLLM
release's selection function (the units ``[mutation.vllm] scope`` of
``mutation/cosmic-ray.toml`` names, top-level functions of the module the
release line's facts name). The file on disk is never written: each mutant is
the function compiled anew from the mutated text of its module
(:mod:`harness.targets.vllm.recompile`), bound to the imported module's
globals and swapped in at run time (``VllmRuntime.selection_replaced``), in a
process forked from a parent that imported vLLM once on its fake platform. It
is killed by the matrix of the installed release line
(``matrix/vllm/<line>.yaml``, through a :class:`~harness.evaluate.session.Session`
with the vllm target, fail-fast): a run that is not ok kills it. That is a cell the oracle
disagrees with and that no known failure describes, a crash or a time-out,
and also a known failure that no cell shows any more: a known failure pins
what vLLM really does in those cells, so a mutant that makes it go away has
changed pinned behaviour (the same rule ``nvfp4-matrix run`` applies when a
release fixes a finding).

Every survivor is listed in ``mutation/vllm-<line>-equivalents.yaml``: under
``equivalent`` when it cannot change what the function does, under
``accepted`` when it does but the matrix deliberately does not pin it (each
with a one-line reason). An unlisted survivor, or an entry that a run kills or
that matches no mutant, fails the lane. The real regression of vLLM PR #39129
(the batch-invariant branch removed, :data:`REGRESSIONS`) runs beside the
stock mutants and must be killed (:func:`regressions`); it is reported, not counted.

    python -m harness.mutation.vllm run [--jobs N] [--match TEXT]   # tox -e mutation-vllm-<line>
    python -m harness.mutation.vllm list [--match TEXT]

Reports go to ``reports/mutation-vllm-<line>/``. Exit status: 0 when every
survivor is listed and the regression is killed, 1 otherwise, 2 for bad usage,
no vLLM, or a red baseline (the unmutated function, compiled the same way,
must pass the matrix).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import importlib.metadata
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from harness.mutation.cli import command_parser, run_command
from harness.mutation.config import Checkout, LaneError, checkout, load_config, need_cosmic_ray
from harness.mutation.equivalents import load_listed
from harness.mutation.kill import (
    KILLED_BY_MATRIX,
    SURVIVED,
    forked,
    job_count,
    kill_each,
    run_parts,
    write_shard_report,
)
from harness.mutation.mutants import Mutant, mutant_from, number_twins, source_mutants
from harness.mutation.score import markdown, score, summary_text, write_record
from harness.mutation.units import in_scope
from harness.output.atomic import write_atomic

__all__ = ["main"]


#: How a process of ``run --jobs N`` is started (``__name__`` is ``__main__`` under ``-m``).
ENTRY = "harness.mutation.vllm"


def equivalents_path(here: Checkout, line: str) -> Path:
    return here.mutation / f"vllm-{line}-equivalents.yaml"


def reports_dir(here: Checkout, line: str) -> Path:
    return here.reports(f"mutation-vllm-{line}")


# --- the installed source -----------------------------------------------------------------------


def installed_file(module: str) -> tuple[Path, str]:
    """The installed file of ``module`` and its name in reports (relative to site-packages).

    Found through the top-level package's location: nothing of vLLM is imported (importing
    a subpackage first would bind vLLM's platform before the fake one is in place).
    """
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise LaneError(f"{top} is not installed here (tox -e mutation-vllm-<line> builds an "
                        "environment with it)")
    base = Path(spec.origin).parent.parent
    rel = Path(*module.split("."))
    for candidate in (rel / "__init__.py", rel.with_suffix(".py")):
        if (base / candidate).is_file():
            return base / candidate, candidate.as_posix()
    raise LaneError(f"{top} {_version(top)} has no module {module}")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(no metadata)"


def scope_functions(source: str, patterns: Sequence[str], where: str) -> list[ast.FunctionDef]:
    """The top-level functions of ``source`` that ``patterns`` name; each pattern must name one.

    Only functions: a mutant is applied by swapping functions, never by re-running
    module-level code.
    """
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    chosen = [f for f in functions if in_scope(f.name, patterns)]
    for pattern in patterns:
        if not any(in_scope(f.name, [pattern]) for f in functions):
            raise LaneError(f"{where}: [mutation.vllm] scope {pattern!r} names no top-level "
                            "function of the installed module")
    return chosen


def scoped_source(source: str, functions: Sequence[ast.FunctionDef]) -> str:
    """``source`` with only the ``functions`` and the ``__future__`` imports left as code.

    Every other line becomes a comment holding its line number: line numbers are kept, so
    mutants are reported and compiled at the file's own lines, and cosmic-ray walks a few
    functions instead of the whole module. (Comments, not blank lines: many equal lines
    make the line diff that describes each mutant quadratic.)
    """
    keep: set[int] = set()
    tree = ast.parse(source)
    futures = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    for node in [*futures, *functions]:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        keep.update(range(first, (node.end_lineno or node.lineno) + 1))
    lines = source.splitlines()
    return "\n".join(text if n in keep else f"# {n}" for n, text in enumerate(lines, 1)) + "\n"


@dataclasses.dataclass(frozen=True)
class Subject:
    """What the lane mutates: the installed file, its scoped text, the functions in scope."""

    path: Path
    file: str
    text: str
    names: tuple[str, ...]


def subject(config: Mapping[str, Any], module: str) -> Subject:
    path, file = installed_file(module)
    source = path.read_text()
    functions = scope_functions(source, config["mutation"]["vllm"]["scope"], file)
    return Subject(path, file, scoped_source(source, functions), tuple(f.name for f in functions))


def generate(config: Mapping[str, Any], subj: Subject) -> list[Mutant]:
    """cosmic-ray's mutants of the scoped functions, in line order."""
    operator_cfg = config["cosmic-ray"].get("operators", {})
    out = source_mutants(subj.text, subj.file, list(subj.names), operator_cfg)
    out.sort(key=lambda m: (m.line, m.operator, m.occurrence))
    return number_twins(out)


def mutated_text(subj: Subject, mutant: Mutant) -> str:
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    operator = cosmic_ray.plugins.get_operator(mutant.operator)()
    mutated = mutate_code(subj.text, operator, mutant.occurrence)
    if mutated is None:
        raise LaneError(f"cosmic-ray no longer applies {mutant.describe()}")
    return str(mutated)


def regressions() -> dict[str, tuple[str, Callable[[Callable[..., Any]], Callable[..., Any]]]]:
    """Real vLLM regressions, rebuilt from the installed function: name -> (what it is, the
    rebuild; it raises ``MutantShapeError`` on a release without the code it removes)."""
    from harness.targets.vllm.regression import REGRESSIONS

    return {name: (info.title, rebuild) for name, (info, rebuild) in REGRESSIONS.items()}


# --- applying a mutant --------------------------------------------------------------------------


@contextlib.contextmanager
def applied(runtime: Any, module: Any, functions: Mapping[str, Any]) -> Iterator[None]:
    """Run the block with ``functions`` in place: the selection function through the runtime's
    hook, any other (a helper it calls) as an attribute of its module."""
    selection = runtime.facts.entry.function
    with contextlib.ExitStack() as stack:
        for name, func in functions.items():
            if name == selection:
                stack.enter_context(runtime.selection_replaced(func))
            else:
                stack.enter_context(mock.patch.object(module, name, func))
        yield


def matrix_stage(session: Any) -> str | None:
    """Every cell of the release line's matrix, fail-fast; ``None`` when the run is ok.

    Not ok: a cell that fails (a mismatch no known failure describes, a crash), or a known
    failure that no cell shows any more (computed once every cell has run).
    """
    result = session.run(fail_fast=True)
    if result.ok:
        return None
    if result.failures:
        first = result.failures[0]
        return f"cell {first.cell.nodeid}: {str(first.problems[0]).splitlines()[0]}"
    return f"stale known failure: {result.stale_known[0]}"


def kill_with(build: Callable[[], Mapping[str, Any]], runtime: Any, module: Any, session: Any,
              result_file: Path) -> int:
    """Build the functions, apply them and run the matrix (in the forked child)."""
    try:
        with applied(runtime, module, build()):
            detail = matrix_stage(session)
    except BaseException as exc:  # a mutant may break anything, even its own definition
        text = str(exc).splitlines()[0] if str(exc) else ""
        detail = f"matrix crashed: {type(exc).__name__}: {text}"
    result_file.write_text(detail or "")
    return SURVIVED if detail is None else KILLED_BY_MATRIX


# --- one shard ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Loaded:
    """vLLM imported on its fake platform, and the session over its release line's matrix."""

    runtime: Any
    module: Any
    session: Any
    version: str
    line: str
    matrix: str


def load(here: Checkout) -> Loaded:
    from harness.errors import HarnessError
    from harness.evaluate.session import Session
    from harness.load import load_matrix
    from harness.targets.vllm import VllmTarget

    target = VllmTarget()
    try:
        paths = list(target.default_matrix(here.root))
        session = Session(load_matrix(paths), target)  # imports vLLM (check_matrix reads its classes)
        facts = target.facts_of(session.matrix)[0]
        assert facts is not None  # the session bound the matrix: its facts parse
        runtime = target.runtime(facts)
    except HarnessError as exc:
        raise LaneError(str(exc).splitlines()[0]) from None
    return Loaded(runtime, runtime.kernels_module, session, runtime.version, paths[0].stem,
                  ", ".join(str(Path(p).relative_to(here.root)) for p in paths))


def run_shard(mutants: Sequence[Mutant], config: Mapping[str, Any], label: str, out: Path,
              progress: bool, with_regressions: bool, here: Checkout) -> dict[str, Any]:
    """Kill ``mutants`` (and the :func:`regressions` when asked); write and return the report."""
    from harness.targets.vllm.recompile import compile_functions
    from harness.targets.vllm.regression import MutantShapeError

    sys.dont_write_bytecode = True
    started = time.monotonic()
    vllm = load(here)
    subj = subject(config, vllm.runtime.facts.entry.module)
    filename = str(subj.path)
    selection = vllm.runtime.facts.entry.function

    def fork(build: Callable[[], Mapping[str, Any]], timeout: float) -> tuple[str, str]:
        return forked(lambda rf: kill_with(build, vllm.runtime, vllm.module, vllm.session, rf),
                      timeout, Path(tmp))

    with tempfile.TemporaryDirectory(prefix="nvfp4-vllm-mutation-") as tmp:
        t0 = time.monotonic()
        verdict, detail = fork(
            lambda: compile_functions(subj.text, filename, subj.names, vars(vllm.module)), 600.0)
        baseline = time.monotonic() - t0
        if verdict != "survived":
            raise LaneError(f"vLLM {vllm.version}'s own function, compiled as the mutants are, "
                            f"does not pass {vllm.matrix} ({detail})")
        timeout = max(60.0, 10 * baseline)

        def kill(mutant: Mutant) -> tuple[str, str, str, str]:
            text = mutated_text(subj, mutant)
            verdict, detail = fork(
                lambda: compile_functions(text, filename, subj.names, vars(vllm.module)), timeout)
            return verdict, detail, subj.text, text

        results = kill_each(mutants, label, out, progress, kill)
        named = []
        real = vllm.runtime.selection_function
        for name, (title, rebuild) in regressions().items() if with_regressions else ():
            try:
                broken = rebuild(real)
            except MutantShapeError as exc:
                named.append({"name": name, "title": title, "verdict": "not applicable",
                              "detail": str(exc)})
                continue
            verdict, detail = fork(functools.partial(dict, [(selection, broken)]), timeout)
            named.append({"name": name, "title": title, "verdict": verdict, "detail": detail})
            if progress:
                print(f"[{label}] regression {verdict:<8} {name}: {title}", flush=True)
    return write_shard_report(out, label, mutants, started, baseline, results,
                              vllm=vllm.version, line=vllm.line, matrix=vllm.matrix,
                              regressions=named)


# --- the verdict --------------------------------------------------------------------------------


def regression_lines(named: Sequence[Mapping[str, Any]]) -> tuple[list[str], bool]:
    """One line per regression, and whether every applicable one was killed."""
    lines, ok = [], True
    for r in named:
        if r["verdict"] == "survived":
            ok = False
            lines.append(f"regression {r['name']}: SURVIVED ({r['title']})")
        elif r["verdict"] == "not applicable":
            lines.append(f"regression {r['name']}: not applicable ({r['detail']})")
        else:
            lines.append(f"regression {r['name']}: killed: {r['detail']}")
    return lines, ok


# --- commands -----------------------------------------------------------------------------------


def _select(args: argparse.Namespace, config: Mapping[str, Any], module: str
            ) -> tuple[list[Mutant], str, bool]:
    mutants = generate(config, subject(config, module))
    if args.match:
        selected = [m for m in mutants if any(text in m.describe() for text in args.match)]
        return selected, f"matching {' or '.join(map(repr, args.match))}", False
    return mutants, "every mutant", True


def cmd_list(args: argparse.Namespace) -> int:
    need_cosmic_ray()
    here = checkout()
    vllm = load(here)
    mutants, label, _ = _select(args, load_config(here.config), vllm.runtime.facts.entry.module)
    for m in mutants:
        print(m.describe())
    print(f"{len(mutants)} mutants of vLLM {vllm.version} ({label})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    need_cosmic_ray()
    here = checkout()
    config = load_config(here.config)
    vllm = load(here)
    line = vllm.line
    equivalent, accepted = load_listed(equivalents_path(here, line))
    mutants, label, complete = _select(args, config, vllm.runtime.facts.entry.module)
    jobs = job_count(args.jobs, mutants)
    reports = reports_dir(here, line)
    reports.mkdir(parents=True, exist_ok=True)
    title = f"vLLM {vllm.version} mutation lane"
    started = time.monotonic()
    print(f"{title}: {len(mutants)} mutants ({label}) in {jobs} process(es)", flush=True)

    def run_here(todo: Sequence[Mutant], part_label: str, out: Path) -> dict[str, Any]:
        return run_shard(todo, config, part_label, out, not args.quiet, with_regressions=True,
                         here=here)

    # with several processes, part 0 runs the regressions too (cmd_part)
    parts = run_parts(mutants, jobs, reports, "run", label, args.quiet, ENTRY, run_here)
    results = [r for rep in parts for r in rep["results"]]
    named = [n for rep in parts for n in rep.get("regressions", [])]
    if len(named) != len(regressions()):
        raise LaneError("the real regressions did not all run (one part runs them)")
    s = score(results, equivalent, complete, accepted)
    listed_in = str(equivalents_path(here, line).relative_to(here.root))
    text = summary_text(s, label, time.monotonic() - started, title=title,
                        listed_in=listed_in, tests_stage=False)
    extra, regressions_ok = regression_lines(named)
    md = markdown(s, results, label, title=title, tests_stage=False)
    md += "\n".join(["## Real regressions", ""] + [f"- {x}" for x in extra]) + "\n"
    write_atomic(reports / "summary.md", md, create_folder=True)
    print(text)
    print("\n".join(f"  {x}" for x in extra))
    if complete:  # the README's figures come from the last complete run (tools/readme.py)
        record = write_record(
            here.records, f"mutation-vllm-{line}", s, vllm=_version("vllm"),
            regressions={n["name"]: n["verdict"] for n in named},
        )
        print(f"record: {record}")
    return 0 if s.ok and regressions_ok else 1


def cmd_part(args: argparse.Namespace) -> int:
    """One process of ``run --jobs N``: the mutants listed in ``args.todo``; part 0 also
    runs the regressions."""
    here = checkout()
    config = load_config(here.config)
    mutants = [mutant_from(m) for m in json.loads(Path(args.todo).read_text())]
    run_shard(mutants, config, args.label, Path(args.out), not args.quiet,
              with_regressions=" part 0/" in args.label, here=here)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = command_parser("python -m harness.mutation.vllm", __doc__.splitlines()[0],
                               shards=False)
    args = parser.parse_args(argv)
    return run_command({"run": cmd_run, "list": cmd_list, "_part": cmd_part}, args,
                       "vLLM mutation lane")


if __name__ == "__main__":
    sys.exit(main())
