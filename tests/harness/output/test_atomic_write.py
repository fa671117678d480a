"""Atomic outputs: a report, schema or pipeline appears complete or not at all.

A full disk and an interrupt are simulated at the one seam every write goes
through (``harness.output.atomic._write_chunk``: half of the bytes written,
then the failure), and a real failing write comes from a file-size limit
(``RLIMIT_FSIZE``: the kernel refuses the write with EFBIG, as a full disk
refuses it with ENOSPC). Every case checks that the previous file is intact,
that no temporary file is left and that the message names the file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.cli._signals import Terminated
from harness.errors import OutputError
from harness.output import atomic
from harness.output.atomic import write_atomic
from tests.support.paths import ROOT

OLD = "the previous report, complete\n"


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def failing_after_half(exc: BaseException):
    """A ``_write_chunk`` that writes half of the first chunk, then raises ``exc``."""
    calls = {"n": 0}

    def chunk(fd: int, data: memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return os.write(fd, data[: max(1, len(data) // 2)])
        raise exc

    return chunk


def full_disk() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- the writer itself ----------------------------------------------------------------------


def test_a_new_file_is_written_and_an_old_one_replaced(tmp_path):
    target = tmp_path / "report.xml"
    assert write_atomic(target, "first") == target
    assert target.read_text() == "first"
    target.chmod(0o640)
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file keeps its mode
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("exc", "raised"),
    [
        (full_disk(), OutputError),
        (OSError(errno.EFBIG, os.strerror(errno.EFBIG)), OutputError),
        (OSError(errno.EIO, os.strerror(errno.EIO)), OutputError),
        (KeyboardInterrupt(), KeyboardInterrupt),
        (Terminated(15), Terminated),
    ],
    ids=["full-disk", "file-too-large", "io-error", "sigint", "sigterm"],
)
def test_a_failed_or_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch, exc, raised):
    target = tmp_path / "junit.xml"
    target.write_text(OLD)
    monkeypatch.setattr(atomic, "_write_chunk", failing_after_half(exc))
    with pytest.raises(raised) as info:
        write_atomic(target, "<new/>" * 100_000)
    assert target.read_text() == OLD
    assert leftovers(tmp_path) == []
    if raised is OutputError:
        message = str(info.value)
        assert message.startswith(f"cannot write {target}: ")
        assert message.endswith(f"(the previous {target} is kept)")
        assert "\n" not in message


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_write_chunk", failing_after_half(full_disk()))
    with pytest.raises(OutputError, match=r"No space left on device \(nothing was written\)"):
        write_atomic(tmp_path / "new.md", "x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.md"
    target.write_text(OLD)

    def refuse(src, dst):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OutputError, match="Permission denied"):
        write_atomic(target, "new")
    assert target.read_text() == OLD
    assert leftovers(tmp_path) == []


def test_a_symbolic_link_is_written_through(tmp_path):
    real = tmp_path / "real.yaml"
    real.write_text(OLD)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_target_that_is_not_a_regular_file_is_refused_untouched(tmp_path, kind):
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
        what = "a FIFO (named pipe)"
    elif kind == "folder":
        target = tmp_path / "dir"
        target.mkdir()
        what = "a directory"
    else:
        target = Path(os.devnull)
        what = "a character device"
    before = target.lstat()
    with pytest.raises(OutputError) as info:
        write_atomic(target, "x")
    assert str(info.value) == f"cannot write {target}: it is {what}, not a regular file"
    after = target.lstat()
    assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode)


def test_a_missing_folder_is_refused_unless_asked_to_create_it(tmp_path):
    with pytest.raises(OutputError, match="the folder .*nope does not exist"):
        write_atomic(tmp_path / "nope" / "x.json", "{}")
    write_atomic(tmp_path / "made" / "x.json", "{}", create_folder=True)
    assert (tmp_path / "made" / "x.json").read_text() == "{}"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="a file stands where the folder"):
        write_atomic(tmp_path / "file" / "x.json", "{}", create_folder=True)


# --- the commands: one line, exit 2, the previous file kept ----------------------------------


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["schema", "--write", "{dir}/schema.json"], "schema.json"),
        (["buildkite", "-o", "{dir}/pipeline.yml"], "pipeline.yml"),
        (["run", "--no-table", "--reports", "{dir}"], "junit.xml"),
    ],
    ids=["schema", "buildkite", "run"],
)
def test_a_full_disk_keeps_every_previous_output(tmp_path, monkeypatch, capsys, argv, name):
    monkeypatch.chdir(ROOT)
    previous = {"schema.json": OLD, "pipeline.yml": OLD, "junit.xml": OLD, "summary.md": OLD}
    for file, text in previous.items():
        (tmp_path / file).write_text(text)
    monkeypatch.setattr(atomic, "_write_chunk", failing_after_half(full_disk()))
    code = main([a.format(dir=tmp_path) for a in argv])
    assert code == 2
    line = one_error_line(capsys)
    assert line == (
        f"nvfp4-matrix: error: cannot write {tmp_path / name}: No space left on device "
        f"(the previous {tmp_path / name} is kept)"
    )
    for file, text in previous.items():
        assert (tmp_path / file).read_text() == text
    assert leftovers(tmp_path) == []


def test_a_real_file_size_limit_keeps_the_previous_report(tmp_path):
    """The kernel refuses the write (EFBIG, as a full disk gives ENOSPC): nothing is patched."""
    resource = pytest.importorskip("resource", reason="needs POSIX resource limits")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "junit.xml").write_text(OLD)
    (reports / "summary.md").write_text(OLD)
    limit = 64 * 1024  # junit.xml of the shipped matrix is about 2 MB

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--no-table", "--reports", str(reports)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"nvfp4-matrix: error: cannot write {reports / 'junit.xml'}: File too large "
        f"(the previous {reports / 'junit.xml'} is kept)"
    ]
    assert (reports / "junit.xml").read_text() == OLD
    assert (reports / "summary.md").read_text() == OLD
    assert leftovers(reports) == []


# --- every report written is parsed back -----------------------------------------------------


def test_every_output_parses_back(tmp_path, monkeypatch, capsys):
    """junit.xml (XML), summary.md (UTF-8, tables with as many cells as headers), the record
    (JSON), the schema (JSON) and the pipeline (YAML), each as the command wrote it."""
    monkeypatch.chdir(ROOT)
    reports = tmp_path / "reports"
    assert main(["run", "--no-table", "--reports", str(reports),
                 "--record", str(tmp_path / "record.json")]) == 0
    assert main(["run", "--no-table", "--mutant", "no-batch-invariant",
                 "--reports", str(tmp_path / "mutant")]) == 1
    assert main(["schema", "--write", str(tmp_path / "schema.json")]) == 0
    assert main(["buildkite", "-o", str(tmp_path / "pipeline.yml")]) == 0
    capsys.readouterr()
    for folder in (reports, tmp_path / "mutant"):
        parse_reports(folder)
    record = json.loads((tmp_path / "record.json").read_text(encoding="utf-8"))
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None and record["cells"] == int(suite.get("tests", "-1"))
    assert json.loads((tmp_path / "schema.json").read_text(encoding="utf-8"))["type"] == "object"
    assert yaml.safe_load((tmp_path / "pipeline.yml").read_text(encoding="utf-8"))["steps"]


def parse_reports(folder: Path) -> None:
    """Parse ``junit.xml`` and ``summary.md`` of a run back (used by other tests too)."""
    root = ET.parse(folder / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "-1")) > 0
    failures = sum(case.find("failure") is not None for case in cases)
    assert failures == int(suite.get("failures", "-1"))
    text = (folder / "summary.md").read_bytes().decode("utf-8")
    width = None
    for line in text.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = len(line.replace("\\|", "").split("|")) - 2
        if width is None:
            width = cells
        assert cells == width, line
