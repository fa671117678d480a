"""Detection cells: the fake machine answers the way a real one prints, and the profile fields it reads."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from harness.errors import MatrixError
from harness.evaluate.detection import detection_problems, fake_machine
from harness.load import Matrix, load_matrix
from harness.models import GpuProfile
from kernels.platform import detect_platform
from tests.support.paths import MATRIX_DIR

_B200 = dict(
    name="NVIDIA B200", device_type="cuda", capability="10.0", memory_gib=178.4,
    supported=["triton", "emulation"],
)


def test_a_nightly_machine_installs_triton_under_pytorch_triton(shipped: Matrix) -> None:
    profile = shipped.profile("b200-nightly")
    assert profile.triton_distribution == "pytorch-triton"
    machine = fake_machine(profile)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        machine.distribution_version("triton")
    assert machine.packages_distributions()["triton"] == ["pytorch-triton"]
    assert machine.distribution_version("pytorch-triton") == "3.6.0+git5261b273"
    assert machine.distribution_version("pytorch_triton") == "3.6.0+git5261b273"
    assert machine.torch.__version__ == "2.10.0.dev20251208+cu128"
    assert machine.torch.version.cuda == "12.8"
    detected = detect_platform(machine)
    assert detected.triton_version == (3, 6)
    assert detection_problems(profile, detected) == []


def test_a_machine_with_the_triton_distribution(shipped: Matrix) -> None:
    machine = fake_machine(shipped.profile("h100"))
    assert machine.distribution_version("triton") == "3.4.0"
    assert machine.packages_distributions()["triton"] == ["triton"]
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        machine.distribution_version("pytorch-triton")
    assert machine.torch.__version__ == "2.8.0+cu129"


def test_a_machine_without_triton_has_no_triton_distribution(shipped: Matrix) -> None:
    machine = fake_machine(shipped.profile("h100-bare"))
    assert machine.find_spec("triton") is None
    assert "triton" not in machine.packages_distributions()
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        machine.distribution_version("triton")
    assert detect_platform(machine).triton_version is None


def test_absent_packages_answer_every_way_a_probe_can(shipped: Matrix) -> None:
    # no spec (triton), an ImportError from a broken install (flashinfer), a ValueError for a
    # module without a spec (fbgemm_gpu): detection must read all three as "absent"
    machine = fake_machine(shipped.profile("h100-bare"))
    assert machine.find_spec("triton") is None
    with pytest.raises(ImportError):
        machine.find_spec("flashinfer")
    with pytest.raises(ValueError):
        machine.find_spec("fbgemm_gpu")
    assert machine.importable(["triton", "flashinfer", "fbgemm_gpu"]) == frozenset()


def test_fake_device_memory_is_not_a_whole_number_of_gib(shipped: Matrix) -> None:
    for profile in shipped.profiles.values():
        if profile.device_type != "cuda":
            continue
        total = fake_machine(profile).torch.cuda.get_device_properties(0).total_memory
        assert total % 2**30, profile.id
        assert round(total / 2**30, 1) == profile.memory_gib, profile.id


def test_a_version_given_as_major_minor_prints_as_a_release(shipped: Matrix) -> None:
    profile = shipped.profile("b200-cuda127")
    assert (profile.torch, profile.triton) == ("2.9", "3.5")
    machine = fake_machine(profile)
    assert machine.torch.__version__ == "2.9.0"
    assert machine.distribution_version("triton") == "3.5.0"


def test_the_fake_machine_changes_nothing_of_this_process(shipped: Matrix) -> None:
    before = (torch.__version__, torch.version.cuda, dict(os.environ),
              importlib.metadata.version, importlib.metadata.packages_distributions,
              importlib.util.find_spec, torch.cuda.is_available)
    for pid in ("cpu", "b200-nightly", "cpu-interpret"):
        detect_platform(fake_machine(shipped.profile(pid)))
    after = (torch.__version__, torch.version.cuda, dict(os.environ),
             importlib.metadata.version, importlib.metadata.packages_distributions,
             importlib.util.find_spec, torch.cuda.is_available)
    assert after == before


def test_detection_of_every_shipped_profile_reads_it_back(shipped: Matrix) -> None:
    for profile in shipped.profiles.values():
        detected = detect_platform(fake_machine(profile))
        assert detection_problems(profile, detected) == [], profile.id


# --- the profile fields the fake machine prints ------------------------------------------


@pytest.mark.parametrize(
    ("torch_version", "triton", "parsed"),
    [
        ("2.9.1+cu128", "3.5.1", ((2, 9), (3, 5))),
        ("2.10.0.dev20251208+cu128", "3.6.0+git5261b273", ((2, 10), (3, 6))),
        ("2.10.0a0+git1234abc", "3.10.0", ((2, 10), (3, 10))),
        ("2.9", "3.5", ((2, 9), (3, 5))),
    ],
)
def test_printed_versions_parse_to_major_minor(torch_version, triton, parsed) -> None:
    profile = GpuProfile(**_B200, cuda="12.8", torch=torch_version, packages=["triton"], triton=triton)
    assert (profile.torch_version, profile.triton_version) == parsed
    assert profile.platform().torch_version == parsed[0]
    assert profile.platform().triton_version == parsed[1]


@pytest.mark.parametrize("torch_version", ["2", "v2.9.1", "2.9.1+", "2.9.1 +cu128", "2.9.1+cu_128"])
def test_a_torch_version_no_machine_prints_is_refused(torch_version) -> None:
    with pytest.raises(ValidationError, match="torch"):
        GpuProfile(**_B200, cuda="12.8", torch=torch_version)


def test_a_cuda_build_of_torch_must_match_the_cuda_version() -> None:
    with pytest.raises(ValidationError, match=r"'torch' '2.9.1\+cu130' is a build for CUDA 13.0, but 'cuda' is '12.8'"):
        GpuProfile(**_B200, cuda="12.8", torch="2.9.1+cu130")
    assert GpuProfile(**_B200, cuda="13.0", torch="2.9.1+cu130").cuda == "13.0"
    # a CUDA build on a machine without a GPU: nothing reads its CUDA version
    cpu = GpuProfile(name="cpu", device_type="cpu", torch="2.9.1+cu128", supported=["emulation"])
    assert cpu.torch_version == (2, 9)


def test_a_triton_distribution_needs_triton_installed() -> None:
    with pytest.raises(ValidationError, match="'triton_distribution' is set but triton is not in 'packages'"):
        GpuProfile(**_B200, cuda="12.8", triton_distribution="pytorch-triton")
    with pytest.raises(ValidationError, match="triton_distribution"):
        GpuProfile(**_B200, cuda="12.8", packages=["triton"], triton_distribution="pytorch triton")


def _load_problem(tmp_path: Path, old: str, new: str) -> str:
    """The first problem of loading the shipped matrix with ``old`` replaced by ``new`` in gpus.yaml."""
    for name in ("gpus.yaml", "selection.yaml"):
        shutil.copy(MATRIX_DIR / name, tmp_path / name)
    gpus = tmp_path / "gpus.yaml"
    text = gpus.read_text()
    assert old in text, f"fixture drift: {old!r} is no longer in gpus.yaml"
    gpus.write_text(text.replace(old, new, 1))
    with pytest.raises(MatrixError) as info:
        load_matrix([tmp_path / "selection.yaml"])
    return str(info.value.first)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('torch: "2.9.1+cu128"', 'torch: "v2.9.1"',
         'profiles.v100.torch: expected a version as the machine prints it, such as "2.9.1+cu128"'),
        ('triton: "3.5.1"', 'triton: "3.5.1 "',
         'profiles.v100.triton: expected a version as the machine prints it'),
        ("triton_distribution: pytorch-triton", "triton_distribution: pytorch triton",
         "profiles.b200-nightly.triton_distribution: 'pytorch triton' is not a distribution name"),
        ('torch: "2.9.1+cu128"', 'torch: "2.9.1+cu130"',
         "profiles.v100.torch: 'torch' '2.9.1+cu130' is a build for CUDA 13.0, but 'cuda' is '12.8'"),
    ],
)
def test_a_misprinted_profile_is_refused_with_its_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert message in _load_problem(tmp_path, old, new)


def test_every_interpreter_spelling_is_set_on_every_profile_with_triton(shipped: Matrix) -> None:
    from harness.evaluate.session import Session

    runner = Session(shipped)
    cells = [c for c in runner.cells() if c.triton_interpret is not None]
    with_triton = [pid for pid, p in shipped.profiles.items() if p.triton is not None]
    assert shipped.triton_interpret is not None
    assert len(cells) == len(with_triton) * len(shipped.triton_interpret)
    # the table spans every rule Triton has had: exact "1", 3.4's stripping, 3.5's words
    versions = {shipped.profiles[pid].triton[:3] for pid in with_triton}
    assert {"3.3", "3.4", "3.5"} <= versions
    assert runner.run(cells).ok
    on_cpu = next(c for c in cells if c.profile == "cpu" and c.triton_interpret == "true")
    assert runner.platform(on_cpu).triton_interpret  # the oracle's machine runs the interpreter
    assert runner.expected(on_cpu).backend == "triton"


@pytest.mark.parametrize(
    ("wrong_rule", "cell"),
    [
        (lambda value, triton: value == "1", "h100-interpret-true-detected"),  # the old reading
        (lambda value, triton: value.strip().lower() in ("1", "true", "yes", "on", "y"),
         "a100-interpret-x201-detected"),  # stripping after 3.4
        (lambda value, triton: value.lower() in ("1", "true", "yes", "on", "y"),
         "b200-torch27-interpret-true-detected"),  # 3.3 read like 3.5
    ],
)
def test_interpreter_cells_catch_a_wrong_reading(shipped: Matrix, monkeypatch, wrong_rule, cell) -> None:
    import kernels.platform as platform
    from harness.evaluate.session import Session

    monkeypatch.setattr(platform, "triton_interpret_on", wrong_rule)
    runner = Session(shipped)
    cells = [c for c in runner.cells() if c.triton_interpret is not None]
    failed = {r.cell.id for r in runner.run(cells).failures}
    assert cell in failed


def test_a_triton_interpret_table_needs_specifiers(tmp_path: Path) -> None:
    for name in ("gpus.yaml", "selection.yaml"):
        shutil.copy(MATRIX_DIR / name, tmp_path / name)
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text(gpus.read_text().replace('"true": ">=3.4"', '"true": "from 3.4 on"'))
    with pytest.raises(MatrixError) as info:
        load_matrix(sorted(tmp_path.glob("*.yaml")))
    text = str(info.value)
    assert "gpus.yaml:" in text and "triton_interpret" in text and "not a PEP 440 specifier" in text
