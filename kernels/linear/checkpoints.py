"""Checkpoints written by other tools, read into an :class:`NvFp4LinearLayer`.

Each exporter stores the two-level NVFP4 scales its own way: ModelOpt and
torchao keep per-tensor *decode* factors (``amax / (448 * 6)``), which are kept
as stored so a loaded layer decodes exactly to the exporter's own values;
compressed-tensors keeps the quantization multipliers. Each loader is checked
against the real exporter in the contracts lane.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from kernels.errors import FormatError
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt

__all__ = ["from_compressed_tensors", "from_modelopt", "from_torchao"]


def from_modelopt(tensors: Mapping[str, torch.Tensor], prefix: str = "") -> NvFp4LinearLayer:
    """Load a layer saved by NVIDIA ModelOpt (``quant_algo: NVFP4``).

    ModelOpt stores *dequantization* factors: ``weight_scale_2`` (=
    ``amax(W) / (448 * 6)``) and ``input_scale`` (the same for activations,
    absent for weight-only exports). They are kept as stored
    (``weight_decode_scale``, ``input_decode_scale``), so the weight
    decodes to ModelOpt's ``code * weight_scale * weight_scale_2`` exactly;
    their float32 reciprocals are the multipliers that quantize. Fused
    partitions (q/k/v, gate/up) store one factor per partition; like
    inference engines we take the max.
    Keys: ``{prefix}weight`` (uint8), ``{prefix}weight_scale`` (e4m3),
    ``{prefix}weight_scale_2``, ``{prefix}input_scale``, ``{prefix}bias``.
    """
    get = _getter(tensors, prefix, "ModelOpt")
    w_decode = fmt.check_global_scale(
        get("weight_scale_2").float().max(), f"ModelOpt {prefix}weight_scale_2"
    )
    input_scale = get("input_scale", required=False)
    in_decode = (
        None
        if input_scale is None
        else fmt.check_global_scale(
            input_scale.float().max(), f"ModelOpt {prefix}input_scale"
        )
    )
    return NvFp4LinearLayer(
        weight=get("weight"),
        weight_scale=get("weight_scale"),
        weight_global_scale=fmt.decode_scale_reciprocal(
            w_decode, f"ModelOpt {prefix}weight_scale_2"
        ),
        input_global_scale=None
        if in_decode is None
        else fmt.decode_scale_reciprocal(in_decode, f"ModelOpt {prefix}input_scale"),
        bias=get("bias", required=False),
        weight_decode_scale=w_decode,
        input_decode_scale=in_decode,
    )

def from_compressed_tensors(
tensors: Mapping[str, torch.Tensor], prefix: str = ""
) -> NvFp4LinearLayer:
    """Load a layer saved by llm-compressor (compressed-tensors ``nvfp4-pack-quantized``).

    compressed-tensors stores *quantization multipliers* directly:
    ``weight_global_scale`` and ``input_global_scale`` (absent for W4A16).
    Keys: ``{prefix}weight_packed`` (uint8), ``{prefix}weight_scale``
    (e4m3), ``{prefix}weight_global_scale``, ``{prefix}input_global_scale``,
    ``{prefix}bias``. Fused partitions: the max is taken, as for ModelOpt
    (a smaller multiplier is the safe choice for the range, but engines
    take the max of the stored values; we match them).
    """
    get = _getter(tensors, prefix, "compressed-tensors")
    in_gs = get("input_global_scale", required=False)
    return NvFp4LinearLayer(
        weight=get("weight_packed"),
        weight_scale=get("weight_scale"),
        weight_global_scale=get("weight_global_scale").float().max(),
        input_global_scale=None if in_gs is None else in_gs.float().max(),
        bias=get("bias", required=False),
    )

def from_torchao(weight: Any, bias: torch.Tensor | None = None) -> NvFp4LinearLayer:
    """Load a torchao ``NVFP4Tensor`` weight (``torchao.prototype.mx_formats``).

    Read by attribute, so torchao is not imported here: ``qdata`` (uint8
    ``[N, K // 2]``, low nibble first; a transposed view is made contiguous),
    ``scale`` (e4m3 ``[N, K // 16]``, or the 128x4 swizzled bytes when
    ``is_swizzled_scales``), ``block_size`` (16), ``per_tensor_scale`` and
    ``act_per_tensor_scale``: *decode* factors (``amax / (448 * 6)``), kept
    as stored (``weight_decode_scale``, ``input_decode_scale``: the weight
    decodes to torchao's ``code * scale * per_tensor_scale`` exactly), whose
    float32 reciprocals are our multipliers; ``None`` for
    ``per_tensor_scale`` is single-level scaling (multiplier 1).

    A tensor that quantizes activations (``act_quant_kwargs`` set) must carry
    a static ``act_per_tensor_scale``: with a dynamic per-tensor activation
    scale there is no static input scale to give a W4A4 layer, and loading
    it weight-only would compute something else, so it is refused. A tensor
    without activation quantization loads as weight-only (W4A16).
    """
    missing = [a for a in ("qdata", "scale", "block_size") if not hasattr(weight, a)]
    if missing:
        raise FormatError(
            f"torchao NVFP4 weight: {type(weight).__name__} lacks {', '.join(missing)}; "
            f"expected a torchao.prototype.mx_formats.NVFP4Tensor"
        )
    if weight.block_size != fmt.BLOCK_SIZE:
        raise FormatError(f"torchao NVFP4 weight: block_size {weight.block_size}, expected 16")
    qdata = weight.qdata
    if qdata.dim() != 2:
        raise FormatError(
            f"torchao NVFP4 weight: qdata must be 2-D [N, K // 2], got {tuple(qdata.shape)} "
            f"(per-expert 3-D weights are not linear layers)"
        )
    if qdata.stride(0) < qdata.stride(1):  # torchao's .t() of an [N, K] weight
        raise FormatError(
            "torchao NVFP4 weight is transposed (qdata is column-major); pass the [N, K] weight"
        )
    packed = qdata.contiguous().view(torch.uint8)
    n, k = packed.shape[0], packed.shape[1] * 2
    scale = weight.scale.view(torch.float8_e4m3fn)
    if getattr(weight, "is_swizzled_scales", False):
        from kernels.nvfp4 import layout

        scale = layout.unswizzle_scales(scale.reshape(-1), n, k // fmt.BLOCK_SIZE)
    scale = scale.reshape(n, k // fmt.BLOCK_SIZE)
    w_decode = getattr(weight, "per_tensor_scale", None)
    a_decode = getattr(weight, "act_per_tensor_scale", None)
    if a_decode is None and getattr(weight, "act_quant_kwargs", None) is not None:
        raise FormatError(
            "torchao NVFP4 weight quantizes activations with a dynamic per-tensor scale "
            "(act_per_tensor_scale is None); a W4A4 layer needs a static input scale: "
            "calibrate one (act_per_tensor_scale) before loading"
        )
    w_f = (
        None
        if w_decode is None
        else fmt.check_global_scale(w_decode.float(), "torchao per_tensor_scale")
    )
    a_f = (
        None
        if a_decode is None
        else fmt.check_global_scale(a_decode.float(), "torchao act_per_tensor_scale")
    )
    return NvFp4LinearLayer(
        weight=packed,
        weight_scale=scale,
        weight_global_scale=torch.tensor(1.0)
        if w_f is None
        else fmt.decode_scale_reciprocal(w_f, "torchao per_tensor_scale"),
        input_global_scale=None
        if a_f is None
        else fmt.decode_scale_reciprocal(a_f, "torchao act_per_tensor_scale"),
        bias=bias,
        weight_decode_scale=w_f,
        input_decode_scale=a_f,
    )


def _getter(
    tensors: Mapping[str, torch.Tensor], prefix: str, what: str
) -> Callable[..., Any]:
    def get(name: str, required: bool = True) -> Any:
        key = prefix + name
        if key in tensors:
            return tensors[key]
        if required:
            known = ", ".join(sorted(k for k in tensors if k.startswith(prefix))) or "none"
            raise FormatError(f"{what} checkpoint: missing tensor {key!r} (keys with prefix: {known})")
        return None

    return get
