"""The generated Buildkite pipeline: Buildkite's official schema plus our own rules."""

from __future__ import annotations

import configparser
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.load import default_matrix_paths, load_matrix
from harness.output.buildkite import AGENT_LOST_RETRY, TOX_ENVS, generate_pipeline
from harness.targets import available_targets, get_target

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def schema() -> dict:
    # check-jsonschema vendors Buildkite's official pipeline schema (draft-07).
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("buildkite.json").read_text()
    return json.loads(text)


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(default_matrix_paths(ROOT))


#: The vLLM release lines with a matrix file (each is a lane: tox -e vllm-<line>).
VLLM_LINES = sorted(p.stem for p in (ROOT / "matrix" / "vllm").glob("*.yaml"))


@pytest.fixture(scope="module")
def pipeline(matrix) -> dict:
    lanes = [lane for name in available_targets() for lane in get_target(name).ci_lanes(ROOT)]
    return generate_pipeline(matrix, lanes=lanes)


def _tox_envs() -> set[str]:
    """Every environment tox.ini defines, generative section names expanded."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    envs: set[str] = set()
    for section in ini.sections():
        if not section.startswith("testenv:"):
            continue
        name = section.removeprefix("testenv:")
        match = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", name)
        if match:
            envs |= {match[1] + part.strip() + match[3] for part in match[2].split(",")}
        else:
            envs.add(name)
    return envs


def test_every_vllm_release_line_has_a_lane(pipeline) -> None:
    assert VLLM_LINES, "no matrix/vllm/*.yaml"
    keys = {s.get("key") for s in command_steps(pipeline)}
    for line in VLLM_LINES:
        assert f"vllm-{line.replace('.', '-')}" in keys
        assert f"vllm-{line}" in _tox_envs()


def test_every_vllm_release_line_has_a_mutation_lane(matrix, pipeline) -> None:
    by_key = {s["key"]: s for s in command_steps(pipeline)}
    for line in VLLM_LINES:
        step = by_key[f"mutation-vllm-{line.replace('.', '-')}"]
        assert f"tox -e mutation-vllm-{line} -- --quiet" in step["commands"]
        assert "parallelism" not in step  # one job: the lane splits over its cores itself
        assert f"mutation-vllm-{line}" in _tox_envs()
        # the lane's list of survivors for the line exists beside its matrix
        assert (ROOT / "mutation" / f"vllm-{line}-equivalents.yaml").is_file()
    # no release line asked for: no vLLM step of either kind
    keys = {s["key"] for s in command_steps(generate_pipeline(matrix))}
    assert not any("vllm" in key for key in keys)


def command_steps(pipeline: dict) -> list[dict]:
    return [s for s in pipeline["steps"] if "commands" in s or "command" in s]


def test_generated_pipeline_validates_against_the_official_schema(schema, pipeline) -> None:
    jsonschema.Draft7Validator(schema).validate(pipeline)


def test_each_command_step_validates_against_the_command_step_definition(schema, pipeline) -> None:
    # Validating one step against commandStep gives readable messages
    # ("Additional properties are not allowed ('x' was unexpected)").
    step_schema = {**schema, "$ref": "#/definitions/commandStep"}
    validator = jsonschema.Draft7Validator(step_schema)
    for step in command_steps(pipeline):
        errors = sorted(validator.iter_errors(step), key=str)
        assert not errors, f"{step['key']}: {errors[0].message}"


def test_the_step_schema_check_can_fail(schema, pipeline) -> None:
    step = dict(command_steps(pipeline)[0])
    step["timeout_minutes"] = step.pop("timeout_in_minutes")
    validator = jsonschema.Draft7Validator({**schema, "$ref": "#/definitions/commandStep"})
    messages = [e.message for e in validator.iter_errors(step)]
    assert any("'timeout_minutes' was unexpected" in m for m in messages)


def test_every_profile_with_a_queue_has_its_steps(matrix, pipeline) -> None:
    by_key = {s["key"]: s for s in pipeline["steps"]}
    queued = [p for p in matrix.profiles.values() if p.device_type == "cuda" and p.queue]
    assert queued, "the shipped matrix must name at least one GPU queue"
    for profile in queued:
        for key in (f"gpu-{profile.id}", f"batch-invariance-{profile.id}"):
            assert key in by_key, f"profile {profile.id} (queue {profile.queue}) has no step {key}"
            assert by_key[key]["agents"] == {"queue": profile.queue}
            assert by_key[key]["env"]["NVFP4_MATRIX_PROFILE"] == profile.id
    queues = {s.get("agents", {}).get("queue") for s in pipeline["steps"]} - {None}
    known = {p.queue for p in matrix.profiles.values() if p.queue}
    assert queues <= known, f"steps use queues no profile declares: {queues - known}"


def test_required_batch_invariance_steps_exist(pipeline) -> None:
    labels = {s["label"] for s in pipeline["steps"]}
    assert "Batch Invariance (B200)" in labels
    assert "Batch Invariance (H100)" in labels


def test_keys_are_unique_and_steps_are_safe(pipeline) -> None:
    keys = [s["key"] for s in pipeline["steps"]]
    assert len(keys) == len(set(keys))
    for step in command_steps(pipeline):
        assert step["timeout_in_minutes"] >= 1
        assert step["retry"] == AGENT_LOST_RETRY  # agent lost only, never a failing test
        for rule in step["retry"]["automatic"]:
            assert rule.get("exit_status") == -1 or rule.get("signal_reason") == "agent_stop"
    annotate = pipeline["steps"][-1]
    assert annotate["allow_dependency_failure"] is True
    assert set(annotate["depends_on"]) == set(keys[:-1])
    assert any("buildkite-agent annotate" in c for c in annotate["commands"])


def test_test_steps_upload_reports(pipeline) -> None:
    for step in command_steps(pipeline)[:-1]:
        assert "reports/**/*" in step["artifact_paths"]


def test_commands_reference_tox_environments_that_exist(pipeline) -> None:
    defined = _tox_envs()
    assert set(TOX_ENVS) <= defined
    used = set()
    for step in command_steps(pipeline):
        for command in step["commands"]:
            used |= set(re.findall(r"tox -e ([\w.-]+)", command))
    assert used and used <= defined, f"unknown tox envs: {used - defined}"


def test_sharded_profiles_use_parallelism(matrix) -> None:
    profile = next(p for p in matrix.profiles.values() if p.device_type == "cuda" and p.queue)
    sharded = matrix.profiles.copy()
    sharded[profile.id] = profile.model_copy(update={"shards": 3})
    sharded[profile.id]._id = profile.id
    import dataclasses

    pipeline = generate_pipeline(dataclasses.replace(matrix, profiles=sharded))
    step = next(s for s in pipeline["steps"] if s["key"] == f"gpu-{profile.id}")
    assert step["parallelism"] == 3


def test_yaml_round_trip_and_bootstrap(pipeline) -> None:
    text = yaml.safe_dump(pipeline, sort_keys=False)
    assert yaml.safe_load(text) == pipeline
    bootstrap = yaml.safe_load((ROOT / ".buildkite" / "pipeline.yml").read_text())
    commands = bootstrap["steps"][0]["commands"]
    assert any("nvfp4-matrix buildkite" in c and "pipeline upload" in c for c in commands)
