"""What the three FlashInfer backends share: weight layouts and the ``mm_fp4`` call.

Facts from FlashInfer (``flashinfer/gemm/gemm_base.py`` ``mm_fp4``,
``flashinfer/fp4_quantization.py``, ``flashinfer/utils.py``,
``tests/gemm/test_mm_fp4.py``):

* ``fp4_quantize(input, global_scale, sf_vec_size=16, sf_use_ue8m0=False,
  is_sf_swizzled_layout=True, is_sf_8x4_layout=False)`` takes bf16/fp16
  ``[M, K]`` and the *quantization multiplier* (``448 * 6 / amax``) as a float32
  ``[1]`` tensor; it returns packed codes ``[M, K/2]`` (uint8) and the 128x4
  swizzled block scales reshaped to ``(-1, K/16)``. Older releases reshape
  to exactly ``K/16`` columns, which divides the ``round_up(M, 128) *
  round_up(K/16, 4)`` scale bytes only when ``K/16`` is a multiple of 4, so we
  feed it K padded to 64 (0.7 reshapes to ``round_up(K/16, 4)`` columns; the
  padding is then harmless).
* Newer ``fp4_quantize`` releases take ``is_global_scale_inversed`` (default
  ``False``: the scale is the multiplier, as ours) and ``nvfp4_4over6``, whose
  default *reads the environment* (``FLASHINFER_NVFP4_4OVER6*``) and switches to
  a different block-scale recipe. We pass both explicitly when the installed
  signature has them, so the activations are quantized as the format defines
  whatever the environment holds.
* ``mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out=None,
  block_size=16, use_8x4_sf_layout=False, backend=...)``: ``a`` ``[M, K/2]``,
  ``b`` ``[K/2, N]`` column-major (our ``[N, K/2]`` weight transposed), block
  scales as float8_e4m3fn or uint8 (``b_descale`` transposed likewise),
  ``alpha`` a float32 scalar tensor (the product of the two decode factors:
  ``1 / (gs_a * gs_b)``, or the checkpoint's stored factors multiplied,
  ``NvFp4LinearLayer.output_scale``), output bf16 or fp16 (``trtllm``: bf16 only).
* cutlass and cudnn take both operands' scales in the 128x4 layout, weights
  padded as for CUTLASS (vLLM pads N and K to 32; we pad K to 64, see above).
* trtllm takes the weight "shuffled" for its epilogue tile of 128 rows:
  ``shuffle_matrix_a(w, 128)`` permutes the packed weight rows and
  ``shuffle_matrix_sf_a(s, 128)`` applies the same permutation to the
  *linear* scales, then swizzles them to 128x4. The scale function asserts
  rows % 128 == 0 and columns % 4 == 0 (no padding of its own), so the weight
  is padded to 128 rows and K to 64. Activations may use the 128x4 layout
  (``use_8x4_sf_layout=False``), which we always do so that the layout never
  depends on the batch size.

The row permutation (FlashInfer ``get_shuffle_matrix_a_row_indices``): rows
are cut into blocks of 32 when the epilogue tile is a multiple of 128 (16
otherwise); inside a block of ``B = 8 * L`` rows, source row ``r`` moves to
position ``(r % L) * 8 + r // L``. Equivalently output row ``j`` of a block
takes source row ``(j % 8) * L + j // 8``. :func:`trtllm_row_indices`
computes it in torch so it runs (and is tested) without FlashInfer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import torch

from kernels.errors import BackendUnavailableError, FormatError
from kernels.linear import _library
from kernels.linear.base import LibraryNvFp4LinearKernel, NvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout

__all__ = [
    "FlashInferNvFp4LinearKernel",
    "K_ALIGNMENT",
    "TRTLLM_EPILOGUE_TILE_M",
    "apply_mm_fp4",
    "fp4_quantize_pinning_kwargs",
    "import_flashinfer",
    "pad_2d",
    "prepare_swizzled",
    "prepare_trtllm",
    "process_weights",
    "trtllm_row_indices",
    "trtllm_shuffle_rows",
]

#: K padding (FP4 elements) so that K/16 is a multiple of 4 (see the module docstring)
K_ALIGNMENT = 64
#: N padding for the cutlass/cudnn weight (the CUTLASS alignment vLLM uses)
N_ALIGNMENT = 32
#: trtllm's epilogue tile; also the row multiple its scale shuffle requires
TRTLLM_EPILOGUE_TILE_M = 128


def import_flashinfer(backend: str) -> ModuleType:
    return _library.import_library(
        backend, "flashinfer", "flashinfer", "pip install flashinfer-python"
    )


# --- layouts ---------------------------------------------------------------------


def pad_2d(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Zero-pad a 2-D tensor to ``rows`` x ``cols`` (padding through uint8 for float8 tensors)."""
    r, c = t.shape
    if (r, c) == (rows, cols):
        return t.contiguous()
    raw = t.view(torch.uint8) if t.element_size() == 1 else t
    out = torch.zeros((rows, cols), dtype=raw.dtype, device=t.device)
    out[:r, :c] = raw
    return out.view(t.dtype)


