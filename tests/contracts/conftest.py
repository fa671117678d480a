"""The contract lane: our library calls and loaders against the real libraries, on a CPU.

``tox -e contracts`` installs the libraries pinned in ``constraints/contracts.txt``
(without their CUDA dependency trees; ``CONTRACTS_UPGRADE`` replaces pins).
Outside that lane (``tox -e cpu``) the libraries are absent and this folder is
not collected: there is nothing to check against.

Shared here: the pins, the matrix layers the calls are recorded on, and a
``Recorder`` that stands in for one library function, keeps every call
``(args, kwargs)`` our code made and computes the result with the CPU fakes of
``tests/linear/fakes.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

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
sys.path.insert(0, str(ROOT / "tests" / "linear"))  # fakes.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # install.py

import install  # noqa: E402

#: import name -> distribution name of every library under contract
LIBRARIES = {
    "flashinfer": "flashinfer-python",
    "fbgemm_gpu": "fbgemm-gpu-genai",
    "compressed_tensors": "compressed-tensors",
    "modelopt": "nvidia-modelopt",
    "torchao": "torchao",
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


if not any(_installed(m) for m in LIBRARIES):
    # tox -e cpu and plain `pytest`: the contract libraries are not installed.
    collect_ignore_glob = ["test_*.py"]


def expected_versions() -> dict[str, str]:
    """The pins of constraints/contracts.txt with CONTRACTS_UPGRADE applied (canonical names)."""
    pins = install.read_pins(install.PINS.read_text(), str(install.PINS))
    pins.update(install.read_pins(os.environ.get("CONTRACTS_UPGRADE", ""), "CONTRACTS_UPGRADE"))
    return pins


def installed_version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


def pytest_report_header(config):
    if not any(_installed(m) for m in LIBRARIES):
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


# --- the matrix layers -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MatrixLayer:
    name: str
    n: int
    k: int
    dtype: Any
    weight_only: bool


def matrix_layers() -> list[MatrixLayer]:
    """The layers of ``matrix/selection.yaml`` (the shapes the selection is proven on)."""
    import torch

    data = yaml.safe_load((ROOT / "matrix" / "selection.yaml").read_text())
    return [
        MatrixLayer(
            name=name,
            n=int(spec["out_features"]),
            k=int(spec["in_features"]),
            dtype=getattr(torch, spec.get("act_dtype", "bfloat16")),
            weight_only=bool(spec.get("weight_only", False)),
        )
        for name, spec in data["layers"].items()
    ]


# --- recording the calls our code makes -------------------------------------------------


@dataclasses.dataclass
class Call:
    function: str
    args: tuple
    kwargs: dict


class Recorder:
    """Stands in for one library function: records each call, returns ``compute(*args, **kw)``.

    ``real`` is the library function it replaces: the recorder shows the real
    signature to ``inspect.signature``, so code that adapts to the installed
    signature sees the real one.
    """

    def __init__(self, name: str, compute, real=None) -> None:
        import inspect

        self.name = name
        self.compute = compute
        self.calls: list[Call] = []
        if real is not None:
            self.__signature__ = inspect.signature(real)

    def __call__(self, *args, **kwargs):
        self.calls.append(Call(self.name, args, dict(kwargs)))
        return self.compute(*args, **kwargs)


@pytest.fixture
def no_device_check(monkeypatch):
    """Our backends refuse CPU tensors before any launch; the recording runs let them past."""
    from kernels.linear import _native

    monkeypatch.setattr(_native, "require_cuda", lambda backend, **tensors: None)
