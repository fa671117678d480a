"""``fbgemm`` against the real FBGEMM GenAI package, as far as a CPU allows.

The limit: ``fbgemm_gpu`` cannot be imported with a CPU build of torch. Its
extension ``fbgemm_gpu_experimental_gen_ai.so`` links ``libtorch_cuda.so``,
``libc10_cuda.so`` and ``libcudart.so.13`` (asserted below), so neither the
package nor its ``torch.ops.fbgemm`` operators load here.

What is checked instead, against the installed wheel's own files:

* the operator schemas, read from the extension's string table exactly as
  the library registers them (``f4f4bf16(...) -> Tensor``,
  ``scaled_fp4_quant(...) -> ()``), parsed by torch;
* those schemas registered with torch's dispatcher (CPU kernels computed from
  the format reference stand in for the CUDA ones), so every call our backend
  makes goes through the dispatcher's own argument checking against the real
  schema;
* the real Python wrapper ``scale_nvfp4_quant`` (compiled from the installed
  ``gen_ai/quantize.py``; importing that module would load the extension): our
  backend calls it, and it calls the real-schema quantize operator.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.fbgemm import FbgemmNvFp4LinearKernel, op_argument_names
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout
from kernels.platform import Platform
from tests.contracts import contract
from tests.contracts.support import Call, matrix_layers
from tests.support import fakes

DIST = "fbgemm-gpu-genai"
OPS = ("f4f4bf16", "scaled_fp4_quant")
FAKE_B200 = Platform(
    name="fake B200 (contracts)",
    device_type="cuda",
    capability=(10, 0),
    cuda_version=(12, 8),
    packages=frozenset({"fbgemm_gpu"}),
)


def _installed_file(suffix: str) -> Path:
    for f in importlib.metadata.files(DIST) or ():
        if str(f).endswith(suffix):
            return Path(f.locate())
    raise AssertionError(f"{DIST} has no installed file ending in {suffix!r}")


EXTENSION = _installed_file("gen_ai/fbgemm_gpu_experimental_gen_ai.so")
QUANTIZE_PY = _installed_file("gen_ai/quantize.py")


def extension_schemas() -> dict[str, str]:
    """``name -> schema`` of OPS, as registered by the installed extension (its string table)."""
    data = EXTENSION.read_bytes()
    found: dict[str, set[str]] = {}
    for name in OPS:
        pattern = rb"(?<![\w])" + name.encode() + rb"\((?:[^()\x00]|\([^()\x00]*\))*\) -> [^\x00]+"
        found[name] = {m.group(0).decode() for m in re.finditer(pattern, data)}
    for name, schemas in found.items():
        assert len(schemas) == 1, f"{EXTENSION.name}: schemas for {name}: {sorted(schemas)}"
    return {name: schemas.pop() for name, schemas in found.items()}


SCHEMAS = extension_schemas()


def test_extension_needs_cuda_torch():
    """The stated limit: the extension links CUDA torch libraries, so it cannot load here."""
    needed = subprocess.run(
        ["readelf", "-d", str(EXTENSION)], capture_output=True, text=True, check=False
    )
    if needed.returncode == 0:
        libs = set(re.findall(r"Shared library: \[([^\]]+)\]", needed.stdout))
        assert {"libtorch_cuda.so", "libc10_cuda.so"} <= libs, sorted(libs)
    probe = subprocess.run(
        [sys.executable, "-c", "import fbgemm_gpu.experimental.gen_ai"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0, "fbgemm_gpu imported on a CPU build: call the real ops instead"
    assert "Could not load this library" in probe.stderr or "libtorch_cuda" in probe.stderr


def test_schemas_parse_and_have_what_we_call():
    gemm = torch._C.parse_schema("fbgemm::" + SCHEMAS["f4f4bf16"])
    names = [a.name for a in gemm.arguments]
    assert names[:4] == ["XQ", "WQ", "x_scale", "w_scale"]
    assert "global_scale" in names
    quant = torch._C.parse_schema("fbgemm::" + SCHEMAS["scaled_fp4_quant"])
    assert [a.name for a in quant.arguments] == ["output", "input", "output_scale", "input_scale"]


# --- the real wrapper and the real schemas, on the dispatcher -----------------------------


def real_scale_nvfp4_quant():
    """``scale_nvfp4_quant`` compiled from the installed quantize.py, without importing it."""
    source = QUANTIZE_PY.read_text()
    tree = ast.parse(source)
    (node,) = [n for n in tree.body if getattr(n, "name", None) == "scale_nvfp4_quant"]
    module = ast.Module(body=[node], type_ignores=[])
    namespace: dict[str, object] = {"torch": torch}
    exec(compile(module, str(QUANTIZE_PY), "exec"), namespace)
    return namespace["scale_nvfp4_quant"]


class CpuOps:
    """CPU kernels for the two operators, from the format reference; they record their calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def scaled_fp4_quant(self, output, input, output_scale, input_scale):
        self.calls.append(Call("scaled_fp4_quant", (output, input, output_scale, input_scale), {}))
        codes, scale = fmt.quantize_raw(input, input_scale.reshape(()).float())
        output.copy_(codes)
        swizzled = layout.swizzle_scales(scale).view(torch.uint8).reshape(-1)
        output_scale.view(torch.uint8).reshape(-1).copy_(swizzled)

    def f4f4bf16(self, XQ, WQ, x_scale, w_scale, output=None, global_scale=None):
        self.calls.append(
            Call(
                "f4f4bf16",
                (XQ, WQ, x_scale, w_scale),
                dict(output=output, global_scale=global_scale),
            )
        )
        m, n, k = XQ.shape[0], WQ.shape[0], 2 * XQ.shape[1]
        out = fakes.decode(XQ, x_scale, m, k) @ fakes.decode(WQ, w_scale, n, k).t()
        return (out * global_scale.reshape(())).to(torch.bfloat16)


