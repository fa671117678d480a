"""Any output encoding works: plain fallbacks for the symbols, never a UnicodeEncodeError."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.cli._encoding import PLAIN, plain_text
from tests.support.paths import ROOT

COMMANDS = [
    (["table"], 0, "x unsupported"),
    (["run", "--no-reports", "--mutant", "no-batch-invariant", "--max-failures", "1"], 1,
     "MISMATCH"),
    (["explain", "--gpu", "v100", "--env", "VLLM_USE_FBGEMM=1"], 1, "error"),
    (["mutants"], 0, "caught"),
    (["schema"], 0, '"$schema"'),
]

ENCODINGS = {
    "PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
    "PYTHONIOENCODING=latin-1": {"PYTHONIOENCODING": "latin-1"},
    "PYTHONIOENCODING=cp1252": {"PYTHONIOENCODING": "cp1252"},
    # the C locale without Python's UTF-8 mode: ASCII streams
    "LC_ALL=C": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}


# every command on an ASCII output; the other encodings with the commands that print symbols
CASES = [("PYTHONIOENCODING=ascii", *c) for c in COMMANDS] + [
    (encoding, *c) for encoding in list(ENCODINGS)[1:] for c in COMMANDS[:2]
]


@pytest.mark.parametrize(
    ("encoding", "argv", "code", "shown"), CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES]
)
def test_every_command_works_on_a_narrow_output(encoding, argv, code, shown):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LC_ALL", "LANG")}
    env.update(ENCODINGS[encoding])
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        env=env,
    )
    err = proc.stderr.decode("ascii", "replace")
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and "UnicodeEncodeError" not in err
    assert shown in proc.stdout.decode("latin-1")
    if "ascii" in encoding or encoding == "LC_ALL=C":
        proc.stdout.decode("ascii")  # every byte is ASCII: the symbols were spelled plainly


def test_the_plain_spellings():
    assert plain_text("✗ unsupported", "ascii") == "x unsupported"
    assert plain_text("a ≠ b → c", "ascii") == "a != b -> c"
    assert plain_text("NVIDIA Ｂ200 \U0001f600", "ascii") == "NVIDIA \\uff22200 \\U0001f600"
    assert plain_text("✗ é", "latin-1") == "x é"  # what the encoding has is kept
    for symbol, plain in PLAIN.items():
        assert plain.isascii() and plain_text(symbol, "ascii") == plain


def test_a_file_name_that_is_not_utf8_prints_on_a_utf8_output(tmp_path):
    """A lone surrogate (a file name of bytes that are not UTF-8) cannot be encoded even as
    UTF-8: the name is refused by the loader, in one line, not a UnicodeEncodeError."""
    bad = os.fsdecode(b"m\xff.yaml")
    (tmp_path / bad).write_text("version: 1\n")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(tmp_path / bad)],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        env=env,
    )
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2
    assert len(err.splitlines()) == 1 and "U+DCFF (a lone surrogate" in err
