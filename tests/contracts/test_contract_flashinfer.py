"""The three FlashInfer backends against the real ``flashinfer`` (imported on a CPU).

* Every call our backends make (``fp4_quantize``, ``mm_fp4``, ``shuffle_matrix_a``,
  ``shuffle_matrix_sf_a``), recorded on the matrix layers' shapes, binds to the
  real signature, every literal fits its annotation, and FlashInfer's own
  ``mm_fp4`` argument checks (the ones its ``@backend_requirement`` runs before a
  launch) accept our arguments.
* ``shuffle_matrix_a`` runs on a CPU: bitwise against our trtllm row shuffle.
  ``shuffle_matrix_sf_a`` is a CPU row gather plus a CUDA-only interleave: its
  row indices and FlashInfer's pure-torch 128x4 swizzle helper are compared
  bitwise with ours, and the CUDA-only refusal is asserted.
* Our support rules against FlashInfer's ``@supported_compute_capability`` lists.
* The fakes in ``tests/linear/fakes.py`` take the real parameters and defaults.
"""

from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path

import flashinfer
import pytest
import torch
import yaml

from kernels.linear import _flashinfer
from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.flashinfer_cudnn import FlashInferCudnnNvFp4LinearKernel
from kernels.linear.flashinfer_cutlass import FlashInferCutlassNvFp4LinearKernel
from kernels.linear.flashinfer_trtllm import FlashInferTrtllmNvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import layout
from kernels.platform import Platform
from tests.contracts import contract
from tests.contracts.support import ROOT, Recorder, matrix_layers
from tests.support import fakes

BACKENDS = (
    FlashInferCutlassNvFp4LinearKernel,
    FlashInferTrtllmNvFp4LinearKernel,
    FlashInferCudnnNvFp4LinearKernel,
)
#: the real functions, looked up once before any test replaces them
REAL = {
    name: getattr(flashinfer, name)
    for name in ("fp4_quantize", "mm_fp4", "shuffle_matrix_a", "shuffle_matrix_sf_a")
}
FAKE_B200 = Platform(
    name="fake B200 (contracts)",
    device_type="cuda",
    capability=(10, 0),
    cuda_version=(12, 8),
    packages=frozenset({"flashinfer"}),
)
#: batch sizes: one row, and more than one 128-row scale tile
M_VALUES = (1, 129)


