"""The precedence table: forcing rules in order, then automatic selection; errors, booleans."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.models.common import RuleId, SelectionVariable, Strict, VersionStr

__all__ = [
    "AutoRule",
    "BooleanSpellings",
    "ErrorTemplates",
    "ForcingRule",
    "Match",
    "Precedence",
]


# --- precedence ---------------------------------------------------------------------------------


Match = Literal["stripped", "exact"]


class ForcingRule(Strict):
    """A row of the precedence table: a variable (or engine option) that decides when set.

    ``value: boolean``: the variable is a boolean (the spellings of
    ``precedence.booleans``), true forces the ``forces`` list (the first
    supported one wins). ``value: int-flag``: the same, but the value is read
    as an integer, non-zero meaning true (``bool(int(value))``, the way vLLM
    reads its flags). ``value: backend-name``: the variable names the
    backend; ``names`` maps each accepted value to its backends (default: the
    value is a backend id), ``choices`` lists the accepted values (default:
    every backend id), ``auto_values`` are values that mean "no choice" (the
    next rules go on).

    ``value: unset``: the rule fires while the variable leaves the choice
    open (unset, or one of ``auto_values``); it does not interpret any other
    value (a later rule on the same variable does).

    ``mode: force``: the backends are forced; one that is not supported is an
    error, never a fallback. ``mode: restrict``: automatic selection over those
    backends only (in the automatic order; ``disabled_by`` applies; the
    automatic error when none fits), as vLLM's ``--linear-backend`` does.

    ``layers: weight-only``: the rule applies to weight-only (W4A16) layers
    only; for any other layer it is skipped, its variable unread.
    ``forces_by_capability``: per compute capability (``"10.0"``), the
    backends forced there instead of ``forces``; an empty list there means the
    rule does not fire on that capability. A device without a capability (a
    CPU) gets ``forces``.

    ``match: stripped``: blanks around a value are ignored and an empty value
    means unset; ``exact``: the value is compared as written (an empty value is
    a value, and not an accepted one).
    """

    rule: RuleId
    variable: SelectionVariable
    value: Literal["boolean", "int-flag", "backend-name", "unset"] = "boolean"
    forces: list[str] = Field(default_factory=list)
    forces_by_capability: dict[VersionStr, list[str]] | None = Field(
        None,
        description="per compute capability, the backends forced there instead of 'forces' "
        "(an empty list: the rule does not fire there)",
    )
    layers: Literal["any", "weight-only"] = Field(
        "any", description="weight-only: the rule applies to weight-only (W4A16) layers only"
    )
    mode: Literal["force", "restrict"] = "force"
    on_empty: Literal["error", "auto"] = Field(
        "error",
        description="restrict rules whose value names no candidate here: an error "
        "(errors.restrict_empty), or automatic selection over every candidate",
    )
    match: Match = "stripped"
    choices: list[str] | None = Field(
        None, description="backend-name rules: the accepted values (default: every backend id)"
    )
    names: dict[str, list[str]] | None = Field(
        None,
        description="backend-name rules: value -> the backends it selects "
        "(default: the value is a backend id)",
    )
    auto_values: list[str] = Field(
        default_factory=list,
        description="backend-name rules: values that leave the choice to the next rules",
    )
    summary: str | None = None
    source: str | None = Field(None, description="where the rule comes from (file:line, PR)")

    @model_validator(mode="after")
    def _forces_matches_value(self) -> ForcingRule:
        named = self.value == "backend-name"
        if not named and not self.forces:
            article = "an" if self.value[0] in "aeiou" else "a"
            raise ValueError(
                f"{article} {self.value} rule needs 'forces' (the backends it forces, best first)"
            )
        for key in ("choices", "names"):
            if not named and getattr(self, key) is not None:
                raise ValueError(f"'{key}' only makes sense with value: backend-name")
        if self.auto_values and self.value not in ("backend-name", "unset"):
            raise ValueError("'auto_values' only makes sense with value: backend-name or unset")
        if named and self.forces_by_capability is not None:
            raise ValueError(
                "a backend-name rule forces the backend its variable names: drop "
                "'forces_by_capability'"
            )
        if named and self.forces:
            raise ValueError(
                "a backend-name rule forces the backend its variable names: drop 'forces'"
            )
        if not named and self.mode == "restrict":
            raise ValueError("'mode: restrict' needs value: backend-name")
        if self.mode != "restrict" and self.on_empty != "error":
            raise ValueError("'on_empty' only makes sense with mode: restrict")
        return self


class AutoRule(Strict):
    """Automatic selection: the first supported backend in ``order``.

    ``devices`` gives each device type its own candidate list (a device type
    not listed has none); without it, ``order`` applies everywhere.
    ``unfit: drop``: the list is first cut to the backends whose
    ``implements`` accepts the layer, as code that keeps a separate list per
    layer kind does (vLLM 0.27+ keeps only its W4A16 kernels for a
    weight-only layer): the others are neither consulted nor named in the
    error, and a restrict rule that names only them finds nothing here.
    """

    rule: RuleId = "auto"
    disabled_by: SelectionVariable = Field(
        description="comma-separated kernel class names to skip (automatic selection only)"
    )
    disabled_match: Match = Field(
        "stripped", description="exact: names are compared as split, blanks included"
    )
    order: list[str] = Field(min_length=1, description="every backend, in the order tried")
    devices: dict[Literal["cuda", "cpu"], list[str]] | None = Field(
        None, description="per device type, the backends tried (a subset of order, same order)"
    )
    unfit: Literal["consult", "drop"] = Field(
        "consult",
        description="drop: a backend whose 'implements' refuses the layer is left out of the "
        "list before anything reads it (a restrict rule included), never consulted",
    )
    source: str | None = None

    def candidates(self, device_type: str) -> list[str]:
        """The backends automatic selection tries on ``device_type``, in order."""
        if self.devices is None:
            return list(self.order)
        return list(self.devices.get(device_type, []))  # type: ignore[call-overload]


class ErrorTemplates(Strict):
    """The start of each error message; ``{kernel}`` is the class name, ``{reason}`` the verdict."""

    forced_unsupported: str = "Forced NVFP4 kernel {kernel} is not supported: {reason}"
    forced_cannot_implement: str = (
        "Forced NVFP4 kernel {kernel} cannot implement this layer: {reason}"
    )
    auto_nothing: str = "Failed to find a kernel that can implement the NVFP4 linear layer"
    restrict_empty: str = (
        "{variable}={value} was requested but no '{value}' kernel exists for NVFP4 layers"
    )
    also_tried: str | None = Field(
        default=None,
        description="appended to a forced error when earlier forced backends failed too; "
        "{tried} is '<kernel>: <reason>' for each, joined by '; '",
    )
    invalid_env_type: str | None = Field(
        default=None, description="exception class of an invalid environment value (a ValueError)"
    )
    no_kernel_type: str | None = Field(
        default=None, description="exception class raised when no kernel can be selected (a ValueError)"
    )


class BooleanSpellings(Strict):
    """The values a ``boolean`` variable accepts (case-insensitive, blanks around ignored)."""

    true_values: list[str] = Field(default_factory=lambda: ["1", "true", "yes", "on"])
    false_values: list[str] = Field(default_factory=lambda: ["0", "false", "no", "off", ""])

    @model_validator(mode="after")
    def _disjoint(self) -> BooleanSpellings:
        both = sorted(set(self.true_values) & set(self.false_values))
        if both:
            raise ValueError(f"{', '.join(map(repr, both))} cannot be both true and false")
        if any(v != v.strip().lower() for v in self.true_values + self.false_values):
            raise ValueError("spellings are compared lowercased and stripped: write them so")
        return self


class Precedence(Strict):
    """The precedence table: forcing rules in order (first match wins), then auto.

    ``validation: upfront``: every variable is parsed before any rule runs (an
    invalid value is an error even under a higher rule). ``lazy``: a variable
    is parsed only when its rule is reached, as code that reads each variable
    inside its own ``if`` does.

    ``forced_pick`` says how a forcing rule's list is walked. ``usable``: the
    first forced backend that is supported and implements the layer wins; an
    error when none does. ``supported``: the first supported one is forced
    (the last one when none is), and only then checked: a layer it cannot
    implement is an error (``errors.forced_cannot_implement``), then an
    unsupported one (``errors.forced_unsupported``), as code that picks by
    ``is_supported()`` alone and checks the layer afterwards does.
    """

    forcing: list[ForcingRule]
    auto: AutoRule
    errors: ErrorTemplates = Field(default_factory=ErrorTemplates)
    booleans: BooleanSpellings = Field(default_factory=BooleanSpellings)
    validation: Literal["upfront", "lazy"] = "upfront"
    forced_pick: Literal["usable", "supported"] = "usable"
