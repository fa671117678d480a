"""Measure where the real NVFP4 encoders differ from ours (the numbers in docs/format.md).

Run in the contract lane's environment::

    .tox/contracts/bin/python -m tests.contracts.measure_encoders

For each encoder (compressed-tensors, ModelOpt, torchao) on the same bf16
weights and the same global scale: how many block scales and codes differ from
ours, whether our decode of its stored data equals its own decode evaluated
exactly (its formula in float64, rounded once to float32), and how its own
float32 decode (which rounds twice) differs from ours; then the conventions for
-0, NaN, all-zero and tiny blocks.
"""

from __future__ import annotations

import warnings

import torch

from kernels.nvfp4 import format as fmt

warnings.filterwarnings("ignore")

ROWS, COLS, SEEDS = 256, 4096, 4
E2M1 = fmt.e2m1_lut(torch.device("cpu")).double()


def codes(packed: torch.Tensor) -> torch.Tensor:
    return fmt.unpack_fp4(packed.view(torch.uint8)).long()


def ct(w: torch.Tensor):
    from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor
    from compressed_tensors.quantization import preset_name_to_scheme
    from compressed_tensors.quantization.lifecycle.forward import dequantize
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

    scheme = preset_name_to_scheme("NVFP4", ["Linear"])
    finite = torch.nan_to_num(w.float(), nan=0.0)
    gs = generate_gparam(finite.amin(), finite.amax())
    blocks = w.reshape(w.shape[0], -1, 16)
    scale, _ = calculate_qparams(blocks.amin(-1), blocks.amax(-1), scheme.weights, global_scale=gs)
    sd = NVFP4PackedCompressor.compress(
        {"weight": w, "weight_scale": scale, "weight_global_scale": gs}, scheme
    )
    from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8

    values = unpack_fp4_from_uint8(sd["weight_packed"], w.shape[0], w.shape[1], dtype=torch.float32)
    dec = dequantize(
        values,
        sd["weight_scale"].float(),
        args=scheme.weights,
        global_scale=gs,
        dtype=torch.float32,
    )
    exact = dequantize(
        values.double(),
        sd["weight_scale"].double(),
        args=scheme.weights,
        global_scale=gs.double(),
        dtype=torch.float64,
    ).float()
    return sd["weight_packed"], sd["weight_scale"], gs.reshape(()), None, dec, exact


def modelopt(w: torch.Tensor):
    from modelopt.torch.quantization.qtensor import NVFP4QTensor

    q, wsf, wsf2 = NVFP4QTensor.quantize(w.clone(), 16)
    dec = q.dequantize(dtype=torch.float32, scale=wsf, double_scale=wsf2, block_sizes={-1: 16})
    exact = q.dequantize(
        dtype=torch.float64, scale=wsf.double(), double_scale=wsf2.double(), block_sizes={-1: 16}
    ).float()
    f = wsf2.float().reshape(())
    return q._quantized_data, wsf, (1.0 / f), f, dec, exact


def torchao(w: torch.Tensor):
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, unpack_uint4
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale

    pts = per_tensor_amax_to_scale(torch.nan_to_num(w.float(), nan=0.0).abs().amax())
    t = NVFP4Tensor.to_nvfp4(w.contiguous(), per_tensor_scale=pts)
    # Its decode, values * (per_tensor_scale * scale), evaluated in float64.
    values = f4_unpacked_to_f32(unpack_uint4(t.qdata.view(torch.uint8))).double()
    blocks = values.reshape(w.shape[0], -1, 16) * t.scale.double().unsqueeze(-1)
    exact = (blocks * pts.double()).reshape(w.shape).float()
    f = pts.float().reshape(())
    return t.qdata, t.scale, (1.0 / f), f, t.dequantize(torch.float32), exact


ENCODERS = {
    "compressed-tensors (bf16 tensor)": ct,
    "compressed-tensors (float32 tensor)": lambda w: ct(w.float()),
    "ModelOpt NVFP4QTensor": modelopt,
    "torchao NVFP4Tensor": torchao,
}


