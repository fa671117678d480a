"""vLLM-target tests: they run in the ``vllm-*`` tox lanes, where a vLLM release is installed.

Elsewhere every test here is skipped with that reason (vLLM is not a
dependency of the project: each lane installs one release without its
dependency tree).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_VLLM:
        return
    skip = pytest.mark.skip(reason="vLLM is not installed here: run tox -e vllm-0.20 (or 0.22, 0.33)")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def target():
    """The vllm target, with vLLM imported (once: importing it sets a few torch variables
    in ``os.environ``, which must happen before any test's environment snapshot)."""
    from harness.targets import get_target

    target = get_target("vllm")
    assert target.runtime.version == target.version()
    return target


@pytest.fixture(scope="session")
def matrix(target):
    from harness.load import load_matrix

    return load_matrix(list(target.default_matrix(ROOT)))


@pytest.fixture(scope="session")
def result(matrix, target):
    from harness.evaluate.runner import Runner

    return Runner(matrix, target).run()
