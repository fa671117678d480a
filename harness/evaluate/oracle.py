"""The independent oracle: the expected selection, derived from the matrix alone.

Given a platform, an environment, a layer and optional mocked support
results, :meth:`Oracle.expect` says which backend the selection must return
(or which error it must raise), which precedence rule decides, and what each
candidate's verdict must be. It reads only the matrix's declared data, through
:mod:`harness.rules`: the backends' support rules and ``implements`` blocks,
the precedence table, the accepted spellings and the error templates. It never
calls the code under test (no ``decide``, ``is_supported()`` or
``can_implement()``, no constant of ``kernels``): a bug there cannot leak into
the expectation it is checked against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from harness.errors import MatrixError
from harness.load import Matrix
from harness.load.checks import no_precedence
from harness.load.text import short_repr as quoted
from harness.models import LayerSpec
from harness.rules.precedence import Reader, Reading
from kernels.platform import Platform, sm_label

__all__ = ["ErrorKind", "Expected", "Oracle"]

ErrorKind = Literal["forced-unsupported", "forced-cannot-implement", "restrict-empty", "nothing"]

#: backend -> (supported, reason): forced ``is_supported()`` results
Mocks = Mapping[str, tuple[bool, str]]


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the selection must do for one cell.

    Attributes:
        outcome: ``backend`` (a backend is chosen), ``error`` (the decision
            carries an error) or ``invalid-env`` (``InvalidEnvironmentError``).
        backend: the backend that must be chosen.
        rule: the precedence rule that must decide (``None`` for invalid-env).
        variable: the variable behind that rule.
        candidates: ``(backend, status)`` in the order the rule consults them.
        error_prefix: the error message must start with this.
        error_contains: ... and contain each of these.
        error_exact: the whole error message, when every part of it is known
            (mocked reasons): the message must equal it.
        error_mentions_any: invalid-env: the message must name one of these variables.
        error_kind: which error it is: ``forced-unsupported``,
            ``forced-cannot-implement``, ``restrict-empty`` or ``nothing`` (automatic
            selection found no backend).
        because: the derivation, one step per line (rule, then each candidate).
        variables: the variables the deciding rule had to consult, in precedence
            order, with their raw values (``None`` = unset): every forcing
            variable up to the one that fired, and the disabled-kernels list
            too when automatic selection decides.
    """

    outcome: Literal["backend", "error", "invalid-env"]
    backend: str | None = None
    rule: str | None = None
    variable: str | None = None
    candidates: tuple[tuple[str, str], ...] = ()
    error_prefix: str | None = None
    error_contains: tuple[str, ...] = ()
    error_exact: str | None = None
    error_mentions_any: tuple[str, ...] = ()
    error_kind: ErrorKind | None = None
    because: tuple[str, ...] = ()
    variables: tuple[tuple[str, str | None], ...] | None = None

    def summary(self) -> str:
        if self.outcome == "backend":
            return f"backend {self.backend} by rule {self.rule}"
        if self.outcome == "invalid-env":
            return "InvalidEnvironmentError naming " + " or ".join(self.error_mentions_any)
        return f"error by rule {self.rule}: {self.error_prefix or ''}..."


@dataclasses.dataclass
class _Walk:
    """The candidates' verdicts, in the order the deciding rule consults them."""

    statuses: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    because: list[str] = dataclasses.field(default_factory=list)
    chosen: str | None = None
    #: the last rejected candidate: name, status, reason, and whether the reason is exact
    last: tuple[str, str, str | None, bool] | None = None
    #: every rejected candidate, in order: name, reason, whether the reason is exact
    rejected: list[tuple[str, str | None, bool]] = dataclasses.field(default_factory=list)

    def reject(
        self, name: str, status: str, reason: str | None, exact: bool, note: str, last: bool = True
    ) -> None:
        """Record a rejected candidate (``last``: it is also the latest rejection)."""
        self.statuses.append((name, status))
        self.because.append(note)
        self.rejected.append((name, reason, exact))
        if last:
            self.last = (name, status, reason, exact)


