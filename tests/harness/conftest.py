"""Fixtures for the harness's own tests: the shipped matrix, loaded and run once."""

from __future__ import annotations

import pytest

from harness.load import Matrix, load_matrix
from tests.support.paths import SHIPPED


@pytest.fixture(scope="session")
def shipped() -> Matrix:
    return load_matrix(SHIPPED)


@pytest.fixture(scope="session")
def shipped_result(shipped):
    from harness.evaluate.session import Session

    return Session(shipped).run()
