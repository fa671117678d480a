"""``python -m harness.targets.vllm --selftest | --describe``."""

import sys

from harness.targets.vllm.selftest import main

sys.exit(main())