def trtllm_row_indices(rows: int, epilogue_tile_m: int = TRTLLM_EPILOGUE_TILE_M) -> torch.Tensor:
    """Gather indices of trtllm-gen's ``shuffleMatrixA``: ``shuffled = t[indices]``.

    ``rows`` must be a multiple of the shuffle block (32 for an epilogue tile
    that is a multiple of 128, else 16). Returns int64 ``[rows]`` on the CPU.
    """
    block = 32 if epilogue_tile_m % 128 == 0 else 16
    if rows % block:
        raise FormatError(
            f"the trtllm row shuffle works on blocks of {block} rows (epilogue tile "
            f"{epilogue_tile_m}); got {rows} rows"
        )
    lanes = block // 8
    j = torch.arange(block)
    within = (j % 8) * lanes + j // 8
    starts = torch.arange(0, rows, block).unsqueeze(1)
    return (starts + within).reshape(-1)


def trtllm_shuffle_rows(
    t: torch.Tensor, epilogue_tile_m: int = TRTLLM_EPILOGUE_TILE_M
) -> torch.Tensor:
    """Rows of ``t`` (2-D) in trtllm-gen's shuffled order (our ``shuffle_matrix_a``)."""
    return t[trtllm_row_indices(t.shape[0], epilogue_tile_m).to(t.device)].contiguous()


