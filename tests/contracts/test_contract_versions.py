"""What is installed is what the lane says it checks against (constraints/contracts.txt + CONTRACTS_UPGRADE)."""

from __future__ import annotations

import importlib.metadata

import pytest
from support import LIBRARIES, expected_versions, installed_version

PINS = expected_versions()


@pytest.mark.parametrize("name", sorted(PINS))
def test_installed_version_is_the_pin(name):
    try:
        have = installed_version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"{name}=={PINS[name]} is pinned but not installed (tests/contracts/install.py)"
        )
    assert have == PINS[name], f"{name}: installed {have}, pinned {PINS[name]}"


def test_every_library_under_contract_is_pinned():
    missing = [dist for dist in LIBRARIES.values() if dist not in PINS]
    assert not missing, f"constraints/contracts.txt lacks {missing}"
