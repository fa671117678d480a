"""The independent oracle: the expected selection, derived from the matrix alone.

Given a platform, an environment, a layer and optional mocked support
results, :meth:`Oracle.expect` says which backend the selection must return
(or which error it must raise), which precedence rule decides, and what each
candidate's verdict must be. It reads only the matrix's declared data: the
backends' support rules and ``implements`` blocks, the precedence table and
the error templates. It never calls :func:`kernels.linear.select.decide`,
any ``is_supported()`` or ``can_implement()``: a bug in those cannot leak into
the expectation it is checked against. (Only the accepted boolean spellings,
:data:`kernels.envs.BOOL_TRUE`/``BOOL_FALSE``, are shared with the code.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from harness.matrix import Matrix
from harness.models import BackendSpec, ForcingRule, LayerSpec, SupportRule, parse_version
from kernels.envs import BOOL_FALSE, BOOL_TRUE
from kernels.platform import Platform

__all__ = ["Expected", "Oracle", "rule_support"]

Verdict = tuple[bool, str | None]
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
        error_mentions_any: invalid-env: the message must name one of these variables.
        because: the derivation, one step per line (rule, then each candidate).
    """

    outcome: Literal["backend", "error", "invalid-env"]
    backend: str | None = None
    rule: str | None = None
    variable: str | None = None
    candidates: tuple[tuple[str, str], ...] = ()
    error_prefix: str | None = None
    error_contains: tuple[str, ...] = ()
    error_mentions_any: tuple[str, ...] = ()
    because: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.outcome == "backend":
            return f"backend {self.backend} by rule {self.rule}"
        if self.outcome == "invalid-env":
            return "InvalidEnvironmentError naming " + " or ".join(self.error_mentions_any)
        return f"error by rule {self.rule}: {self.error_prefix or ''}..."


# --- support rules --------------------------------------------------------------------------


def _version(v: tuple[int, int] | None) -> str:
    return "none" if v is None else f"{v[0]}.{v[1]}"


def _sm(cap: tuple[int, int] | None) -> str:
    return "cpu" if cap is None else f"sm_{cap[0]}{cap[1]}"


def _rule_verdict(rule: SupportRule, p: Platform) -> Verdict:
    """Does one declared rule hold on ``p``? Compares raw fields only."""
    cap = p.capability
    if rule.device != "any" and p.device_type != rule.device:
        return False, f"needs a {rule.device} device, platform is {p.device_type}"
    if rule.families is not None and (cap is None or cap[0] not in rule.families):
        want = " or ".join(f"sm_{f}x" for f in rule.families)
        return False, f"needs family {want}, platform is {_sm(cap)}"
    need_cap = parse_version(rule.min_capability)
    if need_cap is not None and (cap is None or cap < need_cap):
        return False, f"needs capability >= {rule.min_capability}, platform is {_sm(cap)}"
    need_cuda = parse_version(rule.min_cuda)
    if need_cuda is not None and (p.cuda_version is None or p.cuda_version < need_cuda):
        return False, f"needs CUDA >= {rule.min_cuda}, platform has {_version(p.cuda_version)}"
    for package in rule.packages:
        if package not in p.packages:
            return False, f"needs the {package} package, not installed"
    if rule.fp4_dtype is not None and p.has_fp4_dtype != rule.fp4_dtype:
        return (
            False,
            "needs torch.float4_e2m1fn_x2" if rule.fp4_dtype else "needs a torch without fp4",
        )
    if rule.triton_interpret is not None and p.triton_interpret != rule.triton_interpret:
        return False, f"needs TRITON_INTERPRET={'1' if rule.triton_interpret else 'unset'}"
    return True, None


def rule_support(spec: BackendSpec, platform: Platform) -> Verdict:
    """A backend's declared support on ``platform``: supported when any of its rules holds."""
    reasons = []
    for rule in spec.support:
        ok, reason = _rule_verdict(rule, platform)
        if ok:
            return True, None
        reasons.append((rule, reason))
    if len(reasons) == 1:
        return False, reasons[0][1]
    return False, "no rule holds: " + "; ".join(f"[{r.describe()}] {why}" for r, why in reasons)


