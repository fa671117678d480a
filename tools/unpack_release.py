"""Unpack a release's Python files from its wheel: a source tree to check without installing it.

    python tools/unpack_release.py vllm==0.34.0 DEST

downloads the release's wheel (``pip download --no-deps --only-binary :all:``:
no build, nothing of its dependency tree) and extracts its ``.py`` files and
its ``.dist-info`` folder into ``DEST`` (the metadata keeps
``importlib.metadata.version`` answering the release's version with ``DEST``
first on the path). Compiled extensions are left out: they are CUDA builds.
``DEST`` is replaced only once the extraction is complete; an existing
``DEST`` holding that release is kept as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def _kept(name: str) -> bool:
    return name.endswith(".py") or ".dist-info/" in name


def unpack(requirement: str, dest: Path) -> Path:
    marker = dest / ".release"
    if marker.is_file() and marker.read_text().strip() == requirement:
        return dest
    with tempfile.TemporaryDirectory(prefix="unpack-release-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "--dest", tmp, requirement],
            check=True,
            # a lane's constraints pin the installed release; this is another one
            env={**os.environ, "PIP_CONSTRAINT": ""},
        )
        (wheel,) = Path(tmp).glob("*.whl")
        staging = Path(tmp) / "tree"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging, [n for n in archive.namelist() if _kept(n)])
        (staging / ".release").write_text(requirement + "\n")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # moved beside DEST first (same filesystem), then swapped in by renames: an
        # interrupted run leaves the previous tree or the new one, never half of either
        incoming = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        shutil.move(str(staging), incoming / "tree")
        old = incoming / "old"
        if dest.exists():
            dest.rename(old)
        (incoming / "tree").rename(dest)
        shutil.rmtree(incoming)
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 2 or "==" not in argv[0]:
        print("usage: python tools/unpack_release.py NAME==VERSION DEST", file=sys.stderr)
        return 2
    try:
        print(unpack(argv[0], Path(argv[1])))
    except subprocess.CalledProcessError as exc:
        print(f"unpack_release: pip download failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