class Oracle:
    """Expected outcomes for one :class:`~harness.load.Matrix` (verdicts are cached)."""

    def __init__(self, matrix: Matrix) -> None:
        if matrix.precedence is None:
            raise MatrixError(no_precedence(matrix))
        self.reader = Reader(matrix.precedence, matrix.backends)
        self.matrix = matrix
        self.precedence = self.reader.precedence
        self.support = self.reader.support
        self.implements = self.reader.implements
        self.read = self.reader.read
        self.consulted = self.reader.consulted

    # --- the expectation ------------------------------------------------------------------
    def expect(
        self,
        platform: Platform,
        env: Mapping[str, str],
        layer: LayerSpec,
        mocks: Mocks | None = None,
    ) -> Expected:
        reading = self.read(env, layer, platform)
        if reading.invalid:
            values = ", ".join(f"{v}={quoted(env[v])}" for v in reading.invalid)
            when = (
                "every variable is validated before any rule runs"
                if self.precedence.validation == "upfront"
                else "its rule is reached and reads it"
            )
            return Expected(
                "invalid-env",
                error_mentions_any=reading.invalid,
                because=(f"{values} does not parse: {when}",),
            )
        variables = []
        for rule in self.precedence.forcing:
            if not self.reader.applies(rule, layer):
                continue
            variables.append((rule.variable, env.get(rule.variable)))
            if rule is reading.active:
                break
        if self.reader.skips_disabled(reading):
            auto = self.precedence.auto
            variables.append((auto.disabled_by, env.get(auto.disabled_by)))
        candidates = self.reader.candidates(reading, platform, layer)
        walk = _Walk(because=[self._rule_step(reading, env, candidates, platform)])
        active = reading.active
        if active is not None and active.mode == "restrict" and not candidates:
            if active.on_empty == "error":
                return dataclasses.replace(
                    self._restrict_empty(reading, env, walk), variables=tuple(variables)
                )
        if (
            active is not None
            and active.mode == "force"
            and self.precedence.forced_pick == "supported"
        ):
            self._pick_supported(candidates, platform, layer, mocks or {}, walk)
        else:
            for name in candidates:
                self._consult(name, reading, platform, layer, mocks or {}, walk)
        rule_id = reading.active.rule if reading.active else self.precedence.auto.rule
        variable = reading.active.variable if reading.active else None
        if walk.chosen is not None:
            return Expected(
                "backend",
                walk.chosen,
                rule_id,
                variable,
                tuple(walk.statuses),
                because=tuple(walk.because),
                variables=tuple(variables),
            )
        return dataclasses.replace(
            self._error(reading, walk, rule_id, variable), variables=tuple(variables)
        )

    def _rule_step(
        self,
        reading: Reading,
        env: Mapping[str, str],
        candidates: tuple[str, ...],
        platform: Platform,
    ) -> str:
        auto = self.precedence.auto
        tried = ", ".join(candidates) or "nothing"
        if reading.active is None:
            where = "" if auto.devices is None else f" (the {platform.device_type} list)"
            return (
                f"no forcing variable set: rule {auto.rule} "
                f"({self.matrix.forcing_rule_location(auto.rule)}) tries {tried}{where} in "
                f"order, skipping {auto.disabled_by}"
            )
        rule = reading.active
        location = self.matrix.forcing_rule_location(rule.rule)
        if rule.value == "unset":
            raw = env.get(rule.variable)
            setting = (
                f"{rule.variable} {'unset' if raw is None else f'= {quoted(raw)}'} (the choice left "
                f"open){' for a weight-only layer' if rule.layers == 'weight-only' else ''}"
                f" activates rule {rule.rule} ({location})"
            )
        else:
            setting = (
                f"{rule.variable}={quoted(env[rule.variable])}"
                f"{' for a weight-only layer' if rule.layers == 'weight-only' else ''}"
                f" activates rule {rule.rule} ({location})"
            )
        if rule.forces_by_capability is not None:
            setting += f" (its list for {sm_label(platform.capability)})"
        if rule.mode == "restrict":
            if not set(candidates) & set(reading.forced):
                return (
                    f"{setting}: names no candidate here, so automatic selection tries "
                    f"{tried}, skipping {auto.disabled_by}"
                )
            return (
                f"{setting}: automatic selection restricted to {tried}, skipping "
                f"{auto.disabled_by}"
            )
        by_support = self.precedence.forced_pick == "supported"
        step = (
            f"{setting}: forces {tried}"
            + (
                (" (the first supported, else the last)" if by_support else
                 " (first supported wins)")
                if len(candidates) > 1 else ""
            )
            + (
                "; the forced backend must implement the layer, then be supported"
                if by_support else ""
            )
            + "; a forced backend that fails is an error, never a fallback"
        )
        if reading.disabled:
            step += f"; {auto.disabled_by} is ignored: it applies to automatic selection only"
        return step

    def _restrict_empty(self, reading: Reading, env: Mapping[str, str], walk: _Walk) -> Expected:
        rule = reading.active
        assert rule is not None
        message = self.precedence.errors.restrict_empty.replace(
            "{variable}", rule.variable
        ).replace("{value}", env[rule.variable])
        walk.because.append(f"no backend of that name here -> error: {message}")
        return Expected(
            "error", None, rule.rule, rule.variable, (), error_prefix=message,
            error_kind="restrict-empty", because=tuple(walk.because),
        )

    def _consult(
        self,
        name: str,
        reading: Reading,
        platform: Platform,
        layer: LayerSpec,
        mocks: Mocks,
        walk: _Walk,
    ) -> None:
        """One candidate's verdict, appended to ``walk``."""
        spec = self.matrix.backends[name]
        if walk.chosen is not None:
            walk.statuses.append((name, "not-reached"))
            return
        if self.reader.skips_disabled(reading) and spec.kernel in reading.disabled:
            walk.statuses.append((name, "disabled"))
            walk.because.append(
                f"{name}: disabled ({spec.kernel} in {self.precedence.auto.disabled_by})"
            )
            walk.last = (name, "disabled", None, False)
            return
        ok, reason, source = self._support_of(name, platform, mocks)
        if not ok:
            walk.reject(
                name, "unsupported", reason, name in mocks,
                f"{name}: unsupported ({source}) - {reason}",
            )
            return
        ok, reason = self.implements(name, layer)
        if not ok:
            walk.reject(
                name, "cannot-implement", reason, False,
                f"{name}: cannot implement the layer - {reason}",
            )
            return
        walk.chosen = name
        walk.statuses.append((name, "selected"))
        walk.because.append(f"{name}: supported ({source}) and implements the layer -> selected")

    def _support_of(
        self, name: str, platform: Platform, mocks: Mocks
    ) -> tuple[bool, str | None, str]:
        """``(supported, reason, where the verdict comes from)`` for one backend."""
        if name in mocks:
            mocked, why = mocks[name]
            return mocked, why, "mocked"
        ok, reason = self.support(name, platform)
        return ok, reason, f"rule: {self.matrix.backends[name].describe_support()}"

    def _pick_supported(
        self,
        candidates: tuple[str, ...],
        platform: Platform,
        layer: LayerSpec,
        mocks: Mocks,
        walk: _Walk,
    ) -> None:
        """``forced_pick: supported``: the first supported candidate is forced (the
        last when none is), then checked against the layer, then its support."""
        verdicts = [self._support_of(name, platform, mocks) for name in candidates]
        pick = next((i for i, v in enumerate(verdicts) if v[0]), len(candidates) - 1)
        for index, name in enumerate(candidates):
            ok, reason, source = verdicts[index]
            exact = name in mocks
            if index > pick:
                walk.statuses.append((name, "not-reached"))
            elif index < pick:
                walk.reject(
                    name, "unsupported", reason, exact,
                    f"{name}: unsupported ({source}) - {reason}", last=False,
                )
            else:
                fits, why = self.implements(name, layer)
                if not fits:
                    walk.reject(
                        name, "cannot-implement", why, False,
                        f"{name}: forced, cannot implement the layer - {why}",
                    )
                elif not ok:
                    walk.reject(
                        name, "unsupported", reason, exact,
                        f"{name}: forced, unsupported ({source}) - {reason}",
                    )
                else:
                    walk.chosen = name
                    walk.statuses.append((name, "selected"))
                    walk.because.append(
                        f"{name}: supported ({source}) and implements the layer -> selected"
                    )

    def _error(
        self, reading: Reading, walk: _Walk, rule_id: str, variable: str | None
    ) -> Expected:
        """Nothing was chosen: the error the templates say the selection raises."""
        templates = self.precedence.errors
        forced = reading.active is not None and reading.active.mode == "force"
        if forced and walk.last is not None:
            name, status, reason, exact = walk.last
            template = (
                templates.forced_unsupported
                if status == "unsupported"
                else templates.forced_cannot_implement
            )
            filled = template.replace("{kernel}", self.matrix.backends[name].kernel)
            head = filled.split("{reason}")[0]
            prefix = filled.replace("{reason}", reason or "") if exact else head
            contains: tuple[str, ...] = ()
            whole: str | None = prefix if exact else None
            earlier = walk.rejected[:-1]
            if earlier and templates.also_tried is not None:
                tried = [
                    f"{self.matrix.backends[n].kernel}: {r}" if known else
                    f"{self.matrix.backends[n].kernel}: "
                    for n, r, known in earlier
                ]
                if exact and all(known for _, _, known in earlier):
                    whole = prefix + templates.also_tried.replace("{tried}", "; ".join(tried))
                else:
                    whole = None
                    opening = templates.also_tried.split("{tried}")[0]
                    contains = (opening,) + tuple(tried)
            elif templates.also_tried is not None and whole is not None:
                whole = prefix
            walk.because.append(f"every forced backend failed -> error: {head}...")
            return Expected(
                "error",
                None,
                rule_id,
                variable,
                tuple(walk.statuses),
                error_prefix=prefix,
                error_contains=contains,
                error_exact=whole if templates.also_tried is not None else None,
                error_kind="forced-unsupported" if status == "unsupported"
                else "forced-cannot-implement",
                because=tuple(walk.because),
            )
        rejected = tuple(
            self.matrix.backends[n].kernel
            for n, s in walk.statuses
            if s in ("unsupported", "cannot-implement", "disabled")
        )
        walk.because.append("no backend left -> error: " + templates.auto_nothing)
        return Expected(
            "error",
            None,
            rule_id,
            variable,
            tuple(walk.statuses),
            error_contains=(templates.auto_nothing,) + rejected,
            error_kind="nothing",
            because=tuple(walk.because),
        )
