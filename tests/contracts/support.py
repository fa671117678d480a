"""What the contract tests share: the pins, the matrix layers, and call recording.

A ``Recorder`` stands in for one library function: it keeps every call
``(args, kwargs)`` our code made and computes the result with the CPU fakes of
``tests/support/fakes.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml

from tests.contracts import install

ROOT = Path(__file__).resolve().parents[2]

#: import name -> distribution name of every library under contract
LIBRARIES = {
    "flashinfer": "flashinfer-python",
    "fbgemm_gpu": "fbgemm-gpu-genai",
    "compressed_tensors": "compressed-tensors",
    "modelopt": "nvidia-modelopt",
    "torchao": "torchao",
}


def expected_versions() -> dict[str, str]:
    """The pins of constraints/contracts.txt with CONTRACTS_UPGRADE applied (canonical names)."""
    pins = install.read_pins(install.PINS.read_text(), str(install.PINS))
    pins.update(install.read_pins(os.environ.get("CONTRACTS_UPGRADE", ""), "CONTRACTS_UPGRADE"))
    return pins


def installed_version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


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


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