@pytest.fixture(scope="module")
def fbgemm_on_dispatcher():
    lib = torch.library.Library("fbgemm", "FRAGMENT")
    ops = CpuOps()
    for name in OPS:
        lib.define(SCHEMAS[name])
        lib.impl(name, getattr(ops, name), "CPU")
    yield ops
    lib._destroy()


@pytest.fixture
def fbgemm_modules(monkeypatch, fbgemm_on_dispatcher, no_device_check):
    """``fbgemm_gpu.experimental.gen_ai[.quantize]`` as our backend imports them.

    The package modules are plain modules (the operators are already registered);
    ``quantize.scale_nvfp4_quant`` is the library's own code.
    """
    quantize = types.ModuleType("fbgemm_gpu.experimental.gen_ai.quantize")
    quantize.scale_nvfp4_quant = real_scale_nvfp4_quant()
    names = ["fbgemm_gpu", "fbgemm_gpu.experimental", "fbgemm_gpu.experimental.gen_ai"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, quantize.__name__, quantize)
    fbgemm_on_dispatcher.calls.clear()
    return fbgemm_on_dispatcher


def random_layer(n: int, k: int) -> NvFp4LinearLayer:
    g = torch.Generator().manual_seed(n + k)
    return NvFp4LinearLayer(
        weight=torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8),
        weight_scale=torch.randint(0x20, 0x48, (n, k // 16), generator=g, dtype=torch.uint8).view(
            torch.float8_e4m3fn
        ),
        weight_global_scale=torch.tensor(1536.0),
        input_global_scale=torch.tensor(448.0),
    )


def _cases():
    for spec in matrix_layers():
        config = NvFp4LinearConfig(spec.k, spec.n, spec.dtype, spec.weight_only)
        if FbgemmNvFp4LinearKernel.can_implement(config)[0]:
            for m in (1, 129):
                yield pytest.param(spec, m, id=f"{spec.name}-M{m}")


