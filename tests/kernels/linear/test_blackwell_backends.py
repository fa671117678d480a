"""The five Blackwell library backends: weight layouts, argument plumbing, refusals, hardware.

* CPU, weight processing: each backend's prepared tensors are checked against
  the format reference (unswizzle(swizzle(s)) == s, padding is zeros, the
  trtllm shuffle is the documented permutation).
* CPU, plumbing: each backend's forward runs against a fake library
  (:mod:`fakes`) that checks what it receives and computes from the format
  reference; the output must match the emulation backend (tolerance below).
  The device check is replaced for these tests only; a separate test keeps
  the real refusal of CPU tensors covered.
* Blackwell GPU (``-m blackwell``): the real libraries against emulation.
"""

from __future__ import annotations

import sys

import pytest
import torch

from kernels.errors import BackendUnavailableError, FormatError
from kernels.linear import _flashinfer, _library, checkpoints
from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.cublaslt import CublasLtNvFp4LinearKernel
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.linear.fbgemm import FbgemmNvFp4LinearKernel, op_argument_names
from kernels.linear.flashinfer_cudnn import FlashInferCudnnNvFp4LinearKernel
from kernels.linear.flashinfer_cutlass import FlashInferCutlassNvFp4LinearKernel
from kernels.linear.flashinfer_trtllm import FlashInferTrtllmNvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout
from kernels.platform import Platform, current_platform
from tests.support import fakes

ALL = (
    CublasLtNvFp4LinearKernel,
    FlashInferCutlassNvFp4LinearKernel,
    FlashInferTrtllmNvFp4LinearKernel,
    FlashInferCudnnNvFp4LinearKernel,
    FbgemmNvFp4LinearKernel,
)
FLASHINFER = (
    FlashInferCutlassNvFp4LinearKernel,
    FlashInferTrtllmNvFp4LinearKernel,
    FlashInferCudnnNvFp4LinearKernel,
)

#: A platform on which every one of the five passes its support rule (construction only).
FAKE_B200 = Platform(
    name="fake B200 (tests)",
    device_type="cuda",
    capability=(10, 0),
    cuda_version=(12, 8),
    packages=frozenset({"flashinfer", "fbgemm_gpu", "triton"}),
)

# (M, N, K): padding in every direction (N not a multiple of 32 or 128, K not a
# multiple of 32 or 64, M below and above the 128-row scale tile).
SHAPES = [(3, 48, 80), (130, 160, 128), (1, 256, 64)]


def make_layer(n: int, k: int, *, bias: bool, seed: int = 0) -> NvFp4LinearLayer:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * 0.05
    b = torch.randn(n, generator=g) if bias else None
    return NvFp4LinearLayer.from_float(w, input_amax=4.0, bias=b)


#: decode factors whose float32 reciprocals do not invert back to them (1 / fl32(1 / f) != f)
F_W = torch.tensor(0.15) / 2688
F_IN = torch.tensor(2.5) / 2688


def make_decode_factor_layer(n: int, k: int, *, bias: bool, seed: int = 0) -> NvFp4LinearLayer:
    """A ModelOpt-style layer: stored decode factors ``weight_scale_2`` and ``input_scale``."""
    src = make_layer(n, k, bias=bias, seed=seed)
    tensors = {
        "weight": src.weight,
        "weight_scale": src.weight_scale,
        "weight_scale_2": F_W.reshape(1),
        "input_scale": F_IN.reshape(1),
    }
    if src.bias is not None:
        tensors["bias"] = src.bias
    return checkpoints.from_modelopt(tensors)


def assert_global_scales(p: dict, layer: NvFp4LinearLayer) -> None:
    """The prepared FP32 ``[1]`` scalars, bit for bit.

    Decode factors: the checkpoint's own where it stores them, else the float32
    reciprocals of our multipliers; alpha: their exact product rounded once.
    """
    from fractions import Fraction

    def exact(multiplier, decode) -> Fraction:
        return Fraction(float(decode)) if decode is not None else 1 / Fraction(float(multiplier))

    product = exact(layer.input_global_scale, layer.input_decode_scale) * exact(
        layer.weight_global_scale, layer.weight_decode_scale
    )
    alpha = p["alpha"]
    assert alpha.dtype == torch.float32 and alpha.shape == (1,)
    neighbours = (alpha, alpha.nextafter(torch.zeros(1)), alpha.nextafter(torch.ones(1)))
    assert all(abs(Fraction(float(alpha)) - product) <= abs(Fraction(float(c)) - product)
               for c in neighbours), "alpha is not the correctly rounded decode-factor product"
    one = torch.tensor(1.0)
    for name, multiplier, decode in (
        ("input_decode_scale", layer.input_global_scale, layer.input_decode_scale),
        ("weight_decode_scale", layer.weight_global_scale, layer.weight_decode_scale),
    ):
        want = decode if decode is not None else one / multiplier
        assert p[name].dtype == torch.float32 and p[name].shape == (1,)
        assert torch.equal(p[name], want.reshape(1)), name
    assert torch.equal(p["input_global_scale"], layer.input_global_scale.reshape(1))


