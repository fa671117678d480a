"""tools/readme.py: the README's figures are regenerated from the tool and the lanes' records,
and a README that differs from a regeneration fails."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


readme = _load("readme")
check_torch = _load("check_torch")


def run_record(cells: int, known: int, mutant=None, findings=None, first=None, covers=None):
    return {
        "record": 1, "target": "vllm", "version": "0.20.2", "mutant": mutant,
        "matrix": ["matrix/vllm/0.20.yaml", "matrix/gpus.yaml"], "covers": covers, "ok": True,
        "cells": cells, "mismatches": 0 if mutant is None else 518, "known_failures": known,
        "stale_known": [], "groups": {}, "findings": findings or {},
        "first_mismatch": first, "verdict": f"PASS: {cells} cells (target vllm 0.20.2)",
    }


@pytest.fixture
def records(tmp_path, monkeypatch):
    folder = tmp_path / "records"
    folder.mkdir()
    monkeypatch.setattr(readme, "RECORDS", folder)
    monkeypatch.setattr(readme, "VLLM_LINES", ("0.20", "0.22"))
    monkeypatch.setattr(readme, "ROOT", tmp_path)

    def write(name: str, data: dict) -> None:
        (folder / f"{name}.json").write_text(json.dumps(data))

    write("mutation", {
        "record": 1, "lane": "mutation", "cosmic-ray": "8.7.0", "python": "3.11.7",
        "torch": "2.13.0+cpu", "ci_shard": {"shard": "0/8", "mutants": 66}, "mutants": 526,
        "equivalent": 27, "counted": 499, "killed_by_matrix": 476, "killed_by_tests": 23,
        "accepted": 0, "survivors": 0,
    })
    trtllm = {"backend-flashinfer-trtllm": {"got": "backend flashinfer-trtllm", "upstream": "x",
                                            "cells": 38}}
    write("vllm-0.20", run_record(2910, 323, findings=trtllm, covers=">=0.20,<0.22"))
    write("vllm-0.22", run_record(3564, 283))
    first = "MISMATCH b200-X  [env-cross, m.yaml:1]\n  expected : a\n  problems :\n    - one\n    - two"
    for line, n in (("0.20", 518), ("0.22", 948)):
        mutant = run_record(2910, 473, mutant="vllm-39129", first=first)
        mutant["mismatches"] = n
        write(f"vllm-{line}-mutants", {"record": 1, "target": "vllm", "version": "x",
                                       "mutants": {"vllm-39129": mutant}})
        write(f"mutation-vllm-{line}", {
            "record": 1, "lane": f"mutation-vllm-{line}", "vllm": f"{line}.2", "mutants": 59,
            "equivalent": 2, "counted": 57, "killed_by_matrix": 56, "killed_by_tests": 0,
            "accepted": 1, "survivors": 0, "regressions": {"vllm-39129": "matrix"},
        })
    return write


def regen(text: str) -> str:
    return readme.regenerate(text, "README.md", None)


def test_recorded_blocks_are_rendered_from_the_records(records):
    text = (
        "score\n<!-- gen:mutation-score -->\nstale\n<!-- /gen -->\n"
        "tests only (<!-- gen:mutation:killed_by_tests -->0<!-- /gen -->), "
        "<!-- gen:mutation:ci-shard -->?<!-- /gen -->; <!-- gen:mutation:tools -->?<!-- /gen -->\n"
        "<!-- gen:vllm-lanes -->\n<!-- /gen -->\n"
        "fails <!-- gen:vllm-39129:0.22 -->1<!-- /gen --> cells; "
        "| <!-- gen:vllm-finding:backend-flashinfer-trtllm -->9<!-- /gen --> |\n"
        "<!-- gen:vllm-39129-example:0.20 -->\n<!-- /gen -->\n"
        "<!-- gen:vllm-mutation -->\n<!-- /gen -->\n"
    )
    out = regen(text)
    assert "| 526 | 27 | 476/499 (95.4%) | 499/499 (100%) | 0 |" in out
    assert "tests only (<!-- gen:mutation:killed_by_tests -->23<!-- /gen -->)" in out
    assert "<!-- gen:mutation:ci-shard -->shard 0 of 8, 66 mutants<!-- /gen -->" in out
    assert "cosmic-ray 8.7.0, Python 3.11.7, torch 2.13.0+cpu" in out
    assert ("| `tox -e vllm-0.20` | 0.20.2 (covers >=0.20,<0.22) | `matrix/vllm/0.20.yaml` | 2910 "
            "| 323 |") in out
    assert "fails <!-- gen:vllm-39129:0.22 -->948<!-- /gen --> cells" in out
    assert "<!-- gen:vllm-finding:backend-flashinfer-trtllm -->38 / —<!-- /gen -->" in out
    assert "MISMATCH b200-X  [env-cross, m.yaml:1]\n  expected : a\n  problems :\n    - one\n    ...\n...\n" in out
    assert "| `tox -e mutation-vllm-0.22` | 0.22.2 | 59 | 2 | 56/57 (98.2%) | 1 | killed |" in out
    assert regen(out) == out  # a regeneration of a regenerated file changes nothing
    assert readme.regenerate(text, "README.md", "live") == text  # only the live blocks: none here


def test_a_record_problem_is_one_clear_line(records, monkeypatch):
    monkeypatch.setattr(readme, "VLLM_LINES", ("0.33",))
    with pytest.raises(readme.ReadmeError, match=r"records/mutation-vllm-0.33.json is missing"):
        regen("<!-- gen:vllm-mutation -->\n<!-- /gen -->")
    records("vllm-0.20", run_record(2910, 473, mutant="vllm-39129"))
    with pytest.raises(readme.ReadmeError, match=r"rerun `tox -e vllm-0.20` without arguments"):
        regen("<!-- gen:vllm:0.20:cells -->1<!-- /gen -->")
    with pytest.raises(readme.ReadmeError, match="unknown block gen:nope"):
        regen("<!-- gen:nope -->1<!-- /gen -->")
    with pytest.raises(readme.ReadmeError, match="inline but its value has several lines"):
        regen("<!-- gen:mutation-score -->x<!-- /gen -->")
    with pytest.raises(readme.ReadmeError, match="no such figure"):
        regen("<!-- gen:mutation:nope -->x<!-- /gen -->")


def test_the_check_fails_on_a_drifted_readme_and_write_fixes_it(records, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(readme, "FILES", ("README.md",))
    page = tmp_path / "README.md"
    page.write_text("tests only: <!-- gen:mutation:killed_by_tests -->22<!-- /gen -->\n")
    assert readme.main(["--only", "recorded"]) == 1
    out, err = capsys.readouterr()
    assert "-tests only: <!-- gen:mutation:killed_by_tests -->22" in out
    assert "+tests only: <!-- gen:mutation:killed_by_tests -->23" in out
    assert "README.md differ from a regeneration: run `python tools/readme.py --write`" in err
    assert readme.main(["--only", "recorded", "--write"]) == 0
    assert page.read_text() == "tests only: <!-- gen:mutation:killed_by_tests -->23<!-- /gen -->\n"
    assert readme.main(["--only", "recorded"]) == 0


def test_shorten_keeps_each_sections_first_line():
    report = "\n".join([
        "MISMATCH cell  [g, f:1]", "  rule     : " + "r" * 200, "  oracle:", "    one", "    two",
        "    three", "  decision record:", "    a", "      b",
    ])
    assert readme.shorten(report, width=40).splitlines() == [
        "MISMATCH cell  [g, f:1]", "  rule     : " + "r" * 23 + " ...", "  oracle:", "    one",
        "    ...", "  decision record:", "    a", "      ...",
    ]


def test_the_committed_readme_matches_the_committed_records():
    """The figures that come from the long and the engine lanes (docs/records/)."""
    assert readme.main(["--only", "recorded"]) == 0


def test_the_committed_readme_matches_this_checkout(monkeypatch):
    """The figures computed from this checkout (the matrix, the table, a mutant's failure)."""
    monkeypatch.chdir(ROOT)
    assert readme.main(["--only", "live"]) == 0


@pytest.mark.parametrize(
    ("version", "cuda", "fits"),
    [("2.13.0+cpu", None, True), ("2.13.0", None, True), ("2.13.0", "12.8", False),
     ("2.13.0+cu128", "12.8", False), ("2.13.0+cu130", None, False)],
)
def test_the_cpu_lanes_refuse_a_cuda_torch_with_the_fix(version, cuda, fits):
    message = check_torch.problem(version, cuda, "cpu")
    if fits:
        assert message is None
    else:
        assert message is not None and f"torch {version} is a CUDA build" in message
        assert "export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in message
        assert "tox -r -e cpu" in message and "Linux x86-64" in message


def test_this_environment_passes_the_torch_check():
    assert check_torch.main(["check_torch.py", "cpu"]) == 0
