"""What vLLM 0.34.0 changed against 0.33.0, seen by ``nvfp4-matrix diff`` (the ``vllm-diff`` lane).

0.33.0 is installed; 0.34.0's Python files, unpacked from its wheel, are the head's source
tree (``NVFP4_DIFF_HEAD``, set by the lane). Every change is one of the five the release
notes of this project list for 0.34 (docs/vllm.md): the weight-only batch-invariance path
now forces Humming, and three log changes of the same hunk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT

HEAD = os.environ.get("NVFP4_DIFF_HEAD")
#: 0.33.0's Python files, unpacked as 0.34.0's are: both sides as source trees
BASE = os.environ.get("NVFP4_DIFF_BASE")
ACCEPT = ROOT / "accepted" / "vllm-0.33-0.34.yaml"
BI = "VLLM_BATCH_INVARIANT"

pytestmark = pytest.mark.skipif(
    HEAD is None, reason="needs NVFP4_DIFF_HEAD, a vLLM 0.34.0 source tree: run tox -e vllm-diff"
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def _diff(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    assert HEAD is not None
    run = _cli("diff", "--target", "vllm", "--head-path", HEAD, "--json", str(out), *args)
    assert out.is_file(), run.stdout + run.stderr
    return run, json.loads(out.read_text())


@pytest.fixture(scope="module")
def installed() -> str:
    from harness.targets import get_target

    version = get_target("vllm").version()
    assert version is not None and version.startswith("0.33."), version
    return version


@pytest.fixture(scope="module")
def plain(tmp_path_factory, installed) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    return _diff(tmp_path_factory.mktemp("diff") / "plain.json")


def _changes(data: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["base"], c["head"], len(c["cells"])) for g in data["groups"] for c in g["changes"]]


def test_only_batch_invariant_cells_changed(plain) -> None:
    run, data = plain
    assert run.returncode == 1, run.stderr
    assert data["base"]["version"].startswith("0.33.") and data["head"]["version"] == "0.34.0"
    assert data["changed"] and data["cells"] == data["unchanged"] + len(data["changed"])
    for cell in data["changed"]:
        assert BI in cell["env"], cell["cell"]
    for group in data["groups"]:
        assert f"{BI} true" in group["where"], group["where"]


def test_weight_only_layers_under_batch_invariance_are_forced_to_humming(plain) -> None:
    """C1: the outcome changes on weight-only cells only, from 0.33's W4A16 refusal to the
    forced-Humming error (Humming is not installed on any profile of the 0.33 matrix)."""
    _, data = plain
    outcome = [c for c in data["changed"] if c["base"]["kind"] != c["head"]["kind"]
               or c["base"]["error"] != c["head"]["error"] or c["base"]["kernel"] != c["head"]["kernel"]]
    assert outcome
    for cell in outcome:
        assert cell["layer"] == "w4a16", cell["cell"]
        assert cell["base"]["error"].endswith("does not support W4A16"), cell["base"]
        assert cell["head"]["error"].startswith(
            "Forced NVFP4 kernel HummingNvFp4LinearKernel is not supported: "), cell["head"]


def test_the_log_changes_are_the_three_of_the_same_hunk(plain) -> None:
    """C2 (the CUTLASS INFO line is gone), C3 (the override warning's backend in lower case),
    C4 (INFO before WARNING on the emulation path): every log-only change is one of them."""
    _, data = plain
    kinds = {"gone-info": 0, "lower-case": 0, "reordered": 0}
    for base, head, n in _changes(data):
        if not base.endswith("(log)"):
            continue
        if "gone INFO VLLM_BATCH_INVARIANT forces NVFP4 linear to use the CUTLASS backend" in head:
            kinds["gone-info"] += n
        elif "using the CUTLASS backend" in head and "using the cutlass backend" in head:
            kinds["lower-case"] += n
        elif head.endswith("(log: the same lines in another order)"):
            kinds["reordered"] += n
        else:
            pytest.fail(f"a log change of no known kind: {base} -> {head}")
    assert all(kinds.values()), kinds


def test_the_accept_file_accepts_every_change_and_each_entry_is_used(tmp_path, plain) -> None:
    _, unaccepted = plain
    md = tmp_path / "diff.md"
    run, data = _diff(tmp_path / "accepted.json", "--accept", str(ACCEPT), "--markdown", str(md))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    assert data["ok"] and not data["stale_accepted"]
    assert len(data["changed"]) == len(unaccepted["changed"])
    assert all(c["accepted"] for g in data["groups"] for c in g["changes"])
    assert "CHANGED (all accepted)" in run.stdout
    assert md.read_text().startswith("## ✅ NVFP4 selection diff: vllm 0.33")


def test_the_034_matrix_shows_where_humming_now_runs(tmp_path, installed) -> None:
    """On the 0.34 line's matrix (profiles with Humming installed), the head selects Humming
    for batch-invariant weight-only cells that 0.33 refused."""
    run, data = _diff(tmp_path / "line.json", "--line", "0.34")
    assert run.returncode == 1, run.stderr
    assert data["matrix"] == ["matrix/vllm/0.34.yaml"]
    humming = [c for c in data["changed"] if c["head"]["kernel"] == "HummingNvFp4LinearKernel"]
    assert humming
    for cell in humming:
        assert cell["layer"] == "w4a16" and BI in cell["env"], cell["cell"]
        assert cell["base"]["error"].endswith("does not support W4A16"), cell["base"]


def test_a_source_tree_is_checked_as_its_own_release(tmp_path, installed) -> None:
    """``run --engine-path`` picks the tree's release line by the tree's version and passes."""
    assert HEAD is not None
    run = _cli("run", "--target", "vllm", "--engine-path", HEAD, "--reports", str(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "vllm 0.34.0" in run.stdout and "matrix/vllm/0.34.yaml" in run.stdout
    assert "PASS" in run.stdout


def test_explain_answers_for_the_tree_not_the_installed_release(installed) -> None:
    assert HEAD is not None
    args = ["explain", "matrix/vllm/0.34.yaml", "--target", "vllm", "--gpu", "b200",
            "--env", f"{BI}=1", "--layer", "w4a16", "--json"]
    head = json.loads(_cli(*args, "--engine-path", HEAD).stdout)
    assert head["error"].startswith("Forced NVFP4 kernel HummingNvFp4LinearKernel"), head


def test_two_unpacked_trees_diff_as_the_install_and_the_tree_do(tmp_path, plain) -> None:
    """``--base-path`` and ``--head-path`` both source trees (a maintainer's two checkouts):
    the same changes as 0.33.0 installed against 0.34.0's tree."""
    assert HEAD is not None
    if BASE is None:
        pytest.fail("the vllm-diff lane sets NVFP4_DIFF_BASE (0.33.0's unpacked files)")
    _, installed = plain
    run = _cli("diff", "--target", "vllm", "--base-path", BASE, "--head-path", HEAD,
               "--json", str(tmp_path / "trees.json"))
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    trees = json.loads((tmp_path / "trees.json").read_text())
    assert trees["base"]["version"] == "0.33.0" and trees["head"]["version"] == "0.34.0"
    key = lambda data: sorted((c["cell"], c["base"]["kind"], c["head"]["kind"]) for c in data["changed"])  # noqa: E731
    assert key(trees) == key(installed)

