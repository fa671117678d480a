"""Sweeps (blocks of cells) and golden cases (hand-written outcomes)."""

from __future__ import annotations

from pydantic import Field, model_validator

from harness.models.common import (
    CandidateStatus,
    Ident,
    PackageName,
    RuleId,
    SelectionVariable,
    Strict,
)

__all__ = ["GoldenCase", "GoldenExpect", "MockOutcome", "Sweep"]


# --- sweeps and golden cases ---------------------------------------------------------------------


class MockOutcome(Strict):
    """A forced ``is_supported()`` result for one backend."""

    supported: bool
    reason: str = "mocked unsupported"


class Sweep(Strict):
    """A block of cells: profiles x environments x layers (x mocked support outcomes).

    Environments are the cross product of ``cross`` (``null`` = unset;
    ``$BACKENDS`` expands to every backend name) plus every explicit entry of
    ``envs``. With ``mock_relevant``, every backend the deciding rule consults
    is additionally forced supported and unsupported, in every combination.
    """

    id: Ident
    description: str | None = None
    profiles: list[str] | None = Field(
        None, min_length=1, description="default (omitted): every profile"
    )
    layers: list[str] | None = Field(
        None, min_length=1, description="default (omitted): the default layer"
    )
    cross: dict[SelectionVariable, list[str | None]] = Field(default_factory=dict)
    packages: list[list[PackageName]] | None = Field(
        None,
        min_length=1,
        description="package sets replacing each profile's optional packages, one cell each "
        "(default: the profile's own)",
    )
    envs: list[dict[SelectionVariable, str]] = Field(default_factory=list)
    mock: dict[str, MockOutcome] = Field(
        default_factory=dict, description="fixed mocks for every cell"
    )
    mock_relevant: bool = False


class GoldenExpect(Strict):
    """The hand-written outcome of a golden case: a backend, or an error."""

    backend: str | None = None
    rule: RuleId | None = None
    error: str | None = Field(None, description="text the error message must contain")
    invalid_env: bool = Field(False, description="the error is an invalid environment value")
    candidates: dict[str, CandidateStatus] | None = Field(
        None, description="verdicts the decision record must show (a subset)"
    )
    messages: list[str] = Field(default_factory=list, description="text some note must contain")
    error_exact: bool = Field(
        False, description="the error message must equal 'error' in full (the message is the interface)"
    )
    messages_exact: bool = Field(
        False, description="the notes must equal 'messages' in full, in order"
    )
    warnings: list[str] | None = Field(
        None,
        description="the notes logged at WARNING, each containing one of these texts; every "
        "other note is logged at INFO (checked through init_nvfp4_linear_kernel's log)",
    )

    @model_validator(mode="after")
    def _backend_or_error(self) -> GoldenExpect:
        if (self.backend is None) == (self.error is None):
            raise ValueError("expect exactly one of 'backend' or 'error'")
        if self.invalid_env and self.error is None:
            raise ValueError("'invalid_env' needs 'error' (the text the message must contain)")
        if self.error_exact and self.error is None:
            raise ValueError("'error_exact' needs 'error' (the whole message)")
        return self


class GoldenCase(Strict):
    """One explicit case: profile + env (+ mocks, packages, layer) -> expected outcome."""

    id: Ident
    profile: str
    env: dict[SelectionVariable, str] = Field(default_factory=dict)
    layer: str | None = None
    packages: list[PackageName] | None = Field(None, description="replaces the profile's packages")
    mock: dict[str, MockOutcome] = Field(default_factory=dict)
    expect: GoldenExpect
    why: str | None = None
