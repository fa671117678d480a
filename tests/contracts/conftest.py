"""The contract lane: our library calls and loaders against the real libraries, on a CPU.

``tox -e contracts`` installs the libraries pinned in ``constraints/contracts.txt``
(without their CUDA dependency trees; ``CONTRACTS_UPGRADE`` replaces pins).
Outside that lane (``tox -e cpu``) the libraries are absent and this folder is
not collected: there is nothing to check against. Shared code: ``support.py``
(pins, matrix layers, call recording) and ``contract.py`` (binding, values).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

from tests.contracts.support import LIBRARIES, installed, installed_version

ROOT = Path(__file__).resolve().parents[2]


# torch.compile (compressed-tensors rounds to FP4 with it on CPU) sets this on
# first use; set it up front so no test is seen changing the environment.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "nvfp4-contracts-inductor")
)

if not any(installed(m) for m in LIBRARIES):
    # tox -e cpu and plain `pytest`: the contract libraries are not installed.
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config):
    if not any(installed(m) for m in LIBRARIES):
        return (
            "contracts: libraries not installed, tests/contracts not collected (tox -e contracts)"
        )
    found = []
    for dist in LIBRARIES.values():
        try:
            found.append(f"{dist}=={installed_version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} MISSING")
    return "contracts checked against: " + ", ".join(found)


@pytest.fixture
def no_device_check(monkeypatch):
    """Our backends refuse CPU tensors before any launch; the recording runs let them past."""
    from kernels.linear import _library

    monkeypatch.setattr(_library, "require_cuda", lambda backend, **tensors: None)
