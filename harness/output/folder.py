"""A reports folder held by one run at a time.

``nvfp4-matrix run`` writes several files into one folder (``junit.xml``,
``summary.md``, ``record.json``); each is written atomically
(:mod:`harness.output.atomic`), but two runs into the same folder could still
leave one run's JUnit report beside the other's summary. :func:`hold_folder`
takes an exclusive lock on ``<folder>/.nvfp4-matrix.lock`` for the whole run
(an advisory ``flock``, released by the system when the process ends, however
it ends): a second run into the same folder is refused at once, with one line
naming the folder and the process that holds it, before it evaluates anything.

The lock file stays in the folder (removing it would let a third run lock a
new file while the second still waits on the old one); it holds the id of the
last process that took it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from harness.errors import OutputError

__all__ = ["LOCK_NAME", "hold_folder"]

LOCK_NAME = ".nvfp4-matrix.lock"


@contextlib.contextmanager
def hold_folder(folder: str | Path, option: str = "--reports") -> Iterator[Path]:
    """Create ``folder`` if needed and hold it for this process within the block.

    Raises :class:`OutputError` when a file stands where the folder should be,
    when it cannot be created, or when another process holds it.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write into {path}: a file stands where a folder is needed") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise OutputError(f"cannot write into {path}: a file stands where a folder is needed")
    lock = path / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise OutputError(f"cannot write into {path}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(fd):
            holder = _read_holder(fd)
            who = f" (process {holder})" if holder else ""
            raise OutputError(
                f"the reports folder {path} is in use by another run{who}: wait for it to "
                f"finish, or give this run another folder ({option} DIR)"
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is a courtesy for the message above; the lock is what counts
        yield path
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        # A file system without locks (some network mounts): each file is still atomic.
        return True
    return True


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
