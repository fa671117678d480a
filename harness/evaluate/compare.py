"""Comparing what the code did with what the oracle (and a golden case) says it must do."""

from __future__ import annotations

import dataclasses
import logging

from harness.evaluate.cells import Cell
from harness.evaluate.oracle import Expected
from harness.load import Matrix
from harness.models import GoldenExpect, KnownFailure
from harness.targets.protocol import Outcome, first_line

__all__ = ["DECOY", "CellResult", "compare", "golden_problems"]

#: The start of every decoy value the session leaves in ``os.environ``
#: (:func:`harness.evaluate.session.decoy_environment`).
DECOY = "harness-decoy"


@dataclasses.dataclass(frozen=True)
class CellResult:
    cell: Cell
    expected: Expected
    actual: Outcome
    problems: tuple[str, ...]
    platform: str = ""
    #: the matrix rules behind the expectation: the precedence rule, then the
    #: support rule of every candidate whose verdict differs (failures only)
    rules: tuple[str, ...] = ()
    #: the known failure (``known_failures:`` in the matrix) this cell matches
    known: KnownFailure | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rule(self) -> str:
        """The precedence rule the oracle says decides this cell."""
        if self.expected.outcome == "invalid-env":
            return "environment validation"
        return str(self.expected.rule)

    def report(self) -> str:
        """The failure text: the cell, expected vs actual, the rule, the decision record."""
        c = self.cell
        lines = [
            f"MISMATCH {c.id}  [{c.group}, {c.location}]",
            f"  profile  : {c.profile} - {self.platform}",
            f"  env      : {c.env_text()}",
            f"  layer    : {c.layer}",
        ]
        if c.packages is not None:
            lines.append(
                f"  packages : {', '.join(c.packages) or 'none'} (replacing the profile's)"
            )
        if c.mocks:
            lines.append(
                "  mocked   : "
                + ", ".join(f"{n} {'supported' if ok else 'unsupported'}" for n, ok, _ in c.mocks)
            )
        golden = c.golden
        if golden is not None:
            lines.append(f"  golden   : {_golden_summary(golden)}")
        lines.append(f"  expected : {self.expected.summary()}")
        lines.append(
            f"  actual   : {self.actual.summary()}"
            + (f" (via {self.actual.entry})" if self.actual.entry else "")
        )
        if not self.actual.has_record and self.actual.kind in ("backend", "error"):
            lines.append(
                "  compared : outcome only (the target exposes no rule or candidate verdicts)"
            )
        rules = list(self.rules) or [self.rule]
        lines.append(f"  rule     : {rules[0]}")
        lines += [f"             {r}" for r in rules[1:]]
        lines.append("  problems :")
        lines += [f"    - {p}" for p in self.problems]
        lines.append("  oracle (from the matrix rules alone):")
        lines += [f"    {b}" for b in self.expected.because]
        if self.actual.record is not None:
            lines.append("  decision record:")
            lines += [f"    {line}" for line in self.actual.record_lines()]
        else:
            if self.actual.error:
                lines.append(
                    "  raised   : " + self.actual.error.replace("\n", "\n             ")
                )
            lines += [f"  log      : {m}" for m in self.actual.messages]
        if self.known is not None:
            lines.append(f"  known    : {self.known.reason} [{self.known.upstream}]")
        return "\n".join(lines)


def _golden_summary(g: GoldenExpect) -> str:
    if g.backend is not None:
        return f"backend {g.backend}" + (f" by rule {g.rule}" if g.rule else "")
    kind = "InvalidEnvironmentError" if g.invalid_env else "error"
    return f"{kind} containing {g.error!r}" + (f" by rule {g.rule}" if g.rule else "")




def compare(expected: Expected, actual: Outcome, matrix: Matrix) -> list[str]:
    """Every way ``actual`` differs from the oracle's ``expected`` (empty: agree).

    Where the target exposes no decision record (``actual.candidates`` is
    ``None``), the rule and the candidates are not compared: outcomes only.
    """
    problems: list[str] = []
    if DECOY in (actual.error or "") or any(DECOY in m for m in actual.messages):
        problems.append(
            "the selection read os.environ, which holds decoy values while cells run: it "
            "must read only the environment mapping it is handed"
        )
    if actual.kind == "crash":
        return problems + [f"the selection raised {actual.error} (expected {expected.summary()})"]
    if expected.outcome != actual.kind or expected.backend != actual.backend:
        problems.append(f"outcome: expected {expected.summary()}, got {actual.summary()}")
    templates = matrix.precedence.errors if matrix.precedence is not None else None
    if expected.outcome == "invalid-env":
        wanted = templates.invalid_env_type if templates is not None else None
        if actual.kind == "invalid-env" and wanted and actual.error_type not in (None, wanted):
            problems.append(f"exception: expected {wanted}, got {actual.error_type}")
        if actual.kind == "invalid-env" and not any(
            v in (actual.error or "") for v in expected.error_mentions_any
        ):
            problems.append(
                f"the error must name {' or '.join(expected.error_mentions_any)}: {actual.error!r}"
            )
        return problems
    if actual.kind == "invalid-env":
        return problems
    if actual.has_record and expected.rule != actual.rule:
        where = matrix.forcing_rule_location(expected.rule or "")
        problems.append(f"rule: expected {expected.rule} ({where}), got {actual.rule}")
    if expected.outcome == "error" and actual.kind == "error":
        text = actual.error or ""
        if expected.error_prefix and not text.startswith(expected.error_prefix):
            problems.append(
                f"error text: expected it to start with {expected.error_prefix!r}, got {first_line(text)!r}"
            )
        if expected.error_exact is not None and text != expected.error_exact:
            problems.append(
                f"error text: expected exactly {expected.error_exact!r}, got {text!r}"
            )
        wanted = templates.no_kernel_type if templates is not None else None
        if wanted and actual.error_type not in (None, wanted):
            problems.append(f"exception: expected {wanted}, got {actual.error_type}")
        missing = [s for s in expected.error_contains if s not in text]
        if missing:
            problems.append(
                f"error text: missing {', '.join(repr(s) for s in missing)} in {text!r}"
            )
    consulted = actual.record.consulted if actual.record is not None else None
    if expected.variables is not None and consulted is not None:
        if tuple(consulted) != expected.variables:
            problems.append(
                f"variables consulted: expected {list(expected.variables)}, got {list(consulted)}"
            )
    if actual.candidates is not None and expected.candidates != actual.candidates:
        problems.append("candidates: " + _candidate_diff(expected.candidates, actual.candidates))
    return problems


