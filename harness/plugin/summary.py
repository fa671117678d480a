"""``--nvfp4-reports DIR``: ``DIR/summary.md`` of the pytest session, for a Buildkite annotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugin.skips import EXPECTED_SKIPS_PLUGIN, skip_reason

__all__ = ["SessionSummary"]


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
            self.skips.append((report.nodeid, skip_reason(report)[:300]))
        elif report.when == "call":
            key = "xpassed" if hasattr(report, "wasxfail") else "passed"
        else:
            return
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    @pytest.hookimpl(trylast=True)  # after the expected-skip check has set the exit status
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from harness.output.markdown import markdown_table

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