def _implements(spec: BackendSpec, layer: LayerSpec) -> Verdict:
    imp = spec.implements
    if layer.in_features % imp.k_multiple:
        return False, f"needs in_features % {imp.k_multiple} == 0, layer has {layer.in_features}"
    if layer.weight_only and not imp.weight_only:
        return False, "needs a W4A4 layer, layer is W4A16"
    if layer.act_dtype not in imp.act_dtypes:
        return False, f"takes {', '.join(imp.act_dtypes)} activations, layer has {layer.act_dtype}"
    return True, None


# --- the environment, as the precedence table reads it --------------------------------------------


class _Invalid(Exception):
    pass


def _parse_bool(raw: str | None) -> bool:
    if raw is None:
        return False
    norm = raw.strip().lower()
    if norm in BOOL_TRUE:
        return True
    if norm in BOOL_FALSE:
        return False
    raise _Invalid


@dataclasses.dataclass(frozen=True)
class _Env:
    active: ForcingRule | None
    forced: tuple[str, ...]
    disabled: frozenset[str]


class Oracle:
    """Expected outcomes for one :class:`~harness.matrix.Matrix` (results are cached)."""

    def __init__(self, matrix: Matrix) -> None:
        if matrix.precedence is None:
            raise ValueError("the matrix defines no precedence table")
        self.matrix = matrix
        self.precedence = matrix.precedence
        self._support: dict[tuple[str, Platform], Verdict] = {}
        self._impl: dict[tuple[str, LayerSpec], Verdict] = {}

    # --- verdicts ----------------------------------------------------------------------
    def support(self, backend: str, platform: Platform) -> Verdict:
        key = (backend, platform)
        if key not in self._support:
            self._support[key] = rule_support(self.matrix.backends[backend], platform)
        return self._support[key]

    def implements(self, backend: str, layer: LayerSpec) -> Verdict:
        key = (backend, layer)
        if key not in self._impl:
            self._impl[key] = _implements(self.matrix.backends[backend], layer)
        return self._impl[key]

    # --- environment --------------------------------------------------------------------
    def invalid_variables(self, env: Mapping[str, str]) -> list[str]:
        """Variables whose value does not parse (a bad boolean, an unknown backend name)."""
        bad = []
        for rule in self.precedence.forcing:
            raw = env.get(rule.variable)
            if rule.value == "boolean":
                try:
                    _parse_bool(raw)
                except _Invalid:
                    bad.append(rule.variable)
            elif raw is not None and raw.strip() and raw.strip() not in self.matrix.backends:
                bad.append(rule.variable)
        return bad

    def _read(self, env: Mapping[str, str]) -> _Env:
        for rule in self.precedence.forcing:
            raw = env.get(rule.variable)
            if rule.value == "boolean":
                if _parse_bool(raw):
                    return _Env(rule, tuple(rule.forces), self._disabled(env))
            elif raw is not None and raw.strip():
                return _Env(rule, (raw.strip(),), self._disabled(env))
        return _Env(None, tuple(self.precedence.auto.order), self._disabled(env))

    def _disabled(self, env: Mapping[str, str]) -> frozenset[str]:
        raw = env.get(self.precedence.auto.disabled_by, "")
        return frozenset(part.strip() for part in raw.split(",") if part.strip())

    def consulted(self, env: Mapping[str, str]) -> tuple[str, ...] | None:
        """Backends whose support the deciding rule looks at (``None`` for an invalid env)."""
        if self.invalid_variables(env):
            return None
        parsed = self._read(env)
        if parsed.active is not None:
            return parsed.forced
        return tuple(
            n for n in parsed.forced if self.matrix.backends[n].kernel not in parsed.disabled
        )

    def deciding_rule(self, env: Mapping[str, str]) -> str | None:
        if self.invalid_variables(env):
            return None
        active = self._read(env).active
        return active.rule if active is not None else self.precedence.auto.rule

    # --- the expectation ------------------------------------------------------------------
    def expect(
        self,
        platform: Platform,
        env: Mapping[str, str],
        layer: LayerSpec,
        mocks: Mocks | None = None,
    ) -> Expected:
        mocks = mocks or {}
        m = self.matrix
        invalid = self.invalid_variables(env)
        if invalid:
            values = ", ".join(f"{v}={env[v]!r}" for v in invalid)
            return Expected(
                "invalid-env",
                error_mentions_any=tuple(invalid),
                because=(
                    f"{values} does not parse: every variable is validated before any rule runs",
                ),
            )
        parsed = self._read(env)
        because: list[str] = []
        statuses: list[tuple[str, str]] = []
        last: tuple[str, str, str | None, bool] | None = None  # name, status, reason, reason exact
        chosen: str | None = None

        if parsed.active is not None:
            rule = parsed.active
            loc = m.forcing_rule_location(rule.rule)
            because.append(
                f"{rule.variable}={env[rule.variable]!r} activates rule {rule.rule} ({loc}): "
                f"forces {', '.join(parsed.forced)}"
                + (" (first supported wins)" if len(parsed.forced) > 1 else "")
                + "; a forced backend that fails is an error, never a fallback"
            )
            if parsed.disabled:
                because.append(
                    f"{self.precedence.auto.disabled_by} is ignored: it applies to automatic selection only"
                )
        else:
            auto = self.precedence.auto
            because.append(
                f"no forcing variable set: rule {auto.rule} ({m.forcing_rule_location(auto.rule)}) "
                f"tries {', '.join(auto.order)} in order, skipping {auto.disabled_by}"
            )

        for name in parsed.forced:
            spec = m.backends[name]
            if chosen is not None:
                statuses.append((name, "not-reached"))
                continue
            if parsed.active is None and spec.kernel in parsed.disabled:
                statuses.append((name, "disabled"))
                because.append(
                    f"{name}: disabled ({spec.kernel} in {self.precedence.auto.disabled_by})"
                )
                last = (name, "disabled", None, False)
                continue
            reason: str | None
            if name in mocks:
                ok, reason = mocks[name]
                source = "mocked"
            else:
                ok, reason = self.support(name, platform)
                source = f"rule: {spec.describe_support()}"
            if not ok:
                statuses.append((name, "unsupported"))
                because.append(f"{name}: unsupported ({source}) - {reason}")
                last = (name, "unsupported", reason, name in mocks)
                continue
            ok, reason = self.implements(name, layer)
            if not ok:
                statuses.append((name, "cannot-implement"))
                because.append(f"{name}: cannot implement the layer - {reason}")
                last = (name, "cannot-implement", reason, False)
                continue
            chosen = name
            statuses.append((name, "selected"))
            because.append(f"{name}: supported ({source}) and implements the layer -> selected")

        rule_id = parsed.active.rule if parsed.active else self.precedence.auto.rule
        variable = parsed.active.variable if parsed.active else None
        if chosen is not None:
            return Expected(
                "backend", chosen, rule_id, variable, tuple(statuses), because=tuple(because)
            )

        templates = self.precedence.errors
        if parsed.active is not None and last is not None:
            name, status, reason, exact = last
            template = (
                templates.forced_unsupported
                if status == "unsupported"
                else templates.forced_cannot_implement
            )
            filled = template.replace("{kernel}", m.backends[name].kernel)
            head = filled.split("{reason}")[0]
            prefix = filled.replace("{reason}", reason or "") if exact else head
            because.append(f"every forced backend failed -> error: {head}...")
            return Expected(
                "error",
                None,
                rule_id,
                variable,
                tuple(statuses),
                error_prefix=prefix,
                because=tuple(because),
            )
        rejected = tuple(
            m.backends[n].kernel
            for n, s in statuses
            if s in ("unsupported", "cannot-implement", "disabled")
        )
        because.append("no backend left -> error: " + templates.auto_nothing)
        return Expected(
            "error",
            None,
            rule_id,
            variable,
            tuple(statuses),
            error_contains=(templates.auto_nothing,) + rejected,
            because=tuple(because),
        )