def make_input(m: int, k: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, k, generator=g) * 1.3).to(dtype)


def emulate(layer: NvFp4LinearLayer, x: torch.Tensor) -> torch.Tensor:
    ref_layer = layer.to(x.device)
    emu = EmulationNvFp4LinearKernel(ref_layer.config(x.dtype))
    emu.process_weights(ref_layer)
    return emu.apply(ref_layer, x)


def assert_matches_emulation(out: torch.Tensor, ref: torch.Tensor) -> None:
    """Tolerance: 2 ulp of the output dtype, relative to the largest |output|.

    Both paths decode the same codes exactly in float32 and round the result
    to bf16/fp16; they differ in float32 summation order and, when there is a
    bias, in one extra rounding (backend: GEMM result rounded, then bias added
    in the output dtype; emulation: bias added in float32). Each is at most one
    ulp of the largest output, so 2 ulp bounds the difference.
    """
    assert out.dtype == ref.dtype and out.shape == ref.shape
    ulp = torch.finfo(ref.dtype).eps
    bound = 2 * ulp * ref.float().abs().max().clamp(min=1.0)
    diff = (out.float() - ref.float()).abs().max()
    assert diff <= bound, f"max |backend - emulation| = {diff:.3g} > {bound:.3g}"


@pytest.fixture
def no_device_check(monkeypatch):
    """Let the CPU plumbing tests past the CUDA-only check, recording what it was shown."""
    seen: list[tuple[str, tuple[str, ...]]] = []

    def record(backend: str, **tensors: torch.Tensor) -> None:
        seen.append((backend, tuple(tensors)))

    monkeypatch.setattr(_library, "require_cuda", record)
    return seen


@pytest.fixture
def fake_flashinfer(monkeypatch):
    fake = fakes.FakeFlashInfer()
    monkeypatch.setitem(sys.modules, "flashinfer", fake)
    return fake


@pytest.fixture
def fake_fbgemm(monkeypatch):
    fake = fakes.FakeFbgemm()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def fake_torch_mm(monkeypatch):
    fake = fakes.FakeScaledMM()
    monkeypatch.setattr(torch.nn.functional, "scaled_mm", fake.scaled_mm)
    monkeypatch.setattr(torch, "_scaled_mm", fake._scaled_mm)
    return fake


@pytest.fixture
def fake_libraries(fake_flashinfer, fake_fbgemm, fake_torch_mm):
    return {"flashinfer": fake_flashinfer, "fbgemm": fake_fbgemm, "torch": fake_torch_mm}


def build(cls, layer: NvFp4LinearLayer, dtype: torch.dtype = torch.bfloat16):
    kernel = cls(layer.config(dtype), platform=FAKE_B200)
    kernel.process_weights(layer)
    return kernel


# ============================================================================
# Weight processing on CPU, against the format reference
# ============================================================================


