"""The pytest plugin (entry point ``pytest11: nvfp4_matrix``).

Three jobs:

* **Collect matrix YAML as tests**: files matching ``nvfp4_matrix_files``
  (ini, default ``matrix/*.yaml`` under the rootdir) or ``--nvfp4-matrix
  GLOB``, or named on the command line, become one item per cell, grouped by
  sweep: ``matrix/selection.yaml::env-cross::b200-VLLM_BATCH_INVARIANT=1``.
  The location is the YAML line; a failure prints expected vs actual and the
  decision record, not a traceback; a bad file is a one-line collection
  error ``file:line: key: message``.
* **Hardware markers**: ``@pytest.mark.gpu`` (needs a CUDA GPU) and
  ``@pytest.mark.blackwell`` (needs sm_10x or sm_12x) skip elsewhere, with the
  exact reason.
* **Expected skips**: with ``--nvfp4-profile ID`` (or ``NVFP4_MATRIX_PROFILE``)
  the run is a real runner of that profile: the machine must match it, every
  ``must_run`` pattern must match a collected test, and a skip is a failure
  unless the test matches one of the profile's ``may_skip`` patterns (and no
  ``must_run`` pattern). Silent skips are how hardware suites rot.
* **Shards**: under Buildkite ``parallelism``, each job keeps only its slice
  of the collected tests (``BUILDKITE_PARALLEL_JOB`` of
  ``BUILDKITE_PARALLEL_JOB_COUNT``), chosen by a stable hash of the node id;
  locally, use pytest-xdist (``-n auto``) instead.

Importing this module imports nothing heavy: pydantic, torch and the kernels
are imported inside the hooks that need them.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CellItem", "CellMismatch", "MatrixGroup", "MatrixYamlFile"]

INI_FILES = "nvfp4_matrix_files"
DEFAULT_GLOB = "matrix/*.yaml"
PROFILE_ENV = "NVFP4_MATRIX_PROFILE"
EXPECTED_SKIPS_PLUGIN = "nvfp4-matrix-expected-skips"
BLACKWELL_FAMILIES = (10, 12)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nvfp4-matrix", "NVFP4 selection matrix")
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
        config.pluginmanager.register(ExpectedSkips(config, profile), EXPECTED_SKIPS_PLUGIN)
    reports = config.getoption("nvfp4_reports")
    if reports:
        folder = Path(reports)
        if hasattr(config.option, "xmlpath") and config.option.xmlpath is None:
            config.option.xmlpath = str(folder / "junit.xml")
        config.pluginmanager.register(
            SessionSummary(config, folder, profile), "nvfp4-matrix-summary"
        )


def _globs(config: pytest.Config) -> list[str]:
    return list(config.getoption("nvfp4_matrix") or config.getini(INI_FILES))


def _wanted(config: pytest.Config, file_path: Path) -> bool:
    resolved = file_path.resolve()
    for arg in config.args:
        candidate = Path(arg.split("::")[0])
        if not candidate.is_absolute():
            candidate = Path(config.invocation_params.dir) / candidate
        if candidate.resolve() == resolved:
            return True
    try:
        rel = resolved.relative_to(config.rootpath.resolve()).as_posix()
    except ValueError:
        return False
    return any(fnmatch.fnmatch(rel, pattern) for pattern in _globs(config))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and _wanted(parent.config, file_path):
        return MatrixYamlFile.from_parent(parent, path=file_path)
    return None


# --- matrix items ------------------------------------------------------------------------------


class CellMismatch(Exception):
    """The selection disagreed with the matrix for one cell."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.problems[0] if result.problems else "mismatch")
        self.result = result


