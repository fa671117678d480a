"""What is installed is what the lane says it checks against (constraints/contracts.txt + CONTRACTS_UPGRADE)."""

from __future__ import annotations

import importlib.metadata

import pytest

from tests.contracts.support import LIBRARIES, expected_versions, installed_version

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


def test_upgrade_variable_replaces_pins_by_name():
    from tests.contracts import install

    pins = install.read_pins("flashinfer-python==0.7.2.post1\ntorchao==0.18.0  # comment", "file")
    pins.update(install.read_pins("Flashinfer_Python==0.8.0", "CONTRACTS_UPGRADE"))
    assert pins == {"flashinfer-python": "0.8.0", "torchao": "0.18.0"}
    with pytest.raises(SystemExit, match=r"CONTRACTS_UPGRADE:1: expected name==version"):
        install.read_pins("flashinfer-python>=0.8", "CONTRACTS_UPGRADE")
