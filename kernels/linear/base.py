"""The NVFP4 linear-kernel interface: layer config, weights container, base class.

A layer computes ``y = x @ W.T + bias`` with ``W`` stored in NVFP4
(:mod:`kernels.nvfp4.format`). Two checkpoint kinds exist:

* **W4A4**: the checkpoint carries a *static* input global scale; activations
  are quantized to NVFP4 on every forward (per row, per 16-element block, with
  that static scale), and the GEMM multiplies FP4 by FP4.
* **weight-only (W4A16)**: no input scale; activations stay in bf16/fp16.

Each backend is one subclass in its own file, with its support rule written
next to it as data (capability families, CUDA version, package).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from kernels.errors import FormatError
from kernels.nvfp4 import format as fmt
from kernels.platform import Platform, current_platform

__all__ = [
    "ACT_DTYPES",
    "FAMILY_LABELS",
    "LibraryNvFp4LinearKernel",
    "NvFp4LinearConfig",
    "NvFp4LinearKernel",
    "NvFp4LinearLayer",
    "Verdict",
    "ZERO_TENSOR_GLOBAL_SCALE",
    "check_bias",
    "requirement_verdict",
]

#: (ok, reason): reason is None when ok, a sentence naming the backend otherwise.
Verdict = tuple[bool, str | None]

ACT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)

#: The global scale :meth:`NvFp4LinearLayer.from_float` gives an all-zero weight.
ZERO_TENSOR_GLOBAL_SCALE = 1.0


@dataclasses.dataclass(frozen=True)
class NvFp4LinearConfig:
    """The sizes and dtypes of one NVFP4 linear layer.

    Attributes:
        in_features: K, a multiple of 16 (the NVFP4 block size).
        out_features: N.
        act_dtype: dtype of the activations and of the output.
        weight_only: the checkpoint is W4A16 (no input global scale).
        has_bias: the layer has a bias of shape ``[N]``.
    """

    in_features: int
    out_features: int
    act_dtype: torch.dtype = torch.bfloat16
    weight_only: bool = False
    has_bias: bool = False

    def __post_init__(self) -> None:
        if self.in_features <= 0 or self.out_features <= 0:
            raise FormatError(
                f"in_features and out_features must be positive, got "
                f"{self.in_features} x {self.out_features}"
            )
        if self.act_dtype not in ACT_DTYPES:
            raise FormatError(
                f"act_dtype must be one of {[str(d) for d in ACT_DTYPES]}, got {self.act_dtype}"
            )

    @property
    def scheme(self) -> str:
        return "W4A16" if self.weight_only else "W4A4"

    def describe(self) -> str:
        dt = str(self.act_dtype).removeprefix("torch.")
        bias = ", bias" if self.has_bias else ""
        return f"{self.scheme} N={self.out_features} K={self.in_features} {dt}{bias}"


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

    @classmethod
    def from_modelopt(cls, tensors: Mapping[str, torch.Tensor], prefix: str = "") -> NvFp4LinearLayer:
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
        return cls(
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

    @classmethod
    def from_compressed_tensors(
        cls, tensors: Mapping[str, torch.Tensor], prefix: str = ""
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
        return cls(
            weight=get("weight_packed"),
            weight_scale=get("weight_scale"),
            weight_global_scale=get("weight_global_scale").float().max(),
            input_global_scale=None if in_gs is None else in_gs.float().max(),
            bias=get("bias", required=False),
        )

    @classmethod
    def from_torchao(cls, weight: Any, bias: torch.Tensor | None = None) -> NvFp4LinearLayer:
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
        return cls(
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


def _getter(tensors: Mapping[str, torch.Tensor], prefix: str, what: str):
    def get(name: str, required: bool = True) -> Any:
        key = prefix + name
        if key in tensors:
            return tensors[key]
        if required:
            known = ", ".join(sorted(k for k in tensors if k.startswith(prefix))) or "none"
            raise FormatError(f"{what} checkpoint: missing tensor {key!r} (keys with prefix: {known})")
        return None

    return get


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


# --- support rules as data -----------------------------------------------------


def requirement_verdict(
    backend: str,
    platform: Platform,
    *,
    families: tuple[int, ...] | None = None,
    min_capability: tuple[int, int] | None = None,
    min_cuda: tuple[int, int] | None = None,
    packages: tuple[str, ...] = (),
    needs_fp4_dtype: bool = False,
    family_labels: Mapping[int, str] | None = None,
) -> Verdict:
    """Check a backend's declared requirements against ``platform``.

    ``families`` is an *exact* set of capability majors (10 = B200/B300,
    12 = RTX 50 / GB10): never a ``>=`` comparison, so sm120 cannot pass a rule
    written for sm100. Returns ``(ok, reason)``; the reason names the backend,
    the requirement and what the platform has.
    """
    if not platform.is_cuda:
        return False, f"{backend} needs a CUDA GPU, platform is {platform.name} (cpu)"
    if families is not None and not any(platform.is_family(f) for f in families):
        labels = family_labels or {}
        want = " or ".join(labels.get(f, f"sm_{f}x") for f in families)
        return False, f"{backend} needs {want}, platform is {platform.sm}"
    if min_capability is not None and not platform.has_capability(*min_capability):
        return (
            False,
            f"{backend} needs compute capability >= {min_capability[0]}.{min_capability[1]}, "
            f"platform is {platform.sm}",
        )
    if min_cuda is not None and not platform.has_cuda_version(*min_cuda):
        have = ".".join(map(str, platform.cuda_version)) if platform.cuda_version else "none"
        return False, f"{backend} needs CUDA >= {min_cuda[0]}.{min_cuda[1]}, platform has {have}"
    for package in packages:
        if not platform.has_package(package):
            return False, f"{backend} needs the {package} package, which is not installed"
    if needs_fp4_dtype and not platform.has_fp4_dtype:
        return False, f"{backend} needs torch.float4_e2m1fn_x2 (torch >= 2.8)"
    return True, None


# --- the kernel interface ------------------------------------------------------


class NvFp4LinearKernel(abc.ABC):
    """One NVFP4 GEMM backend.

    Subclasses set :attr:`name` (the registry key) and implement
    :meth:`is_supported`, :meth:`process_weights` and :meth:`_apply`.
    """

    #: registry name, also the value of ``VLLM_NVFP4_GEMM_BACKEND``
    name: ClassVar[str]
    #: row i of the output is bitwise independent of the number of rows
    batch_invariant: ClassVar[bool] = False
    #: supports weight-only (W4A16) checkpoints
    supports_weight_only: ClassVar[bool] = False
    #: activation/output dtypes the backend accepts
    act_dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.bfloat16, torch.float16)

    def __init__(self, config: NvFp4LinearConfig, platform: Platform | None = None) -> None:
        platform = platform or current_platform()
        for ok, reason in (self.is_supported(platform), self.can_implement(config)):
            if not ok:
                raise ValueError(f"{type(self).__name__} cannot be built: {reason}")
        self.config = config
        self.platform = platform

    # --- support --------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        """Can this backend run on ``platform`` (default: the current one)?"""

    @classmethod
    def can_implement(cls, config: NvFp4LinearConfig) -> Verdict:
        """Can this backend implement a layer of this shape, dtype and scheme?"""
        if config.in_features % fmt.BLOCK_SIZE:
            return False, (
                f"{cls.name} needs in_features to be a multiple of {fmt.BLOCK_SIZE}, "
                f"got {config.in_features}"
            )
        if config.weight_only and not cls.supports_weight_only:
            return False, f"{cls.name} needs a W4A4 checkpoint (static input scale); layer is W4A16"
        if config.act_dtype not in cls.act_dtypes:
            names = ", ".join(str(d).removeprefix("torch.") for d in cls.act_dtypes)
            return False, (
                f"{cls.name} takes {names} activations, layer has "
                f"{str(config.act_dtype).removeprefix('torch.')}"
            )
        return True, None

    # --- weights and forward ----------------------------------------------------
    @abc.abstractmethod
    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        """Derive this backend's layout into ``layer.prepared`` (once, after loading)."""

    def apply(
        self, layer: NvFp4LinearLayer, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [..., K] -> [..., N]`` in ``config.act_dtype``; ``bias`` overrides ``layer.bias``.

        Validates everything before any kernel is launched, the same way for
        every backend. Inference only: no gradient flows through a kernel, so
        an input that requires grad is accepted and the output does not
        require grad (as for any custom GEMM kernel without a backward).
        """
        self.check_input(layer, x)
        b = layer.bias if bias is None else bias
        if b is not None:
            check_bias(b, layer.out_features, layer.weight.device)
        lead = x.shape[:-1]
        with torch.no_grad():
            x2d = x.detach().reshape(-1, x.shape[-1])
            out = self._apply(layer, x2d, None if b is None else b.detach())
        return out.reshape(*lead, layer.out_features)

    @abc.abstractmethod
    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """``x2d [M, K]`` (validated) -> ``[M, N]``."""

    def check_input(self, layer: NvFp4LinearLayer, x: torch.Tensor) -> None:
        if layer.processed_by != self.name:
            raise ValueError(
                f"layer was prepared by {layer.processed_by!r}, not {self.name!r}: "
                f"call {type(self).__name__}.process_weights(layer) first"
            )
        if not isinstance(x, torch.Tensor):
            raise FormatError(f"x must be a torch.Tensor, got {type(x).__name__}")
        fmt.check_materialized(x, "x")
        if x.layout != torch.strided:
            raise FormatError(f"x must be a dense (strided) tensor, got layout {x.layout}")
        if x.dim() < 1 or x.shape[-1] != layer.in_features:
            raise FormatError(
                f"x has shape {tuple(x.shape)}, expected [..., {layer.in_features}] (K of the layer)"
            )
        if x.dtype != self.config.act_dtype:
            raise FormatError(
                f"x has dtype {x.dtype}, the layer was configured for {self.config.act_dtype}"
            )
        if x.device != layer.weight.device:
            raise FormatError(f"x is on {x.device}, the layer's weight on {layer.weight.device}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.describe()})"


#: How support reasons name the capability families.
FAMILY_LABELS = {10: "sm_10x (B200/B300)", 12: "sm_12x (RTX 50/GB10)"}


class LibraryNvFp4LinearKernel(NvFp4LinearKernel):
    """A backend whose support rule is entirely class data (the Blackwell libraries).

    Each subclass states, next to its code, the exact capability families it
    runs on, the CUDA version and the packages it needs; :meth:`is_supported`
    checks them with :func:`requirement_verdict`.
    """

    SUPPORTED_FAMILIES: ClassVar[tuple[int, ...]]
    MIN_CUDA: ClassVar[tuple[int, int]] = (12, 8)
    REQUIRED_PACKAGES: ClassVar[tuple[str, ...]] = ()
    NEEDS_FP4_DTYPE: ClassVar[bool] = False

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        return requirement_verdict(
            cls.name,
            platform or current_platform(),
            families=cls.SUPPORTED_FAMILIES,
            min_cuda=cls.MIN_CUDA,
            packages=cls.REQUIRED_PACKAGES,
            needs_fp4_dtype=cls.NEEDS_FP4_DTYPE,
            family_labels=FAMILY_LABELS,
        )
