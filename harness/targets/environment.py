"""The process environment during a cell: exactly the cell's selection variables.

Targets that read ``os.environ`` (vLLM's ``envs``, this project's
``init_nvfp4_linear_kernel``) see the cell's variables and no other selection
variable: the caller's shell never leaks into a cell, and what a cell set is
gone afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from harness.models import KNOWN_VARIABLES

__all__ = ["ENV_VARIABLES", "isolated_environ"]

#: The selection inputs that live in the process environment (options such as
#: ``--linear-backend`` do not).
ENV_VARIABLES: tuple[str, ...] = tuple(v for v in KNOWN_VARIABLES if not v.startswith("-"))


@contextlib.contextmanager
def isolated_environ(env: Mapping[str, str] | None = None) -> Iterator[None]:
    """``os.environ`` without any selection variable, plus ``env``; restored on exit."""
    saved = {k: os.environ[k] for k in ENV_VARIABLES if k in os.environ}
    for k in saved:
        del os.environ[k]
    try:
        if env:
            os.environ.update({k: v for k, v in env.items() if k in ENV_VARIABLES})
        yield
    finally:
        for k in ENV_VARIABLES:
            os.environ.pop(k, None)
        os.environ.update(saved)
