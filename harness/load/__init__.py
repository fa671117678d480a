"""Stage 2, loading: YAML files -> pydantic models -> one merged, cross-checked matrix."""

from harness.load.loader import DEFAULT_MATRIX_GLOB, default_matrix_paths, load_matrix
from harness.load.matrix import Matrix
from harness.load.problems import unknown_name
from harness.load.yamlsrc import Location

__all__ = [
    "DEFAULT_MATRIX_GLOB",
    "Location",
    "Matrix",
    "default_matrix_paths",
    "load_matrix",
    "unknown_name",
]
