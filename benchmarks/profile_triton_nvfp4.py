"""Run one ``triton`` NVFP4 layer a few times for a profiler, or time an experiment that isolates the decode.

* default: run the layer ``--calls`` times (Nsight Compute: ``ncu_summary.sh``);
* ``--isolate``: kernel time (the benchmark's method) of, for each M, the
  batch-invariant GEMM as shipped (W4A16), **the same kernel and tile reading
  an already dequantized bf16 weight** (the GEMM skeleton without the
  in-register decode, with 4x the weight bytes), the whole-weight decode pass
  alone, the plain Triton bf16 GEMM and cuBLAS bf16. The first minus the
  second is what the in-register decode costs at that M.
* ``--stripes S ...``: the decode-once-into-L2 experiment (:func:`stripes`):
  the dense path decoding the weight a stripe of ``S`` rows at a time into
  one reused scratch stripe, against the shipped path, the whole-weight
  dense path and the GEMM alone on a decoded weight.

Usage::

    python benchmarks/profile_triton_nvfp4.py --shape 8192x8192 --m 256 --scheme W4A4 --calls 3
    python benchmarks/profile_triton_nvfp4.py --isolate --shape 8192x8192 --ms 64 256 1024
    python benchmarks/profile_triton_nvfp4.py --stripes 1024 2048 --shape 8192x8192 --ms 512 1024 \
        --out stripes_8192.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def gemm_on_decoded(x, wts, wd, plan, tile):
    """The launcher's GEMM with the weight operand already decoded into ``wd`` (``DENSE_W``)."""
    import dataclasses

    import torch
    import triton.language as tl

    from kernels.gemm import dequant_gemm as dg

    m, n = x.shape[0], wts.n
    tile = dataclasses.replace(tile, dense=True, stripe_n=0)
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    partial = tile.reduce in ("partial", "fused")
    spill = tile.reduce == "spill" and plan.split_k > 1
    part = (torch.empty((plan.split_k, m, n), dtype=torch.float32, device=x.device) if partial
            else torch.empty((m, n), dtype=torch.float32, device=x.device) if spill else y)
    cnt = torch.zeros(dg.counter_slots(m, n, tile), dtype=torch.int32, device=x.device)
    dg._launch_gemm(x, tile, plan, wts.k, wts.n_pad, 1.0, tl.bfloat16, min(tile.block_k, plan.block_k),
                    partial, tile.reduce == "fused", spill, False, False, False,
                    wd, wts.scale_codes, wd.stride(0), n, None, y, part, cnt)
    if tile.reduce == "partial":
        dg.launch_splitk_reduce(part, None, y, y.stride(0), 1.0, plan.split_k, False)
    return y


