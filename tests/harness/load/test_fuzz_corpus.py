"""The malformed-matrix corpus: every file is refused with the problem ``EXPECTED.tsv`` names.

``tests/harness/corpus/cases/`` holds one malformed matrix file per class of
bad input (YAML syntax, bytes that are not UTF-8 or not allowed, alias bombs,
self-referencing anchors, deep nesting, too many values or cells, every kind
of wrong value, includes that leave the folder or are not regular files, ...);
``EXPECTED.tsv`` gives the line, key and message each must produce
(``corpus/make_corpus.py`` writes both). Paths that cannot be checked in (a
FIFO, a device, a directory, an oversized file) are made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import MatrixError
from harness.evaluate.session import Session
from harness.load import load_matrix
from harness.load.limits import DEFAULT_LIMITS
from harness.load.yamlsrc import display_path

CORPUS = Path(__file__).parent / "corpus"
#: Time bound for refusing one file (the slowest, 60,000 values, takes about 0.3 s).
TIME_BOUND_S = 5.0
#: Peak resident memory of a process that imports the harness and refuses every file of the
#: corpus, one after the other (about 57 MiB, most of it the imports).
MEMORY_BOUND_MIB = 256
#: The longest problem line of the corpus (a 100,000-character key is quoted in 200 characters).
MAX_PROBLEM_CHARS = 1000


def _rows() -> list[tuple[str, int | None, str, str]]:
    rows = []
    for text in (CORPUS / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines():
        if not text or text.startswith("#"):
            continue
        file, line, key, message = text.split("\t")
        rows.append((file, None if line == "-" else int(line), key, message))
    return rows


ROWS = _rows()


def refuse(path: Path) -> MatrixError:
    """Load ``path`` and bind it to its target as ``nvfp4-matrix run`` does; the error it
    must raise."""
    with pytest.raises(MatrixError) as info:
        Session(load_matrix([path]))
    return info.value


def test_the_corpus_is_large_and_every_file_is_listed():
    files = sorted(p.name for p in (CORPUS / "cases").iterdir())
    assert len(ROWS) >= 150
    assert files == sorted(row[0] for row in ROWS)


@pytest.mark.parametrize(("file", "line", "key", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_corpus_file_is_refused_with_its_location(file, line, key, message):
    path = CORPUS / "cases" / file
    start = time.perf_counter()
    error = refuse(path)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND_S, elapsed
    name = display_path(path)
    for problem in error.problems:
        assert problem.file and problem.line is not None, problem  # every problem is located
    wanted = [p for p in error.problems if p.file == name and p.line == line and p.key == key]
    assert any(message in p.message for p in wanted), (
        f"expected {name}:{line}: {key}: ...{message}..., got:\n{error}"
    )
    assert "\n" not in str(error.first)  # one line per problem
    for problem in error.problems:  # a bad value is quoted, never echoed whole
        assert len(str(problem)) < MAX_PROBLEM_CHARS, str(problem)[:300]


_MEASURE = """
import json, sys, time
from pathlib import Path
from harness.errors import MatrixError
from harness.evaluate.session import Session
from harness.load import load_matrix
start = time.perf_counter()
refused = located = 0
for path in sorted(Path(sys.argv[1]).iterdir()):
    try:
        Session(load_matrix([path]))
    except MatrixError as exc:
        refused += 1
        located += all(p.line is not None for p in exc.problems)
# VmHWM: this process's peak resident memory (ru_maxrss would include the parent's at fork)
status = Path("/proc/self/status").read_text()
peak = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")))  # KiB
print(json.dumps({"refused": refused, "located": located, "peak_kib": peak,
                  "seconds": time.perf_counter() - start}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_the_whole_corpus_stays_within_the_memory_bound():
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(CORPUS / "cases")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(proc.stdout)
    assert figures["refused"] == figures["located"] == len(ROWS)
    assert figures["peak_kib"] < MEMORY_BOUND_MIB * 1024, figures


def _one_problem(path: Path) -> str:
    error = refuse(path)
    assert len(error.problems) == 1
    problem = error.first
    assert problem.file == display_path(path)
    return str(problem)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "matrix.yaml"
    os.mkfifo(fifo)
    assert "it is a FIFO (named pipe), not a regular file" in _one_problem(fifo)
    main = tmp_path / "main.yaml"
    main.write_text("version: 1\ninclude: [matrix.yaml]\n")
    assert f"{display_path(main)}:2: include[0]: included file 'matrix.yaml' is a FIFO" in (
        _one_problem(main)
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused(device):
    assert "it is a character device, not a regular file" in _one_problem(Path(device))


def test_a_directory_is_refused(tmp_path):
    assert "it is a directory, not a regular file" in _one_problem(tmp_path)


def test_a_symlink_out_of_the_folder_is_refused_at_the_include_line(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "inner" / "main.yaml").write_text("version: 1\ninclude: [zero.yaml]\n")
    text = _one_problem(tmp_path / "inner" / "main.yaml")
    assert ":2: include[0]: included file 'zero.yaml' is outside" in text


def test_a_missing_file_and_an_oversized_file(tmp_path):
    assert "it does not exist" in _one_problem(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"version: 1\n" + b"#" * DEFAULT_LIMITS.max_file_bytes)
    assert f"more than the limit of {DEFAULT_LIMITS.max_file_bytes}" in _one_problem(big)


def test_a_profiles_only_file_alone_has_nothing_to_check(tmp_path):
    gpus = Path("matrix/gpus.yaml").read_text()
    path = tmp_path / "gpus.yaml"
    path.write_text(gpus)
    assert ":1: this file defines no 'precedence' table" in _one_problem(path)
