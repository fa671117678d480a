"""nvfp4-matrix harness: prove the NVFP4 kernel selection right on fake hardware.

A maintainer describes GPU profiles, environment-variable combinations and
the expected selection rules in YAML (``matrix/*.yaml``). The harness reads as
stages, each a subpackage with one job per module:

1. :mod:`harness.load`: YAML -> validated models (:mod:`harness.models`) -> one matrix;
2. :mod:`harness.rules`: the one interpreter of the declared support rules and
   environment grammar (used by the loader's cross-checks and the oracle);
3. :mod:`harness.targets`: the systems under test (this project's kernels,
   vLLM, plugins), behind one seam;
4. :mod:`harness.evaluate`: cells, the independent oracle, the runner, the
   comparison, the reality check of a real machine;
5. :mod:`harness.output`: table, markdown, JUnit, Buildkite; and the pytest
   plugin (:mod:`harness.plugin`) and the command line (:mod:`harness.cli`).

Importing this package is cheap: torch and the kernels are imported only
when a cell is evaluated.
"""

from harness.errors import HarnessError, MatrixError, Problem

__all__ = ["PROFILE_ENV", "TOOL", "HarnessError", "MatrixError", "Problem", "__version__"]

__version__ = "0.1.0"
#: The tool's name: the command, the JUnit suite, the pytest option group.
TOOL = "nvfp4-matrix"
#: Names a hardware runner's profile (set by the generated CI steps; ``--nvfp4-profile``).
PROFILE_ENV = "NVFP4_MATRIX_PROFILE"
