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
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _unshadow_triton() -> None:
    """Keep ``tests/triton`` (a test folder) from passing for the Triton package.

    pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``; without
    Triton installed (this lane does not need it), ``import triton`` would then
    find the test folder as a namespace package, and torch, compressed-tensors
    and ModelOpt would take Triton for installed and fail inside it.
    """
    spec = importlib.util.find_spec("triton")
    if spec is None or spec.origin is not None:
        return  # absent, or the real package
    tests_dir = str(ROOT / "tests")
    sys.path[:] = [p for p in sys.path if str(Path(p).resolve()) != tests_dir]
    sys.modules.pop("triton", None)


_unshadow_triton()
# torch.compile (compressed-tensors rounds to FP4 with it on CPU) sets this on
# first use; set it up front so no test is seen changing the environment.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "nvfp4-contracts-inductor")
)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # support.py, contract.py, install.py

from support import LIBRARIES, installed, installed_version  # noqa: E402

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
    from kernels.linear import _native

    monkeypatch.setattr(_native, "require_cuda", lambda backend, **tensors: None)
