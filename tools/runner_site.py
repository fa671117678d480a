"""Let the tox ``gpu`` environment see the runner's own torch and Triton.

``system_site_packages = true`` only exposes the *base* interpreter's
site-packages. Many GPU images install torch in a virtual environment or a
conda env instead (the runner's ``python3``), which a new virtualenv cannot
see. This script finds that interpreter - ``$NVFP4_RUNNER_PYTHON``, else the
first ``python3`` on ``PATH`` outside this environment that imports torch -
and writes a ``.pth`` file into this environment listing its site-packages,
after this environment's own. Nothing is downloaded or copied.

Run by tox with the environment's interpreter; prints what it linked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PTH_NAME = "nvfp4_runner_site.pth"
PROBE = (
    "import json, site, sys\n"
    "import torch\n"
    "paths = site.getsitepackages() + [site.getusersitepackages()]\n"
    "print(json.dumps({'torch': torch.__version__, 'paths': paths, 'prefix': sys.prefix}))\n"
)


def candidates() -> list[str]:
    explicit = os.environ.get("NVFP4_RUNNER_PYTHON")
    if explicit:
        return [explicit]
    here = Path(sys.prefix).resolve()
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = shutil.which("python3", path=folder)
        if exe and here not in Path(exe).resolve().parents and Path(folder).resolve() != here / "bin":
            found.append(exe)
    return found


def main() -> int:
    for exe in candidates():
        try:
            out = subprocess.run([exe, "-c", PROBE], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode != 0:
            continue
        info = json.loads(out.stdout.strip().splitlines()[-1])
        paths = [p for p in info["paths"] if Path(p).is_dir()]
        target = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
        target.write_text("".join(f"{p}\n" for p in paths))
        print(f"runner python {exe} (torch {info['torch']}): linked {', '.join(paths)}")
        return 0
    if os.environ.get("NVFP4_RUNNER_PYTHON"):
        print(f"NVFP4_RUNNER_PYTHON={os.environ['NVFP4_RUNNER_PYTHON']} cannot import torch", file=sys.stderr)
        return 1
    # No separate runner interpreter: torch must come from the system site packages.
    print("no runner python with torch outside this environment; using system site packages only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