def our_decode(packed, scale, gs, f) -> torch.Tensor:
    """What our loaders' layer decodes: times the stored decode factor, else over the multiplier."""
    packed, scale = packed.view(torch.uint8), scale.view(torch.float8_e4m3fn)
    if f is not None:
        return fmt.dequantize(packed, scale, decode_scale=f)
    return fmt.dequantize(packed, scale, gs)


def compare(name, encode) -> str:
    n_codes = n_scales = code_diff = scale_diff = exact_diff = decode_diff = 0
    for seed in range(SEEDS):
        g = torch.Generator().manual_seed(seed)
        w = (torch.randn(ROWS, COLS, generator=g) * 0.02).to(torch.bfloat16)
        packed, scale, gs, f, theirs_dec, theirs_exact = encode(w)
        ours_p, ours_s = fmt.quantize(w, gs)
        n_codes += w.numel()
        n_scales += ours_s.numel()
        scale_diff += int((ours_s.view(torch.uint8) != scale.view(torch.uint8)).sum())
        code_diff += int((E2M1[codes(ours_p)] != E2M1[codes(packed)]).sum())
        ours_dec = our_decode(packed, scale, gs, f)
        exact_diff += int((ours_dec != theirs_exact).sum())
        decode_diff += int((ours_dec != theirs_dec.float()).sum())
    return (
        f"| {name} | {scale_diff} / {n_scales} ({100 * scale_diff / n_scales:.3f}%) "
        f"| {code_diff} / {n_codes} ({100 * code_diff / n_codes:.3f}%) "
        f"| {exact_diff} / {n_codes} "
        f"| {100 * decode_diff / n_codes:.1f}% |"
    )


def _case(block: torch.Tensor) -> torch.Tensor:
    """[1, 32]: a block fixing amax = 1 (global scale 2688), then the block under test."""
    w = torch.zeros(1, 32)
    w[0, :16] = torch.linspace(-1.0, 1.0, 16)
    w[0, 16:] = block
    return w.to(torch.bfloat16)


CASES = {
    "all-zero block": torch.zeros(16),
    "-0.0 block": torch.full((16,), -0.0),
    "-1e-4 next to 0.5": torch.tensor([-1e-4, 0.5] + [0.25] * 14),
    "block of 2^-20": torch.full((16,), 2.0**-20),  # gs * amax / 6 ~ 2^-11.2 < 2^-10
    "NaN next to 0.3": torch.tensor([float("nan")] + [0.3] * 15),
}


def conventions(name, encode) -> str:
    cells = []
    for case, block in CASES.items():
        try:
            packed, scale, gs, _, dec, _ = encode(_case(block))
        except Exception as exc:  # a library refusing the input is itself the answer
            cells.append(f"refused ({type(exc).__name__})")
            continue
        c = codes(packed)[0, 16:]
        sb = int(scale.view(torch.uint8)[0, 1])
        first = int(c[0])
        decoded = float(dec[0, 16])
        cells.append(f"scale 0x{sb:02x}, code[0] {first:#x}, decoded[0] {decoded:g}")
        del case
    return f"| {name} | " + " | ".join(cells) + " |"


def ours(w):
    p, s = fmt.quantize(w, fmt.global_scale_from_amax(torch.nan_to_num(w.float()).abs().max()))
    gs = fmt.global_scale_from_amax(torch.nan_to_num(w.float()).abs().max())
    dec = fmt.dequantize(p, s, gs)
    return p, s, gs, None, dec, dec


def main() -> None:
    print(
        f"weights: {SEEDS} x [{ROWS}, {COLS}] bf16, N(0, 0.02); same global scale as the encoder\n"
    )
    print(
        "| encoder | block scales differing | codes differing (by value) "
        "| our decode != its exact decode | its own float32 decode != ours |"
    )
    print("|---|---|---|---|---|")
    for name, encode in ENCODERS.items():
        print(compare(name, encode))
    print("\n| encoder | " + " | ".join(CASES) + " |")
    print("|---|" + "---|" * len(CASES))
    for name, encode in {"ours": ours, **ENCODERS}.items():
        print(conventions(name, encode))


if __name__ == "__main__":
    main()
