"""Stop a CPU lane at once, with the fix, when the installed torch is a CUDA build.

The CPU lanes pin ``torch==2.13.0`` (``constraints/cpu.txt``). On Linux x86-64
PyPI's wheel of that version is the CUDA build, which drags in about 20
``nvidia-*`` wheels (several GB) and is not what the lanes test; pip takes the
CPU build only from the PyTorch CPU index (or a local wheel folder). Run by
tox before a lane's commands: ``python tools/check_torch.py <lane>``.
"""

from __future__ import annotations

import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def problem(version: str, cuda: str | None, lane: str) -> str | None:
    """The message for an installed torch ``version`` built for ``cuda``; ``None`` if it fits."""
    if cuda is None and "+cu" not in version:
        return None
    return (
        f"{lane}: the installed torch {version} is a CUDA build (CUDA {cuda}); this lane needs "
        f"the CPU build. On Linux x86-64, PyPI serves the CUDA build: run "
        f"`export PIP_EXTRA_INDEX_URL={CPU_INDEX}` (or PIP_FIND_LINKS=<folder with the CPU "
        f"wheel>) and recreate the environment: `tox -r -e {lane}`"
    )


def main(argv: list[str]) -> int:
    lane = argv[1] if len(argv) > 1 else "this lane"
    try:
        import torch
    except ImportError as exc:
        print(f"{lane}: torch does not import ({exc})", file=sys.stderr)
        return 1
    message = problem(torch.__version__, torch.version.cuda, lane)
    if message is not None:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
