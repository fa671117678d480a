"""The platform seam as a cell sees it: decoy platforms, and the selection read through the seam.

Every cell passes its platform explicitly while the seam
(:func:`~kernels.platform.use_platform`) holds a decoy that differs in every
fact a support rule reads (:func:`decoy_platform`): code that reads the seam
instead of its argument then picks differently and fails the cell. The
``seam`` entry point turns this around: the selection gets no platform
argument and must read the cell's platform from the seam, the innermost of
three overrides (:func:`through_seam`).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

from kernels.platform import Platform, use_platform

__all__ = ["decoy_platform", "through_seam"]


def decoy_platform(platform: Platform) -> Platform:
    """What the seam holds while ``platform`` is passed explicitly.

    It differs from ``platform`` in every fact a support rule reads (device,
    family, CUDA, torch, packages, interpreter): a CPU with nothing installed
    for a GPU cell, a Blackwell with everything for a CPU cell.
    """
    return _decoy("cpu" if platform.is_cuda else "cuda")


@functools.cache
def _decoy(device_type: str) -> Platform:
    if device_type == "cpu":
        return Platform(
            name="decoy-cpu", device_type="cpu", packages=frozenset(),
            torch_version=(2, 0), has_fp4_dtype=False, triton_interpret=False,
        )
    return Platform(
        name="decoy-gpu", device_type="cuda", capability=(10, 0),
        cuda_version=(13, 0), packages=frozenset({"triton", "flashinfer", "fbgemm_gpu"}),
        torch_version=(2, 10), has_fp4_dtype=True, triton_interpret=True, triton_version=(3, 6),
    )


def through_seam(select: Callable[..., Any], other_device: Platform) -> Callable[..., Any]:
    """``select`` called with ``platform=None``, the platform it was given installed in the seam.

    The call runs in a fresh :mod:`contextvars` context holding three
    overrides: ``other_device`` (a profile of the other device type), then
    :func:`decoy_platform`, then the cell's own platform; the selection must
    take the innermost one, not the first or the second.
    """

    def call(config: Any, platform: Platform, environ: Any = None, backends: Any = None) -> Any:
        def inner() -> Any:
            with (
                use_platform(other_device),
                use_platform(decoy_platform(platform)),
                use_platform(platform),
            ):
                return select(config, None, environ, backends)

        return contextvars.Context().run(inner)

    return call
