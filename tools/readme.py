"""Regenerate the figures and tables of the README (and docs/) that come from the tool.

Every figure a run produces lives in a marked block, so that no sentence can
quote a number the tool no longer prints:

    <!-- gen:cells -->9501<!-- /gen -->                      (inline)
    <!-- gen:selection-table -->                            (a block: the markers on
    | profile | arch | ... |                                 their own lines)
    <!-- /gen -->

Where a figure comes from:

* ``live``: computed here from this checkout (the matrix run, the selection
  table, the first mismatch a mutant produces, the size of the malformed-matrix
  corpus); needs the project installed, as in ``tox -e matrix``;
* ``recorded``: read from ``docs/records/*.json``, which the long lanes and the
  engine lanes write on their last complete run (``tox -e mutation``,
  ``tox -e mutation-vllm-<line>``, ``tox -e vllm-<line>``): figures that need
  vLLM or an hour of CPU are taken from their last recorded report, never
  recomputed in CI. Needs nothing but Python.

    python tools/readme.py                 # check: exit 1 and a diff when a file differs
    python tools/readme.py --write         # rewrite the blocks
    python tools/readme.py --only recorded # the recorded blocks alone (no torch needed)

Refreshing after a change: run the lane whose figures moved (its record in
``docs/records/`` changes), then ``python tools/readme.py --write``, and commit
both. A new vLLM release line (``matrix/vllm/0.34.yaml``) adds its rows and
columns by itself: run ``tox -e vllm-0.34`` and ``tox -e mutation-vllm-0.34``
first (until then the regeneration names the missing record). ``tox -e vllm-diff`` records what
the newest release changed against the one before (``docs/records/vllm-diff.json``).
``tox -e matrix`` runs the check; ``.ci/run`` checks the recorded blocks again after the engine
lanes have rewritten their records.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "records"
#: The files whose marked blocks are regenerated.
FILES = ("README.md", "docs/harness.md", "docs/vllm.md")
#: The vLLM release lines whose lanes record figures: one per file in matrix/vllm/ (a new
#: line's file adds its rows; its lanes must then record before the README regenerates).
VLLM_LINES = tuple(
    sorted(
        (p.stem for p in (ROOT / "matrix" / "vllm").glob("*.yaml")),
        key=lambda line: tuple(int(part) for part in line.split(".") if part.isdigit()),
    )
)

MARKER = re.compile(r"<!-- gen:(?P<name>[A-Za-z0-9_.:-]+) -->(?P<body>.*?)<!-- /gen -->", re.S)


class ReadmeError(Exception):
    """A block or a record that cannot be rendered: one line, exit 2."""


# --- records ------------------------------------------------------------------------------------


def record(name: str) -> dict[str, Any]:
    path = RECORDS / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReadmeError(
            f"{path.relative_to(ROOT)} is missing: run the lane that writes it (tools/readme.py "
            "names them in its docstring)"
        ) from None
    except ValueError as exc:
        raise ReadmeError(f"{path.relative_to(ROOT)} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("record") != 1:
        raise ReadmeError(f"{path.relative_to(ROOT)}: not a version-1 record")
    return data


def vllm_run(line: str) -> dict[str, Any]:
    data = record(f"vllm-{line}")
    if data.get("mutant") is not None or data.get("target") != "vllm":
        raise ReadmeError(
            f"docs/records/vllm-{line}.json records {data.get('target')} "
            f"(mutant {data.get('mutant')}): rerun `tox -e vllm-{line}` without arguments"
        )
    return data


def vllm_mutant(line: str, name: str = "vllm-39129") -> dict[str, Any]:
    data = record(f"vllm-{line}-mutants")
    try:
        return data["mutants"][name]
    except KeyError:
        raise ReadmeError(f"docs/records/vllm-{line}-mutants.json has no mutant {name}") from None


def percent(killed: int, counted: int) -> str:
    """``95.4%``; all of them is ``100%``."""
    if killed == counted:
        return "100%"
    return f"{100.0 * killed / counted:.1f}%"


# --- the generators -----------------------------------------------------------------------------

Generator = Callable[[str], str]
GENERATORS: dict[str, tuple[str, Generator]] = {}


def generator(name: str, kind: str) -> Callable[[Generator], Generator]:
    def add(func: Generator) -> Generator:
        GENERATORS[name] = (kind, func)
        return func

    return add


@functools.cache
def native() -> tuple[Any, Any]:
    """The shipped matrix and this project's target (loaded once)."""
    from harness.cli.common import load_with_target

    return load_with_target(None, None)


