"""gemlite as a yardstick of the benchmark: its 4-bit weight-only layers, built and called on one GPU.

gemlite (``pip install gemlite``, the ``bench`` extra; pure Python + Triton,
installed with ``--no-deps`` beside the machine's torch and Triton) is a Triton
low-bit GEMM library. This module builds, from one random weight, the gemlite
layers a user choosing a 4-bit kernel on Hopper would compare:

* ``NVFP4`` — ``gemlite.helper.A16W4_NVFP`` on the *same* codes and E4M3
  block scales as our layer (``from_packed_weights``);
* ``MXFP4`` — ``A16W4_MXFP`` (E8M0 scales per 32): the closest FP4 format,
  for when NVFP4 does not run;
* ``INT4 g64`` / ``INT4 g128`` — ``A16Wn`` with asymmetric group-wise INT4
  (HQQ convention ``(W_q - zero) * scale``).

Each layer is called through gemlite's own dispatch (``auto``: the kernel
family it picks for the batch size, autotuned per batch-size bucket) and,
for "the fastest of them regardless", through each kernel family forced
(``forward_manual``). Failures are recorded with their message, never
skipped silently. :func:`invariance` checks the batch invariance of a
layer's rows.

Autotuning: gemlite autotunes every (kernel, batch bucket, shape) the first
time it runs; :func:`fast_autotune` shortens Triton's benchmark of each
candidate (5 ms warm-up, 20 ms of repetitions instead of 25 / 100) so that
the whole table fits a GPU session; the configs it chose can be saved with
``gemlite.cache_config`` (the benchmark writes them next to its JSON).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

#: gemlite kernel families (``gemlite.core.GEMLITE_MATMUL_TYPES``) tried when forced
FAMILIES = ("GEMV", "GEMV_REVSPLITK", "GEMV_SPLITK", "GEMM_SPLITK", "GEMM")
FORMATS = ("NVFP4", "MXFP4", "INT4 g64", "INT4 g128")


def available() -> tuple[bool, str]:
    """(importable, version or the import error)."""
    try:
        import gemlite
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"[:300]
    return True, str(getattr(gemlite, "__version__", "unknown"))


def fast_autotune(warmup_ms: int = 5, rep_ms: int = 20) -> None:
    """Make Triton's autotuner benchmark each candidate for ``rep_ms`` (gemlite autotunes on first use)."""
    import triton
    import triton.testing

    bench = functools.partial(triton.testing.do_bench, warmup=warmup_ms, rep=rep_ms)
    triton.runtime.driver.active.get_benchmarker = lambda: bench


@dataclasses.dataclass
class Peer:
    """One gemlite format: its layer copies (one per weight copy) or why it could not be built."""

    fmt: str
    layers: list = dataclasses.field(default_factory=list)
    error: str | None = None


def _int4_groupwise(w, group: int):
    """Asymmetric INT4 per ``group`` along K: (W_q uint8 [N, K], scales, zeros [N, K / group])."""
    import torch

    n, k = w.shape
    g = w.float().reshape(n, k // group, group)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scale = ((hi - lo) / 15.0).clamp_min(1e-8)
    zero = -lo / scale
    q = torch.round(g / scale + zero).clamp(0, 15).to(torch.uint8).reshape(n, k)
    return q, scale.reshape(n, -1).to(torch.bfloat16), zero.reshape(n, -1).to(torch.bfloat16)


def build(fmt: str, layer, w_bf16, copies: int) -> Peer:
    """gemlite layers of format ``fmt`` (see the module docstring), ``copies`` independent copies.

    ``layer`` is our :class:`kernels.linear.base.NvFp4LinearLayer` (its codes and
    E4M3 scales feed ``NVFP4``), ``w_bf16`` its dequantized weight ``[N, K]``.
    """
    import torch

    peer = Peer(fmt)
    try:
        from gemlite.helper import A16W4_MXFP, A16W4_NVFP, A16Wn

        for _ in range(copies):
            if fmt == "NVFP4":
                lin = A16W4_NVFP(device="cuda", dtype=torch.bfloat16).from_packed_weights(
                    layer.weight.clone(), scales=layer.weight_scale.clone(),
                    meta_scale=torch.tensor(1.0, device="cuda"))
            elif fmt == "MXFP4":
                dense = torch.nn.Linear(w_bf16.shape[1], w_bf16.shape[0], bias=False, device="cuda",
                                        dtype=torch.bfloat16)
                dense.weight.data.copy_(w_bf16)
                lin = A16W4_MXFP(device="cuda", dtype=torch.bfloat16).from_linear(dense)
            elif fmt.startswith("INT4 g"):
                q, s, z = _int4_groupwise(w_bf16, int(fmt.split("g")[1]))
                lin = A16Wn(device="cuda", dtype=torch.bfloat16).from_weights(q, s, z, W_nbits=4,
                                                                              group_size=int(fmt.split("g")[1]))
            else:
                raise ValueError(f"unknown gemlite format {fmt!r}; choose from {FORMATS}")
            peer.layers.append(lin)
    except Exception as e:
        peer.error = f"{type(e).__name__}: {e}"[:400]
        peer.layers = []
    return peer


def call(lin, x, family: str | None = None) -> Callable[[], object]:
    """A zero-argument call of ``lin`` on ``x``: gemlite's own choice, or ``family`` forced."""
    if family is None:
        return functools.partial(lin, x)
    return functools.partial(lin.forward_manual, x, family)


def chosen_family(m: int, fmt: str) -> str:
    """The kernel family gemlite's dispatch picks for ``m`` rows (``gemlite.core.get_matmul_type``)."""
    from gemlite.core import get_matmul_type

    mx = fmt in ("NVFP4", "MXFP4")
    return str(get_matmul_type(m, 4, mx))


def invariance(lin, x, family: str | None, rows: int = 4) -> bool:
    """Are the first ``rows`` rows of a batch of ``len(x)`` bitwise the rows computed one at a time?"""
    import torch

    full = call(lin, x, family)()
    ones = torch.cat([call(lin, x[i:i + 1], family)() for i in range(min(rows, x.shape[0]))])
    return bool(torch.equal(full[: ones.shape[0]], ones))


def load_config(path) -> bool:
    """Load a gemlite autotune cache (``save_config`` of an earlier run); False when there is none."""
    if not path:
        return False
    from pathlib import Path

    if not Path(path).is_file():
        return False
    from gemlite.core import GemLiteLinearTriton

    return bool(GemLiteLinearTriton.load_config(str(path)))


def save_config(path) -> str:
    """Save the configs gemlite's autotuner chose (atomically); the path written."""
    import os
    from pathlib import Path

    from gemlite.core import GemLiteLinearTriton

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    GemLiteLinearTriton.cache_config(str(tmp))
    os.replace(tmp, path)
    return str(path)
