"""Every command that reads or writes a path: a special file is one line and exit 2, at once.

FIFOs (which would block a reader forever), devices (``/dev/zero`` never
ends), folders, sockets, missing files and symbolic links to them, given to
each path argument of each command. Each call runs in a thread with a time
bound, so a command that blocked would fail the test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from harness.cli import main
from tests.support.paths import ROOT

TIME_BOUND_S = 60.0

READERS = [
    ["run", "{path}"],
    ["table", "{path}"],
    ["explain", "--gpu", "b200", "{path}"],
    ["mutants", "{path}"],
    ["buildkite", "{path}"],
    ["reality", "--profile", "b200", "{path}"],
    ["schema", "--check", "{path}"],
]
WRITERS = [
    ["schema", "--write", "{path}"],
    ["buildkite", "-o", "{path}"],
    ["run", "--no-table", "--record", "{path}", "--no-reports"],
]


@pytest.fixture(scope="module")
def specials(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("specials")
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    (folder / "folder.yaml").mkdir()
    sock = folder / "socket.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    (folder / "zero-link.yaml").symlink_to("/dev/zero")
    (folder / "fifo-link.yaml").symlink_to(fifo)
    return {
        "fifo": fifo,
        "device": Path("/dev/zero"),
        "folder": folder / "folder.yaml",
        "socket": sock,
        "missing": folder / "missing.yaml",
        "link-to-device": folder / "zero-link.yaml",
        "link-to-fifo": folder / "fifo-link.yaml",
    }


def run_bounded(argv: list[str]) -> int:
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["code"] = main(argv)
        except SystemExit as exc:  # argparse
            outcome["code"] = exc.code
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIME_BOUND_S)
    assert not thread.is_alive(), f"{argv} did not finish in {TIME_BOUND_S} s (blocked?)"
    assert "error" not in outcome, outcome
    return int(outcome["code"])  # type: ignore[call-overload]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "socket", "missing",
                                  "link-to-device", "link-to-fifo"])
@pytest.mark.parametrize("argv", READERS, ids=[" ".join(a[:1] + a[1:-1]) for a in READERS])
def test_a_special_file_to_read_is_one_line(specials, kind, argv, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = specials[kind]
    code = run_bounded([a.format(path=path) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert len(err.splitlines()) == 1, err
    assert any(name in err for name in (str(path), path.name, os.path.realpath(path))), err
    assert any(
        reason in err
        for reason in ("not a regular file", "does not exist", "is a directory", "outside")
    ), err


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "socket", "link-to-device",
                                  "link-to-fifo"])
@pytest.mark.parametrize("argv", WRITERS, ids=[" ".join(a[:2]) for a in WRITERS])
def test_a_special_file_to_write_is_one_line_and_left_alone(specials, kind, argv, monkeypatch,
                                                            capsys):
    monkeypatch.chdir(ROOT)
    path = specials[kind]
    before = os.lstat(path)
    code = run_bounded([a.format(path=path) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.splitlines() == [
        f"nvfp4-matrix: error: cannot write {path}: it is "
        + {"fifo": "a FIFO (named pipe)", "device": "a character device", "folder": "a directory",
           "socket": "a socket", "link-to-device": "a character device",
           "link-to-fifo": "a FIFO (named pipe)"}[kind]
        + ", not a regular file"
    ]
    after = os.lstat(path)
    assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode)


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_a_special_file_as_the_reports_folder(specials, kind, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = specials[kind]
    assert run_bounded(["run", "--no-table", "--reports", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nvfp4-matrix: error: cannot write into {path}: a file stands where a folder is needed"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "--gpu", "b200", "--env", "VLLM_BATCH_INVARIANT=" + "x" * 1_000_000],
        ["explain", "--gpu", "b" * 1_000_000],
        ["explain", "--gpu", "b200", "--env", "V" * 1_000_000 + "=1"],
        ["explain", "--gpu", "b200", "--packages", "p" * 1_000_000],
        ["explain", "--gpu", "b200", "--env", "x" * 1_000_000],
        ["explain", "--gpu", "b200", "--mock", "m" * 1_000_000 + "=no"],
        ["run", "--max-failures", "9" * 1_000_000],
        ["run", "--target", "t" * 1_000_000],
        ["run", "--mutant", "m" * 1_000_000],
    ],
    ids=["env-value", "gpu", "env-name", "packages", "env-item", "mock", "int", "target",
         "mutant"],
)
def test_a_megabyte_argument_is_quoted_not_echoed(argv, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = run_bounded(argv)
    out, err = capsys.readouterr()
    assert code in (1, 2), err[:300]
    assert err or "error" in out, "a refusal says why"
    for line in (out + err).splitlines():
        assert len(line) < 2500, line[:300]
