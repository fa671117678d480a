"""nvfp4-matrix harness: prove the NVFP4 kernel selection right on fake hardware.

A maintainer describes GPU profiles, environment-variable combinations and
the expected selection rules in YAML (``matrix/*.yaml``). The harness reads as
stages, each a subpackage with one job per module; a stage imports only from its
own and earlier ones (``tests/harness/test_stages.py``):

0. :mod:`harness.models` (the format) and :mod:`harness.errors`;
1. :mod:`harness.rules`: the one interpreter of the declared support rules and
   the precedence's reading of the environment (the loader's cross-checks and
   the oracle both use it);
2. :mod:`harness.load`: YAML -> validated models -> one matrix, bound to its
   target's vocabulary;
3. :mod:`harness.targets`: the target protocol and the systems under test
   (this project's kernels, vLLM, plugins);
4. :mod:`harness.evaluate`: cells, the independent oracle, the comparison, the
   session every entry point runs cells through, the reality check;
5. :mod:`harness.output` (table, markdown, JUnit, records, Buildkite, atomic
   writes) and :mod:`harness.diff` (two versions of an engine, cell by cell);
6. the ways in: the command line (:mod:`harness.cli`), the pytest plugin
   (:mod:`harness.plugin`) and the mutation lanes (:mod:`harness.mutation`).

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
