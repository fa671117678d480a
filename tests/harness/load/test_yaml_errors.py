"""Every malformed matrix file is refused with its file, line and dotted key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import MatrixError
from harness.load import load_matrix
from tests.support.paths import MATRIX_DIR


def _copy(tmp_path: Path) -> Path:
    for name in ("gpus.yaml", "selection.yaml"):
        shutil.copy(MATRIX_DIR / name, tmp_path / name)
    return tmp_path / "selection.yaml"


def _edit(path: Path, old: str, new: str, word: str | None = None) -> int:
    """Replace the first ``old`` by ``new``; return the 1-based line, at or after the edit, holding ``word``."""
    text = path.read_text()
    assert old in text, f"fixture drift: {old!r} is no longer in {path.name}"
    start = text.index(old)
    edited = text[:start] + new + text[start + len(old) :]
    path.write_text(edited)
    first = text[:start].count("\n") + 1
    if word is None:
        return first
    lines = edited.splitlines()
    return next(n for n in range(first, len(lines) + 1) if word in lines[n - 1])


def _load_error(main: Path) -> MatrixError:
    """The error of loading ``main`` and checking it against its target (the registry)."""
    from harness.evaluate.session import Session

    with pytest.raises(MatrixError) as info:
        Session(load_matrix([main]))
    return info.value


# (file edited, old text, new text, dotted key, text the message must contain)
CASES = [
    pytest.param(
        "gpus.yaml",
        '    capability: "8.0"',
        '    capabilty: "8.0"',
        "profiles.a100.capabilty",
        "unknown key 'capabilty'; did you mean 'capability'?",
        id="unknown-key",
    ),
    pytest.param(
        "gpus.yaml",
        '    capability: "8.9"',
        "    capability: 8.9",
        "profiles.l40s.capability",
        'wrong type: expected string, got float 8.9 (quote it: "8.9")',
        id="wrong-type-float",
    ),
    pytest.param(
        "gpus.yaml",
        "    memory_gib: 31.7\n",
        "    memory_gib: lots\n",
        "profiles.v100.memory_gib",
        "wrong type: expected number, got string 'lots'",
        id="wrong-type-number",
    ),
    pytest.param(
        "selection.yaml",
        '{VLLM_USE_FBGEMM: "yes"}',
        "{VLLM_USE_FBGEMM: yes}",
        "sweeps[0].envs[6].VLLM_USE_FBGEMM",
        "YAML reads unquoted yes/no/on/off/true/false as booleans",
        id="yes-is-a-boolean",
    ),
    pytest.param(
        "selection.yaml",
        "    profile: gb10\n",
        "    profile: gb100\n",
        "cases[15].profile",
        "unknown profile 'gb100'; did you mean 'gb10'?",
        id="unknown-profile-in-case",
    ),
    pytest.param(
        "selection.yaml",
        "profiles: [b200, v100, cpu-interpret]",
        "profiles: [b200, v101, cpu-interpret]",
        "sweeps[2].profiles[1]",
        "unknown profile 'v101'",
        id="unknown-profile-in-sweep",
    ),
    pytest.param(
        "selection.yaml",
        "forces: [triton, emulation]",
        "forces: [tritom, emulation]",
        "precedence.forcing[0].forces[0]",
        "unknown backend 'tritom'; did you mean 'triton'?",
        id="unknown-backend",
    ),
    pytest.param(
        "selection.yaml",
        "  - id: h100-default",
        "  - id: b200-default",
        "cases[17].id",
        "duplicate case id 'b200-default' (first defined at",
        id="duplicate-case-id",
    ),
    pytest.param(
        "gpus.yaml",
        "\n  cpu-interpret:\n",
        "\n  cpu:\n",
        "profiles.cpu",
        "duplicate key 'cpu' (first defined at line",
        id="duplicate-profile-key",
    ),
    pytest.param(
        "selection.yaml",
        '{VLLM_USE_FBGEMM: "2"}',
        '{VLLM_USE_FBGEM: "2"}',
        "sweeps[0].envs[5].VLLM_USE_FBGEM",
        "did you mean 'VLLM_USE_FBGEMM'?",
        id="unknown-variable",
    ),
    pytest.param(
        "gpus.yaml",
        '    supported: [triton, emulation]\n    real_tests:\n      must_run: ["marker:gpu"]\n      may_skip: ["marker:blackwell"]\n\n  l40s:',
        '    supported: [emulation]\n    real_tests:\n      must_run: ["marker:gpu"]\n      may_skip: ["marker:blackwell"]\n\n  l40s:',
        "profiles.a100.supported",
        "omits triton but its rule",
        id="declared-support-disagrees",
    ),
    pytest.param(
        "gpus.yaml",
        "    device_type: cpu\n    torch",
        '    device_type: cpu\n    capability: "9.0"\n    torch',
        "profiles.cpu.capability",
        "a cpu profile has no 'capability' or 'cuda'",
        id="cpu-with-capability",
    ),
    pytest.param(
        "selection.yaml",
        "kernel: TritonNvFp4LinearKernel",
        "kernel: TritonKernel",
        "backends.triton.kernel",
        "the registered triton class is TritonNvFp4LinearKernel, not TritonKernel",
        id="kernel-class-drift",
    ),
    pytest.param(
        "selection.yaml",
        "    order: [flashinfer-cutlass, cublaslt,",
        "    order: [cublaslt,",
        "precedence.auto.order",
        "must list every backend exactly once: missing flashinfer-cutlass",
        id="auto-order-incomplete",
    ),
    pytest.param(
        "selection.yaml",
        "version: 1\n",
        "version: 2\n",
        "version",
        "2 is not one of: 1",
        id="version",
    ),
    pytest.param(
        "selection.yaml",
        "  - id: layers\n",
        "  - id: Layers!\n",
        "sweeps[1].id",
        "is not a valid id",
        id="bad-id",
    ),
]


@pytest.mark.parametrize(("filename", "old", "new", "key", "message"), CASES)
def test_malformed_file_names_file_line_and_key(tmp_path, filename, old, new, key, message):
    main = _copy(tmp_path)
    # the edited text may start with a newline: the key is on the following line
    last = key.rsplit(".", 1)[-1].split("[")[0]
    line = _edit(tmp_path / filename, old, new, word=last)
    error = _load_error(main)
    problem = error.first
    assert problem.file.endswith(filename), str(error)
    assert problem.key == key, str(error)
    assert problem.line == line, str(error)
    assert message in problem.message, str(error)
    assert f"{filename}:{line}: {key}: " in str(error)


def test_bad_yaml_syntax(tmp_path):
    main = _copy(tmp_path)
    line = _edit(
        tmp_path / "gpus.yaml", "    supported: [emulation]\n", "    supported: [emulation\n"
    )
    error = _load_error(main)
    assert error.first.file.endswith("gpus.yaml")
    assert "invalid YAML" in error.first.message
    # PyYAML reports where it gave up: at or just after the broken line
    assert error.first.line in (line, line + 1), str(error)


def test_unreadable_and_missing_files(tmp_path):
    error = _load_error(tmp_path / "nope.yaml")
    assert "nope.yaml: cannot read the matrix file" in str(error)
    main = _copy(tmp_path)
    line = _edit(main, "include: [gpus.yaml]", "include: [gpus-missing.yaml]")
    error = _load_error(main)
    assert str(error).startswith(
        f"{error.first.file}:{line}: include[0]: included file 'gpus-missing.yaml' does not exist"
    )


def test_empty_and_non_mapping_files(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert "this one is empty" in str(_load_error(tmp_path / "empty.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert "this one is a list" in str(_load_error(tmp_path / "list.yaml"))


def test_merge_keys_are_refused(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "version: 1\nlayers:\n  a: &a {in_features: 16, out_features: 16}\n  b:\n    <<: *a\n"
    )
    error = _load_error(tmp_path / "m.yaml")
    assert error.first.line == 5 and "merge keys" in error.first.message


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    main = _copy(tmp_path)
    _edit(tmp_path / "gpus.yaml", '    capability: "8.0"', "    capability: 8.0")
    _edit(tmp_path / "gpus.yaml", '    capability: "9.0"', "    capability: 9.0")
    error = _load_error(main)
    assert [p.key for p in error.problems] == [
        "profiles.a100.capability",
        "profiles.h100.capability",
    ]
    assert len(str(error).splitlines()) == 2
