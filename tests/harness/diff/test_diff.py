"""``nvfp4-matrix diff`` end to end on this project's kernels (no engine to install): two sides
in their own processes, the same cells, changes described, accepted or not, every output pure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.diff.accept import accepted_changes, load_accepted
from harness.diff.changes import normalise, outcome_summary
from harness.errors import MatrixError
from tests.support.paths import ROOT

BI = "VLLM_BATCH_INVARIANT"


def _diff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "diff", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def mutant_diff(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict, str]:
    out = tmp_path_factory.mktemp("diff")
    run = _diff("--head-mutant", "no-batch-invariant", "--json", str(out / "d.json"),
                "--markdown", str(out / "d.md"))
    return run, json.loads((out / "d.json").read_text()), (out / "d.md").read_text()


def test_the_batch_invariance_regression_shows_as_batch_invariant_cells_only(mutant_diff) -> None:
    run, data, _ = mutant_diff
    assert run.returncode == 1, run.stderr
    assert data["changed"] and not data["ok"]
    for cell in data["changed"]:
        assert BI in cell["env"], cell["cell"]
    assert all(f"{BI} true" in g["where"] for g in data["groups"]), data["groups"]
    # a handful of lines: every group names the variable, and every cell is in one group
    assert len(data["groups"]) <= 5
    grouped = [k for g in data["groups"] for k in g["cells"]]
    assert sorted(grouped) == sorted(c["cell"] for c in data["changed"])
    assert data["unchanged"] + len(data["changed"]) + 0 <= data["cells"]


def test_every_change_is_one_command_away_on_each_side(mutant_diff) -> None:
    run, data, markdown = mutant_diff
    change = data["groups"][0]["changes"][0]
    assert change["explain"]["head"].startswith("nvfp4-matrix explain matrix/gpus.yaml")
    assert "not compared: 272 cells ran on one side only" in run.stdout  # the mutant detects nothing
    assert "--gpu " in change["explain"]["base"] and f"--env {BI}=" in change["explain"]["base"]
    assert change["explain"]["head"] in run.stdout
    assert markdown.startswith("## ❌ NVFP4 selection diff: kernels → kernels (mutant no-batch-invariant)")
    assert "| # | where | cells | base | head | accepted |" in markdown
    # stdout holds the report only; progress went to stderr
    assert "loaded in" in run.stderr and "loaded in" not in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("CHANGED: ")


def test_explaining_a_cell_gives_each_sides_answer(mutant_diff) -> None:
    _, data, _ = mutant_diff
    change = data["groups"][0]["changes"][0]
    cell = next(c for c in data["changed"] if c["cell"] == change["cells"][0])
    assert "--mutant no-batch-invariant" in change["explain"]["head"]
    assert "--mutant" not in change["explain"]["base"]
    for side in ("base", "head"):
        args = change["explain"][side].split()[1:] + ["--json"]  # drop the program name
        proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        answer = json.loads(proc.stdout)
        assert (answer["kernel"], answer["error"]) == (cell[side]["kernel"], cell[side]["error"]), side


def test_a_version_against_itself_changes_nothing_twice(tmp_path: Path) -> None:
    reports = []
    for n in range(2):
        out = tmp_path / f"same-{n}.json"
        run = _diff("--base-mutant", "sm100-as-ge", "--head-mutant", "sm100-as-ge",
                    "--json", str(out))
        assert run.returncode == 0, run.stdout + run.stderr
        assert "NO CHANGE: " in run.stdout
        reports.append(json.loads(out.read_text()))
    for report in reports:
        for side in ("base", "head"):
            report[side].pop("seconds")
    assert reports[0] == reports[1] and reports[0]["changed"] == []


def test_the_record_is_the_figures_without_times_or_paths(tmp_path: Path, mutant_diff) -> None:
    """``--record``: what the README quotes, the same bytes from run to run (and machine to
    machine: no time, no path), every group and change counted as the JSON report counts them."""
    _, data, _ = mutant_diff
    texts = []
    for n in range(2):
        out = tmp_path / f"r{n}.json"
        run = _diff("--head-mutant", "no-batch-invariant", "--record", str(out))
        assert run.returncode == 1, run.stderr
        texts.append(out.read_text())
    assert texts[0] == texts[1]
    assert str(ROOT) not in texts[0] and "seconds" not in texts[0]
    rec = json.loads(texts[0])
    assert rec["changed"] == len(data["changed"]) and rec["cells"] == data["cells"]
    assert [g["cells"] for g in rec["groups"]] == [len(g["cells"]) for g in data["groups"]]
    assert [len(g["changes"]) for g in rec["groups"]] == [len(g["changes"]) for g in data["groups"]]
    assert rec["head"]["target"].endswith("(mutant no-batch-invariant)") and not rec["ok"]


def test_accepted_changes_pass_and_a_stale_entry_fails(tmp_path: Path, mutant_diff) -> None:
    _, data, _ = mutant_diff
    accept = tmp_path / "accept.yaml"
    accept.write_text(
        "accepted:\n"
        f"  - where: [{BI} true]\n"
        "    reason: batch invariance is being reworked in this pull request\n"
    )
    run = _diff("--head-mutant", "no-batch-invariant", "--accept", str(accept))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CHANGED (all accepted)" in run.stdout
    assert "accepted: batch invariance is being reworked" in run.stdout
    accept.write_text(accept.read_text() + (
        "  - where: [VLLM_USE_FBGEMM true, device cpu]\n"
        "    head: 'FbgemmNvFp4LinearKernel'\n"
        "    reason: never happens\n"
    ))
    run = _diff("--head-mutant", "no-batch-invariant", "--accept", str(accept))
    assert run.returncode == 1
    assert f"STALE {accept.name}:4: accepts no change any more" in run.stdout.replace(str(tmp_path) + "/", "")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        ([], "the two sides are the same engine"),
        (["--head-path", str(tmp_path / "nope")], "not a folder"),
        (["--base-python", str(tmp_path / "python")], "no such interpreter"),
        (["--head-mutant", "nope"], "unknown mutant of target kernels 'nope'"),
    ]
    for args, message in cases:
        run = _diff(*args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert message in run.stderr, (args, run.stderr)
    broken = tmp_path / "accept.yaml"
    broken.write_text("accepted:\n  - where: []\n    reason: r\n")
    with pytest.raises(MatrixError, match=r"accept.yaml:2: accepted\[0\]\.where"):
        load_accepted(broken)
    # the loader's wording: a typo is named with its line and the closest key
    broken.write_text("accepted:\n  - where: [x]\n    reasn: typo\n")
    with pytest.raises(MatrixError) as info:
        load_accepted(broken)
    text = str(info.value)
    assert "accept.yaml:2: accepted[0].reason: missing required key 'reason'" in text
    assert "accept.yaml:3: accepted[0].reasn: unknown key 'reasn'; did you mean 'reason'?" in text
    broken.write_text("- a list\n")
    with pytest.raises(MatrixError, match="an accept file is a mapping with an 'accepted:' list"):
        load_accepted(broken)


def test_accept_matches_attributes_and_both_outcomes() -> None:
    from harness.diff.accept import AcceptedChange
    from harness.diff.changes import CellChange
    from harness.evaluate.cells import Cell

    cell = Cell("b200-x", "g", "b200", ((BI, "1"),), "any")
    change = CellChange(cell, frozenset({f"{BI} true", "device cuda"}),
                        {"kind": "backend", "kernel": "A"}, {"kind": "backend", "kernel": "B"})
    entries = [(3, AcceptedChange(where=[f"{BI} true"], base="A", head="B", reason="r")),
               (5, AcceptedChange(where=["device cpu"], reason="r"))]
    acceptance = accepted_changes((change,), entries, "a.yaml")
    assert acceptance.accepted[cell.nodeid][0] == 3
    assert acceptance.stale == ("a.yaml:5: accepts no change any more (device cpu: r): remove or fix it",)
    wrong_head = [(3, AcceptedChange(where=[f"{BI} true"], head="C", reason="r"))]
    assert not accepted_changes((change,), wrong_head, "a.yaml").accepted


def test_volatile_text_is_normalised_and_outcomes_are_one_line() -> None:
    assert normalise("object at 0x7f3a9c0b1d30 in /tmp/tree/x.py", ["/tmp/tree"]) == "object at 0x… in <tree>/x.py"
    assert outcome_summary({"kind": "error", "error_type": "ValueError", "error": "a\nb"}) == "ValueError: a"
    assert outcome_summary({"kind": "crash", "error": "boom"}) == "crash: boom"
