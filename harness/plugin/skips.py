"""Expected skips: on a real runner of a profile, a skip the profile does not allow fails.

With ``--nvfp4-profile ID`` (or ``NVFP4_MATRIX_PROFILE``) the run is a runner
of that profile: the machine must match it, every ``must_run`` pattern must
match a collected test, and a skip is a failure unless the test matches one of
the profile's ``may_skip`` patterns (and no ``must_run`` pattern). Silent
skips are how hardware suites rot.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.plugin.collect import globs

__all__ = ["EXPECTED_SKIPS_PLUGIN", "ExpectedSkips", "skip_reason"]

EXPECTED_SKIPS_PLUGIN = "nvfp4-matrix-expected-skips"


def _matches(item: pytest.Item | None, nodeid: str, pattern: str) -> bool:
    if pattern.startswith("marker:"):
        return (
            item is not None
            and item.get_closest_marker(pattern.removeprefix("marker:")) is not None
        )
    return fnmatch.fnmatch(nodeid, pattern)


def skip_reason(report: Any) -> str:
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
        from harness.load import load_matrix

        root = self.config.rootpath
        paths = sorted({Path(p) for g in globs(self.config) for p in glob.glob(str(root / g))})
        if not paths:
            pytest.exit(
                f"--nvfp4-profile {self.profile_id}: no matrix file matches {globs(self.config)} under {root}",
                4,
            )
        try:
            matrix = load_matrix(paths)
        except MatrixError as exc:
            pytest.exit(f"--nvfp4-profile {self.profile_id}: {exc.first}", 4)
        if self.profile_id not in matrix.profiles:
            from harness.load import unknown_name

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
            reason = skip_reason(report)
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
        reason = skip_reason(report)
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