def prepare_swizzled(layer: NvFp4LinearLayer) -> dict[str, object]:
    """cutlass/cudnn layout: weight ``[N_pad, K_pad/2]`` uint8, scales 128x4 swizzled."""
    n, k = layer.out_features, layer.in_features
    k_pad = layout.round_up(k, K_ALIGNMENT)
    weight = pad_2d(layer.weight, layout.round_up(n, N_ALIGNMENT), k_pad // 2)
    scale = pad_2d(layer.weight_scale, n, k_pad // fmt.BLOCK_SIZE)
    return {"weight": weight, "weight_scale": layout.swizzle_scales(scale), "k_padded": k_pad}


def prepare_trtllm(layer: NvFp4LinearLayer, flashinfer: ModuleType) -> dict[str, object]:
    """trtllm layout: padded, row-shuffled weight and shuffled-then-swizzled scales.

    Uses FlashInfer's own ``shuffle_matrix_a``/``shuffle_matrix_sf_a`` when the
    installed FlashInfer has them (its scale shuffle runs a CUDA kernel, so the
    layer should be on the GPU by then), our torch version otherwise
    (``shuffle_impl`` in the result says which ran).
    """
    n, k = layer.out_features, layer.in_features
    n_pad = layout.round_up(n, TRTLLM_EPILOGUE_TILE_M)
    k_pad = layout.round_up(k, K_ALIGNMENT)
    weight = pad_2d(layer.weight, n_pad, k_pad // 2)
    scale = pad_2d(layer.weight_scale, n_pad, k_pad // fmt.BLOCK_SIZE)
    fi_a = getattr(flashinfer, "shuffle_matrix_a", None)
    fi_sf = getattr(flashinfer, "shuffle_matrix_sf_a", None)
    if fi_a is not None and fi_sf is not None:
        shuffled = fi_a(weight, TRTLLM_EPILOGUE_TILE_M).contiguous()
        # shuffle_matrix_sf_a wants uint8 linear scales and returns the swizzled bytes.
        sf = fi_sf(scale.view(torch.uint8), TRTLLM_EPILOGUE_TILE_M)
        sf = sf.reshape(n_pad, k_pad // fmt.BLOCK_SIZE).view(torch.float8_e4m3fn)
        impl = "flashinfer"
    else:
        shuffled = trtllm_shuffle_rows(weight)
        sf = layout.swizzle_scales(trtllm_shuffle_rows(scale))
        impl = "torch"
    return {"weight": shuffled, "weight_scale": sf, "k_padded": k_pad, "shuffle_impl": impl}


# --- the forward -------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def fp4_quantize_pinning_kwargs(fp4_quantize: Callable) -> dict[str, Any]:
    """Keywords that pin ``fp4_quantize`` to plain NVFP4 with our multiplier convention.

    Only those the installed signature has: ``is_global_scale_inversed=False``
    and ``nvfp4_4over6=None`` (whose default reads ``FLASHINFER_NVFP4_4OVER6*``).
    """
    try:
        params = inspect.signature(fp4_quantize).parameters
    except (TypeError, ValueError):
        return {}
    pinned = {"is_global_scale_inversed": False, "nvfp4_4over6": None}
    return {name: value for name, value in pinned.items() if name in params}



def apply_mm_fp4(
    kernel: NvFp4LinearKernel,
    backend: str,
    layer: NvFp4LinearLayer,
    x2d: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Quantize ``x2d [M, K]`` with ``fp4_quantize`` and run ``mm_fp4``; returns ``[M, N]``."""
    _library.require_cuda(kernel.name, x=x2d)
    flashinfer = import_flashinfer(kernel.name)
    for fn in ("fp4_quantize", "mm_fp4"):
        if not hasattr(flashinfer, fn):
            raise BackendUnavailableError(
                f"{kernel.name} needs flashinfer.{fn}, which the installed flashinfer "
                f"({getattr(flashinfer, '__version__', 'unknown version')}) lacks"
            )
    p = layer.prepared
    m, n, k = x2d.shape[0], layer.out_features, layer.in_features
    if m == 0:
        return x2d.new_empty((0, n))
    k_pad = p["k_padded"]
    x_in = x2d.contiguous()
    if k_pad != k:
        x_in = torch.nn.functional.pad(x_in, (0, k_pad - k))
    a, a_sf = flashinfer.fp4_quantize(
        x_in,
        p["input_global_scale"],
        sf_vec_size=fmt.BLOCK_SIZE,
        sf_use_ue8m0=False,
        is_sf_swizzled_layout=True,
        is_sf_8x4_layout=False,
        **fp4_quantize_pinning_kwargs(flashinfer.fp4_quantize),
    )
    a = a.view(torch.uint8)
    sf_shape = (layout.round_up(m, layout.SWIZZLE_ROWS), k_pad // fmt.BLOCK_SIZE)
    if tuple(a.shape) != (m, k_pad // 2) or a_sf.numel() != sf_shape[0] * sf_shape[1]:
        raise BackendUnavailableError(
            f"flashinfer.fp4_quantize returned codes {tuple(a.shape)} and {a_sf.numel()} scale "
            f"bytes; expected {(m, k_pad // 2)} and {sf_shape[0] * sf_shape[1]} (128x4 layout)"
        )
    a_sf = a_sf.view(torch.uint8).reshape(sf_shape).view(torch.float8_e4m3fn)
    out = flashinfer.mm_fp4(
        a,
        p["weight"].t(),
        a_sf,
        p["weight_scale"].t(),
        alpha=p["alpha"],
        out_dtype=x2d.dtype,
        block_size=fmt.BLOCK_SIZE,
        use_8x4_sf_layout=False,
        backend=backend,
    )
    out = out[:, :n]
    return out if bias is None else out + bias.to(out.dtype)


def process_weights(kernel: NvFp4LinearKernel, layer: NvFp4LinearLayer, *, shuffle: bool) -> None:
    """The whole ``process_weights`` of a FlashInfer backend."""
    flashinfer = import_flashinfer(kernel.name)
    _library.check_w4a4_layer(kernel.name, kernel.config, layer)
    prepared = prepare_trtllm(layer, flashinfer) if shuffle else prepare_swizzled(layer)
    _library.store_prepared(kernel, layer, prepared)


class FlashInferNvFp4LinearKernel(LibraryNvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4``; subclasses name the ``backend=`` and their families."""

    REQUIRED_PACKAGES = ("flashinfer",)
    #: the ``backend=`` value passed to ``flashinfer.mm_fp4``
    MM_FP4_BACKEND: ClassVar[str]
    #: shuffle the weight rows for trtllm-gen's epilogue tile (trtllm only)
    SHUFFLE_WEIGHTS: ClassVar[bool] = False

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        process_weights(self, layer, shuffle=self.SHUFFLE_WEIGHTS)

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return apply_mm_fp4(self, self.MM_FP4_BACKEND, layer, x2d, bias)
