"""A third-party engine plugs in through the ``nvfp4_matrix.targets`` entry point, no fork.

The test builds and installs (``pip install --target``) a tiny external
package whose entry point names a :class:`~harness.targets.Target`, then runs
``nvfp4-matrix`` in a fresh process that can see it: the matrix written for
that engine runs through the same loader, oracle and reports, and a bug in the
engine is caught.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "toy-nvfp4-target"
version = "0.1.0"

[project.entry-points."nvfp4_matrix.targets"]
toy = "toy_nvfp4_target:ToyTarget"

[tool.setuptools]
py-modules = ["toy_nvfp4_target"]
"""

# A toy engine with two NVFP4 kernels, a batch-invariance flag of its own
# (TOY_DETERMINISTIC) and an optional package of its own (toyblas, which the fast
# kernel needs). With TOY_BUG=1 it forgets the flag: the regression the matrix must
# catch. Nothing of it is in the harness: its vocabulary comes with it.
MODULE = '''
import os

from harness.targets import Outcome, Target, Vocabulary


class FastKernel:
    @staticmethod
    def is_supported(platform):
        if "toyblas" not in platform.packages:
            return False, "needs toyblas"
        if platform.capability is not None and platform.capability[0] == 10:
            return True, None
        return False, "needs sm_10x"


class SlowKernel:
    @staticmethod
    def is_supported(platform):
        return True, None


KERNELS = {"FastKernel": FastKernel, "SlowKernel": SlowKernel}


def select(platform, env, supported):
    if env.get("TOY_DETERMINISTIC") == "1" and os.environ.get("TOY_BUG") != "1":
        return "SlowKernel"
    for name in ("FastKernel", "SlowKernel"):
        if supported(name):
            return name
    raise ValueError("no toy kernel")


class ToyTarget(Target):
    name = "toy"
    description = "a toy engine"
    vocabulary = Vocabulary(
        inputs=("TOY_DETERMINISTIC", "TOY_DISABLED_KERNELS"), packages=("toyblas",)
    )

    def version(self):
        return "0.1.0"

    def evaluate(self, query, matrix, entry=None):
        by_class = {spec.kernel: b for b, spec in matrix.backends.items()}
        mocks = {matrix.backends[b].kernel: v for b, v in query.mocks.items()}

        def supported(name):
            if name in mocks:
                return mocks[name][0]
            return KERNELS[name].is_supported(query.platform)[0]

        try:
            kernel = select(query.platform, query.env, supported)
        except ValueError as exc:
            return Outcome("error", error=str(exc), error_type="ValueError")
        return Outcome("backend", by_class[kernel], kernel)
'''

MATRIX = """
version: 1
target: {name: toy}
profiles:
  b200: {name: B200, device_type: cuda, capability: "10.0", cuda: "12.8", packages: [toyblas],
         supported: []}
  h100: {name: H100, device_type: cuda, capability: "9.0", cuda: "12.8", packages: [toyblas],
         supported: []}
layers:
  any: {in_features: 64, out_features: 64}
backends:
  fast:
    kernel: FastKernel
    support: [{device: cuda, families: [10], packages: [toyblas]}]
    implements: {act_dtypes: [bfloat16]}
  slow:
    kernel: SlowKernel
    batch_invariant: true
    support: [{device: any}]
    implements: {act_dtypes: [bfloat16]}
precedence:
  forcing:
    - {rule: batch_invariant, variable: TOY_DETERMINISTIC, forces: [slow]}
  auto: {disabled_by: TOY_DISABLED_KERNELS, order: [fast, slow]}
  booleans: {true_values: ["1"], false_values: ["0", ""]}
sweeps:
  - id: bi
    cross:
      TOY_DETERMINISTIC: [null, "1"]
    packages: [[toyblas], []]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy package, built and installed into a folder of its own."""
    root = tmp_path_factory.mktemp("toy")
    src = root / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "toy_nvfp4_target.py").write_text(textwrap.dedent(MODULE))
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
        check=True,
        capture_output=True,
    )
    (root / "toy.yaml").write_text(MATRIX)
    return target


def _cli(site: Path, *args: str, bug: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.getcwd()]))
    env.pop("TOY_BUG", None)
    if bug:
        env["TOY_BUG"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=site.parent,
    )


def test_the_entry_point_names_the_installed_target(site: Path) -> None:
    assert (site / "toy_nvfp4_target.py").is_file()
    assert list(site.glob("toy_nvfp4_target-*.dist-info/entry_points.txt"))


def test_the_external_target_passes_its_matrix(site: Path) -> None:
    run = _cli(site, "run", "--no-reports", "--no-table", "toy.yaml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "target : toy 0.1.0" in run.stdout
    assert "PASS: 8 cells, 0 mismatches" in run.stdout
    assert "compare: outcomes only" in run.stdout


def test_a_bug_in_the_external_engine_is_caught(site: Path) -> None:
    run = _cli(site, "run", "--no-reports", "--no-table", "--target", "toy", "toy.yaml", bug=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "MISMATCH b200-TOY_DETERMINISTIC=1-packages=toyblas" in run.stdout
    assert "expected : backend slow by rule batch_invariant" in run.stdout
    assert "actual   : backend fast" in run.stdout
    assert "FAIL: 8 cells, 1 mismatches" in run.stdout


def test_unknown_target_lists_the_plugins(site: Path) -> None:
    run = _cli(site, "run", "--target", "tyo", "toy.yaml")
    assert run.returncode == 2
    assert "unknown target 'tyo'; did you mean 'toy'?" in run.stderr
    assert "kernels, vllm, toy" in run.stderr


def test_the_external_targets_vocabulary_is_its_own(site: Path) -> None:
    # this project's variable means nothing to the toy engine: refused at its line
    text = MATRIX.replace("TOY_DETERMINISTIC: [null", "VLLM_BATCH_INVARIANT: [null")
    (site.parent / "vllm-words.yaml").write_text(text)
    line = 1 + text.splitlines().index("      VLLM_BATCH_INVARIANT: [null, \"1\"]")
    run = _cli(site, "run", "--no-reports", "vllm-words.yaml")
    assert run.returncode == 2, run.stdout + run.stderr
    assert (f"vllm-words.yaml:{line}: sweeps[0].cross.VLLM_BATCH_INVARIANT: unknown selection "
            "input") in run.stderr
    assert "target toy reads: TOY_DETERMINISTIC, TOY_DISABLED_KERNELS" in run.stderr
    # and explain refuses an input the toy does not read, naming what it reads
    run = _cli(site, "explain", "toy.yaml", "--gpu", "b200", "--env", "VLLM_USE_FBGEMM=1")
    assert run.returncode == 2
    assert "--env 'VLLM_USE_FBGEMM': not a selection variable this target reads" in run.stderr
    run = _cli(site, "explain", "toy.yaml", "--gpu", "b200", "--env", "TOY_DETERMINISTIC=1",
               "--json")
    assert run.returncode == 0, run.stderr
    assert '"kernel": "SlowKernel"' in run.stdout and '"agrees": true' in run.stdout


def test_a_target_without_a_vocabulary_is_refused_in_one_line(site: Path) -> None:
    broken = site / "toy_nvfp4_target.py"
    text = broken.read_text()
    try:
        broken.write_text(text.replace("    vocabulary = Vocabulary(", "    _vocabulary = Vocabulary("))
        run = _cli(site, "run", "--no-reports", "toy.yaml")
    finally:
        broken.write_text(text)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "nvfp4-matrix: error: target 'toy': ToyTarget states no vocabulary (a Vocabulary of the "
        "selection inputs it reads and the packages its machines may have)"
    ]
