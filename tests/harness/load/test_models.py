"""The matrix models: the shipped profiles, the API later tools use, the JSON schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from harness.cli.schema import schema_text
from harness.load import Matrix, load_matrix
from tests.support.paths import MATRIX_DIR

#: The profiles the project promises (issue 3), with their compute capability.
REQUIRED = {
    "a100": (8, 0),
    "l40s": (8, 9),
    "h100": (9, 0),
    "h200": (9, 0),
    "b200": (10, 0),
    "b300": (10, 3),
    "rtx5090": (12, 0),
    "gb10": (12, 1),
    "v100": (7, 0),
    "cpu": None,
}


def test_required_profiles_exist_with_their_capability(shipped: Matrix):
    for pid, capability in REQUIRED.items():
        profile = shipped.profile(pid)
        assert profile.id == pid
        assert profile.capability_tuple == capability
        assert profile.platform().capability == capability
        assert profile.platform().device_type == ("cpu" if capability is None else "cuda")


def test_profile_platform_is_cached_and_package_override(shipped: Matrix):
    b200 = shipped.profile("b200")
    assert b200.platform() is b200.platform()
    assert b200.platform().packages == frozenset({"triton", "flashinfer", "fbgemm_gpu"})
    bare = b200.platform(packages=())
    assert bare.packages == frozenset() and bare.triton_version is None
    assert shipped.profile("cpu-interpret").platform().triton_interpret is True
    assert shipped.profile("cpu").platform().triton_interpret is False


def test_declared_support_and_queues(shipped: Matrix):
    assert shipped.declared_support("b200", "flashinfer-trtllm")
    assert not shipped.declared_support("rtx5090", "flashinfer-trtllm")
    assert shipped.declared_support("gb10", "cublaslt")
    assert not shipped.declared_support("v100", "triton")
    with pytest.raises(KeyError, match="did you mean 'triton'"):
        shipped.declared_support("b200", "tritn")
    with pytest.raises(KeyError, match="did you mean 'b200'"):
        shipped.profile("b2000")
    queues = shipped.queues()
    assert all(shipped.profile(p).queue == q for q, ps in queues.items() for p in ps)
    assert shipped.profile("rtx5090").queue is None  # no runner has one: fake hardware only
    assert {"h100", "b200"} <= {p for ps in queues.values() for p in ps}


def test_where_points_into_the_files(shipped: Matrix):
    loc = shipped.where("profile", "b200")
    assert loc.file.endswith("gpus.yaml")
    lines = (MATRIX_DIR / "gpus.yaml").read_text().splitlines()
    assert lines[loc.line - 1].strip() == "b200:"
    rule = shipped.forcing_rule_location("batch_invariant")
    selection = (MATRIX_DIR / "selection.yaml").read_text().splitlines()
    assert selection[rule.line - 1].strip() == "- rule: batch_invariant"


def test_shipped_schema_is_generated_from_the_models():
    assert (MATRIX_DIR / "schema.json").read_text() == schema_text(), (
        "matrix/schema.json is stale: run `nvfp4-matrix schema --write matrix/schema.json`"
    )


def test_schema_validates_the_shipped_files_and_refuses_a_bad_one():
    schema = json.loads((MATRIX_DIR / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("gpus.yaml", "selection.yaml"):
        data = yaml.safe_load((MATRIX_DIR / name).read_text())
        assert list(validator.iter_errors(data)) == [], name
    bad = yaml.safe_load((MATRIX_DIR / "gpus.yaml").read_text())
    bad["profiles"]["b200"]["capabilty"] = "10.0"
    bad["profiles"]["h100"]["capability"] = 9.0
    errors = list(validator.iter_errors(bad))
    assert any("'capabilty' was unexpected" in e.message for e in errors)
    assert any(list(e.absolute_path) == ["profiles", "h100", "capability"] for e in errors)


def test_loading_without_torch_registry_check(tmp_path):
    # The models and the loader do not need the registry (e.g. a Buildkite generator).
    gpus = load_matrix([MATRIX_DIR / "gpus.yaml"])
    assert set(REQUIRED) <= set(gpus.profiles)
    assert gpus.precedence is None and not gpus.backends
