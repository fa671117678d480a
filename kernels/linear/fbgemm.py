"""``fbgemm``: FBGEMM GenAI's NVFP4 GEMM (``torch.ops.fbgemm.f4f4bf16``).

Support rule (data below): ``fbgemm_gpu`` installed, CUDA >= 12.8, capability
family 10.x (the op's CUTLASS kernels are built for sm100a). Output is bf16,
so the layer must have bf16 activations.

The calls (FBGEMM ``fbgemm_gpu/experimental/gen_ai``: ``src/quantize/quantize.cpp``
schemas, ``gen_ai/quantize.py``, the ``NVFP4Gemm`` entry of its quantize
benchmark; vLLM's ``FbgemmNvFp4LinearKernel``):

* importing ``fbgemm_gpu.experimental.gen_ai`` registers ``torch.ops.fbgemm.*``;
* activations: ``fbgemm_gpu.experimental.gen_ai.quantize.scale_nvfp4_quant(x,
  input_global_scale)`` (around ``torch.ops.fbgemm.scaled_fp4_quant``) takes
  bf16/fp16 ``[M, K]`` and the quantization multiplier, and returns codes
  ``[M, K/2]`` uint8 and float8_e4m3fn scales ``[round_up(M, 128),
  round_up(K/16, 4)]`` in the 128x4 swizzled layout;
* GEMM: ``f4f4bf16(XQ [M, K/2], WQ [N, K/2], x_scale, w_scale,
  global_scale=alpha)`` with both scales swizzled and flattened to uint8, and
  ``alpha`` the product of the two decode factors (``1 / (gs_x * gs_w)``, or
  the checkpoint's stored factors multiplied: ``NvFp4LinearLayer.output_scale``);
  returns bf16 ``[M, N]``. Older schemas take
  ``use_mx`` (``False`` selects NVFP4), newer ones pick NVFP4 whenever
  ``global_scale`` is given and have no ``use_mx``: the keyword is passed only
  when the installed schema has it.

The weight is padded to 32 in N and K (16-byte rows for the CUTLASS loads);
activations get the same K padding and the output's padded columns are sliced.
"""

from __future__ import annotations

import inspect

import torch

from kernels.errors import BackendUnavailableError
from kernels.linear import _library
from kernels.linear.base import LibraryNvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout

__all__ = ["FbgemmNvFp4LinearKernel", "op_argument_names"]

_INSTALL = "pip install fbgemm-gpu-genai"


def op_argument_names(op: object) -> tuple[str, ...]:
    """Argument names of a ``torch.ops`` operator (from its schema) or of a Python callable."""
    overload = getattr(op, "default", None)
    schema = getattr(overload, "_schema", None)
    if schema is not None:
        return tuple(arg.name for arg in schema.arguments)
    return tuple(inspect.signature(op).parameters)  # type: ignore[arg-type]


def _fbgemm_entry_points(backend: str):
    """``(scale_nvfp4_quant, f4f4bf16)`` from the installed fbgemm_gpu, or BackendUnavailableError."""
    _library.import_library(backend, "fbgemm_gpu.experimental.gen_ai", "fbgemm_gpu", _INSTALL)
    quant_mod = _library.import_library(
        backend, "fbgemm_gpu.experimental.gen_ai.quantize", "fbgemm_gpu", _INSTALL
    )
    quant = getattr(quant_mod, "scale_nvfp4_quant", None)
    if quant is None:
        raise BackendUnavailableError(
            f"{backend} needs fbgemm_gpu.experimental.gen_ai.quantize.scale_nvfp4_quant, "
            f"which the installed fbgemm_gpu lacks ({_INSTALL} for a newer one)"
        )
    if not hasattr(torch.ops.fbgemm, "f4f4bf16"):
        raise BackendUnavailableError(
            f"{backend} needs torch.ops.fbgemm.f4f4bf16, which the installed fbgemm_gpu "
            f"did not register (built without CUDA 12.8 / sm100 kernels?)"
        )
    return quant, torch.ops.fbgemm.f4f4bf16


class FbgemmNvFp4LinearKernel(LibraryNvFp4LinearKernel):
    """W4A4 through ``torch.ops.fbgemm.f4f4bf16``."""

    name = "fbgemm"
    SUPPORTED_FAMILIES = (10,)
    MIN_CUDA = (12, 8)
    REQUIRED_PACKAGES = ("fbgemm_gpu",)
    act_dtypes = (torch.bfloat16,)
    #: weight N and K padding (rows, FP4 elements)
    WEIGHT_ALIGNMENT = 32

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        """Prepare ``weight`` (uint8 ``[N_pad, K_pad/2]``) and ``weight_scale`` (flat uint8, swizzled)."""
        _fbgemm_entry_points(self.name)
        _library.check_w4a4_layer(self.name, self.config, layer)
        prepared = _library.pad_and_swizzle(layer, self.WEIGHT_ALIGNMENT)
        scale = prepared["weight_scale"]
        assert isinstance(scale, torch.Tensor)
        prepared["weight_scale"] = scale.reshape(-1).view(torch.uint8)  # the op takes flat bytes
        _library.store_prepared(self, layer, prepared)

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        _library.require_cuda(self.name, x=x2d)
        quant, gemm = _fbgemm_entry_points(self.name)
        p = layer.prepared
        m, n, k = x2d.shape[0], layer.out_features, layer.in_features
        if m == 0:
            return x2d.new_empty((0, n))
        xq, x_scale = quant(x2d.contiguous(), p["input_global_scale"])
        # One E4M3 byte per scale, whatever dtype the quantizer hands them back in.
        sf_bytes = layout.round_up(m, layout.SWIZZLE_ROWS) * layout.round_up(
            k // fmt.BLOCK_SIZE, layout.SWIZZLE_COLS
        )
        got_bytes = x_scale.numel() * x_scale.element_size()
        if tuple(xq.shape) != (m, k // 2) or got_bytes != sf_bytes:
            raise BackendUnavailableError(
                f"scale_nvfp4_quant returned codes {tuple(xq.shape)} and {got_bytes} scale bytes; "
                f"expected {(m, k // 2)} and {sf_bytes} (128x4 layout)"
            )
        xq = layout.pad_activation(xq.view(torch.uint8), p["pad_bytes"])
        kwargs = {"global_scale": p["alpha"]}
        if "use_mx" in op_argument_names(gemm):
            kwargs["use_mx"] = False
        out = gemm(
            xq,
            p["weight"],
            x_scale.contiguous().reshape(-1).view(torch.uint8),
            p["weight_scale"],
            **kwargs,
        )
        out = out[:, :n]
        return out if bias is None else out + bias.to(out.dtype)
