"""How the precedence table reads one environment: which rule fires, what it forces, which
backends the deciding rule walks, from the matrix's declared data alone.

The oracle's first half (:mod:`harness.evaluate.oracle`), and what the loader
counts a sweep's real cells with (a ``mock_relevant`` sweep mocks exactly the
backends each environment consults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from harness.models import BackendSpec, ForcingRule, LayerSpec, Precedence
from harness.rules import InvalidValue, Verdict, implements_verdict, parse_flag, parse_list
from harness.rules.support import support_verdict
from kernels.platform import Platform

__all__ = ["Reader", "Reading"]


@dataclasses.dataclass(frozen=True)
class Reading:
    """How the precedence table reads one environment.

    ``invalid`` names the variables whose value does not parse (the outcome is
    then an invalid-environment error); otherwise ``active`` is the forcing
    rule that fires (``None``: automatic selection) and ``forced`` the backends
    it consults, in order.
    """

    invalid: tuple[str, ...]
    active: ForcingRule | None
    forced: tuple[str, ...]
    disabled: frozenset[str]


class Reader:
    """A precedence table as a reader of environments, with the backends' declared
    verdicts (cached)."""

    def __init__(self, precedence: Precedence, backends: Mapping[str, BackendSpec]) -> None:
        self.precedence = precedence
        self.backends = backends
        self._support: dict[tuple[str, Platform], Verdict] = {}
        self._impl: dict[tuple[str, LayerSpec], Verdict] = {}

    # --- verdicts ----------------------------------------------------------------------
    def support(self, backend: str, platform: Platform) -> Verdict:
        key = (backend, platform)
        if key not in self._support:
            self._support[key] = support_verdict(self.backends[backend], platform)
        return self._support[key]

    def implements(self, backend: str, layer: LayerSpec) -> Verdict:
        key = (backend, layer)
        if key not in self._impl:
            self._impl[key] = implements_verdict(self.backends[backend], layer)
        return self._impl[key]

    # --- environment --------------------------------------------------------------------
    @staticmethod
    def applies(rule: ForcingRule, layer: LayerSpec | None) -> bool:
        """Whether ``rule`` is part of the table for ``layer`` (``None``: a layer
        that is not weight-only)."""
        return rule.layers == "any" or (layer is not None and layer.weight_only)

    @staticmethod
    def _forced_list(rule: ForcingRule, platform: Platform | None) -> tuple[str, ...]:
        """The backends a firing ``rule`` forces on ``platform``; without a platform,
        every backend it can force anywhere (in the order first listed)."""
        table = rule.forces_by_capability
        if table is None:
            return tuple(rule.forces)
        if platform is None:
            every = [*rule.forces, *(name for names in table.values() for name in names)]
            return tuple(dict.fromkeys(every))
        if platform.capability is not None:
            key = f"{platform.capability[0]}.{platform.capability[1]}"
            if key in table:
                return tuple(table[key])
        return tuple(rule.forces)

    def _value(
        self, rule: ForcingRule, env: Mapping[str, str], platform: Platform | None = None
    ) -> tuple[str, ...] | None:
        """The backends ``rule`` selects under ``env`` (``None``: it does not fire).

        For a ``restrict`` rule the backends are unordered here (the platform's
        automatic order applies). Raises :class:`~harness.rules.InvalidValue`
        when the value does not parse.
        """
        raw = env.get(rule.variable)
        if rule.value == "unset":
            if raw is not None:
                value = raw.strip() if rule.match == "stripped" else raw
                open_ = (rule.match == "stripped" and not value) or value in rule.auto_values
                if not open_:
                    return None  # a value: another rule on the variable reads it
            return self._forced_list(rule, platform) or None
        if rule.value != "backend-name":
            spellings = self.precedence.booleans
            if parse_flag(raw, rule.value, spellings.true_values, spellings.false_values):
                return self._forced_list(rule, platform) or None
            return None
        if raw is None:
            return None
        value = raw.strip() if rule.match == "stripped" else raw
        if rule.match == "stripped" and not value:
            return None  # an empty value means unset
        if value in rule.auto_values:
            return None
        choices = rule.choices if rule.choices is not None else list(self.backends)
        if value not in choices:
            raise InvalidValue(raw)
        if rule.names is not None:
            return tuple(rule.names.get(value, ()))
        return (value,)

    def read(
        self,
        env: Mapping[str, str],
        layer: LayerSpec | None = None,
        platform: Platform | None = None,
    ) -> Reading:
        """Which rule fires under ``env``, after the table's validation policy.

        Rules for weight-only layers are skipped unless ``layer`` is one; a rule
        with ``forces_by_capability`` forces ``platform``'s list (without one,
        every backend it can force).
        """
        auto = self.precedence.auto
        disabled = parse_list(env.get(auto.disabled_by), auto.disabled_match)
        invalid: list[str] = []
        fired: tuple[ForcingRule, tuple[str, ...]] | None = None
        for rule in self.precedence.forcing:
            if not self.applies(rule, layer):
                continue
            try:
                forced = self._value(rule, env, platform)
            except InvalidValue:
                invalid.append(rule.variable)
                if self.precedence.validation == "lazy":
                    break  # the code stops at the first value it cannot read
                continue
            if forced is not None and fired is None:
                fired = (rule, forced)
                if self.precedence.validation == "lazy":
                    break  # later variables are never read
        if invalid:
            return Reading(tuple(invalid), None, (), disabled)
        if fired is not None:
            return Reading((), fired[0], fired[1], disabled)
        return Reading((), None, (), disabled)

    def _automatic(self, device_type: str | None, layer: LayerSpec | None) -> tuple[str, ...]:
        """The automatic list for ``device_type`` (``None``: every backend, in
        ``order``), cut to what ``layer`` fits under ``unfit: drop``."""
        auto = self.precedence.auto
        order = auto.order if device_type is None else auto.candidates(device_type)
        if auto.unfit == "drop" and layer is not None:
            return tuple(n for n in order if self.implements(n, layer)[0])
        return tuple(order)

    def candidates(
        self, reading: Reading, platform: Platform, layer: LayerSpec | None = None
    ) -> tuple[str, ...]:
        """The backends the deciding rule walks on ``platform``, in order."""
        if reading.active is not None and reading.active.mode == "force":
            return reading.forced
        order = self._automatic(platform.device_type, layer)
        if reading.active is None:
            return tuple(order)
        restricted = tuple(n for n in order if n in reading.forced)  # restrict: the auto order
        if not restricted and reading.active.on_empty == "auto":
            return tuple(order)  # nothing of that name here: normal automatic selection
        return restricted

    def skips_disabled(self, reading: Reading) -> bool:
        return reading.active is None or reading.active.mode == "restrict"

    def consulted(
        self,
        env: Mapping[str, str],
        platform: Platform | None = None,
        layer: LayerSpec | None = None,
    ) -> tuple[str, ...] | None:
        """Backends whose support the deciding rule looks at (``None`` for an invalid env).

        Without ``platform`` the automatic order is the matrix's ``order``
        (every device type's candidates, for mocks that cover them all), and a
        rule forcing per capability consults every backend it can force.
        Without ``layer`` the layer is taken to be W4A4: rules for weight-only
        layers are skipped and no backend is dropped as unfit.
        """
        reading = self.read(env, layer, platform)
        if reading.invalid:
            return None
        if platform is not None:
            walked = self.candidates(reading, platform, layer)
        elif reading.active is not None and reading.active.mode == "force":
            walked = reading.forced
        else:
            order = self._automatic(None, layer)
            walked = tuple(n for n in order if reading.active is None or n in reading.forced)
        if not self.skips_disabled(reading):
            return tuple(walked)
        return tuple(n for n in walked if self.backends[n].kernel not in reading.disabled)
