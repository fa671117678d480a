"""vLLM-target tests: they run in the ``vllm-*`` tox lanes, where a vLLM release is installed.

Elsewhere every test here is skipped with that reason (vLLM is not a
dependency of the project: each lane installs one release without its
dependency tree).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support.paths import ROOT

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_VLLM:
        return
    skip = pytest.mark.skip(reason="vLLM is not installed here: run tox -e vllm-<line> (0.20, ...)")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def target():
    """The vllm target, bound to the matrix of the installed release's line (vLLM is imported
    once, here: importing it sets a few torch variables in ``os.environ``, which must happen
    before any test's environment snapshot)."""
    from harness.evaluate.session import Session
    from harness.load import load_matrix
    from harness.targets import get_target

    target = get_target("vllm")
    Session(load_matrix(list(target.default_matrix(ROOT))), target)
    return target


@pytest.fixture(scope="session")
def matrix(target):
    from harness.load import load_matrix

    return load_matrix(list(target.default_matrix(ROOT)))


@pytest.fixture(scope="session")
def runtime(target, matrix):
    """The loaded vLLM (:class:`~harness.targets.vllm.runtime.VllmRuntime`)."""
    facts, problems = target.facts_of(matrix)
    assert facts is not None, problems
    rt = target.runtime(facts)
    assert rt.version == target.version()
    return rt


@pytest.fixture(scope="session")
def result(matrix, target):
    from harness.evaluate.session import Session

    return Session(matrix, target).run()
