"""Compile the NVFP4 GEMM kernels for sm90 without a GPU and count what their loops execute.

Triton compiles for any target on a CPU (``triton.compile`` with a
``GPUTarget``) and ships ``cuobjdump``; this script disassembles the cubin
and reports, for each kernel, the instructions of its main K loop by opcode
and per weight element — the numbers behind "about 4 SASS instructions per
weight element" (the Triton kernel, which decodes in the MMA warps'
registers) and "about 3, spread over dedicated decode warps" (the
warp-specialized Gluon kernel, :mod:`kernels.gemm.wgmma_gemm`).

Usage::

    python benchmarks/sass_triton_nvfp4.py            # both kernels, decode tiles, JSON on stdout
    python benchmarks/sass_triton_nvfp4.py --dump DIR # also the SASS, PTX and TTGIR files

Run it without ``TRITON_INTERPRET`` (the interpreter replaces the JIT functions).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = ("cuda", 90, 32)


def _sass(cubin: bytes) -> tuple[str, str]:
    import triton

    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        tool = triton.knobs.nvidia.cuobjdump.path
        sass = subprocess.check_output([tool, "-sass", path], text=True)
        res = subprocess.check_output([tool, "-res-usage", path], text=True)
    finally:
        Path(path).unlink()
    return sass, res


def parse(sass: str) -> list[tuple[int, str, str]]:
    """(address, opcode with modifiers, full text) of every instruction."""
    out = []
    for line in sass.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            body = m.group(2).strip()
            op = re.sub(r"^@!?U?P[T0-9]+\s+", "", body).split()[0]
            out.append((int(m.group(1), 16), op, body))
    return out


def loops(ins) -> list[tuple[int, int]]:
    """(first, last) address of every backward branch's range, innermost first."""
    spans = []
    for addr, op, body in ins:
        if op.startswith("BRA"):
            m = re.search(r"0x([0-9a-f]+)", body)
            if m and int(m.group(1), 16) < addr:
                spans.append((int(m.group(1), 16), addr))
    return sorted(spans, key=lambda s: s[1] - s[0])


def loop_with(ins, must: str, min_len: int = 40) -> tuple[list, tuple[int, int]] | None:
    """The shortest loop of at least ``min_len`` instructions that contains opcode prefix ``must``."""
    for lo, hi in loops(ins):
        body = [x for x in ins if lo <= x[0] <= hi]
        if len(body) >= min_len and any(op.startswith(must) for _, op, _ in body):
            return body, (lo, hi)
    return None


def _summary(body) -> dict:
    c = collections.Counter(op.split(".")[0] for _, op, _ in body)
    return dict(c.most_common())


