"""``@pytest.mark.gpu`` and ``@pytest.mark.blackwell``: skipped elsewhere, with the exact reason.

The markers are about the real machine, never a fake profile.
"""

from __future__ import annotations

import pytest

__all__ = ["BLACKWELL_FAMILIES", "mark_hardware"]

BLACKWELL_FAMILIES = (10, 12)


def mark_hardware(items: list[pytest.Item]) -> None:
    marked = [i for i in items if i.get_closest_marker("gpu") or i.get_closest_marker("blackwell")]
    if not marked:
        return
    from kernels.platform import detect_platform

    # The real machine: these markers are about hardware, never about a fake profile.
    p = detect_platform()
    for item in marked:
        if not p.is_cuda:
            item.add_marker(
                pytest.mark.skip(reason=f"needs a CUDA GPU; this machine is {p.describe()}")
            )
        elif item.get_closest_marker("blackwell") and not any(
            p.is_family(f) for f in BLACKWELL_FAMILIES
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"needs a Blackwell GPU (sm_10x or sm_12x); this machine is {p.describe()}"
                )
            )


