"""Plumbing shared by the Blackwell library backends (cuBLASLt, FlashInfer x3, FBGEMM).

Three small pieces every one of them needs before it launches anything:

* :func:`require_cuda`: the libraries run on CUDA tensors only. Tests that
  check argument plumbing on a CPU replace this one function (it is looked up
  as ``_library.require_cuda`` at call time); a separate test keeps the real
  refusal covered.
* :func:`import_library`: the libraries are imported lazily, at call time,
  so that ``kernels`` imports on a machine without them; a missing library
  becomes a :class:`~kernels.errors.BackendUnavailableError` naming the
  backend, the package and how to install it.
* :func:`check_w4a4_layer` and :func:`global_scales`: the layer checks and
  the FP32 scalars derived once at weight-processing time.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

import torch

from kernels.errors import BackendUnavailableError, FormatError
from kernels.linear.base import NvFp4LinearKernel
from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import layout

__all__ = [
    "check_w4a4_layer",
    "global_scales",
    "import_library",
    "pad_and_swizzle",
    "require_cuda",
    "store_prepared",
]


def require_cuda(backend: str, **tensors: torch.Tensor) -> None:
    """Refuse tensors that are not on a CUDA device, naming each offender.

    Raises :class:`FormatError` (a ``ValueError``) before any launch.
    """
    off = {name: t.device for name, t in tensors.items() if t.device.type != "cuda"}
    if off:
        where = ", ".join(f"{name} is on {device}" for name, device in off.items())
        raise FormatError(f"{backend} runs on CUDA tensors only; {where}")


def import_library(backend: str, module: str, package: str, install: str) -> ModuleType:
    """Import ``module`` or raise :class:`BackendUnavailableError` with an install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{backend} needs the {package} package ({install}); importing {module!r} failed: {exc}"
        ) from exc


def check_w4a4_layer(backend: str, config: NvFp4LinearConfig, layer: NvFp4LinearLayer) -> None:
    """The layer must be W4A4 and have the sizes the kernel was built for."""
    if layer.input_global_scale is None:
        raise FormatError(
            f"{backend} computes FP4 x FP4 and needs a W4A4 layer with a static "
            f"input_global_scale; this layer is weight-only (W4A16)"
        )
    have = (layer.out_features, layer.in_features)
    want = (config.out_features, config.in_features)
    if have != want:
        raise FormatError(
            f"{backend} was built for N x K = {want[0]} x {want[1]}, the layer is "
            f"{have[0]} x {have[1]}"
        )


def global_scales(layer: NvFp4LinearLayer) -> dict[str, torch.Tensor]:
    """FP32 ``[1]`` tensors derived from the layer's global scales.

    ``input_global_scale`` is the multiplier that quantizes the activations.
    The GEMM's decode factors are the layer's
    (:meth:`~kernels.linear.base.NvFp4LinearLayer.decode_scales`): a
    checkpoint's stored decode factor as stored, else the float32 reciprocal of
    our multiplier (``448 * 6 / amax``). The epilogue factor ``alpha`` is
    :meth:`~kernels.linear.base.NvFp4LinearLayer.output_scale`, their exact
    product rounded once (``f_in * f_w`` for two stored factors, ``1 / (gs_in *
    gs_w)`` for two multipliers). Computed once here so the forward does no
    host synchronisation.
    """
    assert layer.input_global_scale is not None  # check_w4a4_layer ran first
    weight_decode, input_decode = layer.decode_scales()
    assert input_decode is not None
    return {
        "input_global_scale": layer.input_global_scale.reshape(1).float(),
        "input_decode_scale": input_decode.reshape(1).float(),
        "weight_decode_scale": weight_decode.reshape(1).float(),
        "alpha": layer.output_scale().reshape(1),
    }


def pad_and_swizzle(layer: NvFp4LinearLayer, alignment: int) -> dict[str, object]:
    """CUTLASS-style weight: N and K padded to ``alignment``, block scales 128x4 swizzled.

    Returns ``weight`` (uint8 ``[N_pad, K_pad/2]``, contiguous), ``weight_scale``
    (swizzled e4m3 ``[round_up(N, 128), round_up(K/16, 4)]``) and ``pad_bytes``
    (what the activations' rows must be padded by).
    """
    weight, pad_bytes = layout.pad_weight(layer.weight, alignment)
    return {
        "weight": weight.contiguous(),
        "weight_scale": layout.swizzle_scales(layer.weight_scale),
        "pad_bytes": pad_bytes,
    }


def store_prepared(
    kernel: NvFp4LinearKernel, layer: NvFp4LinearLayer, prepared: Mapping[str, object]
) -> None:
    """Replace ``layer.prepared`` with ``prepared`` plus :func:`global_scales`; mark it as ``kernel``'s."""
    layer.prepared.clear()
    layer.prepared.update(prepared, **global_scales(layer))
    layer.processed_by = kernel.name
