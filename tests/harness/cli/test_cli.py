"""``nvfp4-matrix`` as a user runs it: exit codes, output, reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from harness.cli import main
from tests.support.paths import MATRIX_DIR, ROOT


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("nvfp4-matrix: error: ")
    return err[0]


def test_run_passes_prints_table_and_writes_reports(tmp_path, capsys):
    assert main(["run", "--reports", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Selection: profile x environment -> backend" in out
    assert "flashinfer-cutlass" in out and "PASS:" in out and " cells, 0 mismatches" in out
    assert (tmp_path / "junit.xml").is_file()
    assert "✅ PASS" in (tmp_path / "summary.md").read_text()


def test_run_with_a_mutant_fails_and_shows_the_mismatch(tmp_path, capsys):
    code = main(
        [
            "run",
            "--mutant",
            "no-batch-invariant",
            "--reports",
            str(tmp_path),
            "--no-table",
            "--max-failures",
            "1",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "MISMATCH " in out and "decision record:" in out and "FAIL:" in out
    assert "❌ FAIL" in (tmp_path / "summary.md").read_text()


def test_explain_json_names_the_batch_invariant_backend_and_rule(capsys):
    assert main(["explain", "--gpu", "b200", "--env", "VLLM_BATCH_INVARIANT=1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "triton" and data["kernel"] == "TritonNvFp4LinearKernel"
    assert data["error"] is None
    assert data["rule"] == "batch_invariant" and data["variable"] == "VLLM_BATCH_INVARIANT"
    assert data["decisions"][0] == {
        "backend": "triton",
        "kernel": "TritonNvFp4LinearKernel",
        "status": "selected",
        "reason": None,
    }
    assert data["oracle"]["agrees"] is True


def test_explain_packages_replace_the_profile_packages(capsys):
    assert main(["explain", "--gpu", "b200", "--packages", "", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "cublaslt"
    assert "packages none" in data["platform"]
    assert main(["explain", "--gpu", "v100", "--packages", "triton,flashinfer", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "emulation"


def test_explain_error_exits_1(capsys):
    assert main(["explain", "--gpu", "v100", "--env", "VLLM_USE_FBGEMM=1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["kernel"] is None
    assert data["error"].startswith("Forced NVFP4 kernel FbgemmNvFp4LinearKernel is not supported")
    assert data["decisions"][0]["status"] == "unsupported"


def test_explain_human_output(capsys):
    assert (
        main(["explain", "--gpu", "rtx5090", "--env", "VLLM_NVFP4_GEMM_BACKEND=flashinfer-trtllm"])
        == 1
    )
    out = capsys.readouterr().out
    assert (
        "profile rtx5090" in out and "KernelSelectionError" in out and "matrix rules: agrees" in out
    )


def test_explain_the_real_machine_uses_the_shell_environment(capsys, monkeypatch):
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")
    assert main(["explain", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] is None and data["env"] == {"VLLM_BATCH_INVARIANT": "1"}
    assert data["rule"] == "batch_invariant" and data["backend"] in ("triton", "emulation")


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["explain", "--gpu", "b2000"], "unknown profile 'b2000'; did you mean 'b200'?"),
        (["explain", "--gpu", "b200", "--env", "VLLM_USE_FBGEMM"], "expected NAME=VALUE"),
        (
            ["explain", "--gpu", "b200", "--env", "VLLM_USE_FBGEM=1"],
            "did you mean VLLM_USE_FBGEMM?",
        ),
        (["explain", "--gpu", "b200", "--packages", "cutlass"], "unknown package cutlass"),
        (["explain", "--gpu", "b200", "--layer", "huge"], "unknown layer 'huge'"),
        (["run", "does/not/exist.yaml"], "does/not/exist.yaml: cannot read the matrix file"),
        (["run", "--mutant", "nope"], "unknown mutant of target kernels 'nope'"),
        (["table", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, text, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert text in _one_error_line(capsys)


def test_invalid_matrix_file_gives_file_and_line(tmp_path, capsys):
    shutil.copy(MATRIX_DIR / "gpus.yaml", tmp_path / "gpus.yaml")
    text = (
        (MATRIX_DIR / "selection.yaml")
        .read_text()
        .replace("    profile: gb10\n", "    profile: gb100\n")
    )
    (tmp_path / "selection.yaml").write_text(text)
    line = text.splitlines().index("    profile: gb100") + 1
    assert main(["run", str(tmp_path / "selection.yaml")]) == 2
    error = _one_error_line(capsys)
    assert f"selection.yaml:{line}: cases[15].profile: unknown profile 'gb100'" in error


def test_table_and_markdown(capsys):
    assert main(["table"]) == 0
    assert "rtx5090" in capsys.readouterr().out
    assert main(["table", "--markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| profile | arch | default | VLLM_BATCH_INVARIANT=1 |")
    assert any(line.startswith("| gb10 | sm_121 | cublaslt | triton |") for line in out)


def test_schema_check(capsys, tmp_path):
    assert main(["schema", "--check", "matrix/schema.json"]) == 0
    (tmp_path / "old.json").write_text("{}")
    assert main(["schema", "--check", str(tmp_path / "old.json")]) == 1


def test_mutants_command_catches_all(capsys):
    assert main(["mutants"]) == 0
    out = capsys.readouterr().out
    assert "all 6 mutants of target kernels caught" in out and "SURVIVED" not in out


def test_python_dash_m_harness():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "explain",
            "--gpu",
            "b200",
            "--env",
            "VLLM_BATCH_INVARIANT=1",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == "triton"


@pytest.mark.parametrize("args", [
    ["--linear-backend", "nosuch"],
    ["--linear-backend", "cutlass"],
    ["--env=--linear-backend=cutlass"],
])
def test_an_option_the_target_does_not_read_is_refused_naming_it(capsys, args):
    """This project's selection has no --linear-backend (vLLM's does): asking with it is a usage
    error, never an answer that silently ignored it."""
    assert main(["explain", "--gpu", "b200", *args]) == 2
    line = _one_error_line(capsys)
    assert "'--linear-backend': not an option this target reads" in line
    assert "(it reads: VLLM_BATCH_INVARIANT, " in line
