"""Install the libraries of the contract lane, pinned, without their CUDA dependency trees.

Reads ``constraints/contracts.txt`` (one ``name==version`` per line) and runs
``pip install --no-deps`` on it. ``CONTRACTS_UPGRADE`` (space-separated
``name==version`` entries) replaces pins by name, so a newer release is one
variable away::

    CONTRACTS_UPGRADE="flashinfer-python==0.8.0" tox -e contracts

The tests read the same file and variable (``tests/contracts/conftest.py``) and
check that what is installed is what was asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "constraints" / "contracts.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str, what: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        for entry in line.split():
            match = _PIN.match(entry)
            if match is None:
                raise SystemExit(f"{what}:{number}: expected name==version, got {entry!r}")
            pins[canonical(match[1])] = match[2]
    return pins


def main() -> int:
    pins = read_pins(PINS.read_text(), str(PINS))
    upgrade = read_pins(os.environ.get("CONTRACTS_UPGRADE", ""), "CONTRACTS_UPGRADE")
    pins.update(upgrade)
    requirements = [f"{name}=={version}" for name, version in pins.items()]
    if upgrade:
        print("contracts: pins replaced by CONTRACTS_UPGRADE:", " ".join(sorted(upgrade)))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *requirements]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
