"""``--nvfp4-reports DIR``: ``DIR/summary.md`` of the pytest session, for a Buildkite annotation."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from harness.plugin.skips import EXPECTED_SKIPS_PLUGIN, skip_reason

__all__ = ["SessionSummary"]


class SessionSummary:
    """Writes ``summary.md``: verdict, failures first, then the expected-skip check and the skips."""

    def __init__(self, config: pytest.Config, folder: Path, profile: str | None) -> None:
        from harness.errors import OutputError
        from harness.output.folder import hold_folder

        self.config = config
        self.folder = folder
        self.profile = profile
        # The folder is this session's until pytest ends (two sessions never mix reports).
        self._held = contextlib.ExitStack()
        try:
            self._held.enter_context(hold_folder(folder, option="--nvfp4-reports"))
        except OutputError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.junit_partial = folder / f".junit.xml.{os.getpid()}.partial"
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
            self.skips.append((report.nodeid, skip_reason(report)[:300]))
        elif report.when == "call":
            key = "xpassed" if hasattr(report, "wasxfail") else "passed"
        else:
            return
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    @pytest.hookimpl(trylast=True)  # after the expected-skip check has set the exit status
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from harness.output.atomic import write_atomic
        from harness.output.markdown import markdown_table

        status = int(session.exitstatus)
        if status == pytest.ExitCode.INTERRUPTED:
            return  # an interrupted session replaces no report: the previous ones are kept
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
        write_atomic(self.folder / "summary.md", "\n".join(out), create_folder=True)
        if self.junit_partial.is_file():  # written by pytest's junitxml plugin, before this hook
            os.replace(self.junit_partial, self.folder / "junit.xml")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        with contextlib.suppress(OSError):
            self.junit_partial.unlink()  # an interrupted session's partial report
        self._held.close()
