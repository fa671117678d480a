"""The vllm target's choices that need no vLLM installed: which matrix file covers a release."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.load import load_matrix
from harness.targets import get_target
from harness.targets import vllm as vllm_target

ROOT = Path(__file__).resolve().parents[4]
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


def test_a_file_for_another_release_line_is_refused(monkeypatch):
    monkeypatch.setattr(vllm_target, "installed_version", lambda: "0.33.0")
    matrix = load_matrix([ROOT / "matrix" / "vllm" / "0.20.yaml"])
    (problem,) = get_target("vllm").check_matrix(matrix)
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
