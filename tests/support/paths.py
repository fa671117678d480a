"""Paths and helpers shared by the harness's tests (imported as a plain module)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATRIX_DIR = ROOT / "matrix"
SHIPPED = [MATRIX_DIR / "selection.yaml"]


def plugin_args() -> list[str]:
    """``-p harness.plugin`` unless the package is installed (entry point ``nvfp4_matrix``)."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "nvfp4_matrix" in names else ["-p", "harness.plugin"]
