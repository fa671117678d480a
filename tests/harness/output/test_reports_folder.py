"""A reports folder is held by one run at a time: two runs never mix their reports."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import OutputError
from harness.output.folder import LOCK_NAME, hold_folder
from tests.support.paths import ROOT, plugin_args

pytest_plugins = ["pytester"]

HOLD = """
import sys
from harness.output.folder import hold_folder
with hold_folder(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_held_folder_refuses_a_second_holder_and_is_free_again(tmp_path):
    with hold_folder(tmp_path / "reports") as folder:
        assert (folder / LOCK_NAME).is_file()
        with pytest.raises(OutputError) as info:
            with hold_folder(folder):
                pass
        assert str(info.value) == (
            f"the reports folder {folder} is in use by another run (process {_pid()}): wait for "
            "it to finish, or give this run another folder (--reports DIR)"
        )
    with hold_folder(tmp_path / "reports"):  # released at the end of the block
        pass


def _pid() -> int:
    import os

    return os.getpid()


def test_a_file_where_the_folder_should_be(tmp_path):
    (tmp_path / "reports").write_text("")
    with pytest.raises(OutputError, match="a file stands where a folder is needed"):
        with hold_folder(tmp_path / "reports"):
            pass


def test_a_run_into_a_folder_another_process_holds_is_refused_before_it_runs(tmp_path):
    reports = tmp_path / "reports"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(reports)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--reports", str(reports)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            f"nvfp4-matrix: error: the reports folder {reports} is in use by another run "
            f"(process {holder.pid}): wait for it to finish, or give this run another folder "
            "(--reports DIR)"
        ]
        assert proc.stdout == ""  # refused before any cell ran
        assert sorted(p.name for p in reports.iterdir()) == [LOCK_NAME]
        assert time.perf_counter() - start < 60
    finally:
        holder.kill()  # even a killed holder releases the folder
        holder.wait()
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--no-table", "--reports", str(reports)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert {"junit.xml", "summary.md"} <= {p.name for p in reports.iterdir()}


def test_runs_one_after_the_other_share_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    for _ in range(2):
        assert main(["run", "--no-table", "--reports", str(tmp_path)]) == 0
    capsys.readouterr()


def test_the_pytest_plugin_holds_its_reports_folder_and_swaps_junit_in(pytester):
    pytester.makepyfile(test_x="def test_ok():\n    pass\n")
    out = pytester.path / "out"
    (out).mkdir()
    (out / "junit.xml").write_text("previous")
    with hold_folder(out):
        result = pytester.runpytest(*plugin_args(), "--nvfp4-reports", "out")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*the reports folder out is in use by another run*"])
    assert (out / "junit.xml").read_text() == "previous"
    pytester.runpytest(*plugin_args(), "--nvfp4-reports", "out").assert_outcomes(passed=1)
    suite = ET.parse(out / "junit.xml").getroot()  # pytest's report, swapped in whole
    assert suite.find(".//testcase[@name='test_ok']") is not None
    (out / "summary.md").read_bytes().decode("utf-8")
    assert sorted(p.name for p in Path(out).iterdir()) == [LOCK_NAME, "junit.xml", "summary.md"]
