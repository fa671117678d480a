"""The vllm target's choices that need no vLLM installed: which matrix file covers a release.

These run in the CPU suite (no vLLM there); the vllm-<line> lanes run tests/harness/targets/vllm/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.load import load_matrix
from harness.targets import get_target
from harness.targets import vllm as vllm_target

ROOT = Path(__file__).resolve().parents[3]
needs_no_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed in this environment"
)


@pytest.mark.parametrize(
    ("version", "stem"), [("0.20.0", "0.20"), ("0.20.2", "0.20"), ("0.21.0", "0.20")]
)
def test_the_file_covering_the_installed_release_is_chosen(monkeypatch, version, stem):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: version)
    (path,) = get_target("vllm").default_matrix(ROOT)
    assert path == ROOT / "matrix" / "vllm" / f"{stem}.yaml"


def test_an_uncovered_release_names_the_covered_ranges(monkeypatch):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.19.1")
    with pytest.raises(UsageError) as info:
        get_target("vllm").default_matrix(ROOT)
    text = str(info.value)
    assert text.startswith("target vllm: no matrix file covers the installed vLLM 0.19.1; covered: ")
    assert ">=0.20,<0.22 (matrix/vllm/0.20.yaml)" in text


@needs_no_vllm  # (with vLLM installed, binding imports it: the vllm-<line> lanes cover that)
def test_a_file_for_another_release_line_is_refused(monkeypatch):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.33.0")
    matrix = load_matrix([ROOT / "matrix" / "vllm" / "0.20.yaml"])
    # the first problem (here vLLM is not really installed: what the runtime finds follows it)
    problem = get_target("vllm").check_matrix(matrix)[0]
    assert problem.key == "target.versions"
    assert "the installed vLLM 0.33.0 is outside '>=0.20,<0.22'" in problem.message


def test_every_vllm_matrix_file_loads_and_says_its_target():
    files = sorted((ROOT / "matrix" / "vllm").glob("*.yaml"))
    assert files
    for path in files:
        matrix = load_matrix([path])
        assert matrix.target is not None and matrix.target.name == "vllm"
        assert matrix.target.versions and matrix.target.source


@needs_no_vllm
def test_run_without_vllm_installed_is_one_line(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["run", "--target", "vllm", "--no-reports"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "nvfp4-matrix: error: target vllm: vLLM is not installed here "
        "(tox -e vllm-0.20 builds an environment with it)"
    ]


def test_a_release_newer_than_every_line_gets_the_newest_line_with_a_notice(monkeypatch):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "9.1.0")
    target = get_target("vllm")
    (path,) = target.default_matrix(ROOT)
    newest = max((p for p in (ROOT / "matrix" / "vllm").glob("*.yaml")),
                 key=lambda p: tuple(int(x) for x in p.stem.split(".")))
    assert path == newest
    assert target.matrix_notice is not None and "9.1.0" in target.matrix_notice
    assert newest.stem in target.matrix_notice


def test_a_named_line_is_run_whatever_is_installed_with_a_notice_when_it_does_not_cover_it(
    monkeypatch,
):
    target = get_target("vllm")
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.34.0")
    (path,) = target.default_matrix(ROOT, "0.33")
    assert path == ROOT / "matrix" / "vllm" / "0.33.yaml"
    assert target.matrix_notice is not None
    assert "0.34.0 is checked against the 0.33 line's matrix" in target.matrix_notice
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.33.0")
    target.default_matrix(ROOT, "0.33")
    assert target.matrix_notice is None


def test_an_unknown_line_names_the_lines(monkeypatch):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.34.0")
    with pytest.raises(UsageError) as info:
        get_target("vllm").default_matrix(ROOT, "0.35")
    assert "0.35" in str(info.value) and "0.33" in str(info.value) and "0.34" in str(info.value)
