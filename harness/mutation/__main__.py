"""``python -m harness.mutation``: the project's mutation lane."""

import sys

from harness.mutation.project import main

sys.exit(main())