def triton_kernel(block_m=16, block_n=64, block_k=256, stages=4, warps=4):
    """Compile the Triton (``tl``) kernel's decode tile; instructions of its K loop per weight element."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernels.gemm import dequant_gemm as dg

    fn = dg._nvfp4_dequant_gemm_kernel
    sig = dict(x_ptr="*bf16", w_ptr="*i32", s_ptr="*u8", bias_ptr="*bf16", y_ptr="*bf16", part_ptr="*bf16",
               cnt_ptr="*bf16", M="i32", N="i32", K="i32", N_PAD="i32", stride_xm="i32", stride_ym="i32",
               stride_wd="i32", alpha="fp32")
    const = dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, CHUNK_K=256, SPLIT_K=1,
                 STEPS_PER_SPLIT=32, GROUP_M=8, PARTIAL=False, FUSED=False, SPILL=False, HAS_BIAS=False,
                 OP_DTYPE=tl.bfloat16, DENSE_W=False, INTERPRET=False, NUM_STAGES=stages,
                 OUT_BF16_BITS=False, PDL=False)
    sig.update({k: "constexpr" for k in const})
    names = fn.arg_names
    div = [n for n in names if sig[n].startswith("*") or n in ("N", "K", "N_PAD", "stride_xm", "stride_ym")]
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in div}
    k = triton.compile(ASTSource(fn, sig, const, attrs), target=GPUTarget(*TARGET),
                       options=dict(num_warps=warps, num_stages=stages))
    sass, res = _sass(k.asm["cubin"])
    ins = parse(sass)
    found = loop_with(ins, "HGMMA")
    assert found is not None, "no K loop with HGMMA in the Triton kernel"
    body, _ = found
    per_thread = block_n * block_k // (32 * warps)
    return k, sass, {
        "kernel": "triton (tl), decode in the MMA warps' registers",
        "tile": f"{block_m}x{block_n}x{block_k}, {warps} warps, {stages} stages",
        "loop_instructions": len(body), "weight_elements_per_thread": per_thread,
        "per_element": round(len(body) / per_thread, 2), "opcodes": _summary(body),
        "shared_bytes": k.metadata.shared, "resources": " ".join(re.findall(r"REG:\d+|STACK:\d+", res)),
    }


def ws_kernel(block_m=16, block_n=64, fp16=False, split_k=1, **tile_kw):
    """Compile the warp-specialized kernel; its decode loop (one 256-wide chunk) per weight element."""
    import torch
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from kernels.gemm import wgmma_gemm as wg

    tile = wg.WsTile(block_m, block_n, **tile_kw)
    kern = wg._kernel()
    xl, wl, sl = wg._layouts(tile, torch.float16 if fp16 else torch.bfloat16)
    op = "fp16" if fp16 else "bf16"
    sig = dict(x_desc=f"tensordesc<{op}[{tile.block_m}, 128],{xl!r}>",
               w_desc=f"tensordesc<i32[{tile.block_n}, 32],{wl!r}>",
               s_desc=f"tensordesc<i16[{tile.block_n}, 8],{sl!r}>",
               bias_ptr=f"*{op}", y_ptr=f"*{op}",
               M="i32", N="i32", N_PAD="i32", stride_ym="i32", alpha="fp32", num_tiles="i32",
               grid_m="i32", chunks_per_split="i32")
    warps = 4 * (tile.block_n // 64)
    const = dict(BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, X_STAGES=tile.x_stages,
                 RAW_STAGES=tile.raw_stages, A_STAGES=tile.a_stages, DEC_WARPS=tile.dec_warps,
                 SPLIT_K=split_k, HAS_BIAS=False, FP16=fp16, num_warps=warps)
    sig.update({k: "constexpr" for k in const})
    names = kern.arg_names
    attrs = {(names.index(n),): [["tt.divisibility", 16]]
             for n in ("bias_ptr", "y_ptr", "N", "N_PAD", "stride_ym")}
    k = triton.compile(GluonASTSource(kern, sig, const, attrs), target=GPUTarget(*TARGET),
                       options=dict(num_warps=warps))
    sass, res = _sass(k.asm["cubin"])
    ins = parse(sass)
    dec = loop_with(ins, "HMUL2")
    mma = loop_with(ins, "HGMMA", min_len=8)
    assert dec is not None and mma is not None, "decode or MMA loop not found"
    per_thread = tile.block_n * 256 // (32 * tile.dec_warps)
    hgmma = sorted({op for _, op, _ in mma[0] if op.startswith("HGMMA")})
    return k, sass, {
        "kernel": "warp-specialized (Gluon): TMA warp, decode warps, wgmma warpgroup(s)",
        "tile": f"{tile}",
        "decode_loop_instructions": len(dec[0]), "weight_elements_per_thread": per_thread,
        "per_element": round(len(dec[0]) / per_thread, 2), "decode_opcodes": _summary(dec[0]),
        "mma_loop_instructions": len(mma[0]), "hgmma": hgmma,
        "hgmma_operands_in_smem": all("gdesc" in b for _, op, b in mma[0] if op.startswith("HGMMA")),
        "sts128_in_decode": sum(op.startswith("STS.128") for _, op, _ in dec[0]),
        "local_memory": sum(op.startswith(("LDL", "STL")) for _, op, _ in ins),
        "shared_bytes": k.metadata.shared, "resources": " ".join(re.findall(r"REG:\d+|STACK:\d+", res)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, help="write SASS/PTX/TTGIR of each kernel here")
    ap.add_argument("--ws-ms", nargs="*", type=int, default=[16, 256],
                    help="M values whose warp-specialized tile (ws_tile_for) to compile")
    args = ap.parse_args()
    import triton

    report = {"triton": triton.__version__, "target": "sm_90a", "kernels": []}
    done = []
    k, sass, info = triton_kernel()
    done.append(("triton_16x64", k, sass))
    report["kernels"].append(info)
    for m in args.ws_ms:
        from kernels.gemm.plan import GemmPlan
        from kernels.gemm.wgmma_gemm import ws_tile_for

        t = ws_tile_for(m, GemmPlan(8192, 8192, 256, 1))
        kw = dict(x_stages=t.x_stages, raw_stages=t.raw_stages, a_stages=t.a_stages, dec_warps=t.dec_warps)
        k, sass, info = ws_kernel(t.block_m, t.block_n, **kw)
        done.append((f"ws_m{m}", k, sass))
        report["kernels"].append(info)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for name, k, sass in done:
            (args.dump / f"{name}.sass").write_text(sass)
            (args.dump / f"{name}.ptx").write_text(k.asm["ptx"])
            (args.dump / f"{name}.ttgir").write_text(k.asm["ttgir"])
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
