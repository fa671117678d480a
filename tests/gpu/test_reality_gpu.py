"""The reality check on the real machine (GPU runners)."""

from __future__ import annotations

import os

import pytest

from harness.evaluate.reality import check_reality, profile_from_environment
from harness.evaluate.session import Session
from harness.load import default_matrix_paths, load_matrix

pytestmark = pytest.mark.gpu


def test_matrix_describes_this_gpu(request: pytest.FixtureRequest) -> None:
    matrix = load_matrix(default_matrix_paths(request.config.rootpath))
    profile = request.config.getoption("nvfp4_profile", None) or profile_from_environment(os.environ)
    report = check_reality(Session(matrix), profile_id=profile)
    print(report.format())  # kept in the log and the JUnit system-out
    assert report.ok, "\n" + report.format()
