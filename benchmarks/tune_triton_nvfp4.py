"""Explore tile configs of the Triton NVFP4 dequant GEMM on one GPU (the tuning aid behind plan.py).

Modes (each writes a JSON log to ``--out``):

* default: correctness of a set of tile configs against a float64 reference,
  their bit classes (rows bitwise equal to the M=1 rows under one plan), and
  eager timings of decode and large-M variants next to cuBLAS bf16;
* ``--graphs``: CUDA-graph timings of decode variants (K split, stages, K step)
  and of in-register versus dense large-M tiles, with the dense tiles' bit
  class; the data behind ``kernels.gemm.plan.BUCKETS``
  (``benchmarks/results/tune_graphs_h100.json``);
* ``--one m,plan_bk,split,stages,step,reduce,bn``: run one decode config three
  times and exit, for a profiler (``ncu -k regex:_nvfp4_dequant_gemm ...``).

Timing: ``triton.testing.do_bench`` (CUDA events, L2 flushed, median). Usage::

    python benchmarks/tune_triton_nvfp4.py --graphs --quick --out results/tune.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels.gemm import layout as L  # noqa: E402
from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm  # noqa: E402
from kernels.gemm.plan import GemmPlan, TileConfig  # noqa: E402
from kernels.nvfp4 import format as fmt  # noqa: E402


def make_layer(n: int, k: int, device: str, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.randn(n, k, generator=g).to(device)
    gs = fmt.global_scale_from_amax(w.abs().max().cpu())
    packed, scale = fmt.quantize(w, gs.to(device))
    return packed, scale, gs


def bench(fn, quick: bool) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=10 if quick else 25, rep=40 if quick else 100,
                                         return_mode="median")) * 1e3  # microseconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", default=None,
                    help="run one decode config 'm,plan_bk,split,stages,step,reduce,bn' a few times "
                         "(for a profiler) and exit")
    ap.add_argument("--graphs", action="store_true",
                    help="CUDA-graph timings of decode and dense large-M configs, dense bit classes")
    args = ap.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    if args.graphs:
        return graphs_phase(args)
    if args.one:
        return decode_round(args)
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}

    res["triton"] = triton.__version__
    log = []

    def note(**kw):
        log.append(kw)
        print(json.dumps(kw), flush=True)

    # --- 1 + 2: correctness and bit classes on one plan -------------------------
    n, k = 8192, 8192
    packed, scale, gs = make_layer(n, k, dev, 1)
    wref = fmt.dequantize(packed, scale, gs, torch.float64)
    plan = GemmPlan(n, k, 256, 2)
    prep = L.pack_dequant_weights(packed, scale, 256)
    x = torch.randn(300, k, device=dev).to(torch.bfloat16)
    bias = torch.randn(n, device=dev).to(torch.bfloat16)
    alpha = 256.0 / float(gs)
    ref = x.double() @ wref.T + bias.double()
    base_tile = TileConfig(16, 64, 4, 4, "partial", block_k=256)
    rows1 = torch.cat([nvfp4_dequant_gemm(x[i:i + 1], prep, plan, alpha, bias, base_tile)
                       for i in range(0, 300, 37)])
    tiles = [TileConfig(*t[:5], block_k=t[5]) for t in (
        (16, 64, 4, 4, "partial", 256), (16, 64, 4, 4, "inline", 256), (16, 64, 4, 4, "partial", 128),
        (32, 64, 4, 4, "partial", 256), (64, 64, 4, 4, "partial", 256), (128, 64, 4, 4, "partial", 128),
        (128, 128, 8, 3, "inline", 128), (256, 64, 4, 3, "inline", 128), (64, 128, 8, 4, "inline", 128),
        (256, 128, 8, 2, "inline", 128), (128, 128, 8, 4, "partial", 128))]
    for t in tiles:
        try:
            y = nvfp4_dequant_gemm(x, prep, plan, alpha, bias, t)
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001 - exploration: record and go on
            note(kind="bitclass", tile=dataclasses.asdict(t), error=repr(e)[:300])
            continue
        rel = float((y.double() - ref).norm() / ref.norm())
        same = bool(torch.equal(y[0:300:37], rows1))
        note(kind="bitclass", tile=dataclasses.asdict(t), rel_err=rel, equal_to_m1=same,
             nan=bool(torch.isnan(y).any()))
    xh = torch.randn(40, k, device=dev).to(torch.float16)
    yh = nvfp4_dequant_gemm(xh, prep, plan, alpha, None)
    refh = xh.double() @ wref.T
    note(kind="fp16", rel_err=float((yh.double() - refh).norm() / refh.norm()))
    del wref, ref, refh

    # --- 3: timings ------------------------------------------------------------
    cbytes = 1 << 30
    src = torch.empty(cbytes, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    t_copy = bench(functools.partial(dst.copy_, src), args.quick)
    note(kind="copy_bw", us=t_copy, tb_s=2 * cbytes / (t_copy * 1e-6) / 1e12)
    del src, dst

    decode_variants = (  # (plan_bk, split, stages, step)
        (256, 2, 4, 256), (256, 1, 4, 256), (256, 4, 4, 256), (256, 2, 3, 256), (256, 2, 6, 256),
        (256, 2, 4, 128), (128, 4, 4, 128), (256, 8, 4, 256))
    large_variants = (  # (bm, bn, stages, step)
        (128, 128, 3, 128), (128, 128, 4, 128), (256, 128, 2, 128), (128, 64, 4, 128),
        (256, 64, 3, 128), (64, 128, 4, 128))
    for n, k in ((8192, 8192), (28672, 8192), (8192, 28672)):
        packed, scale, gs = make_layer(n, k, dev, 2)
        wb = fmt.dequantize(packed, scale, gs, torch.bfloat16)
        alpha = 256.0 / float(gs)
        ms = (1, 16, 64, 128, 1024, 4096)
        xs = {m: torch.randn(m, k, device=dev).to(torch.bfloat16) for m in ms}
        for m in ms:
            note(kind="cublas", n=n, k=k, m=m, us=bench(functools.partial(torch.matmul, xs[m], wb.T), args.quick))
        del wb
        preps = {bk: L.pack_dequant_weights(packed, scale, bk) for bk in (128, 256)}
        full = (n, k) == (8192, 8192)
        for plan_bk, split, st, step in decode_variants if full else decode_variants[:3]:
            kc = -(-k // plan_bk)
            if kc % split:
                continue
            plan = GemmPlan(n, k, plan_bk, split)
            tile = TileConfig(16, 64, 4, st, "partial" if split > 1 else "inline", block_k=step)
            for m in (1, 16):
                try:
                    us = bench(functools.partial(nvfp4_dequant_gemm, xs[m], preps[plan_bk], plan, alpha, None, tile),
                               args.quick)
                except Exception as e:  # noqa: BLE001
                    note(kind="decode", n=n, k=k, m=m, error=repr(e)[:200])
                    continue
                note(kind="decode", n=n, k=k, m=m, plan_bk=plan_bk, split=split, stages=st, step=step,
                     us=us)
        for split in (2, 1) if full else (1,):
            plan = GemmPlan(n, k, 256, split)
            for bm, bn, st, step in large_variants if full or split == 1 else large_variants[:2]:
                tile = TileConfig(bm, bn, 4 * (bn // 64), st, "inline", block_k=step)
                for m in (64, 128, 1024, 4096):
                    if bm > 2 * m:
                        continue
                    try:
                        us = bench(functools.partial(nvfp4_dequant_gemm, xs[m], preps[256], plan, alpha, None,
                                                              tile), args.quick)
                    except Exception as e:  # noqa: BLE001
                        note(kind="large", n=n, k=k, m=m, tile=dataclasses.asdict(tile),
                             error=repr(e)[:200])
                        break
                    note(kind="large", n=n, k=k, m=m, split=split, tile=dataclasses.asdict(tile),
                         us=us, tflops=2 * m * n * k / (us * 1e-6) / 1e12)
        del preps, xs
        torch.cuda.empty_cache()
    res["log"] = log
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print("wrote", args.out, time.strftime("%Y-%m-%d %H:%M:%S"))
    return 0


def decode_round(args) -> int:
    dev = "cuda"
    n, k = 8192, 8192
    packed, scale, gs = make_layer(n, k, dev, 3)
    alpha = 256.0 / float(gs)
    preps = {bk: L.pack_dequant_weights(packed, scale, bk) for bk in (128, 256)}
    m, plan_bk, split, st, step, red, bn = args.one.split(",")
    m, plan_bk, split, st, step, bn = map(int, (m, plan_bk, split, st, step, bn))
    x = torch.randn(m, k, device=dev).to(torch.bfloat16)
    plan = GemmPlan(n, k, plan_bk, split)
    tile = TileConfig(16, bn, 4 * bn // 64, st, red, block_k=step)
    for _ in range(3):
        nvfp4_dequant_gemm(x, preps[plan_bk], plan, alpha, None, tile)
    torch.cuda.synchronize()
    return 0


def graph_us(fn, quick: bool) -> float:
    """Median microseconds of one replay of a CUDA graph holding one ``fn()`` (L2 flushed)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return bench(g.replay, quick)