def stripes(n: int, k: int, ms: list[int], sizes: list[int], out: Path | None) -> dict:
    """Decode once into L2: the dense path with the weight decoded a stripe of rows at a time.

    For each M, kernel time of the shipped W4A16 path, the dense path
    decoding the whole weight first (the last bucket's tile), the dense path
    in stripes of each size in ``sizes`` (one scratch stripe reused, so the
    GEMM can find it in L2) with a 256- and a 128-row batch tile, the GEMM
    alone on a weight decoded beforehand (its floor), and cuBLAS bf16; per
    shape, the decode pass alone, whole and striped (what L2 residency saves
    the pass). Every striped output is compared bitwise with the shipped one.
    """
    import datetime
    import functools

    import torch
    import triton
    import triton.language as tl
    from bench_triton_nvfp4 import _fastest, _layers, kernel_time

    from harness.output.atomic import write_json_atomic
    from kernels.gemm import dequant_gemm as dg
    from kernels.gemm.plan import BUCKETS, TileConfig

    copies = 4
    layers, bf16 = _layers(n, k, copies)
    kernel, reps_l = layers["W4A16"]
    p0 = reps_l[0].prepared
    plan = p0["plan"]
    red = "inline" if plan.split_k == 1 else "spill"
    whole = BUCKETS[-1][1 if plan.split_k == 1 else 2]
    wds = [torch.empty((lay.prepared["weights"].n_pad, plan.k_pad), dtype=torch.bfloat16, device="cuda")
           for lay in reps_l]
    scratch = {s: [torch.empty((s, plan.k_pad), dtype=torch.bfloat16, device="cuda") for _ in reps_l]
               for s in sizes}

    def decode(wts, wd, size):
        for n0 in range(0, wts.n_pad, size):
            dg._decode_rows(wts, n0, min(size, wts.n_pad - n0), wd, plan.block_k, tl.bfloat16, False)

    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "n": n, "k": k, "split_k": plan.split_k, "copies": copies, "sizes": sizes,
              "decode_whole_us": kernel_time([functools.partial(decode, lay.prepared["weights"], wd, plan.n_pad)
                                              for lay, wd in zip(reps_l, wds, strict=True)], 30),
              "decode_striped_us": {str(s): kernel_time([functools.partial(decode, lay.prepared["weights"], sc, s)
                                                         for lay, sc in zip(reps_l, scratch[s], strict=True)], 30)
                                    for s in sizes},
              "rows": []}
    print(f"{n}x{k} split {plan.split_k}: decode pass whole {result['decode_whole_us']:.1f} us, striped "
          + ", ".join(f"{s}: {v:.1f}" for s, v in result["decode_striped_us"].items()), flush=True)
    for m in ms:
        x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
        ref = kernel.apply(reps_l[0], x)

        def gemm(tile, lay, x=x):
            q = lay.prepared
            return dg.nvfp4_dequant_gemm(x, q["weights"], plan, q["alpha"], None, tile, q["counters"])

        row = {"m": m,
               "shipped_us": kernel_time([functools.partial(kernel.apply, lay, x) for lay in reps_l], 30),
               "dense_whole_us": kernel_time([functools.partial(gemm, whole, lay) for lay in reps_l], 30),
               "gemm_only_us": kernel_time([functools.partial(gemm_on_decoded, x, lay.prepared["weights"], wd,
                                                              plan, whole) for lay, wd in zip(reps_l, wds, strict=True)], 30),
               "cublas_us": kernel_time([functools.partial(torch.matmul, x, wb.T) for wb in bf16], 30),
               "striped": []}
        for size in sizes:
            for bm in (256, 128):
                tile = TileConfig(bm, 128, 8, 3, red, block_k=64, dense=True, stripe_n=size)
                rec = {"stripe_n": size, "block_m": bm}
                try:
                    rec["bitwise_shipped"] = bool(torch.equal(gemm(tile, reps_l[0]), ref))
                    rec["us"] = kernel_time([functools.partial(gemm, tile, lay) for lay in reps_l], 30)
                except Exception as e:
                    rec["error"] = f"{type(e).__name__}: {e}"[:300]
                row["striped"].append(rec)
        best = _fastest(row["striped"])
        print(f"M={m}: shipped {row['shipped_us']:.1f}, dense whole {row['dense_whole_us']:.1f}, "
              f"GEMM alone {row['gemm_only_us']:.1f}, cuBLAS {row['cublas_us']:.1f}; best striped "
              + (f"{best['us']:.1f} (stripe {best['stripe_n']}, bm {best['block_m']})" if best else "none")
              + f"; all striped bitwise: {all(r.get('bitwise_shipped') for r in row['striped'])}", flush=True)
        result["rows"].append(row)
        if out:
            write_json_atomic(out, result, create_folder=True)
    return result


def isolate(n: int, k: int, ms: list[int]) -> None:
    import functools

    import torch
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
        dg._decode_rows(wts, 0, wts.n_pad, wd, plan.block_k, tl.bfloat16, False)

    dec_us = ktime([functools.partial(decode_pass, w, d) for w, d in decoded])

    def skeleton(x, wts, wd, tile):
        return gemm_on_decoded(x, wts, wd, plan, tile)

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
    ap.add_argument("--ms", nargs="*", type=int, default=[64, 256, 1024],
                    help="M values of --isolate and --stripes")
    ap.add_argument("--stripes", nargs="*", type=int,
                    help="time the decode-once-into-L2 experiment with these stripe sizes (weight rows)")
    ap.add_argument("--out", type=Path, help="--stripes: JSON file to write (after every M)")
    args = ap.parse_args()
    n, k = map(int, args.shape.split("x"))
    if args.isolate:
        isolate(n, k, args.ms)
        return 0
    if args.stripes:
        stripes(n, k, args.ms, args.stripes, args.out)
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
