"""``python -m harness`` is ``nvfp4-matrix``."""

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