@pytest.mark.parametrize("cls", [c for c in ALL if c is not FlashInferTrtllmNvFp4LinearKernel])
@pytest.mark.parametrize("n,k", [(48, 80), (160, 128), (256, 64)])
def test_swizzled_weight_layout(cls, n, k, fake_libraries):
    layer = make_layer(n, k, bias=False)
    build(cls, layer)
    p = layer.prepared
    weight = p["weight"]
    # Padded weight: the original codes in the corner, zeros (code +0) elsewhere.
    assert weight.dtype == torch.uint8 and weight.is_contiguous()
    n_pad, kb_pad = weight.shape
    assert n_pad >= n and n_pad % 32 == 0 and (2 * kb_pad) % 32 == 0
    assert torch.equal(weight[:n, : k // 2], layer.weight)
    assert int(weight[n:].count_nonzero()) == 0 and int(weight[:, k // 2 :].count_nonzero()) == 0
    assert torch.equal(
        fmt.dequantize(weight[:n, : k // 2], layer.weight_scale, layer.weight_global_scale),
        layer.dequantized_weight(),
    )
    # Scales: 128x4 swizzled; unswizzling gives back the linear scales, padding zero.
    rows, cols = layout.swizzled_shape(n, k // 16)
    scale = p["weight_scale"].view(torch.float8_e4m3fn).reshape(rows, cols)
    linear = layout.unswizzle_scales(scale, rows, cols).view(torch.uint8)
    assert torch.equal(linear[:n, : k // 16], layer.weight_scale.view(torch.uint8))
    assert int(linear[n:].count_nonzero()) == 0 and int(linear[:, k // 16 :].count_nonzero()) == 0
    # Global scales: decode factors are the float32 reciprocals of our multipliers,
    # alpha the correctly rounded 1 / (in_gs * w_gs).
    assert_global_scales(p, layer)
    assert layer.processed_by == cls.name


@pytest.mark.parametrize("with_shuffle", [False, True], ids=["our-shuffle", "flashinfer-shuffle"])
@pytest.mark.parametrize("n,k", [(48, 80), (256, 128)])
def test_trtllm_weight_layout(n, k, with_shuffle, monkeypatch):
    fake = fakes.FakeFlashInfer(with_shuffle=with_shuffle)
    monkeypatch.setitem(sys.modules, "flashinfer", fake)
    layer = make_layer(n, k, bias=False)
    build(FlashInferTrtllmNvFp4LinearKernel, layer)
    p = layer.prepared
    assert p["shuffle_impl"] == ("flashinfer" if with_shuffle else "torch")
    if with_shuffle:
        assert [c["epilogue_tile_m"] for c in fake.calls] == [128, 128]
    n_pad, k_pad = layout.round_up(n, 128), layout.round_up(k, 64)
    assert p["weight"].shape == (n_pad, k_pad // 2) and p["k_padded"] == k_pad
    # Undo the documented permutation: the padded original comes back.
    weight = fakes.unshuffle_rows(p["weight"])
    assert torch.equal(weight[:n, : k // 2], layer.weight)
    assert int(weight[n:].count_nonzero()) == 0 and int(weight[:, k // 2 :].count_nonzero()) == 0
    sf = p["weight_scale"].view(torch.float8_e4m3fn)
    assert sf.shape == (n_pad, k_pad // 16)
    linear = fakes.unshuffle_rows(layout.unswizzle_scales(sf, n_pad, k_pad // 16).view(torch.uint8))
    assert torch.equal(linear[:n, : k // 16], layer.weight_scale.view(torch.uint8))
    assert int(linear[n:].count_nonzero()) == 0


# --- the trtllm row permutation ----------------------------------------------------------


def test_trtllm_permutation_hand_computed():
    # Epilogue tile 128 -> blocks of 32 rows; output row j takes source row
    # 4 * (j % 8) + j // 8 (FlashInfer's srcToDstBlk32RowMap sends 1 -> 8, 4 -> 1).
    expected = [0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29,
                2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31]  # fmt: skip
    assert _flashinfer.trtllm_row_indices(32, 128).tolist() == expected
    assert _flashinfer.trtllm_row_indices(64, 128).tolist() == expected + [32 + i for i in expected]
    # A tile that is not a multiple of 128 uses blocks of 16: pairs interleave.
    pairs = [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15]  # fmt: skip
    assert _flashinfer.trtllm_row_indices(16, 64).tolist() == pairs


@pytest.mark.parametrize("rows,tile", [(128, 128), (384, 128), (256, 256), (64, 64), (48, 32)])
def test_trtllm_permutation_matches_documented_table(rows, tile):
    ours = _flashinfer.trtllm_row_indices(rows, tile)
    assert sorted(ours.tolist()) == list(range(rows))  # a permutation
    assert torch.equal(ours, fakes.documented_shuffle_indices(rows, tile))
    t = torch.arange(rows * 3, dtype=torch.int32).reshape(rows, 3)
    shuffled = _flashinfer.trtllm_shuffle_rows(t, tile)
    restored = torch.empty_like(t)
    restored[ours] = shuffled  # the inverse permutation
    assert torch.equal(restored, t)


def test_trtllm_permutation_refuses_partial_blocks():
    with pytest.raises(FormatError, match="blocks of 32 rows.*got 40 rows"):
        _flashinfer.trtllm_row_indices(40, 128)


# ============================================================================
# Forward plumbing on CPU with fake libraries
# ============================================================================


def _dtypes(cls):
    return [d for d in (torch.bfloat16, torch.float16) if d in cls.act_dtypes]


PLUMBING = [
    pytest.param(
        cls,
        dtype,
        shape,
        bias,
        id=f"{cls.name}-{str(dtype)[6:]}-{shape}-{'bias' if bias else 'nobias'}",
    )
    for cls in ALL
    for dtype in _dtypes(cls)
    for shape in SHAPES
    for bias in (False, True)
]


@pytest.mark.parametrize("cls,dtype,shape,bias", PLUMBING)
def test_forward_matches_emulation(cls, dtype, shape, bias, fake_libraries, no_device_check):
    m, n, k = shape
    layer = make_layer(n, k, bias=bias)
    kernel = build(cls, layer, dtype)
    x = make_input(m, k, dtype)
    out = kernel.apply(layer, x)
    assert_matches_emulation(out, emulate(layer, x))
    assert no_device_check == [(cls.name, ("x",))]


def test_cublaslt_uses_scaled_mm_with_decode_scales(fake_torch_mm, no_device_check):
    layer = make_layer(48, 80, bias=True)
    kernel = build(CublasLtNvFp4LinearKernel, layer)
    kernel.apply(layer, make_input(5, 80, torch.bfloat16))
    (call,) = fake_torch_mm.calls
    assert call["entry"] == "scaled_mm" and call["output_dtype"] == torch.bfloat16
    assert (call["m"], call["n"], call["k"]) == (5, 64, 96)  # N and K padded to 32
    ga, gb = call["decode"]
    assert torch.equal(ga, 1 / layer.input_global_scale)
    assert torch.equal(gb, 1 / layer.weight_global_scale)
    assert call["bias"] is None  # added after slicing the padded N


def test_cublaslt_passes_stored_decode_factors_as_stored(fake_torch_mm, no_device_check):
    layer = make_decode_factor_layer(48, 80, bias=False)
    kernel = build(CublasLtNvFp4LinearKernel, layer)
    kernel.apply(layer, make_input(5, 80, torch.bfloat16))
    (call,) = fake_torch_mm.calls
    ga, gb = call["decode"]
    assert torch.equal(ga, F_IN) and torch.equal(gb, F_W)  # not 1 / fl32(1 / f)


@pytest.mark.parametrize("cls", ALL, ids=[c.name for c in ALL])
def test_stored_decode_factors_reach_every_backend(cls, fake_libraries, no_device_check):
    """A ModelOpt-style layer: its stored factors are the decode scales, alpha their product."""
    layer = make_decode_factor_layer(160, 128, bias=True)
    assert float(1 / layer.weight_global_scale) != float(F_W)  # the case that matters
    kernel = build(cls, layer)
    p = layer.prepared
    assert_global_scales(p, layer)
    assert torch.equal(p["alpha"], (F_IN * F_W).reshape(1))  # one float32 multiply
    assert torch.equal(p["input_global_scale"], (1 / F_IN).reshape(1))  # quantizes
    x = make_input(7, 128, torch.bfloat16)
    assert_matches_emulation(kernel.apply(layer, x), emulate(layer, x))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cublaslt_falls_back_to_scaled_mm_v1(dtype, fake_torch_mm, no_device_check, monkeypatch):
    monkeypatch.delattr(torch.nn.functional, "scaled_mm")
    layer = make_layer(160, 128, bias=True)
    kernel = build(CublasLtNvFp4LinearKernel, layer, dtype)
    x = make_input(130, 128, dtype)
    out = kernel.apply(layer, x)
    (call,) = fake_torch_mm.calls
    # float32 out: the unscaled FP4 product can exceed float16's range.
    assert call["entry"] == "_scaled_mm" and call["output_dtype"] == torch.float32
    assert_matches_emulation(out, emulate(layer, x))


@pytest.mark.parametrize("schema", ["use_mx", "output", "release-1.9"])
def test_fbgemm_follows_the_installed_schema(schema, monkeypatch, no_device_check):
    fake = fakes.FakeFbgemm(schema=schema)
    fake.install(monkeypatch)
    assert ("use_mx" in op_argument_names(torch.ops.fbgemm.f4f4bf16)) == (schema == "use_mx")
    layer = make_layer(48, 80, bias=False)
    kernel = build(FbgemmNvFp4LinearKernel, layer)
    x = make_input(3, 80, torch.bfloat16)
    out = kernel.apply(layer, x)
    assert_matches_emulation(out, emulate(layer, x))
    (gemm,) = fake.calls_of("f4f4bf16")
    assert gemm.get("use_mx", "absent") == (False if schema == "use_mx" else "absent")
    assert torch.equal(gemm["global_scale"].reshape(()), layer.output_scale())


def test_op_argument_names_reads_a_torch_schema():
    assert op_argument_names(torch.ops.aten.mm)[:2] == ("self", "mat2")


@pytest.mark.parametrize("cls", FLASHINFER)
def test_flashinfer_calls(cls, fake_flashinfer, no_device_check):
    layer = make_layer(48, 80, bias=False)
    kernel = build(cls, layer)
    kernel.apply(layer, make_input(3, 80, torch.bfloat16))
    (quant,) = fake_flashinfer.calls_of("fp4_quantize")
    (mm,) = fake_flashinfer.calls_of("mm_fp4")
    assert quant["k"] == 128  # K padded to 64 before quantization
    assert float(quant["global_scale"]) == pytest.approx(float(layer.input_global_scale))
    assert mm["backend"] == cls.MM_FP4_BACKEND and mm["k"] == 128
    assert mm["n"] == (128 if cls is FlashInferTrtllmNvFp4LinearKernel else 64)
    assert torch.equal(mm["alpha"].reshape(()), layer.output_scale())


def test_trtllm_forward_with_flashinfer_shuffle(monkeypatch, no_device_check):
    fake = fakes.FakeFlashInfer(with_shuffle=True)
    monkeypatch.setitem(sys.modules, "flashinfer", fake)
    layer = make_layer(160, 128, bias=True)
    kernel = build(FlashInferTrtllmNvFp4LinearKernel, layer)
    x = make_input(7, 128, torch.bfloat16)
    assert_matches_emulation(kernel.apply(layer, x), emulate(layer, x))


@pytest.mark.parametrize("cls", ALL)
def test_leading_dims_and_empty_batch(cls, fake_libraries, no_device_check):
    layer = make_layer(48, 80, bias=True)
    kernel = build(cls, layer)
    x = make_input(6, 80, torch.bfloat16).reshape(2, 3, 80)
    out = kernel.apply(layer, x)
    assert out.shape == (2, 3, 48)
    assert_matches_emulation(out, emulate(layer, x))
    calls_before = sum(len(f.calls) for f in fake_libraries.values())
    empty = kernel.apply(layer, x[:0])
    assert empty.shape == (0, 3, 48)
    assert sum(len(f.calls) for f in fake_libraries.values()) == calls_before  # nothing launched


@pytest.mark.parametrize("cls", ALL)
def test_plumbing_check_detects_a_layout_error(cls, fake_libraries, no_device_check, monkeypatch):
    """The plumbing test can fail: with the swizzle replaced by plain padding the
    fakes read the scales in the wrong order and the output leaves tolerance."""

    def pad_only(scale: torch.Tensor) -> torch.Tensor:
        rows, cols = layout.swizzled_shape(*scale.shape)
        return _flashinfer.pad_2d(scale, rows, cols)

    layer = make_layer(160, 128, bias=False)
    monkeypatch.setattr(layout, "swizzle_scales", pad_only)
    kernel = build(cls, layer)
    x = make_input(9, 128, torch.bfloat16)
    out = kernel.apply(layer, x)
    with pytest.raises(AssertionError, match="backend - emulation"):
        assert_matches_emulation(out, emulate(layer, x))


# ============================================================================
# Refusals: missing libraries, CPU tensors, unsupported layers
# ============================================================================


@pytest.mark.parametrize("cls", ALL)
def test_real_device_check_refuses_cpu_tensors(cls, fake_libraries):
    layer = make_layer(48, 80, bias=False)
    kernel = build(cls, layer)
    with pytest.raises(FormatError, match=rf"{cls.name} runs on CUDA tensors only; x is on cpu"):
        kernel.apply(layer, make_input(2, 80, torch.bfloat16))
    assert not any(f.calls for f in fake_libraries.values() if f is not fake_libraries["torch"])
    assert fake_libraries["torch"].calls == []


@pytest.mark.parametrize(
    "cls,module",
    [(c, "flashinfer") for c in FLASHINFER]
    + [(FbgemmNvFp4LinearKernel, "fbgemm_gpu.experimental.gen_ai")],
)
def test_missing_library_is_reported(cls, module, monkeypatch, fake_libraries, no_device_check):
    layer = make_layer(48, 80, bias=False)
    kernel = build(cls, layer)  # processed while the (fake) library was there
    monkeypatch.setitem(sys.modules, module, None)  # now it is gone: import raises ImportError
    package = module.split(".")[0]
    with pytest.raises(
        BackendUnavailableError, match=rf"{cls.name} needs the {package} package \(pip install"
    ):
        kernel.apply(layer, make_input(2, 80, torch.bfloat16))
    fresh = make_layer(48, 80, bias=False)
    with pytest.raises(BackendUnavailableError, match=rf"{cls.name} needs the {package} package"):
        cls(fresh.config(), platform=FAKE_B200).process_weights(fresh)


def test_cublaslt_reports_a_torch_without_fp4(monkeypatch):
    monkeypatch.delattr(torch, "float4_e2m1fn_x2")
    layer = make_layer(48, 80, bias=False)
    with pytest.raises(BackendUnavailableError, match=r"cublaslt needs torch.float4_e2m1fn_x2"):
        CublasLtNvFp4LinearKernel(layer.config(), platform=FAKE_B200).process_weights(layer)


def test_cublaslt_reports_a_torch_without_scaled_mm(monkeypatch):
    monkeypatch.delattr(torch.nn.functional, "scaled_mm")
    monkeypatch.delattr(torch, "_scaled_mm")
    layer = make_layer(48, 80, bias=False)
    with pytest.raises(BackendUnavailableError, match=r"scaled_mm or torch._scaled_mm"):
        CublasLtNvFp4LinearKernel(layer.config(), platform=FAKE_B200).process_weights(layer)


def test_incomplete_libraries_are_reported(monkeypatch, no_device_check):
    fi = fakes.FakeFlashInfer()
    monkeypatch.setitem(sys.modules, "flashinfer", fi)
    layer = make_layer(48, 80, bias=False)
    kernel = build(FlashInferCutlassNvFp4LinearKernel, layer)
    monkeypatch.delattr(fakes.FakeFlashInfer, "mm_fp4")
    with pytest.raises(BackendUnavailableError, match=r"needs flashinfer.mm_fp4.*0.0.fake"):
        kernel.apply(layer, make_input(2, 80, torch.bfloat16))
    fb = fakes.FakeFbgemm(with_gemm=False)
    fb.install(monkeypatch)
    layer = make_layer(48, 80, bias=False)
    with pytest.raises(BackendUnavailableError, match=r"torch.ops.fbgemm.f4f4bf16"):
        build(FbgemmNvFp4LinearKernel, layer)


@pytest.mark.parametrize("cls", ALL)
def test_weight_only_and_mismatched_layers_are_refused(cls, fake_libraries):
    w4a16 = NvFp4LinearLayer.from_float(torch.randn(48, 80), input_amax=None)
    kernel = cls(NvFp4LinearConfig(80, 48), platform=FAKE_B200)
    with pytest.raises(FormatError, match=rf"{cls.name} computes FP4 x FP4 .* weight-only"):
        kernel.process_weights(w4a16)
    other = make_layer(64, 80, bias=False)
    with pytest.raises(FormatError, match=r"built for N x K = 48 x 80, the layer is 64 x 80"):
        kernel.process_weights(other)


def test_trtllm_takes_bf16_only():
    ok, reason = FlashInferTrtllmNvFp4LinearKernel.can_implement(
        NvFp4LinearConfig(128, 128, torch.float16)
    )
    assert not ok and reason == "flashinfer-trtllm takes bfloat16 activations, layer has float16"
    assert FlashInferTrtllmNvFp4LinearKernel.can_implement(NvFp4LinearConfig(128, 128))[0]
    # The other FlashInfer backends and cuBLASLt keep the base rule (bf16 and fp16).
    for cls in (
        FlashInferCutlassNvFp4LinearKernel,
        FlashInferCudnnNvFp4LinearKernel,
        CublasLtNvFp4LinearKernel,
    ):
        assert cls.can_implement(NvFp4LinearConfig(128, 128, torch.float16)) == (True, None)


def test_modules_import_without_the_libraries():
    # The backend modules were imported at the top of this file; none of the
    # libraries may have been imported by that (they are imported at call time).
    import pathlib
    import subprocess

    repo = pathlib.Path(__file__).resolve().parents[3]
    code = (
        "import sys; import kernels.linear.registry; "
        "bad = [m for m in ('flashinfer', 'fbgemm_gpu') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo)


# ============================================================================
# Real hardware (Blackwell): the libraries against the emulation
# ============================================================================


def _require_supported(cls) -> None:
    ok, reason = cls.is_supported(current_platform())
    if not ok:
        pytest.skip(reason)


def _rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


@pytest.mark.blackwell
@pytest.mark.parametrize("cls", ALL, ids=[c.name for c in ALL])
@pytest.mark.parametrize("shape", [(1, 256, 512), (7, 200, 320), (130, 512, 256)])
def test_real_library_matches_emulation(cls, shape):
    """Tolerance: relative Frobenius error <= 2e-2 and max error <= 0.1 x max |ref|.

    Library quantizers may round a few activation codes differently from the
    reference at ties, and the GEMMs accumulate in their own order; vLLM's own
    NVFP4 GEMM tests allow atol = rtol = 0.1 against a dequantized reference.
    """
    _require_supported(cls)
    m, n, k = shape
    layer = make_layer(n, k, bias=True).to("cuda")
    dtype = torch.bfloat16
    kernel = cls(layer.config(dtype))
    kernel.process_weights(layer)
    x = make_input(m, k, dtype).cuda()
    out = kernel.apply(layer, x)
    torch.cuda.synchronize()
    ref = emulate(layer, x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert _rel_error(out, ref) <= 2e-2
    assert float((out.float() - ref.float()).abs().max()) <= 0.1 * float(ref.float().abs().max())


@pytest.mark.blackwell
def test_real_trtllm_shuffle_equals_ours():
    _require_supported(FlashInferTrtllmNvFp4LinearKernel)
    import flashinfer

    if not hasattr(flashinfer, "shuffle_matrix_sf_a"):
        pytest.skip("the installed flashinfer has no shuffle_matrix_sf_a")
    layer = make_layer(256, 512, bias=False).to("cuda")
    theirs = _flashinfer.prepare_trtllm(layer, flashinfer)
    ours = _flashinfer.prepare_trtllm(layer, object())  # no shuffle functions: ours
    assert theirs["shuffle_impl"] == "flashinfer" and ours["shuffle_impl"] == "torch"
    assert torch.equal(theirs["weight"], ours["weight"])
    assert torch.equal(
        theirs["weight_scale"].view(torch.uint8), ours["weight_scale"].view(torch.uint8)
    )


@pytest.mark.gpu
@pytest.mark.parametrize("entry", ["scaled_mm", "_scaled_mm"])
def test_cublaslt_call_passes_torch_validation_on_hopper(entry, monkeypatch):
    """On sm_90 the real call must get through every PyTorch argument check
    (recipe, scale element counts, swizzle, strides, K/N multiples) and be
    refused only by cuBLASLt itself, which has no FP4 kernels there. Seen on an
    H100 with torch 2.11+cu130: CUBLAS_STATUS_NOT_SUPPORTED from
    cublasLtMatmulAlgoGetHeuristic for both entry points."""
    p = current_platform()
    if not p.is_family(9):
        pytest.skip(f"needs a Hopper (sm_90) GPU to observe cuBLASLt's refusal, platform is {p.sm}")
    import kernels.linear.cublaslt as cublaslt

    monkeypatch.setattr(cublaslt, "scaled_mm_entry", lambda: entry)
    layer = make_layer(200, 320, bias=True).to("cuda")
    kernel = CublasLtNvFp4LinearKernel(layer.config(), platform=FAKE_B200)
    kernel.process_weights(layer)
    x = make_input(7, 320, torch.bfloat16).cuda()
    with pytest.raises(RuntimeError, match="CUBLAS_STATUS_NOT_SUPPORTED"):
        kernel.apply(layer, x)
        torch.cuda.synchronize()