class MatrixYamlFile(pytest.File):
    """A matrix file: yields one group per sweep (and one for the golden cases)."""

    def collect(self) -> Iterator[pytest.Collector]:
        from harness.cells import expand
        from harness.matrix import load_matrix
        from harness.runner import Runner

        matrix = load_matrix([self.path])
        # Only the sweeps and cases written in this file: an included file
        # (gpus.yaml) is collected on its own and holds no cells.
        groups = list(expand(matrix, files={matrix.files[0].name}))
        if not groups:
            return
        runner = Runner(matrix)
        for group, cells in groups:
            yield MatrixGroup.from_parent(self, name=group, cells=cells, runner=runner)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from harness.errors import MatrixError

        if isinstance(excinfo.value, MatrixError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class MatrixGroup(pytest.Collector):
    def __init__(self, *, cells: list[Any], runner: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells = cells
        self.runner = runner

    def collect(self) -> Iterator[pytest.Item]:
        for cell in self.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell, runner=self.runner)


class CellItem(pytest.Item):
    """One cell: the real selection must agree with the oracle (and the golden case)."""

    def __init__(self, *, cell: Any, runner: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.runner = runner

    def runtest(self) -> None:
        from harness.runner import clean_environment, quiet_selection_logs

        with clean_environment(), quiet_selection_logs():
            result = self.runner.check(self.cell)
        if not result.ok:
            raise CellMismatch(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CellMismatch):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.cell.location.line - 1 if self.cell.location else None
        return self.path, line, f"cell {self.cell.id}"


# --- shards -------------------------------------------------------------------------------------

SHARD_ENV = "BUILDKITE_PARALLEL_JOB"
SHARD_COUNT_ENV = "BUILDKITE_PARALLEL_JOB_COUNT"


def shard_of(nodeid: str, count: int) -> int:
    """The shard (0-based) that runs ``nodeid``: stable across machines and runs."""
    return zlib.crc32(nodeid.encode()) % count


def _shard(environ: Any) -> tuple[int, int] | None:
    raw_job, raw_count = environ.get(SHARD_ENV), environ.get(SHARD_COUNT_ENV)
    if raw_count is None:
        return None
    try:
        job, count = int(raw_job or ""), int(raw_count)
    except ValueError:
        raise pytest.UsageError(
            f"{SHARD_ENV}={raw_job!r} / {SHARD_COUNT_ENV}={raw_count!r}: expected integers"
        ) from None
    if count < 1 or not 0 <= job < count:
        raise pytest.UsageError(f"{SHARD_ENV}={job} is not in 0..{count - 1}")
    return job, count


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _select_shard(config, items)
    _mark_hardware(items)


def _select_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = _shard(os.environ)
    if shard is None or shard[1] == 1:
        return
    job, count = shard
    keep = [i for i in items if shard_of(i.nodeid, count) == job]
    drop = [i for i in items if shard_of(i.nodeid, count) != job]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- hardware markers --------------------------------------------------------------------------


def _mark_hardware(items: list[pytest.Item]) -> None:
    marked = [i for i in items if i.get_closest_marker("gpu") or i.get_closest_marker("blackwell")]
    if not marked:
        return
    from kernels.platform import detect_platform

    # The real machine: these markers are about hardware, never about a fake profile.
    p = detect_platform()
    for item in marked:
        if not p.is_cuda:
            item.add_marker(
                pytest.mark.skip(reason=f"needs a CUDA GPU; this machine is {p.describe()}")
            )
        elif item.get_closest_marker("blackwell") and not any(
            p.is_family(f) for f in BLACKWELL_FAMILIES
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"needs a Blackwell GPU (sm_10x or sm_12x); this machine is {p.describe()}"
                )
            )


# --- expected skips ------------------------------------------------------------------------------


def _matches(item: pytest.Item | None, nodeid: str, pattern: str) -> bool:
    if pattern.startswith("marker:"):
        return (
            item is not None
            and item.get_closest_marker(pattern.removeprefix("marker:")) is not None
        )
    return fnmatch.fnmatch(nodeid, pattern)


def _skip_reason(report: Any) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


class ExpectedSkips:
    """Enforces a profile's ``real_tests`` on a real runner."""

    def __init__(self, config: pytest.Config, profile_id: str) -> None:
        self.config = config
        self.profile_id = profile_id
        self.must_run: list[str] = []
        self.may_skip: list[str] = []
        self.where = ""
        self.violations: list[str] = []
        self.unexpected: list[str] = []
        self.deselected: list[pytest.Item] = []
        self.ran_by_pattern: dict[str, int] = {}

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from harness.errors import MatrixError
        from harness.matrix import load_matrix

        root = self.config.rootpath
        paths = sorted({Path(p) for g in _globs(self.config) for p in glob.glob(str(root / g))})
        if not paths:
            pytest.exit(
                f"--nvfp4-profile {self.profile_id}: no matrix file matches {_globs(self.config)} under {root}",
                4,
            )
        try:
            matrix = load_matrix(paths, check_registry=False)
        except MatrixError as exc:
            pytest.exit(f"--nvfp4-profile {self.profile_id}: {exc.first}", 4)
        if self.profile_id not in matrix.profiles:
            from harness.matrix import unknown_name

            pytest.exit(
                f"--nvfp4-profile: {unknown_name('profile', self.profile_id, matrix.profiles)}", 4
            )
        profile = matrix.profiles[self.profile_id]
        self.must_run = list(profile.real_tests.must_run)
        self.may_skip = list(profile.real_tests.may_skip)
        self.where = str(matrix.where("profile", self.profile_id, "real_tests"))
        self.ran_by_pattern = {p: 0 for p in self.must_run}
        self._check_hardware(profile)

    def _check_hardware(self, profile: Any) -> None:
        from kernels.platform import detect_platform

        real = detect_platform()
        want = profile.capability_tuple
        if real.device_type != profile.device_type or (
            want is not None and real.capability != want
        ):
            pytest.exit(
                f"--nvfp4-profile {self.profile_id}: this machine is {real.describe()}, but the profile is "
                f"{profile.device_type} {profile.capability or ''} ({profile.name}): wrong runner queue?",
                4,
            )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.extend(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # A test deselected by -m/-k still exists: a run that selects a subset
        # (say, only the batch-invariance tests) is not a violation.
        everything = list(session.items) + self.deselected
        for pattern in self.must_run:
            if not any(_matches(item, item.nodeid, pattern) for item in everything):
                self.violations.append(
                    f"must_run pattern {pattern!r} of profile {self.profile_id} matches no collected test ({self.where})"
                )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and not any(_matches(None, report.nodeid, p) for p in self.may_skip):
            reason = _skip_reason(report)
            self.violations.append(
                f"{report.nodeid} skipped at collection on profile {self.profile_id}: {reason}"
            )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Iterator[None]:
        outcome: Any = yield
        report = outcome.get_result()
        must = [p for p in self.must_run if _matches(item, item.nodeid, p)]
        if report.when == "call" and (report.passed or report.failed):
            for pattern in must:
                self.ran_by_pattern[pattern] += 1
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        may = [p for p in self.may_skip if _matches(item, item.nodeid, p)]
        if may and not must:
            return
        reason = _skip_reason(report)
        self.unexpected.append(item.nodeid)
        why = (
            f"it matches must_run {must[0]!r}"
            if must
            else f"no may_skip pattern matches it (may_skip: {self.may_skip or 'none'})"
        )
        report.outcome = "failed"
        report.longrepr = (
            f"unexpected skip on profile {self.profile_id}: {reason}\n"
            f"  {why}; the profile's real_tests are at {self.where}"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section(f"nvfp4-matrix expected skips (profile {self.profile_id})")
        for pattern, count in self.ran_by_pattern.items():
            terminalreporter.line(f"must_run {pattern!r}: {count} test(s) ran")
        for nodeid in self.unexpected:
            terminalreporter.line(f"UNEXPECTED SKIP (reported as a failure): {nodeid}", red=True)
        for violation in self.violations:
            terminalreporter.line(f"VIOLATION: {violation}", red=True)
        if not self.violations and not self.unexpected:
            terminalreporter.line("no unexpected skip")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.violations and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- the session summary (--nvfp4-reports) ---------------------------------------------------------


class SessionSummary:
    """Writes ``summary.md``: verdict, failures first, then the expected-skip check and the skips."""

    def __init__(self, config: pytest.Config, folder: Path, profile: str | None) -> None:
        self.config = config
        self.folder = folder
        self.profile = profile
        self.outcomes: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.skips: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            key = "failed" if report.when == "call" else "errors"
            lines = str(report.longrepr).strip().splitlines()
            self.failures.append((report.nodeid, (lines[-1] if lines else "")[:300]))
        elif report.skipped and hasattr(report, "wasxfail"):
            key = "xfailed"
        elif report.skipped:
            key = "skipped"
            self.skips.append((report.nodeid, _skip_reason(report)[:300]))
        elif report.when == "call":
            key = "xpassed" if hasattr(report, "wasxfail") else "passed"
        else:
            return
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    @pytest.hookimpl(trylast=True)  # after the expected-skip check has set the exit status
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from harness.report import markdown_table

        status = int(session.exitstatus)
        where = f" on profile `{self.profile}`" if self.profile else ""
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items())) or "no test ran"
        out = [
            f"## pytest{where}: {'✅ PASS' if status == 0 else '❌ FAIL'}",
            "",
            f"**{counts}** (exit status {status})",
            "",
        ]
        if self.failures:
            out += [f"### Failures ({len(self.failures)})", ""]
            rows = [[f"`{n}`", m] for n, m in self.failures[:200]]
            out += [markdown_table(["test", "last line"], rows), ""]
        checker = self.config.pluginmanager.get_plugin(EXPECTED_SKIPS_PLUGIN)
        if checker is not None:
            lines = [
                f"- UNEXPECTED SKIP (reported as a failure): `{n}`" for n in checker.unexpected
            ]
            lines += [f"- VIOLATION: {v}" for v in checker.violations]
            lines += [
                f"- must_run `{p}`: {c} test(s) ran" for p, c in checker.ran_by_pattern.items()
            ]
            out += ["### Expected skips", ""] + (lines or ["- no unexpected skip"]) + [""]
        if self.skips:
            out += [f"### Skips ({len(self.skips)})", ""]
            rows = [[f"`{n}`", r] for n, r in self.skips[:200]]
            out += [markdown_table(["test", "reason"], rows), ""]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "summary.md").write_text("\n".join(out), encoding="utf-8")