@functools.cache
def native_run() -> Any:
    from harness.evaluate.session import Session

    matrix, target = native()
    return Session(matrix, target).run()


@generator("cells", "live")
def _cells(arg: str) -> str:
    result = native_run()
    if arg:
        return str(result.groups()[arg][0])
    return str(len(result.results))


@generator("matrix-verdict", "live")
def _matrix_verdict(arg: str) -> str:
    from harness.output.record import untimed

    verdict = untimed(native_run().verdict())
    return "\n".join([
        "```console",
        "$ tox -e matrix            # the main job: nvfp4-matrix run on the shipped matrix",
        "...",
        verdict,
        "```",
    ])


@generator("selection-table", "live")
def _selection_table(arg: str) -> str:
    from harness.evaluate.session import Session
    from harness.evaluate.table import selection_table
    from harness.output.markdown import markdown_table
    from harness.output.table import table_rows_text

    matrix, target = native()
    table = selection_table(Session(matrix, target))
    return markdown_table(list(table.headers), table_rows_text(table))


@generator("failure-example", "live")
def _failure_example(arg: str) -> str:
    """The first mismatch ``nvfp4-matrix run --mutant <arg>`` prints, shortened."""
    from harness.evaluate.session import Session

    matrix, target = native()
    name = arg or "no-batch-invariant"
    failures = Session(matrix, target.mutant(name)).run().failures
    if not failures:
        raise ReadmeError(f"mutant {name} fails no cell: no example to show")
    return "```text\n" + shorten(failures[0].report()) + "\n```"


@generator("corpus-files", "live")
def _corpus_files(arg: str) -> str:
    rows = (ROOT / "tests" / "harness" / "load" / "corpus" / "EXPECTED.tsv").read_text(encoding="utf-8")
    return str(sum(1 for line in rows.splitlines() if line and not line.startswith("#")))


@generator("mutation-score", "recorded")
def _mutation_score(arg: str) -> str:
    r = record("mutation")
    both = r["killed_by_matrix"] + r["killed_by_tests"]
    return "\n".join([
        "| mutants | equivalent | matrix alone | matrix + unit tests | survivors |",
        "|---|---|---|---|---|",
        f"| {r['mutants']} | {r['equivalent']} | {r['killed_by_matrix']}/{r['counted']} "
        f"({percent(r['killed_by_matrix'], r['counted'])}) | {both}/{r['counted']} "
        f"({percent(both, r['counted'])}) | {r['survivors']} |",
    ])


@generator("mutation", "recorded")
def _mutation(arg: str) -> str:
    """One figure of the project lane's record: ``mutation:killed_by_tests``, ``mutation:tools``,
    ``mutation:ci-shard``, ``mutation:matrix-percent``."""
    r = record("mutation")
    if arg == "tools":
        return f"cosmic-ray {r['cosmic-ray']}, Python {r['python']}, torch {r['torch']}"
    if arg == "ci-shard":
        index, count = r["ci_shard"]["shard"].split("/")
        return f"shard {index} of {count}, {r['ci_shard']['mutants']} mutants"
    if arg == "matrix-percent":
        return percent(r["killed_by_matrix"], r["counted"])
    if arg in r:
        return str(r[arg])
    raise ReadmeError(f"gen:mutation:{arg}: no such figure in docs/records/mutation.json")


@generator("vllm-lanes", "recorded")
def _vllm_lanes(arg: str) -> str:
    rows = [
        "| lane | vLLM | matrix | cells | known failures |",
        "|---|---|---|---:|---:|",
    ]
    for line in VLLM_LINES:
        r = vllm_run(line)
        matrix = next((m for m in r["matrix"] if m.startswith("matrix/vllm/")), r["matrix"][0])
        covers = f" (covers {r['covers']})" if r.get("covers") else ""
        rows.append(
            f"| `tox -e vllm-{line}` | {r['version']}{covers} | `{matrix}` | {r['cells']} | "
            f"{r['known_failures']} |"
        )
    return "\n".join(rows)


