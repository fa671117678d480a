"""Files that appear complete or not at all.

Every file the tool writes (reports, summaries, the schema, the pipeline,
records, benchmark JSON) goes through :func:`write_atomic`, the way databases
and pip write theirs: the bytes go to a temporary file in the same folder
(``.<name>.<random>.tmp``), which is flushed to the disk and then renamed over
the target in one step (``os.replace``). A reader sees the old file or the new
one, never a mixture or a fragment.

A write that fails (a full disk, a file size limit, a folder that cannot be
written) or is interrupted (``KeyboardInterrupt``, or the exception the
command line raises for SIGTERM) removes its temporary file and leaves the
previous file as it was. The failure is an :class:`~harness.errors.OutputError`
naming the file, and saying that the previous one is kept.

The target must be a regular file or not exist yet: a name that points at a
folder, a FIFO, a device or a socket is refused (replacing ``/dev/null`` with a
regular file would break the machine), and a symbolic link is written
through (the file it points at is replaced, the link kept).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from harness.errors import OutputError, not_a_regular_file

__all__ = ["check_writable_target", "write_atomic", "write_json_atomic"]

def check_writable_target(path: str | Path, create_folder: bool = False) -> Path:
    """The file that writing ``path`` replaces (symbolic links followed).

    Raises :class:`OutputError` when the folder does not exist (unless
    ``create_folder``: then it is created) or when ``path`` names something
    that is not a regular file.
    """
    given = Path(path)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    folder = target.parent
    if create_folder:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise OutputError(
                f"cannot write {given}: a file stands where the folder {folder} is needed"
            ) from None
        except OSError as exc:
            raise OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"cannot write {given}: the folder {folder} {what}")
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"cannot write {given}: it {not_a_regular_file(info.st_mode)}")
    return target


def _write_chunk(fd: int, data: memoryview) -> int:
    """One ``os.write`` (the seam the tests use to simulate a full disk or an interrupt)."""
    return os.write(fd, data)


def write_atomic(path: str | Path, data: bytes | str, create_folder: bool = False) -> Path:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8) in one step.

    Returns the path written. On any failure the previous file is kept and no
    temporary file is left; an ``OSError`` becomes an :class:`OutputError`
    naming ``path``, anything else (an interrupt) propagates unchanged.
    """
    given = Path(path)
    target = check_writable_target(given, create_folder=create_folder)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        existed = True
    except OSError:
        mode, existed = None, False
    kept = f" (the previous {given} is kept)" if existed else " (nothing was written)"
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    fd = -1
    try:
        # 0o666 minus the umask, as for any new file; an existing file keeps its mode.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        if mode is not None:
            os.chmod(tmp, mode)
        view = memoryview(payload)
        while view:
            written = _write_chunk(fd, view)
            if written <= 0:  # pragma: no cover - os.write raises rather than return 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OutputError):
            raise
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {given}: {exc.strerror or exc}{kept}") from None
        raise
    _sync_folder(target.parent)
    return given


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the system allows it (best effort: not on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, data: object, create_folder: bool = False) -> Path:
    """``data`` as indented JSON (keys in order, a final newline), written atomically."""
    import json

    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    return write_atomic(path, text, create_folder=create_folder)
