"""nvfp4-matrix harness: prove the NVFP4 kernel selection right on fake hardware.

A maintainer describes GPU profiles, environment-variable combinations and
the expected selection rules in YAML (``matrix/*.yaml``). The harness loads
them into validated models (:mod:`harness.matrix`), derives the expected
outcome of every cell from the declared rules alone (:mod:`harness.oracle`),
runs the real selection through the platform seam for every cell
(:mod:`harness.runner`) and reports each disagreement with the cell, the rule
and the decision record.

Importing this package is cheap: torch and the kernels are imported only
when a cell is evaluated.
"""

from harness.errors import HarnessError, MatrixError, Problem

__all__ = ["HarnessError", "MatrixError", "Problem", "__version__"]

__version__ = "0.1.0"
