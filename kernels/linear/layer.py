"""The tensors of one NVFP4 linear layer, and quantizing a float weight into them.

Checkpoints written by other tools are read by :mod:`kernels.linear.checkpoints`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from kernels.errors import FormatError
from kernels.linear.config import NvFp4LinearConfig
from kernels.nvfp4 import format as fmt

__all__ = ["ZERO_TENSOR_GLOBAL_SCALE", "NvFp4LinearLayer", "check_bias"]

#: The global scale :meth:`NvFp4LinearLayer.from_float` gives an all-zero weight.
ZERO_TENSOR_GLOBAL_SCALE = 1.0


@dataclasses.dataclass
class NvFp4LinearLayer:
    """The tensors of one NVFP4 linear layer, in the canonical (linear) layout.

    Attributes:
        weight: ``uint8 [N, K // 2]``, two E2M1 codes per byte, low nibble first.
        weight_scale: ``float8_e4m3fn [N, K // 16]``, linear (not swizzled).
        weight_global_scale: float32 scalar, quantization multiplier
            (``448 * 6 / amax(W)``).
        input_global_scale: float32 scalar, the *static* activation multiplier,
            or ``None`` for a weight-only checkpoint.
        bias: ``[N]`` or ``None``.
        weight_decode_scale: float32 scalar or ``None``: the decode factor
            ``f`` as the checkpoint stores it (ModelOpt ``weight_scale_2``,
            torchao ``per_tensor_scale``), for checkpoints that store one. When
            set, ``weight_global_scale`` must be its float32 reciprocal (what
            quantizes) and every decode multiplies by ``f`` itself, so decoded
            values are the checkpoint's ``code * block_scale * f``, correctly
            rounded. ``None``: the decode divides by ``weight_global_scale``.
        input_decode_scale: the same for the activations (ModelOpt
            ``input_scale``, torchao ``act_per_tensor_scale``); only with an
            ``input_global_scale``.
        prepared: tensors a backend derived in ``process_weights`` (swizzled
            scales, padded or shuffled weights, ...), keyed by name.
        processed_by: registry name of the backend that prepared the layer.
    """

    weight: torch.Tensor
    weight_scale: torch.Tensor
    weight_global_scale: torch.Tensor
    input_global_scale: torch.Tensor | None
    bias: torch.Tensor | None = None
    weight_decode_scale: torch.Tensor | None = None
    input_decode_scale: torch.Tensor | None = None
    prepared: dict[str, Any] = dataclasses.field(default_factory=dict)
    processed_by: str | None = None

    def __post_init__(self) -> None:
        fmt.check_materialized(self.weight, "weight")
        fmt.check_materialized(self.weight_scale, "weight_scale")
        if self.weight.dtype != torch.uint8 or self.weight.dim() != 2:
            raise FormatError(
                f"weight must be 2-D torch.uint8 [N, K // 2], got {self.weight.dtype} "
                f"{tuple(self.weight.shape)}"
            )
        n, kb = self.weight.shape
        k = kb * 2
        if k % fmt.BLOCK_SIZE:
            raise FormatError(f"K = {k} is not a multiple of {fmt.BLOCK_SIZE}")
        expected = (n, k // fmt.BLOCK_SIZE)
        if self.weight_scale.dtype != torch.float8_e4m3fn:
            raise FormatError(f"weight_scale must be float8_e4m3fn, got {self.weight_scale.dtype}")
        if tuple(self.weight_scale.shape) != expected:
            raise FormatError(
                f"weight_scale has shape {tuple(self.weight_scale.shape)}, expected {expected} "
                f"for weight {tuple(self.weight.shape)}"
            )
        self.weight_global_scale = fmt.check_global_scale(
            self.weight_global_scale, "weight_global_scale"
        ).to(self.weight.device)
        if self.input_global_scale is not None:
            self.input_global_scale = fmt.check_global_scale(
                self.input_global_scale, "input_global_scale"
            ).to(self.weight.device)
        if self.weight_decode_scale is not None:
            self.weight_decode_scale = _decode_scale_of(
                self.weight_decode_scale, self.weight_global_scale, "weight"
            )
        if self.input_decode_scale is not None:
            if self.input_global_scale is None:
                raise FormatError(
                    "input_decode_scale is set but input_global_scale is None: a weight-only "
                    "layer has no input scale"
                )
            self.input_decode_scale = _decode_scale_of(
                self.input_decode_scale, self.input_global_scale, "input"
            )
        if self.bias is not None:
            check_bias(self.bias, n, self.weight.device)

    # --- sizes --------------------------------------------------------------
    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1]) * 2

    @property
    def weight_only(self) -> bool:
        return self.input_global_scale is None

    def config(self, act_dtype: torch.dtype = torch.bfloat16) -> NvFp4LinearConfig:
        return NvFp4LinearConfig(
            in_features=self.in_features,
            out_features=self.out_features,
            act_dtype=act_dtype,
            weight_only=self.weight_only,
            has_bias=self.bias is not None,
        )

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[N, K]`` weight in ``dtype`` (the format reference).

        ``code * block_scale * weight_decode_scale`` when the checkpoint stored
        a decode factor, ``code * block_scale / weight_global_scale``
        otherwise; either is rounded once to float32 (then cast to ``dtype``).
        """
        if self.weight_decode_scale is not None:
            return fmt.dequantize(
                self.weight, self.weight_scale, dtype=dtype, decode_scale=self.weight_decode_scale
            )
        return fmt.dequantize(self.weight, self.weight_scale, self.weight_global_scale, dtype)

    def decode_scales(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """float32 ``(weight, input)`` factors a GEMM multiplies each operand's decode by.

        The stored decode factor where the checkpoint has one, else the float32
        reciprocal of the multiplier; ``input`` is ``None`` for a weight-only
        layer. For a GEMM that takes the two separately (PyTorch's
        ``scaled_mm``); one that takes a single factor uses :meth:`output_scale`.
        """
        one = torch.tensor(1.0, dtype=torch.float32, device=self.weight.device)
        weight = (
            self.weight_decode_scale
            if self.weight_decode_scale is not None
            else one / self.weight_global_scale
        )
        if self.input_global_scale is None:
            return weight, None
        inp = (
            self.input_decode_scale
            if self.input_decode_scale is not None
            else one / self.input_global_scale
        )
        return weight, inp

    def output_scale(self) -> torch.Tensor:
        """The GEMM epilogue factor (alpha): a float32 scalar tensor on the weight's device.

        The exact product of the weight's and the input's decode factors (the
        weight's alone for W4A16), rounded once to float32: a stored decode
        factor ``f`` multiplies and a multiplier ``gs`` divides, so
        ``f_w * f_in``, ``1 / (gs_w * gs_in)``, ``f_w / gs_in`` or
        ``f_in / gs_w``. Evaluated in float64, where the products of two
        float32 values are exact and the one division is rounded to 53 bits
        before float32 (innocuous double rounding: 53 >= 2 * 24 + 2). For two
        stored factors this is the float32 product ``f_w * f_in`` itself.
        """
        device = self.weight.device
        num = torch.ones((), dtype=torch.float64, device=device)
        den = torch.ones((), dtype=torch.float64, device=device)
        for multiplier, decode in (
            (self.weight_global_scale, self.weight_decode_scale),
            (self.input_global_scale, self.input_decode_scale),
        ):
            if decode is not None:
                num = num * decode.double()
            elif multiplier is not None:
                den = den * multiplier.double()
        return (num / den).float()

    def to(self, device: torch.device | str) -> NvFp4LinearLayer:
        """A copy on ``device`` (unprocessed: ``prepared`` is dropped)."""
        return NvFp4LinearLayer(
            weight=self.weight.to(device),
            weight_scale=self.weight_scale.to(device),
            weight_global_scale=self.weight_global_scale.to(device),
            input_global_scale=None
            if self.input_global_scale is None
            else self.input_global_scale.to(device),
            bias=None if self.bias is None else self.bias.to(device),
            weight_decode_scale=None
            if self.weight_decode_scale is None
            else self.weight_decode_scale.to(device),
            input_decode_scale=None
            if self.input_decode_scale is None
            else self.input_decode_scale.to(device),
        )

    # --- constructors -------------------------------------------------------
    @classmethod
    def from_float(
        cls,
        weight: torch.Tensor,
        *,
        input_amax: float | torch.Tensor | None,
        bias: torch.Tensor | None = None,
    ) -> NvFp4LinearLayer:
        """Quantize a float ``[N, K]`` weight (tests and examples).

        ``input_amax`` is the calibrated max |activation| that fixes the static
        input global scale (``448 * 6 / input_amax``); ``None`` makes a
        weight-only layer.

        An empty weight (``N`` or ``K`` of 0) is refused (a layer has
        ``N, K > 0``). An all-zero weight is valid, as zero blocks are: it has
        no amax to scale by, so its global scale is 1.0 by convention (any
        positive value gives the same result), every block scale is 0, every
        code +0, and it dequantizes to exact zeros. A weight holding NaN or
        ±inf has no finite amax and is refused.
        """
        if not isinstance(weight, torch.Tensor):
            raise FormatError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
        if weight.dim() != 2:
            raise FormatError(f"weight must be 2-D [N, K], got shape {tuple(weight.shape)}")
        if weight.numel() == 0:
            raise FormatError(
                f"weight has shape {tuple(weight.shape)}: an NVFP4 layer needs N > 0 and K > 0"
            )
        if not weight.is_floating_point():
            raise FormatError(f"weight must be a float tensor, got {weight.dtype}")
        fmt.check_materialized(weight, "weight")
        amax = weight.detach().abs().max().float().cpu()
        if not torch.isfinite(amax):
            raise FormatError("weight holds NaN or inf: it has no finite amax to scale by")
        w_gs = (
            torch.tensor(ZERO_TENSOR_GLOBAL_SCALE, dtype=torch.float32)
            if float(amax) == 0.0
            else fmt.global_scale_from_amax(amax, "the weight's amax")
        )
        packed, scale = fmt.quantize(weight.detach(), w_gs.to(weight.device))
        in_gs = None if input_amax is None else fmt.global_scale_from_amax(input_amax, "input_amax")
        return cls(
            weight=packed,
            weight_scale=scale,
            weight_global_scale=w_gs,
            input_global_scale=in_gs,
            bias=None if bias is None else bias.detach(),
        )


def _decode_scale_of(decode: Any, multiplier: torch.Tensor, what: str) -> torch.Tensor:
    """Validate a stored decode factor against the layer's multiplier (its float32 reciprocal)."""
    f = fmt.check_global_scale(decode, f"{what}_decode_scale").to(multiplier.device)
    expected = fmt.decode_scale_reciprocal(f, f"{what}_decode_scale")
    if not torch.equal(multiplier, expected):
        raise FormatError(
            f"{what}_global_scale {float(multiplier)!r} is not the float32 reciprocal of "
            f"{what}_decode_scale {float(f)!r} (1 / {what}_decode_scale = {float(expected)!r}): "
            f"a layer that keeps a stored decode factor quantizes with its reciprocal"
        )
    return f


def check_bias(bias: object, n: int, device: torch.device) -> None:
    """A bias is a dense floating-point ``[N]`` tensor on the weight's device.

    Checked by the layer and by every backend's ``apply`` before anything is
    launched, so all backends refuse the same biases with the same message.
    """
    if not isinstance(bias, torch.Tensor):
        raise FormatError(f"bias must be a torch.Tensor, got {type(bias).__name__}")
    fmt.check_materialized(bias, "bias")
    if bias.layout != torch.strided:
        raise FormatError(f"bias must be a dense (strided) tensor, got layout {bias.layout}")
    if tuple(bias.shape) != (n,):
        raise FormatError(f"bias must have shape ({n},), got {tuple(bias.shape)}")
    if not bias.is_floating_point():
        raise FormatError(f"bias must be a floating-point tensor, got {bias.dtype}")
    if bias.device != device:
        raise FormatError(f"bias is on {bias.device}, the layer's weight on {device}")