@generator("vllm-39129", "recorded")
def _vllm_39129(arg: str) -> str:
    """Cells the regression fails on one line (``vllm-39129:0.22``)."""
    return str(vllm_mutant(arg)["mismatches"])


@generator("vllm", "recorded")
def _vllm(arg: str) -> str:
    """One figure of a line's run: ``vllm:0.20:cells``, ``vllm:0.33:version``."""
    line, _, field = arg.partition(":")
    return str(vllm_run(line)[field])


@generator("vllm-39129-example", "recorded")
def _vllm_39129_example(arg: str) -> str:
    line = arg or VLLM_LINES[0]
    r = vllm_mutant(line)
    if not r["first_mismatch"]:
        raise ReadmeError(f"docs/records/vllm-{line}-mutants.json: vllm-39129 failed no cell")
    return "\n".join([
        "```text",
        f"$ tox -e vllm-{line} -- --mutant vllm-39129 --no-table",
        shorten(r["first_mismatch"]),
        "...",
        r["verdict"],
        "```",
    ])


@generator("vllm-lines", "recorded")
def _vllm_lines(arg: str) -> str:
    """The release lines, as the findings' columns list them: ``0.20 / 0.22 / 0.33``."""
    return " / ".join(VLLM_LINES)


@generator("vllm-finding", "recorded")
def _vllm_finding(arg: str) -> str:
    """Cells of one finding per line, ``38 / 47 / 56`` (``—`` where a line does not have it)."""
    counts = []
    for line in VLLM_LINES:
        finding = vllm_run(line)["findings"].get(arg)
        counts.append("—" if finding is None else str(finding["cells"]))
    if all(c == "—" for c in counts):
        raise ReadmeError(f"gen:vllm-finding:{arg}: no line records this finding")
    return " / ".join(counts)


@generator("vllm-mutation", "recorded")
def _vllm_mutation(arg: str) -> str:
    rows = [
        "| lane | vLLM | mutants | equivalent | killed by the matrix | accepted survivors | "
        "vllm-39129 |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for line in VLLM_LINES:
        r = record(f"mutation-vllm-{line}")
        verdict = r["regressions"].get("vllm-39129", "not run")
        regression = {"matrix": "killed", "survived": "SURVIVED"}.get(verdict, verdict)
        rows.append(
            f"| `tox -e mutation-vllm-{line}` | {r['vllm']} | {r['mutants']} | {r['equivalent']} | "
            f"{r['killed_by_matrix']}/{r['counted']} ({percent(r['killed_by_matrix'], r['counted'])}) "
            f"| {r['accepted']} | {regression} |"
        )
    return "\n".join(rows)


def _cut(text: str, width: int = 100) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 4] + " ..."


def diff_table(r: dict[str, Any], per_group: int = 10) -> str:
    """A diff record as the README shows it: the verdict, then a row per change (at most
    ``per_group`` of each group, the largest first, as the diff lists them)."""
    base, head = r["base"]["target"], r["head"]["target"]
    groups = r["groups"]
    lines = [
        f"{base} → {head}: {r['changed']} of {r['cells']} cells changed in {len(groups)} "
        f"group{'s' * (len(groups) != 1)}, {r['accepted']} accepted "
        f"(matrix {', '.join(f'`{m}`' for m in r['matrix'])})",
        "",
        "| # | where | cells | base → head | accepted as |",
        "|---|---|---:|---|---|",
    ]
    for index, group in enumerate(groups, 1):
        where = _cut(" · ".join(group["where"]), 80)
        shown = group["changes"][:per_group]
        for change in shown:
            lines.append(
                f"| {index} | {where} | {change['cells']} | "
                f"{_cut(change['base'])} → {_cut(change['head'])} | "
                f"{_cut(change['accepted'] or '—', 80)} |"
            )
        rest = group["changes"][per_group:]
        if rest:
            cells = sum(c["cells"] for c in rest)
            lines.append(f"| {index} | {where} | {cells} | ... {len(rest)} more changes "
                         "(every one in the diff's --markdown and --json) | |")
    return "\n".join(lines)


