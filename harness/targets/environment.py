"""The process environment during a cell: exactly the cell's selection variables.

Targets that read ``os.environ`` (vLLM's ``envs``, this project's
``init_nvfp4_linear_kernel``) see the cell's variables and no other selection
variable: the caller's shell never leaks into a cell, and what a cell set is
gone afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence

__all__ = ["isolated_environ"]


@contextlib.contextmanager
def isolated_environ(env: Mapping[str, str] | None, variables: Sequence[str]) -> Iterator[None]:
    """``os.environ`` without any of ``variables``, plus those of them ``env`` sets; restored
    on exit (``env``'s other keys, such as engine options, are not environment variables)."""
    saved = {k: os.environ[k] for k in variables if k in os.environ}
    for k in saved:
        del os.environ[k]
    try:
        if env:
            os.environ.update({k: v for k, v in env.items() if k in variables})
        yield
    finally:
        for k in variables:
            os.environ.pop(k, None)
        os.environ.update(saved)
