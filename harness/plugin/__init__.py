"""The pytest plugin (entry point ``pytest11: nvfp4_matrix``): the hooks, and where each job lives.

* **Matrix YAML as tests** (:mod:`harness.plugin.collect`): files matching
  ``nvfp4_matrix_files`` (ini, default ``matrix/*.yaml`` under the rootdir) or
  ``--nvfp4-matrix GLOB``, or named on the command line, become one item per
  cell, grouped by sweep: ``matrix/selection.yaml::env-cross::b200-VLLM_BATCH_INVARIANT=1``,
  evaluated through the same session as ``nvfp4-matrix run`` (``--nvfp4-mutant
  NAME``: against a broken variant of the target).
* **Hardware markers** (:mod:`harness.plugin.markers`): ``gpu`` and
  ``blackwell`` skip elsewhere, with the exact reason.
* **Expected skips** (:mod:`harness.plugin.skips`): with ``--nvfp4-profile ID``
  a skip the profile does not allow fails the run.
* **Shards** (:mod:`harness.plugin.shards`): Buildkite ``parallelism`` slices.
* **Reports** (:mod:`harness.plugin.summary`): ``--nvfp4-reports DIR``.

Importing this package imports nothing heavy: pydantic, torch and the
kernels are imported inside the hooks that need them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import PROFILE_ENV, TOOL
from harness.plugin.collect import DEFAULT_GLOB, INI_FILES, MatrixYamlFile, wanted
from harness.plugin.markers import mark_hardware
from harness.plugin.shards import select_shard

__all__ = ["PROFILE_ENV", "pytest_addoption", "pytest_collect_file", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(TOOL, "NVFP4 selection matrix")
    group.addoption(
        "--nvfp4-matrix",
        action="append",
        dest="nvfp4_matrix",
        metavar="GLOB",
        default=None,
        help=f"matrix files to collect as tests, relative to the rootdir (default: ini {INI_FILES})",
    )
    group.addoption(
        "--nvfp4-profile",
        dest="nvfp4_profile",
        metavar="ID",
        default=os.environ.get(PROFILE_ENV),
        help=f"this machine is a runner for matrix profile ID: enforce its expected skips (env {PROFILE_ENV})",
    )
    group.addoption(
        "--nvfp4-mutant",
        dest="nvfp4_mutant",
        metavar="NAME",
        default=None,
        help="evaluate the collected matrix files against this deliberately broken variant of "
        "their target (see nvfp4-matrix mutants)",
    )
    group.addoption(
        "--nvfp4-reports",
        dest="nvfp4_reports",
        metavar="DIR",
        default=None,
        help="write DIR/summary.md (for a Buildkite annotation) and, unless --junitxml is given, DIR/junit.xml",
    )
    parser.addini(
        INI_FILES,
        type="linelist",
        default=[DEFAULT_GLOB],
        help="globs (relative to the rootdir) of matrix files collected as tests",
    )


@pytest.hookimpl(tryfirst=True)  # before the junitxml plugin reads its path
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu: needs a real CUDA GPU (skipped elsewhere, with the reason)"
    )
    config.addinivalue_line(
        "markers", "blackwell: needs a real Blackwell GPU, sm_10x or sm_12x (skipped elsewhere)"
    )
    profile = config.getoption("nvfp4_profile")
    if profile:
        from harness.plugin.skips import EXPECTED_SKIPS_PLUGIN, ExpectedSkips

        config.pluginmanager.register(ExpectedSkips(config, profile), EXPECTED_SKIPS_PLUGIN)
    reports = config.getoption("nvfp4_reports")
    if reports and not hasattr(config, "workerinput"):  # the xdist controller writes them
        folder = Path(reports)
        from harness.plugin.summary import SessionSummary

        summary = SessionSummary(config, folder, profile)
        if hasattr(config.option, "xmlpath") and config.option.xmlpath is None:
            # pytest writes its JUnit report in place: it goes to a private name, and the
            # summary moves it over junit.xml once complete (the previous one kept until then)
            config.option.xmlpath = str(summary.junit_partial)
        config.pluginmanager.register(summary, f"{TOOL}-summary")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and wanted(parent.config, file_path):
        return MatrixYamlFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    select_shard(config, items)
    mark_hardware(items)