@generator("vllm-diff", "recorded")
def _vllm_diff(arg: str) -> str:
    """What vLLM 0.34.0 changed against 0.33.0 (``tox -e vllm-diff``'s record)."""
    return diff_table(record("vllm-diff"))


@generator("vllm-39129-diff", "recorded")
def _vllm_39129_diff(arg: str) -> str:
    """``nvfp4-matrix diff --target vllm --head-mutant vllm-39129`` on one line (``:0.20``)."""
    return diff_table(record(f"vllm-{arg or VLLM_LINES[0]}-diff-39129"), per_group=2)


@generator("diff-example", "live")
def _diff_example(arg: str) -> str:
    """``nvfp4-matrix diff --head-mutant <arg>`` on this project's kernels, as a table."""
    import subprocess
    import tempfile

    mutant = arg or "no-batch-invariant"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "diff.json"
        run = subprocess.run(
            [sys.executable, "-m", "harness", "diff", "--head-mutant", mutant, "--record", str(out)],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )
        if not out.is_file():
            raise ReadmeError(f"gen:diff-example: the diff failed: {run.stderr.strip()[-300:]}")
        data = json.loads(out.read_text(encoding="utf-8"))
    return diff_table(data, per_group=2)


def shorten(report: str, width: int = 110) -> str:
    """A mismatch report as an example: each section's first line, long lines cut.

    Top-level lines (``  expected : ...``) are kept; of each indented section
    (the problems, the oracle's derivation, the decision record) the first line
    is kept and the rest becomes ``...``.
    """
    out: list[str] = []
    skipping = False
    for line in report.splitlines():
        depth = len(line) - len(line.lstrip(" "))
        if depth >= 4 and out and (len(out[-1]) - len(out[-1].lstrip(" "))) >= 4:
            if not skipping:
                out.append(" " * depth + "...")
                skipping = True
            continue
        skipping = False
        out.append(line if len(line) <= width else line[: width - 4] + " ...")
    return "\n".join(out)


# --- the files ----------------------------------------------------------------------------------


def regenerate(text: str, where: str, only: str | None) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        base, _, arg = name.partition(":")
        if base not in GENERATORS:
            raise ReadmeError(f"{where}: unknown block gen:{name} (known: {', '.join(GENERATORS)})")
        kind, func = GENERATORS[base]
        if only is not None and kind != only:
            return match.group(0)
        body = match.group("body")
        value = func(arg)
        if body.startswith("\n"):  # a block: the markers stand on their own lines
            return f"<!-- gen:{name} -->\n{value}\n<!-- /gen -->"
        if "\n" in value:
            raise ReadmeError(f"{where}: gen:{name} is inline but its value has several lines")
        return f"<!-- gen:{name} -->{value}<!-- /gen -->"

    return MARKER.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/readme.py", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the blocks")
    parser.add_argument("--only", choices=("live", "recorded"), help="only these blocks")
    args = parser.parse_args(argv)
    changed = []
    try:
        for name in FILES:
            path = ROOT / name
            text = path.read_text(encoding="utf-8")
            new = regenerate(text, name, args.only)
            if new == text:
                continue
            changed.append(name)
            if args.write:
                write(path, new)
            else:
                sys.stdout.writelines(
                    difflib.unified_diff(
                        text.splitlines(True), new.splitlines(True), f"{name} (committed)",
                        f"{name} (regenerated)",
                    )
                )
    except ReadmeError as exc:
        print(f"tools/readme.py: error: {exc}", file=sys.stderr)
        return 2
    if changed and not args.write:
        print(
            f"tools/readme.py: {', '.join(changed)} differ from a regeneration: run "
            "`python tools/readme.py --write` (after the lane whose record changed) and commit",
            file=sys.stderr,
        )
        return 1
    if args.write and changed:
        print(f"tools/readme.py: rewrote {', '.join(changed)}")
    else:
        print(f"tools/readme.py: up to date: {', '.join(FILES)}")
    return 0


def write(path: Path, text: str) -> None:
    try:
        from harness.output.atomic import write_atomic
    except ImportError:  # only the recorded blocks, without the project installed
        path.write_text(text, encoding="utf-8")
        return
    write_atomic(path, text)


if __name__ == "__main__":
    sys.exit(main())
