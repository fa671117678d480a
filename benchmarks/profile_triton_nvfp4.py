"""Run one ``triton`` NVFP4 layer a few times for a profiler, or time an experiment that isolates the decode.

* default: run the layer ``--calls`` times (Nsight Compute: ``ncu_summary.sh``);
* ``--isolate``: kernel time (the benchmark's method) of, for each M, the
  batch-invariant GEMM as shipped (W4A16), **the same kernel and tile reading
  an already dequantized bf16 weight** (the GEMM skeleton without the
  in-register decode, with 4x the weight bytes), the whole-weight decode pass
  alone, the plain Triton bf16 GEMM and cuBLAS bf16. The first minus the
  second is what the in-register decode costs at that M.

Usage::

    python benchmarks/profile_triton_nvfp4.py --shape 8192x8192 --m 256 --scheme W4A4 --calls 3
    python benchmarks/profile_triton_nvfp4.py --isolate --shape 8192x8192 --ms 64 256 1024
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def isolate(n: int, k: int, ms: list[int]) -> None:
    import functools

    import torch
    import triton
    import triton.language as tl
    from bench_triton_nvfp4 import _bench, _graph, _layers
    from triton_bf16_gemm import CONFIGS, bf16_gemm

    from kernels.gemm import dequant_gemm as dg
    from kernels.gemm.plan import tile_for

    copies = 4
    layers, bf16 = _layers(n, k, copies)
    reps_l = layers["W4A16"][1]
    plan = reps_l[0].prepared["plan"]

    def ktime(fns):
        graph = _graph(fns)
        return _bench(graph.replay, 60) / len(fns)

    # the decoded weights [N_pad, K_pad] (exactly the in-register decode's values)
    decoded = []
    for layer in reps_l:
        wts = layer.prepared["weights"]
        wd = torch.empty((wts.n_pad, plan.k_pad), dtype=torch.bfloat16, device="cuda")
        decoded.append((wts, wd))

    def decode_pass(wts, wd):
        dg._dequant_weight_kernel[(wts.n_pad // 64, plan.k_pad // 128)](
            wts.words.view(torch.int32), wts.scale_codes, wd, wts.n_pad, wd.stride(0),
            BLOCK_N=64, BLOCK_K=128, CHUNK_K=plan.block_k, OP_DTYPE=tl.bfloat16,
            INTERPRET=False, num_warps=4)

    dec_us = ktime([functools.partial(decode_pass, w, d) for w, d in decoded])

    def skeleton(x, wts, wd, tile):
        # the launcher's call with the weight operand already decoded (DENSE_W)
        m = x.shape[0]
        y = torch.empty((m, n), dtype=x.dtype, device=x.device)
        partial = tile.reduce in ("partial", "fused")
        spill = tile.reduce == "spill" and plan.split_k > 1
        part = (torch.empty((plan.split_k, m, n), dtype=torch.float32, device=x.device) if partial
                else torch.empty((m, n), dtype=torch.float32, device=x.device) if spill else y)
        cnt = torch.zeros(dg.counter_slots(m, n, tile), dtype=torch.int32, device=x.device)
        grid_m, grid_n = triton.cdiv(m, tile.block_m), triton.cdiv(n, tile.block_n)
        grid = (grid_n, grid_m, plan.split_k) if partial else (grid_n * grid_m,)
        block_k = min(tile.block_k, plan.block_k)
        dg._nvfp4_dequant_gemm_kernel[grid](
            x, wd, wts.scale_codes, y, y, part, cnt, m, n, k, wts.n_pad,
            x.stride(0), y.stride(0), wd.stride(0), 1.0,
            BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, BLOCK_K=block_k, CHUNK_K=plan.block_k,
            SPLIT_K=plan.split_k, STEPS_PER_SPLIT=plan.chunks_per_split * (plan.block_k // block_k),
            GROUP_M=tile.group_m, PARTIAL=partial, FUSED=tile.reduce == "fused", SPILL=spill,
            HAS_BIAS=False, OP_DTYPE=tl.bfloat16, DENSE_W=True, INTERPRET=False,
            NUM_STAGES=tile.num_stages, OUT_BF16_BITS=False, PDL=False,
            num_warps=tile.num_warps, num_stages=tile.num_stages)
        if partial and tile.reduce == "partial":
            dg.launch_splitk_reduce(part, None, y, y.stride(0), 1.0, plan.split_k, False)
        return y

    for w, d in decoded:
        decode_pass(w, d)
    print(f"{n}x{k}, plan split {plan.split_k}; decode pass alone {dec_us:.1f} us (kernel time)")
    print("| M | tile | shipped GEMM | same tile, decoded bf16 weight | decode cost | "
          "Triton bf16 (best) | cuBLAS bf16 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for m in ms:
        x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
        tile = tile_for(m, plan)
        kernel = layers["W4A16"][0]
        shipped = ktime([functools.partial(kernel.apply, layer, x) for layer in reps_l])
        skel_tile = tile
        skel = ktime([functools.partial(skeleton, x, w, d, skel_tile) for w, d in decoded])
        tb = min(ktime([functools.partial(bf16_gemm, x, wb, cfg) for wb in bf16])
                 for cfg in CONFIGS if cfg[0] <= max(64, 2 * m))
        cub = ktime([functools.partial(torch.matmul, x, wb.T) for wb in bf16])
        desc = (f"{tile.block_m}x{tile.block_n} st{tile.num_stages} bk{tile.block_k} {tile.reduce}"
                f"{' dense' if tile.dense else ''}")
        extra = " (dense: shipped includes the decode pass)" if tile.dense else ""
        print(f"| {m} | {desc}{extra} | {shipped:.1f} | {skel:.1f} | {shipped - skel:.1f} | "
              f"{tb:.1f} | {cub:.1f} |", flush=True)


def main() -> int:
    import torch

    from kernels.linear.layer import NvFp4LinearLayer
    from kernels.linear.triton import TritonNvFp4LinearKernel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="8192x8192", help="NxK of the weight")
    ap.add_argument("--m", type=int, default=1, help="rows of the activation")
    ap.add_argument("--scheme", choices=("W4A4", "W4A16"), default="W4A4")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--isolate", action="store_true", help="time the decode-isolating experiment")
    ap.add_argument("--kernel", choices=("backend", "triton", "ws"), default="backend",
                    help="what to run: the backend's dispatch, the Triton kernel or the warp-specialized one")
    ap.add_argument("--ms", nargs="*", type=int, default=[64, 256, 1024], help="M values of --isolate")
    args = ap.parse_args()
    n, k = map(int, args.shape.split("x"))
    if args.isolate:
        isolate(n, k, args.ms)
        return 0
    w = torch.randn(n, k, device="cuda")
    layer = NvFp4LinearLayer.from_float(w, input_amax=3.0 if args.scheme == "W4A4" else None)
    kernel = TritonNvFp4LinearKernel(layer.config(torch.bfloat16))
    kernel.process_weights(layer)
    x = torch.randn(args.m, k, device="cuda").to(torch.bfloat16)
    p = layer.prepared
    for _ in range(args.calls):
        if args.kernel == "backend":
            kernel.apply(layer, x)
        elif args.kernel == "triton":
            from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
            from kernels.gemm.plan import tile_for

            nvfp4_dequant_gemm(x, p["weights"], p["plan"], p["alpha"], tile=tile_for(args.m, p["plan"]),
                               counters=p["counters"])
        else:
            from kernels.gemm.wgmma_gemm import ws_dequant_gemm

            ws_dequant_gemm(x, p["weights"], p["plan"], p["alpha"])
    torch.cuda.synchronize()
    print(f"ran {args.calls} x {args.scheme} {n}x{k} M={args.m}; plan {layer.prepared['plan']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