def graphs_phase(args) -> int:
    dev = "cuda"
    log = []

    def note(**kw):
        log.append(kw)
        print(json.dumps(kw), flush=True)

    for n, k in ((8192, 8192), (28672, 8192), (8192, 28672)):
        packed, scale, gs = make_layer(n, k, dev, 3)
        alpha = 256.0 / float(gs)
        preps = {bk: L.pack_dequant_weights(packed, scale, bk) for bk in (128, 256)}
        full = (n, k) == (8192, 8192)
        wb = fmt.dequantize(packed, scale, gs, torch.bfloat16)
        for m in (1, 16, 64, 128, 256, 1024, 4096):
            x = torch.randn(m, k, device=dev).to(torch.bfloat16)
            note(kind="g_cublas", n=n, k=k, m=m, us=graph_us(functools.partial(torch.matmul, x, wb.T), args.quick))
        del wb
        # decode: fused path
        for m in (1, 16, 64):
            x = torch.randn(m, k, device=dev).to(torch.bfloat16)
            bm = max(16, 1 << (m - 1).bit_length())
            for plan_bk, split, st, step, red in (
                    (256, 1, 4, 256, "inline"), (256, 1, 6, 256, "inline"), (128, 1, 8, 128, "inline"),
                    (256, 2, 4, 256, "partial"), (256, 2, 6, 256, "partial"), (256, 4, 4, 256, "partial"),
                    (128, 4, 6, 128, "partial"), (256, 2, 4, 128, "partial")):
                if not full and (plan_bk, st) != (256, 4):
                    continue
                kc = -(-k // plan_bk)
                if kc % split:
                    continue
                plan = GemmPlan(n, k, plan_bk, split)
                tile = TileConfig(bm, 64, 4, st, red, block_k=step)
                prep = preps[plan_bk]
                try:
                    us = graph_us(functools.partial(nvfp4_dequant_gemm, x, prep, plan, alpha, None, tile), args.quick)
                    eager = bench(functools.partial(nvfp4_dequant_gemm, x, prep, plan, alpha, None, tile), args.quick)
                except Exception as e:  # noqa: BLE001
                    note(kind="g_decode", n=n, k=k, m=m, error=repr(e)[:200])
                    continue
                note(kind="g_decode", n=n, k=k, m=m, plan_bk=plan_bk, split=split, stages=st, step=step,
                     reduce=red, us=us, eager_us=eager)
        # large M: fused vs dense
        for split in (1, 2) if full else (1,):
            plan = GemmPlan(n, k, 256, split)
            rows = None
            if full:
                xr = torch.randn(300, k, device=dev).to(torch.bfloat16)
                rows = torch.cat([nvfp4_dequant_gemm(xr[i:i + 1], preps[256], plan, alpha, None,
                                                     TileConfig(16, 64, 4, 4, "partial" if split > 1
                                                                else "inline"))
                                  for i in range(0, 300, 29)])
            for bm, bn, st, step, w, dense in (
                    (128, 128, 3, 128, 8, False), (128, 128, 4, 64, 8, True), (256, 128, 3, 64, 8, True),
                    (128, 128, 3, 128, 8, True), (256, 64, 4, 64, 4, True),
                    (64, 128, 4, 64, 8, True), (128, 64, 4, 64, 4, True)):
                rec = dict(kind="g_large", n=n, k=k, split=split, cfg=(bm, bn, st, step, w, dense))
                try:
                    tile = TileConfig(bm, bn, w, st, "inline", block_k=step, dense=dense)
                    if rows is not None:
                        y = nvfp4_dequant_gemm(xr, preps[256], plan, alpha, None, tile)
                        rec["equal_to_m1"] = bool(torch.equal(y[0:300:29], rows))
                    for m in (128, 256, 1024, 4096) if full else (1024, 4096):
                        x = torch.randn(m, k, device=dev).to(torch.bfloat16)
                        us = graph_us(functools.partial(nvfp4_dequant_gemm, x, preps[256], plan, alpha, None, tile),
                                      args.quick)
                        rec[f"us_{m}"] = us
                        rec[f"tflops_{m}"] = 2 * m * n * k / (us * 1e-6) / 1e12
                except Exception as e:  # noqa: BLE001
                    rec["error"] = repr(e)[:200]
                note(**rec)
        del preps
        torch.cuda.empty_cache()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "log": log}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
