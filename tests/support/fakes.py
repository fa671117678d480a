"""CPU stand-ins for the Blackwell libraries, written from their documented semantics.

Each fake checks the dtypes, shapes, strides and layouts it is handed the way
the real library documents (or enforces) them, raises :class:`FakeLibraryError`
on anything else, and then computes the product from the *format reference*
(:mod:`kernels.nvfp4.format` and :func:`kernels.nvfp4.layout.unswizzle_scales`).
A backend that passes its arguments correctly therefore reproduces the
emulation backend; a wrong transpose, layout, padding, global scale or slice
changes the result or trips a check.

Every fake records its calls in ``.calls`` so tests can look at what was passed.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch

from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout

BLOCK = fmt.BLOCK_SIZE


class FakeLibraryError(AssertionError):
    """A fake library was called with arguments the real one would reject or misread."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise FakeLibraryError(message)


def _round_up(v: int, m: int) -> int:
    return (v + m - 1) // m * m


def decode(codes: torch.Tensor, swizzled_scale: torch.Tensor, rows: int, k: int) -> torch.Tensor:
    """``[rows, k]`` float32 from packed codes ``[rows, k/2]`` and 128x4-swizzled e4m3 scales.

    The global scale is *not* applied (libraries take it separately).
    """
    _require(codes.dtype == torch.uint8, f"codes must be uint8 bytes, got {codes.dtype}")
    _require(
        tuple(codes.shape) == (rows, k // 2), f"codes {tuple(codes.shape)} != {(rows, k // 2)}"
    )
    want = _round_up(rows, 128) * _round_up(k // BLOCK, 4)
    _require(
        swizzled_scale.numel() == want,
        f"swizzled scale has {swizzled_scale.numel()} elements, the 128x4 layout of "
        f"[{rows}, {k // BLOCK}] has {want}",
    )
    swizzled = swizzled_scale.contiguous().view(torch.float8_e4m3fn)
    swizzled = swizzled.reshape(_round_up(rows, 128), _round_up(k // BLOCK, 4))
    scale = layout.unswizzle_scales(swizzled, rows, k // BLOCK)
    values = fmt.e2m1_codes_to_float(fmt.unpack_fp4(codes.contiguous()))
    return (values.reshape(rows, k // BLOCK, BLOCK) * scale.float().unsqueeze(-1)).reshape(rows, k)


def _scalar_f32(t: Any, what: str) -> torch.Tensor:
    _require(isinstance(t, torch.Tensor), f"{what} must be a tensor, got {type(t).__name__}")
    _require(
        t.dtype == torch.float32 and t.numel() == 1,
        f"{what} must be one float32, got {t.dtype} {tuple(t.shape)}",
    )
    return t.reshape(())


# --- the trtllm row shuffle, as FlashInfer's tables state it -----------------------

# FlashInfer ``srcToDstBlk16RowMap`` / ``srcToDstBlk32RowMap``: source row r of a
# block goes to position MAP[r]. Written out literally (not computed) so the
# fake stays independent of the backend's formula.
SRC_TO_DST_16 = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15]
SRC_TO_DST_32 = [
    0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27,
    4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31,
]  # fmt: skip


def documented_shuffle_indices(rows: int, epilogue_tile_m: int) -> torch.Tensor:
    """FlashInfer's loop: ``indices[new_row] = old_row``; shuffled = t[indices]."""
    table = SRC_TO_DST_32 if epilogue_tile_m % 128 == 0 else SRC_TO_DST_16
    block = len(table)
    _require(rows % block == 0, f"rows {rows} not a multiple of {block}")
    indices = torch.empty(rows, dtype=torch.long)
    for old in range(rows):
        indices[(old // block) * block + table[old % block]] = old
    return indices


def unshuffle_rows(t: torch.Tensor, epilogue_tile_m: int = 128) -> torch.Tensor:
    indices = documented_shuffle_indices(t.shape[0], epilogue_tile_m)
    out = torch.empty_like(t)
    out[indices] = t
    return out


# --- PyTorch scaled matmul ------------------------------------------------------------


@dataclass
class FakeScaledMM:
    """``torch.nn.functional.scaled_mm`` (v2) and ``torch._scaled_mm`` (v1) for NVFP4."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def _operands(self, mat_a: torch.Tensor, mat_b: torch.Tensor) -> tuple[int, int, int]:
        fp4 = torch.float4_e2m1fn_x2
        _require(
            mat_a.dtype == fp4 and mat_b.dtype == fp4,
            f"operands must be float4_e2m1fn_x2, got {mat_a.dtype}, {mat_b.dtype}",
        )
        _require(mat_a.dim() == 2 and mat_b.dim() == 2, "operands must be 2-D")
        m, kb = mat_a.shape
        _require(
            mat_b.shape[0] == kb,
            f"K mismatch: mat_a {tuple(mat_a.shape)}, mat_b {tuple(mat_b.shape)}",
        )
        n = mat_b.shape[1]
        # cuBLASLt "TN": mat_a row-major, mat_b column-major (PyTorch checks both).
        _require(mat_a.stride() == (kb, 1), f"mat_a must be row-major, strides {mat_a.stride()}")
        _require(mat_b.stride() == (1, kb), f"mat_b must be column-major, strides {mat_b.stride()}")
        _require((2 * kb) % 16 == 0, f"K={2 * kb} must be a multiple of 16")
        _require(n % 16 == 0, f"mat2 N={n} must be a multiple of 16")
        return m, n, 2 * kb

    @staticmethod
    def _block_scale(s: torch.Tensor, rows: int, k: int, what: str) -> None:
        _require(s.dtype == torch.float8_e4m3fn, f"{what} must be float8_e4m3fn, got {s.dtype}")
        _require(s.is_contiguous(), f"{what} must be contiguous")
        want = _round_up(rows, 128) * _round_up(k // BLOCK, 4)
        _require(s.numel() == want, f"{what} should have {want} elements, got {s.numel()}")

    def _product(self, mat_a, mat_b, sa, sb, m, n, k) -> torch.Tensor:
        a = decode(mat_a.view(torch.uint8), sa, m, k)
        b = decode(mat_b.t().view(torch.uint8), sb, n, k)
        return a @ b.t()

    def scaled_mm(
        self,
        mat_a,
        mat_b,
        scale_a,
        scale_recipe_a,
        scale_b,
        scale_recipe_b,
        swizzle_a=None,
        swizzle_b=None,
        bias=None,
        output_dtype=torch.bfloat16,
        contraction_dim=(),
        use_fast_accum=False,
    ) -> torch.Tensor:
        functional = torch.nn.functional
        recipe = [functional.ScalingType.BlockWise1x16, functional.ScalingType.TensorWise]
        swizzle = [functional.SwizzleType.SWIZZLE_32_4_4, functional.SwizzleType.NO_SWIZZLE]
        m, n, k = self._operands(mat_a, mat_b)
        for what, scales, rec, swz in (
            ("a", scale_a, scale_recipe_a, swizzle_a),
            ("b", scale_b, scale_recipe_b, swizzle_b),
        ):
            _require(list(rec) == recipe, f"scale_recipe_{what} must be {recipe}, got {rec}")
            _require(list(swz or []) == swizzle, f"swizzle_{what} must be {swizzle}, got {swz}")
            _require(
                isinstance(scales, list) and len(scales) == 2,
                f"scale_{what} must be [block, tensor]",
            )
        self._block_scale(scale_a[0], m, k, "scale_a[0]")
        self._block_scale(scale_b[0], n, k, "scale_b[0]")
        ga = _scalar_f32(scale_a[1], "scale_a[1]")
        gb = _scalar_f32(scale_b[1], "scale_b[1]")
        _require(not use_fast_accum, "use_fast_accum is not supported for float4 operands")
        _require(contraction_dim in ((), [], (1, 0), [1, 0]), f"contraction_dim {contraction_dim}")
        _require(
            output_dtype in (torch.bfloat16, torch.float16, torch.float32),
            f"output_dtype {output_dtype}",
        )
        if bias is not None:
            _require(output_dtype != torch.float32 and bias.dtype == output_dtype, "bias dtype")
        self.calls.append(
            dict(
                entry="scaled_mm",
                m=m,
                n=n,
                k=k,
                output_dtype=output_dtype,
                decode=(ga, gb),
                bias=bias,
            )
        )
        out = self._product(mat_a, mat_b, scale_a[0], scale_b[0], m, n, k) * (ga * gb)
        if bias is not None:
            out = out + bias.float()
        return out.to(output_dtype)

    def _scaled_mm(
        self,
        mat_a,
        mat_b,
        scale_a,
        scale_b,
        bias=None,
        scale_result=None,
        out_dtype=None,
        use_fast_accum=False,
    ):
        m, n, k = self._operands(mat_a, mat_b)
        self._block_scale(scale_a, m, k, "scale_a")
        self._block_scale(scale_b, n, k, "scale_b")
        _require(scale_result is None, "scale_result is not supported with float4 operands")
        _require(
            out_dtype in (torch.bfloat16, torch.float16, torch.float32), f"out_dtype {out_dtype}"
        )
        if bias is not None:
            _require(
                out_dtype != torch.float32, "Bias is not supported when out_dtype is set to Float32"
            )
        self.calls.append(
            dict(entry="_scaled_mm", m=m, n=n, k=k, output_dtype=out_dtype, bias=bias)
        )
        out = self._product(mat_a, mat_b, scale_a, scale_b, m, n, k)
        if bias is not None:
            out = out + bias.float()
        return out.to(out_dtype)


# --- FlashInfer -------------------------------------------------------------------------


class FakeFlashInfer(types.ModuleType):
    """``flashinfer`` with ``fp4_quantize`` and ``mm_fp4`` (and optionally the trtllm shuffles)."""

    def __init__(self, with_shuffle: bool = False) -> None:
        super().__init__("flashinfer")
        self.__version__ = "0.0.fake"
        self.calls: list[dict[str, Any]] = []
        if with_shuffle:
            self.shuffle_matrix_a = self._shuffle_matrix_a
            self.shuffle_matrix_sf_a = self._shuffle_matrix_sf_a

    def fp4_quantize(
        self,
        input,
        global_scale=None,
        sf_vec_size=16,
        sf_use_ue8m0=False,
        is_sf_swizzled_layout=True,
        is_sf_8x4_layout=False,
        is_global_scale_inversed=False,
        enable_pdl=None,
        backend="cuda",
        nvfp4_4over6=None,
    ):
        # Parameter order and defaults as in FlashInfer 0.7 (checked by tests/contracts);
        # the real nvfp4_4over6 default reads FLASHINFER_NVFP4_4OVER6* from the environment.
        _require(not is_global_scale_inversed, "global_scale is the quantization multiplier")
        _require(nvfp4_4over6 is None, "the 4over6 block-scale recipe is not NVFP4 as we define it")
        _require(backend == "cuda", f"fp4_quantize backend {backend!r}")
        _require(
            input.dtype in (torch.bfloat16, torch.float16),
            f"input must be bf16/fp16, got {input.dtype}",
        )
        _require(input.dim() == 2, "input must be 2-D [M, K]")
        m, k = input.shape
        _require(k % sf_vec_size == 0, f"K={k} not a multiple of {sf_vec_size}")
        _require(
            sf_vec_size == 16 and not sf_use_ue8m0, "NVFP4 needs sf_vec_size=16 and E4M3 scales"
        )
        _require(
            is_sf_swizzled_layout and not is_sf_8x4_layout,
            "the fake implements the 128x4 layout only",
        )
        gs = _scalar_f32(global_scale, "global_scale")
        self.calls.append(dict(fn="fp4_quantize", m=m, k=k, global_scale=gs))
        packed, scale = fmt.quantize_raw(input, gs)
        sf = layout.swizzle_scales(scale).view(torch.uint8).reshape(-1)
        # FlashInfer reshapes the scale buffer to (-1, K // sf_vec_size); it fails
        # when that does not divide, exactly as this reshape does.
        return packed, sf.reshape(-1, k // sf_vec_size)

    def mm_fp4(
        self,
        a,
        b,
        a_descale,
        b_descale,
        alpha=None,
        out_dtype=torch.bfloat16,
        out=None,
        block_size=16,
        use_8x4_sf_layout=False,
        backend="auto",
        use_nvfp4=True,
        enable_pdl=True,
    ):
        _require(use_nvfp4, "use_nvfp4=False selects MXFP4")
        _require(backend in ("cutlass", "cudnn", "trtllm"), f"backend {backend!r}")
        _require(a.dim() == 2 and b.dim() == 2, "mm_fp4 accepts 2-D tensors")
        _require(a.shape[1] == b.shape[0], f"K mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
        fp4 = (torch.uint8, torch.float4_e2m1fn_x2)
        _require(
            a.dtype in fp4 and b.dtype in fp4, f"a/b must be packed fp4, got {a.dtype}, {b.dtype}"
        )
        scales = (torch.float8_e4m3fn, torch.uint8)
        _require(
            a_descale.dtype in scales and b_descale.dtype in scales,
            "descales must be e4m3 or uint8",
        )
        _require(b.stride(0) == 1, f"b must be column-major [K/2, N], strides {b.stride()}")
        _require(a.is_contiguous(), "a must be row-major")
        _require(a_descale.is_contiguous(), "a_descale must be contiguous (128x4 bytes)")
        _require(
            b_descale.t().is_contiguous(),
            "b_descale must be the transpose of a contiguous [N, K/16]",
        )
        alpha_v = _scalar_f32(alpha, "alpha")
        _require(out_dtype in (torch.bfloat16, torch.float16), f"out_dtype {out_dtype}")
        if backend == "trtllm":
            _require(
                out_dtype == torch.bfloat16, "Only torch.bfloat16 is supported for TRTLLM FP4 GEMM"
            )
        _require(block_size == 16, "nvfp4 only supports block_size = 16")
        _require(not use_8x4_sf_layout, "the fake implements the 128x4 layout only")
        m, kb = a.shape
        n, k = b.shape[1], 2 * kb
        codes_b = b.t().view(torch.uint8)
        sf_b = b_descale.t()
        if backend == "trtllm":
            # The weight was shuffled for the 128-row epilogue tile: rows and the
            # linear scales before swizzling. Undo both to read it.
            _require(n % 128 == 0, f"trtllm needs N padded to 128, got {n}")
            codes_b = unshuffle_rows(codes_b.contiguous())
            lin = layout.unswizzle_scales(
                sf_b.contiguous().view(torch.float8_e4m3fn), n, k // BLOCK
            )
            sf_b = layout.swizzle_scales(
                unshuffle_rows(lin.view(torch.uint8)).view(torch.float8_e4m3fn)
            )
        self.calls.append(
            dict(fn="mm_fp4", backend=backend, m=m, n=n, k=k, alpha=alpha_v, out_dtype=out_dtype)
        )
        result = decode(a.view(torch.uint8), a_descale, m, k) @ decode(codes_b, sf_b, n, k).t()
        result = (result * alpha_v).to(out_dtype)
        if out is not None:
            out.copy_(result)
            return out
        return result

    # trtllm-gen shuffles, as documented: rows permuted in 32-row blocks; the
    # scale variant takes *linear* uint8 scales and returns them 128x4-swizzled.
    def _shuffle_matrix_a(self, input_tensor, epilogue_tile_m):
        self.calls.append(dict(fn="shuffle_matrix_a", epilogue_tile_m=epilogue_tile_m))
        return input_tensor[documented_shuffle_indices(input_tensor.shape[0], epilogue_tile_m)]

    def _shuffle_matrix_sf_a(self, input_tensor, epilogue_tile_m, num_elts_per_sf=16):
        _require(input_tensor.dtype == torch.uint8, "shuffle_matrix_sf_a wants uint8")
        rows, cols = input_tensor.shape
        _require(
            rows % 128 == 0 and cols % 4 == 0,
            f"shuffle_matrix_sf_a needs rows%128, cols%4: {rows}x{cols}",
        )
        self.calls.append(dict(fn="shuffle_matrix_sf_a", epilogue_tile_m=epilogue_tile_m))
        shuffled = input_tensor[documented_shuffle_indices(rows, epilogue_tile_m)]
        return (
            layout.swizzle_scales(shuffled.view(torch.float8_e4m3fn)).view(torch.uint8).reshape(-1)
        )

    def calls_of(self, fn: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["fn"] == fn]


# --- FBGEMM GenAI ---------------------------------------------------------------------------


class FakeFbgemm:
    """``fbgemm_gpu.experimental.gen_ai`` modules plus a ``torch.ops.fbgemm`` namespace.

    ``schema="use_mx"``: ``f4f4bf16(XQ, WQ, x_scale, w_scale, global_scale=None, use_mx=True)``;
    ``schema="output"``: ``f4f4bf16(XQ, WQ, x_scale, w_scale, output=None, global_scale=None,
    mxfp4_block_size=32)`` (NVFP4 chosen by the presence of ``global_scale``; FBGEMM's
    development branch); ``schema="release-1.9"``: the same without ``mxfp4_block_size``,
    as the fbgemm-gpu-genai 1.9.0 wheel registers it (read from the wheel by tests/contracts).
    """

    def __init__(self, schema: str = "use_mx", with_gemm: bool = True) -> None:
        self.calls: list[dict[str, Any]] = []
        self.ops = types.SimpleNamespace()
        if with_gemm:
            self.ops.f4f4bf16 = {
                "use_mx": self._f4f4bf16_use_mx,
                "output": self._f4f4bf16_output,
                "release-1.9": self._f4f4bf16_release_1_9,
            }[schema]
        self.quantize_module = types.ModuleType("fbgemm_gpu.experimental.gen_ai.quantize")
        self.quantize_module.scale_nvfp4_quant = self.scale_nvfp4_quant

    def install(self, monkeypatch) -> None:
        root = types.ModuleType("fbgemm_gpu")
        experimental = types.ModuleType("fbgemm_gpu.experimental")
        gen_ai = types.ModuleType("fbgemm_gpu.experimental.gen_ai")
        root.experimental, experimental.gen_ai, gen_ai.quantize = (
            experimental,
            gen_ai,
            self.quantize_module,
        )
        for mod in (root, experimental, gen_ai, self.quantize_module):
            monkeypatch.setitem(sys.modules, mod.__name__, mod)
        monkeypatch.setattr(torch.ops, "fbgemm", self.ops, raising=False)

    def scale_nvfp4_quant(self, input, input_global_scale):
        _require(
            input.dtype in (torch.bfloat16, torch.float16),
            f"input must be bf16/fp16, got {input.dtype}",
        )
        _require(input.shape[-1] % BLOCK == 0, "last dim must be a multiple of 16")
        gs = _scalar_f32(input_global_scale, "input_global_scale")
        x = input.reshape(-1, input.shape[-1])
        self.calls.append(dict(fn="scale_nvfp4_quant", m=x.shape[0], global_scale=gs))
        packed, scale = fmt.quantize_raw(x, gs)
        return packed, layout.swizzle_scales(scale)

    def _gemm(self, xq, wq, x_scale, w_scale, global_scale, **extra):
        _require(
            xq.dtype == torch.uint8 and wq.dtype == torch.uint8,
            f"XQ/WQ must be uint8, got {xq.dtype}, {wq.dtype}",
        )
        _require(
            xq.is_contiguous() and wq.is_contiguous(),
            "XQ [M, K/2] and WQ [N, K/2] must be contiguous",
        )
        _require(xq.shape[1] == wq.shape[1], f"K mismatch {tuple(xq.shape)} vs {tuple(wq.shape)}")
        for what, s in (("x_scale", x_scale), ("w_scale", w_scale)):
            _require(
                s.dtype == torch.uint8 and s.dim() == 1,
                f"{what} must be flat uint8 (swizzled), got {s.dtype} {tuple(s.shape)}",
            )
        g = _scalar_f32(global_scale, "global_scale")
        m, n, k = xq.shape[0], wq.shape[0], 2 * xq.shape[1]
        self.calls.append(dict(fn="f4f4bf16", m=m, n=n, k=k, global_scale=g, **extra))
        out = decode(xq, x_scale, m, k) @ decode(wq, w_scale, n, k).t()
        return (out * g).to(torch.bfloat16)

    def _f4f4bf16_use_mx(self, XQ, WQ, x_scale, w_scale, global_scale=None, use_mx=True):
        _require(use_mx is False, "use_mx must be False for NVFP4")
        _require(global_scale is not None, "NVFP4 needs global_scale")
        return self._gemm(XQ, WQ, x_scale, w_scale, global_scale, use_mx=use_mx)

    def _f4f4bf16_output(
        self, XQ, WQ, x_scale, w_scale, output=None, global_scale=None, mxfp4_block_size=32
    ):
        _require(global_scale is not None, "without global_scale this schema runs MXFP4")
        return self._gemm(XQ, WQ, x_scale, w_scale, global_scale)

    def _f4f4bf16_release_1_9(self, XQ, WQ, x_scale, w_scale, output=None, global_scale=None):
        _require(global_scale is not None, "without global_scale this schema runs MXFP4")
        return self._gemm(XQ, WQ, x_scale, w_scale, global_scale)

    def calls_of(self, fn: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["fn"] == fn]
