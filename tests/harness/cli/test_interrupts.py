"""SIGINT and SIGTERM end any command with one line and exit 130/143, and no partial file.

Each command runs in its own process. Where the signal must arrive at a
precise moment (half-way through writing a report, while the cells run), the
process sends it to itself from the seam that moment goes through; one test
also interrupts a run from outside, while it is printing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

OLD = "the previous file, complete\n"

# Runs the CLI with a signal sent to this very process at a chosen point: half-way through
# the first file written (WRITE), or when the cells start to run (RUN).
SCRIPT = """
import os, signal, sys
from harness.cli import main
from harness.output import atomic

sig = getattr(signal, sys.argv[1])
where = sys.argv[2]
if where == "WRITE":
    real = atomic._write_chunk
    def chunk(fd, data):
        written = real(fd, data[: max(1, len(data) // 2)])
        os.kill(os.getpid(), sig)
        return written
    atomic._write_chunk = chunk
elif where == "RUN":
    from harness.evaluate import session
    def run(self, *args, **kwargs):
        os.kill(os.getpid(), sig)
        raise AssertionError("the signal did not interrupt the run")
    session.Session.run = run
sys.exit(main(sys.argv[3:]))
"""

CODES = {"SIGINT": 130, "SIGTERM": 143}


def run_interrupted(sig: str, where: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, sig, where, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # a SIGINT the parent ignores would be ignored here too (a shell's background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], sig: str) -> None:
    assert proc.returncode == CODES[sig], proc.stderr
    assert proc.stderr.splitlines() == [
        f"nvfp4-matrix: interrupted by {sig}; files being written were left as they were"
    ]


def previous_files(folder: Path, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text(OLD)


def assert_untouched(folder: Path, names: list[str]) -> None:
    for name in names:
        assert (folder / name).read_text() == OLD, name
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--no-table", "--reports", "{dir}"], ["junit.xml", "summary.md"]),
        (["schema", "--write", "{dir}/schema.json"], ["schema.json"]),
        (["buildkite", "-o", "{dir}/pipeline.yml"], ["pipeline.yml"]),
    ],
    ids=["run", "schema", "buildkite"],
)
def test_a_signal_half_way_through_a_write_keeps_the_previous_file(tmp_path, sig, argv, names):
    previous_files(tmp_path, names)
    proc = run_interrupted(sig, "WRITE", [a.format(dir=tmp_path) for a in argv])
    assert_one_line(proc, sig)
    assert_untouched(tmp_path, names)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_cells_run_writes_nothing(tmp_path, sig):
    previous_files(tmp_path, ["junit.xml", "summary.md"])
    proc = run_interrupted(sig, "RUN", ["run", "--reports", str(tmp_path)])
    assert_one_line(proc, sig)
    assert_untouched(tmp_path, ["junit.xml", "summary.md"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_from_outside_while_the_run_prints(tmp_path, sig):
    """A run printing thousands of mismatches into a pipe nobody reads is stopped from outside."""
    previous_files(tmp_path, ["junit.xml", "summary.md"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--mutant", "no-batch-invariant",
         "--max-failures", "100000", "--reports", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    assert proc.stdout is not None and proc.stdout.readline()  # it has started printing
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    name = signal.Signals(sig).name
    assert proc.returncode == CODES[name], err[-2000:]
    assert err.splitlines() == [
        f"nvfp4-matrix: interrupted by {name}; files being written were left as they were"
    ]
    assert_untouched(tmp_path, ["junit.xml", "summary.md"])


def test_an_ignored_sigterm_stays_ignored():
    from harness.cli._signals import signals_as_exceptions

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with signals_as_exceptions():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_handler_is_installed_only_within_the_block():
    from harness.cli._signals import Terminated, exit_code, signals_as_exceptions

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info:
        with signals_as_exceptions():
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before os.kill returns
    assert info.value.signum == signal.SIGTERM and exit_code(info.value.signum) == 143
    assert str(info.value) == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before
    assert not isinstance(info.value, Exception)  # no `except Exception` swallows it