def random_layer(n: int, k: int, seed: int = 0) -> NvFp4LinearLayer:
    """A W4A4 layer with random codes and positive finite E4M3 scales (cheap at 4096 x 11008)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8)
    scale = torch.randint(0x20, 0x48, (n, k // 16), generator=g, dtype=torch.uint8)
    return NvFp4LinearLayer(
        weight=weight,
        weight_scale=scale.view(torch.float8_e4m3fn),
        weight_global_scale=torch.tensor(1536.0),
        input_global_scale=torch.tensor(448.0),
    )


def _cases():
    for cls in BACKENDS:
        for spec in matrix_layers():
            config = NvFp4LinearConfig(spec.k, spec.n, spec.dtype, spec.weight_only)
            if cls.can_implement(config)[0]:
                for m in M_VALUES:
                    yield pytest.param(cls, spec, m, id=f"{cls.name}-{spec.name}-M{m}")


@pytest.fixture
def recorders(monkeypatch, no_device_check):
    """The four FlashInfer functions our backends call, replaced by recorders.

    ``shuffle_matrix_a`` is the real function (it runs on a CPU); the others
    compute with the CPU fakes (their real kernels need CUDA).
    """
    fake = fakes.FakeFlashInfer(with_shuffle=True)
    compute = {
        "fp4_quantize": fake.fp4_quantize,
        "mm_fp4": fake.mm_fp4,
        "shuffle_matrix_a": REAL["shuffle_matrix_a"],
        "shuffle_matrix_sf_a": fake._shuffle_matrix_sf_a,
    }
    recs = {name: Recorder(name, compute[name], real=REAL[name]) for name in compute}
    for name, rec in recs.items():
        monkeypatch.setattr(flashinfer, name, rec)
    return recs


def _problem_size_checks():
    """What ``mm_fp4``'s ``@backend_requirement`` wrapper runs before a launch.

    ``_is_problem_size_supported`` (the common check, then the backend's check)
    and ``common_check`` are read from the wrapper's closure, so the test runs
    exactly what ``flashinfer.mm_fp4`` runs.
    """
    outer = inspect.getclosurevars(REAL["mm_fp4"]).nonlocals
    if "_is_problem_size_supported" not in outer or "common_check" not in outer:
        raise contract.ContractError(
            "flashinfer.mm_fp4 is no longer wrapped by @backend_requirement as in 0.7 "
            f"(closure has {sorted(outer)}): the argument checks must be found anew"
        )
    return outer["_is_problem_size_supported"], outer["common_check"]


@pytest.mark.parametrize("cls,spec,m", list(_cases()))
def test_calls_bind_to_the_real_api(cls, spec, m, recorders):
    layer = random_layer(spec.n, spec.k)
    kernel = cls(layer.config(spec.dtype), platform=FAKE_B200)
    kernel.process_weights(layer)
    x = torch.randn(m, spec.k, generator=torch.Generator().manual_seed(m)).to(spec.dtype)
    out = kernel.apply(layer, x)
    assert out.shape == (m, spec.n) and out.dtype == spec.dtype

    shuffles = 1 if cls.SHUFFLE_WEIGHTS else 0
    counts = {name: len(rec.calls) for name, rec in recorders.items()}
    assert counts == {
        "fp4_quantize": 1,
        "mm_fp4": 1,
        "shuffle_matrix_a": shuffles,
        "shuffle_matrix_sf_a": shuffles,
    }
    bound = {}
    for name, rec in recorders.items():
        for call in rec.calls:
            bound[name] = contract.bind(REAL[name], call)
            contract.check_values(REAL[name], bound[name])

    # fp4_quantize: plain NVFP4, 128x4 scales, our multiplier convention, no
    # environment-dependent recipe.
    q = bound["fp4_quantize"].arguments
    assert (q["sf_vec_size"], q["sf_use_ue8m0"]) == (16, False)
    assert (q["is_sf_swizzled_layout"], q["is_sf_8x4_layout"]) == (True, False)
    assert q["input"].dtype in (torch.bfloat16, torch.float16)
    assert q["global_scale"].dtype == torch.float32 and q["global_scale"].shape == (1,)
    assert float(q["global_scale"]) == float(layer.input_global_scale)
    params = inspect.signature(REAL["fp4_quantize"]).parameters
    if "is_global_scale_inversed" in params:
        assert "is_global_scale_inversed" in recorders["fp4_quantize"].calls[0].kwargs
        assert q["is_global_scale_inversed"] is False
    if "nvfp4_4over6" in params:
        # The real default reads FLASHINFER_NVFP4_4OVER6* from the environment.
        assert recorders["fp4_quantize"].calls[0].kwargs.get("nvfp4_4over6", "absent") is None

    # mm_fp4: FlashInfer's own pre-launch checks accept what we pass.
    mm = bound["mm_fp4"].arguments
    assert mm["backend"] == cls.MM_FP4_BACKEND
    assert cls.MM_FP4_BACKEND in contract.literal_values(REAL["mm_fp4"], "backend")
    problem_size_supported, common_check = _problem_size_checks()
    if cls.MM_FP4_BACKEND == "cudnn":
        # The cudnn requirement first imports the cuDNN frontend (a CUDA library,
        # not installed here); the common shape/dtype check is the part that runs.
        assert common_check(**mm) is True
    else:
        assert problem_size_supported(**mm) is True
    assert mm["b"].stride(0) == 1, "b must be column-major [K/2, N]"
    assert mm["a"].is_contiguous()
    k_bytes = mm["a"].shape[1]
    assert mm["b"].shape[0] == k_bytes
    # Scales: the 128x4 layout's byte count for each operand.
    n_pad = mm["b"].shape[1]
    for name, rows in (("a_descale", m), ("b_descale", n_pad)):
        want = layout.round_up(rows, 128) * layout.round_up(2 * k_bytes // 16, 4)
        assert mm[name].numel() == want, f"{name}: {mm[name].numel()} bytes, 128x4 needs {want}"


def test_cudnn_requirement_needs_the_cudnn_frontend():
    """The limit stated in test_calls_bind_to_the_real_api for cudnn, kept true."""
    problem_size_supported, _ = _problem_size_checks()
    a = torch.zeros(1, 64, dtype=torch.uint8)
    args = dict(
        a=a,
        b=torch.zeros(128, 64, dtype=torch.uint8).t(),
        a_descale=torch.zeros(128, 8, dtype=torch.uint8),
        b_descale=torch.zeros(128, 8, dtype=torch.uint8).t(),
        alpha=torch.ones(1),
        out_dtype=torch.bfloat16,
        out=None,
        block_size=16,
        use_8x4_sf_layout=False,
        backend="cudnn",
        use_nvfp4=True,
        enable_pdl=True,
    )
    with pytest.raises(Exception, match="(?i)cudnn"):
        problem_size_supported(**args)


def test_trtllm_check_refuses_what_our_dtype_rule_refuses():
    """Our trtllm bf16-only rule is FlashInfer's: its check refuses fp16 output."""
    problem_size_supported, _ = _problem_size_checks()
    args = dict(
        a=torch.zeros(1, 64, dtype=torch.uint8),
        b=torch.zeros(128, 64, dtype=torch.uint8).t(),
        a_descale=torch.zeros(128, 8, dtype=torch.uint8),
        b_descale=torch.zeros(128, 8, dtype=torch.uint8).t(),
        alpha=torch.ones(1),
        out_dtype=torch.float16,
        out=None,
        block_size=16,
        use_8x4_sf_layout=False,
        backend="trtllm",
        use_nvfp4=True,
        enable_pdl=True,
    )
    with pytest.raises(ValueError, match="Only torch.bfloat16"):
        problem_size_supported(**args)
    config = NvFp4LinearConfig(128, 128, torch.float16)
    assert not FlashInferTrtllmNvFp4LinearKernel.can_implement(config)[0]


# --- support rules against FlashInfer's capability lists ----------------------------------

#: capabilities FlashInfer lists that our rules leave out on purpose (docs/backends.md)
NOT_CLAIMED = {
    110: "sm_110 (family 11, Jetson Thor): left out until it runs here; the thor profile checks it"
}


def _profile_capabilities() -> dict[str, int]:
    data = yaml.safe_load(Path(ROOT / "matrix" / "gpus.yaml").read_text())
    out = {}
    for pid, p in data["profiles"].items():
        if p.get("device_type") == "cuda":
            major, minor = (int(v) for v in str(p["capability"]).split("."))
            out[pid] = major * 10 + minor
    return out


@pytest.mark.parametrize("cls", BACKENDS, ids=lambda c: c.name)
def test_support_rule_matches_flashinfer_capabilities(cls):
    mm = REAL["mm_fp4"]
    assert mm.has_backend(cls.MM_FP4_BACKEND)
    for pid, cc in _profile_capabilities().items():
        ours = cc // 10 in cls.SUPPORTED_FAMILIES
        theirs = mm.is_backend_supported(cls.MM_FP4_BACKEND, cc)
        if cc in NOT_CLAIMED:
            # a documented exclusion (a profile such as thor, sm_110): FlashInfer lists it, we don't
            assert not ours, f"{cls.name} claims sm_{cc}, which is documented as not claimed"
            continue
        assert ours == theirs, (
            f"{cls.name} on profile {pid} (sm_{cc}): our rule says {ours}, FlashInfer's "
            f"mm_fp4 backend {cls.MM_FP4_BACKEND!r} says {theirs}"
        )
    # Every capability FlashInfer lists for the backend is in one of our
    # families, or a documented exclusion.
    listed = [cc for cc in range(70, 130) if mm.is_backend_supported(cls.MM_FP4_BACKEND, cc)]
    unclaimed = [cc for cc in listed if cc // 10 not in cls.SUPPORTED_FAMILIES]
    assert set(unclaimed) <= set(NOT_CLAIMED), (
        f"{cls.name}: FlashInfer supports {listed}; our families {cls.SUPPORTED_FAMILIES} "
        f"leave out {unclaimed}, of which only {sorted(NOT_CLAIMED)} are documented"
    )


# --- CPU-capable helpers, bitwise against ours ----------------------------------------------


@pytest.mark.parametrize("rows,tile", [(128, 128), (384, 128), (256, 256), (64, 64), (48, 32)])
def test_shuffle_matrix_a_is_our_row_shuffle(rows, tile):
    g = torch.Generator().manual_seed(rows + tile)
    t = torch.randint(0, 256, (rows, 40), generator=g, dtype=torch.uint8)
    theirs = REAL["shuffle_matrix_a"](t, tile)
    assert torch.equal(theirs, _flashinfer.trtllm_shuffle_rows(t, tile))


@pytest.mark.parametrize("rows,tile", [(128, 128), (512, 128), (256, 256)])
def test_shuffle_matrix_sf_a_rows_and_swizzle_are_ours(rows, tile):
    """``shuffle_matrix_sf_a`` = row gather (CPU) then ``block_scale_interleave`` (CUDA only)."""
    from flashinfer.utils import get_shuffle_matrix_sf_a_row_indices

    cols = 8
    sf = torch.randint(0, 127, (rows, cols), dtype=torch.uint8)
    indices = get_shuffle_matrix_sf_a_row_indices(sf, tile)
    assert torch.equal(indices.cpu().long(), _flashinfer.trtllm_row_indices(rows, tile))
    with pytest.raises(ValueError, match="cuda"):
        REAL["shuffle_matrix_sf_a"](sf, tile)  # the interleave is a CUDA kernel


def test_flashinfer_swizzle_helper_is_our_128x4_layout():
    """FlashInfer's pure-torch 128x4 scale swizzle (used by its diffusion ops) against ours."""
    # The package re-exports a function of the module's name: import the module itself.
    helpers = importlib.import_module("flashinfer.diffusion_ops.minimax_h3_fc1_swiglu")

    for rows, cols in [(128, 4), (130, 5), (1, 1), (300, 64)]:
        sf = torch.randint(0, 127, (rows, cols), dtype=torch.uint8)
        theirs = helpers._swizzle_sf_128x4(sf)
        ours = layout.swizzle_scales(sf.view(torch.float8_e4m3fn)).view(torch.uint8).reshape(-1)
        assert torch.equal(theirs, ours), f"[{rows}, {cols}]"
        back = helpers._unswizzle_sf_128x4(theirs, rows, cols)
        assert torch.equal(back[:rows, :cols], sf)


def test_fp4_quantize_sf_columns_are_padded_to_4():
    """0.7 reshapes swizzled scales to round_up(K/16, 4) columns (our K padding is harmless)."""
    source = inspect.getsource(REAL["fp4_quantize"])
    assert "round_up(input.shape[-1] // sf_vec_size, 4)" in source


# --- the fakes take the real parameters ----------------------------------------------------


@pytest.mark.parametrize(
    "name,fake_fn",
    [
        ("fp4_quantize", fakes.FakeFlashInfer.fp4_quantize),
        ("mm_fp4", fakes.FakeFlashInfer.mm_fp4),
        ("shuffle_matrix_a", fakes.FakeFlashInfer._shuffle_matrix_a),
        ("shuffle_matrix_sf_a", fakes.FakeFlashInfer._shuffle_matrix_sf_a),
    ],
)
def test_fake_signature_is_the_real_one(name, fake_fn):
    real = inspect.signature(REAL[name]).parameters
    fake = list(inspect.signature(fake_fn).parameters.values())[1:]  # drop self
    assert [p.name for p in fake] == list(real), f"{name}: fake {fake} vs real {list(real)}"
    for p in fake:
        r = real[p.name].default
        if r is inspect.Parameter.empty or p.name == "nvfp4_4over6":
            continue  # nvfp4_4over6: the real default is an environment-reading sentinel
        assert p.default == r or (isinstance(r, float) and math.isclose(p.default, r)), (
            f"{name}({p.name}=...): fake default {p.default!r}, real {r!r}"
        )


def test_the_contract_checks_can_fail():
    """A wrong literal, a wrong keyword and a wrong dtype are each caught, naming both sides."""
    from tests.contracts.support import Call

    a = torch.zeros(1, 64, dtype=torch.uint8)
    good = dict(alpha=torch.ones(1), out_dtype=torch.bfloat16, block_size=16, backend="cutlass")
    base = (a, a.t(), a, a.t())
    contract.check_values(REAL["mm_fp4"], contract.bind(REAL["mm_fp4"], Call("mm_fp4", base, good)))
    wrong_literal = Call("mm_fp4", base, {**good, "backend": "trt-llm"})
    with pytest.raises(contract.ContractError, match="'backend': we pass 'trt-llm'.*one of"):
        contract.check_values(REAL["mm_fp4"], contract.bind(REAL["mm_fp4"], wrong_literal))
    wrong_name = Call("mm_fp4", base, {**good, "sf_layout_8x4": False})
    with pytest.raises(contract.ContractError, match="does not bind"):
        contract.bind(REAL["mm_fp4"], wrong_name)
    wrong_type = Call("mm_fp4", base, {**good, "out_dtype": "bfloat16"})
    with pytest.raises(contract.ContractError, match="'out_dtype'.*torch.dtype"):
        contract.check_values(REAL["mm_fp4"], contract.bind(REAL["mm_fp4"], wrong_type))
