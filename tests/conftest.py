"""Shared test setup.

* On a machine without CUDA, Triton kernels run under the interpreter: the
  switch must be set before any ``@triton.jit`` function is decorated, so it
  is set here, at collection start, unless the caller chose a value.
* Every test runs with the selection variables removed from the environment
  (no value from the caller's shell leaks in) and fails if it leaves
  ``os.environ`` changed.
"""

from __future__ import annotations

import os

import pytest


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch is a hard dependency
        return False


if not _has_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from kernels.envs import SELECTION_VARIABLES  # noqa: E402


@pytest.fixture(autouse=True)
def _stable_environment(monkeypatch: pytest.MonkeyPatch):
    """Start without selection variables; fail a test that leaks an env change."""
    for name in SELECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        pytest.fail(f"test changed os.environ without restoring it: {changed}")
