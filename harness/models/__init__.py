"""The matrix format: pydantic models for one matrix YAML file, one module per part.

Every model forbids unknown keys and is strict about types (a capability
written as the YAML float ``9.0`` or a boolean written as ``yes`` where a
string is expected is refused, not coerced). Cross-file rules (a sweep naming
an unknown profile, a duplicate case id, ...) are checked after the files are
merged (:mod:`harness.load.checks`). Every stage reads these models.

The JSON schema shipped as ``matrix/schema.json`` is generated from
:class:`MatrixFile` (``nvfp4-matrix schema --write matrix/schema.json``).

Nothing here imports torch.
"""

from harness.models.backends import BackendSpec, Implements, LayerSpec, SupportRule
from harness.models.cases import GoldenCase, GoldenExpect, MockOutcome, Sweep
from harness.models.common import (
    BACKENDS_TOKEN,
    CASES_GROUP,
    DISTRIBUTION_NAME_PATTERN,
    PACKAGE_PATTERN,
    SCHEMA_VERSION,
    SELECTION_INPUT_PATTERN,
    VERSION_PATTERN,
    parse_version,
)
from harness.models.file import KnownFailure, MatrixFile, TargetSpec, interpreter_switched_on
from harness.models.precedence import (
    AutoRule,
    BooleanSpellings,
    ErrorTemplates,
    ForcingRule,
    Precedence,
)
from harness.models.profiles import PRINTED_VERSION_PATTERN, GpuProfile, RealTests

__all__ = [
    "BACKENDS_TOKEN",
    "CASES_GROUP",
    "DISTRIBUTION_NAME_PATTERN",
    "PACKAGE_PATTERN",
    "PRINTED_VERSION_PATTERN",
    "SCHEMA_VERSION",
    "SELECTION_INPUT_PATTERN",
    "VERSION_PATTERN",
    "AutoRule",
    "BooleanSpellings",
    "BackendSpec",
    "ErrorTemplates",
    "ForcingRule",
    "GoldenCase",
    "GoldenExpect",
    "GpuProfile",
    "Implements",
    "KnownFailure",
    "LayerSpec",
    "MatrixFile",
    "MockOutcome",
    "Precedence",
    "RealTests",
    "SupportRule",
    "Sweep",
    "TargetSpec",
    "interpreter_switched_on",
    "parse_version",
]