def _candidate_diff(
    expected: tuple[tuple[str, str], ...], actual: tuple[tuple[str, str], ...]
) -> str:
    exp, act = dict(expected), dict(actual)
    diffs = []
    for name in list(exp) + [n for n in act if n not in exp]:
        e, a = exp.get(name, "(absent)"), act.get(name, "(absent)")
        if e != a:
            diffs.append(f"{name} expected {e}, got {a}")
    if not diffs:
        return f"order: expected {[n for n, _ in expected]}, got {[n for n, _ in actual]}"
    return "; ".join(diffs)


def golden_problems(
    golden: GoldenExpect, expected: Expected, actual: Outcome, *, oracle_side: bool
) -> list[str]:
    """A golden case checks the code (``actual``) and, once, the oracle (``expected``)."""
    problems: list[str] = []
    if oracle_side:
        # The oracle must reproduce the hand-written answer, or the matrix rules are wrong.
        if golden.backend is not None and (
            expected.outcome != "backend" or expected.backend != golden.backend
        ):
            problems.append(
                f"the matrix rules (oracle) predict {expected.summary()}, but the golden case says backend {golden.backend}: fix the rules or the case"
            )
        if golden.error is not None and expected.outcome == "backend":
            problems.append(
                f"the matrix rules (oracle) predict {expected.summary()}, but the golden case expects an error: fix the rules or the case"
            )
        if golden.invalid_env and expected.outcome != "invalid-env":
            problems.append(
                "the matrix rules (oracle) accept this environment, but the golden case expects it to be invalid"
            )
        if golden.rule is not None and expected.rule != golden.rule:
            problems.append(
                f"the matrix rules (oracle) decide by rule {expected.rule}, the golden case says {golden.rule}"
            )
    if actual.kind == "crash":
        return problems + [f"golden: the selection raised {actual.error}"]
    if golden.backend is not None and actual.backend != golden.backend:
        problems.append(f"golden: expected backend {golden.backend}, got {actual.summary()}")
    if golden.error is not None:
        if golden.invalid_env and actual.kind != "invalid-env":
            problems.append(
                f"golden: expected InvalidEnvironmentError containing {golden.error!r}, got {actual.summary()}"
            )
        elif not golden.invalid_env and actual.kind != "error":
            problems.append(
                f"golden: expected an error containing {golden.error!r}, got {actual.summary()}"
            )
        elif golden.error_exact and golden.error != (actual.error or ""):
            problems.append(
                f"golden: the error must be exactly {golden.error!r}, got {actual.error!r}"
            )
        elif golden.error not in (actual.error or ""):
            problems.append(
                f"golden: the error must contain {golden.error!r}, got {actual.error!r}"
            )
    if (
        golden.rule is not None
        and actual.has_record
        and actual.kind in ("backend", "error")
        and actual.rule != golden.rule
    ):
        problems.append(f"golden: expected rule {golden.rule}, got {actual.rule}")
    if golden.candidates and actual.candidates is not None:
        got = dict(actual.candidates)
        for name, status in golden.candidates.items():
            if got.get(name) != status:
                problems.append(
                    f"golden: candidate {name} expected {status}, got {got.get(name, '(absent)')}"
                )
    if golden.messages_exact and list(actual.messages) != list(golden.messages):
        problems.append(
            f"golden: the notes must be exactly {list(golden.messages)}, got {list(actual.messages)}"
        )
    elif golden.messages:
        notes = list(actual.messages)
        for text in golden.messages:
            if not any(text in note for note in notes):
                problems.append(f"golden: no note contains {text!r} (notes: {notes})")
    if golden.warnings is not None and actual.logged is not None:
        problems += _level_problems(golden.warnings, actual.logged)
    return problems


def _level_problems(warnings: list[str], logged: tuple[tuple[int, str], ...]) -> list[str]:
    """Notes containing one of ``warnings`` must be logged at WARNING, the others at INFO."""
    problems = []
    for level, text in logged:
        want = logging.WARNING if any(w in text for w in warnings) else logging.INFO
        if level != want:
            problems.append(
                f"golden: logged at {logging.getLevelName(level)}, expected "
                f"{logging.getLevelName(want)}: {text!r}"
            )
    for w in warnings:
        if not any(w in text for level, text in logged if level == logging.WARNING):
            problems.append(f"golden: no warning logged contains {w!r}")
    return problems
