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


def _snapshot() -> dict[str, str]:
    # pytest itself rewrites PYTEST_CURRENT_TEST around every phase.
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


@pytest.fixture(autouse=True)
def _stable_environment():
    """Start without selection variables; fail a test that leaks an env change.

    Deliberately not built on ``monkeypatch``: autouse fixtures are set up
    first and torn down last, so a test's own ``monkeypatch.setenv`` is undone
    before this check runs, and only a real leak is reported.
    """
    saved = {name: os.environ.pop(name) for name in SELECTION_VARIABLES if name in os.environ}
    before = _snapshot()
    try:
        yield
        after = _snapshot()
        if after != before:
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            for key in after.keys() - before.keys():
                del os.environ[key]
            os.environ.update(before)
            pytest.fail(f"test changed os.environ without restoring it: {changed}")
    finally:
        os.environ.update(saved)