@pytest.mark.parametrize("spec,m", list(_cases()))
def test_calls_go_through_the_real_schemas(spec, m, fbgemm_modules):
    layer = random_layer(spec.n, spec.k)
    kernel = FbgemmNvFp4LinearKernel(layer.config(spec.dtype), platform=FAKE_B200)
    kernel.process_weights(layer)
    # What our backend reads from the installed schema: no use_mx in this release.
    names = op_argument_names(torch.ops.fbgemm.f4f4bf16)
    assert ("use_mx" in names) == ("use_mx" in SCHEMAS["f4f4bf16"])
    x = torch.randn(m, spec.k, generator=torch.Generator().manual_seed(m)).to(spec.dtype)
    out = kernel.apply(layer, x)
    assert out.shape == (m, spec.n) and out.dtype == torch.bfloat16

    by_name = {c.function: c for c in fbgemm_modules.calls}
    assert sorted(by_name) == sorted(OPS) and len(fbgemm_modules.calls) == 2
    gemm_schema = torch.ops.fbgemm.f4f4bf16.default._schema
    gemm = contract.bind_schema(gemm_schema, by_name["f4f4bf16"]).arguments
    xq, wq = gemm["XQ"], gemm["WQ"]
    assert xq.dtype == wq.dtype == torch.uint8 and xq.is_contiguous() and wq.is_contiguous()
    assert xq.shape[1] == wq.shape[1], "K/2 of activations and weight"
    k = 2 * xq.shape[1]
    for name, rows in (("x_scale", m), ("w_scale", wq.shape[0])):
        s = gemm[name]
        want = layout.round_up(rows, 128) * layout.round_up(k // 16, 4)
        assert s.dtype == torch.uint8 and s.dim() == 1 and s.numel() == want, (
            f"{name}: {s.dtype} {tuple(s.shape)}, 128x4 needs {want} flat uint8"
        )
    g = gemm["global_scale"]
    assert g is not None and g.dtype == torch.float32 and g.numel() == 1
    alpha = 1 / (float(layer.input_global_scale) * float(layer.weight_global_scale))
    assert float(g) == pytest.approx(alpha, rel=1e-6)
    assert gemm["output"] is None

    quant_schema = torch.ops.fbgemm.scaled_fp4_quant.default._schema
    quant = contract.bind_schema(quant_schema, by_name["scaled_fp4_quant"]).arguments
    assert quant["input_scale"].dtype == torch.float32
    assert float(quant["input_scale"]) == float(layer.input_global_scale)  # the multiplier


def test_dispatcher_refuses_a_keyword_the_schema_lacks(fbgemm_on_dispatcher):
    """The check the recorded calls went through: an argument not in the real schema is refused."""
    z = torch.zeros(1, 8, dtype=torch.uint8)
    with pytest.raises(Exception, match="use_mx"):
        torch.ops.fbgemm.f4f4bf16(
            z, z, z.reshape(-1), z.reshape(-1), global_scale=None, use_mx=False
        )


def test_real_wrapper_output_layout(fbgemm_on_dispatcher):
    """``scale_nvfp4_quant`` hands back codes [M, K/2] and e4m3 scales [round_up(M,128), round_up(K/16,4)]."""
    quant = real_scale_nvfp4_quant()
    x = torch.randn(5, 80, dtype=torch.bfloat16)
    gs = fmt.global_scale_from_amax(x.float().abs().max()).reshape(1)
    codes, scale = quant(x, gs)
    assert codes.shape == (5, 40) and codes.dtype == torch.uint8
    assert scale.dtype == torch.float8_e4m3fn and scale.shape == (128, 8)
    ref_codes, ref_scale = fmt.quantize(x, gs)
    assert torch.equal(codes, ref_codes)
    assert torch.equal(
        layout.unswizzle_scales(scale, 5, 5).view(torch.uint8), ref_scale.view(torch.uint8)
    )


def test_fake_schemas_match_a_real_one():
    """tests/linear/fakes.py models two f4f4bf16 schemas; the installed one must be one of them."""
    real = [a.name for a in torch._C.parse_schema("fbgemm::" + SCHEMAS["f4f4bf16"]).arguments]
    fake = fakes.FakeFbgemm

    variants = {
        "use_mx": list(inspect.signature(fake._f4f4bf16_use_mx).parameters)[1:],
        "output": list(inspect.signature(fake._f4f4bf16_output).parameters)[1:],
        "release-1.9": list(inspect.signature(fake._f4f4bf16_release_1_9).parameters)[1:],
    }
    assert real in variants.values(), f"real {real}; fakes {variants}"
