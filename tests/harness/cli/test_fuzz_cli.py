"""The command line under misuse: argument vectors, closed and full outputs, shell quoting.

Whatever the arguments, :func:`harness.cli.main` ends in exit code 0, 1 or 2;
on 2 every line on stderr is one ``nvfp4-matrix...: error: ...`` line; never a
traceback. The fuzzed vectors run in a scratch folder holding a copy of the
shipped matrix, so nothing they write lands in the project.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "harness" / "load" / "corpus" / "cases"

SUBCOMMANDS = ["run", "explain", "table", "mutants", "schema", "buildkite", "reality"]
OPTIONS = [
    "--gpu", "--env", "--packages", "--mock", "--layer", "--json", "--reports", "--no-reports",
    "--max-failures", "--max-cells", "--mutant", "--entry", "--target", "--write", "--check",
    "-o", "--markdown", "--profile", "--no-table", "--linear-backend", "--help",
]
VALUES = [
    "b200", "B200", "h100", "nope", "VLLM_USE_FBGEMM=1", "VLLM_USE_FBGEMM", "=1", "X=1",
    "VLLM_BATCH_INVARIANT=maybe", "flashinfer,fbgemm_gpu", "cutlass", "", "-1", "0", "3", "1e9",
    "triton=no:down", "triton", "w4a16-bf16", "init", "decide", "vllm", "kernels",
    "missing/folder/out.txt", "out.json", ".", "/dev/null", "README.md", "matrix/gpus.yaml",
    "matrix/selection.yaml", "no-such.yaml", "batch_invariant_dropped", "é", "a b;c",
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    shutil.copytree(ROOT / "matrix", folder / "matrix")
    (folder / "README.md").write_text("# not a schema\n")
    for name in ("001-empty-file.yaml", "042-alias-bomb.yaml", "156-precedence-value-unknown.yaml"):
        if (CORPUS / name).exists():
            shutil.copy(CORPUS / name, folder / name)
    return folder


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def _assert_clean(code: int, err: str) -> None:
    assert code in (0, 1, 2), code
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert lines, "exit 2 without a message"
        for line in lines:
            assert line.startswith("nvfp4-matrix") and ": error: " in line, line


tokens = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), st.text(max_size=6))
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(sub=st.sampled_from(SUBCOMMANDS), rest=st.lists(tokens, max_size=5))
def test_any_argument_vector_ends_cleanly(scratch, sub, rest):
    # a small matrix limit keeps each vector quick; a larger one given later still wins
    argv = [sub, *rest]
    if sub in ("run", "table", "mutants") and "--max-cells" not in rest:
        argv.append("--max-cells=100")
    code, _, err = _run(argv, scratch)
    _assert_clean(code, err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--max-failures", "-1"], "--max-failures: -1 is less than 0"),
        (["run", "--max-cells", "0"], "--max-cells: 0 is less than 1"),
        (["explain", "--gpu", "B200"], "unknown profile 'B200'; did you mean 'b200'?"),
        (["explain", "--env", "vllm_use_fbgemm=1"], "did you mean VLLM_USE_FBGEMM?"),
        (["schema", "--check", "README.md"], "README.md is not a JSON schema file"),
        (["schema", "--write", "missing/schema.json"], "the folder missing does not exist"),
        (["buildkite", "-o", "missing/pipeline.yml"], "the folder missing does not exist"),
        (["run", "--reports", "README.md/x"], "cannot write into README.md"),
        (["table", "042-alias-bomb.yaml"], "042-alias-bomb.yaml:3: l5[1][2][5][7][1]: expands"),
        (["table", "001-empty-file.yaml"], "001-empty-file.yaml:1: a matrix file is a mapping"),
        (["table", "matrix/gpus.yaml"], "gpus.yaml:1: this file defines no 'precedence' table"),
        (["table", "--max-cells", "1000"], "more than the limit of 1,000"),
        (["run", "."], ".: cannot read the matrix file: it is a directory"),
    ],
)
def test_misuse_is_one_line_and_exit_2(scratch, argv, message):
    code, out, err = _run(argv, scratch)
    assert code == 2, (out, err)
    _assert_clean(code, err)
    assert message in err
    assert "--write README.md" not in err


def test_schema_check_of_a_stale_schema_still_advises_write(scratch):
    (scratch / "old.json").write_text("{}")
    code, _, err = _run(["schema", "--check", "old.json"], scratch)
    assert code == 1 and "--write old.json" in err


def test_buildkite_quotes_every_matrix_path(scratch):
    folder = scratch / "a b;rm -rf x"
    folder.mkdir(exist_ok=True)
    for name in ("gpus.yaml", "selection.yaml"):
        shutil.copy(scratch / "matrix" / name, folder / name)
    matrix = "a b;rm -rf x/selection.yaml"
    code, out, err = _run(["buildkite", matrix], scratch)
    assert code == 0, err
    commands = [c for s in yaml.safe_load(out)["steps"] for c in s.get("commands", [])]
    assert any(c.endswith(" 'a b;rm -rf x/selection.yaml'") for c in commands), commands
    assert not any("rm -rf x/selection.yaml" in c.replace(f"'{matrix}'", "") for c in commands)


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("nvfp4-matrix")
    launcher = str(exe) if exe.exists() else f"{sys.executable} -m harness"
    return subprocess.run(
        ["bash", "-c", command.replace("nvfp4-matrix", launcher)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not shutil.which("bash") or not Path("/dev/full").exists(), reason="POSIX")
def test_closed_full_and_vanishing_stdout(scratch):
    # a reader that goes away after one line: a passing matrix still exits 0
    proc = _shell("set -o pipefail; nvfp4-matrix run --no-reports | head -1", scratch)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "NVFP4 selection matrix" and "Traceback" not in proc.stderr
    # stdout closed, or on a full disk: one line, exit 2
    for redirect, message in (
        (">&-", "standard output is closed"),
        ("> /dev/full", "cannot write to standard output: No space left on device"),
    ):
        proc = _shell(f"nvfp4-matrix schema {redirect}", scratch)
        assert proc.returncode == 2, (redirect, proc.stderr)
        assert proc.stderr.strip().startswith(f"nvfp4-matrix: error: {message}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
