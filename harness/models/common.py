"""What every part of the matrix format shares: constants, the spelling of ids and versions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "BACKENDS_TOKEN",
    "CASES_GROUP",
    "DISTRIBUTION_NAME_PATTERN",
    "MAX_FAMILY",
    "MAX_FEATURES",
    "MAX_K_MULTIPLE",
    "MAX_MEMORY_GIB",
    "MAX_SHARDS",
    "PACKAGE_PATTERN",
    "SCHEMA_VERSION",
    "SELECTION_INPUT_PATTERN",
    "VERSION_PATTERN",
    "ActDtype",
    "CandidateStatus",
    "DistributionName",
    "Ident",
    "KernelClassName",
    "PackageName",
    "RuleId",
    "SelectionVariable",
    "Strict",
    "VersionStr",
    "parse_version",
]

SCHEMA_VERSION = 1
#: In a sweep's ``cross`` list, expands to every declared backend name.
BACKENDS_TOKEN = "$BACKENDS"
#: The group of the golden cases (so no sweep may take this id).
CASES_GROUP = "cases"

# Every count and size in the format has an upper bound: a typo (or a pull request) cannot
# turn into a pipeline with 10**400 parallel jobs or a number that no code can convert.
#: Buildkite parallelism of one profile's real-hardware suite.
MAX_SHARDS = 256
#: A layer's in_features (K) and out_features (N).
MAX_FEATURES = 1 << 20
#: A backend's in_features multiple.
MAX_K_MULTIPLE = 4096
#: A capability major (``families``).
MAX_FAMILY = 99
#: A profile's device memory, in GiB.
MAX_MEMORY_GIB = 1 << 20

#: ``"major.minor"``, each part at most four digits (a bound of the format, like every count).
VERSION_PATTERN = r"^[0-9]{1,4}\.[0-9]{1,4}$"
VersionStr = Annotated[
    str,
    StringConstraints(pattern=VERSION_PATTERN),
    Field(description='"major.minor", quoted (YAML reads 10.10 as the float 10.1)'),
]
Ident = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$"),
    Field(description="lowercase id: letters, digits, '.', '_' and '-'"),
]
#: A distribution's name (PEP 508): what pip lists, e.g. ``pytorch-triton``.
DISTRIBUTION_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
DistributionName = Annotated[
    str,
    StringConstraints(pattern=DISTRIBUTION_NAME_PATTERN),
    Field(description="an installed distribution's name, as pip lists it"),
]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
KernelClassName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: How a selection input is spelled: an environment variable (``VLLM_BATCH_INVARIANT``) or an
#: engine option with its dashes (``--linear-backend``). Which ones exist is the target's
#: vocabulary (:class:`harness.targets.protocol.Vocabulary`), checked when a matrix is bound
#: to its target.
SELECTION_INPUT_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*|--[a-z][a-z0-9-]*)$"
SelectionVariable = Annotated[
    str,
    StringConstraints(pattern=SELECTION_INPUT_PATTERN),
    Field(description="an environment variable, or an engine option written --like-this"),
]
#: How an optional package is spelled (its import name); which ones exist is the target's.
PACKAGE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PackageName = Annotated[
    str,
    StringConstraints(pattern=PACKAGE_PATTERN),
    Field(description="an optional package's import name (flashinfer, fbgemm_gpu, ...)"),
]
ActDtype = Literal["bfloat16", "float16", "float32"]
CandidateStatus = Literal["selected", "unsupported", "cannot-implement", "disabled", "not-reached"]


def parse_version(text: str | None) -> tuple[int, int] | None:
    """``"12.8"`` -> ``(12, 8)``; ``None`` stays ``None``."""
    if text is None:
        return None
    major, minor = text.split(".")
    return int(major), int(minor)


class Strict(BaseModel):
    """Every model of the format: unknown keys refused, types strict, values frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
