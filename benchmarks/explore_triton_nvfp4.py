"""Experiments behind issue 18 on one GPU: the warp-specialized kernel, candidate tiles, gemlite.

Subcommands (each prints a table and writes ``<name>.json`` into the ``--out`` folder, whole
or not at all):

* ``check``: bits and error of the warp-specialized Gluon kernel
  (:mod:`kernels.gemm.wgmma_gemm`) against the Triton kernel and against
  ``emulation`` — same plan, same prepared weight — for a list of M;
* ``time``: kernel time (the benchmark's method: one CUDA graph of C calls on
  C weight copies / C) of the shipped path, the Triton kernel, the
  warp-specialized kernel with each candidate tile, cuBLAS bf16;
* ``gemlite``: which gemlite 4-bit layers build and run on this GPU, each
  kernel family's kernel time and whether its rows are batch invariant.

Usage::

    python benchmarks/explore_triton_nvfp4.py check --out DIR
    python benchmarks/explore_triton_nvfp4.py time --shapes 8192x8192 --ms 1 16 256 --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.output.atomic import write_json_atomic


def _env() -> dict:
    import torch
    import triton

    return {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _ws_tiles(m: int):
    """Candidate tiles of the warp-specialized kernel for ``m`` rows (the table's first)."""
    from kernels.gemm.plan import GemmPlan
    from kernels.gemm.wgmma_gemm import WsTile, ws_tile_for

    first = ws_tile_for(m, GemmPlan(8192, 8192, 256, 1))
    if m <= 16:
        more = [WsTile(16, 64, x_stages=8, raw_stages=8, a_stages=3), WsTile(16, 64, x_stages=8, raw_stages=6,
                                                                           dec_warps=4)]
    elif m <= 64:
        more = [WsTile(m if m > 16 else 16, 64, x_stages=4, raw_stages=8, a_stages=3)]
    elif m <= 128:
        more = [WsTile(128, 128, x_stages=2, raw_stages=3)]
    else:
        more = [WsTile(128, 128, x_stages=3, raw_stages=3), WsTile(128, 64, x_stages=4, raw_stages=4)]
    return [first, *[t for t in more if t != first]]


def check(args) -> dict:
    import torch

    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import tile_for
    from kernels.gemm.wgmma_gemm import supported, ws_dequant_gemm, ws_tile_for
    from kernels.linear.emulation import EmulationNvFp4LinearKernel
    from kernels.linear.layer import NvFp4LinearLayer
    from kernels.linear.triton import TritonNvFp4LinearKernel

    out = {"env": _env(), "rows": []}
    for shape in args.shapes:
        n, k = map(int, shape.split("x"))
        g = torch.Generator(device="cuda").manual_seed(1)
        w = torch.randn(n, k, device="cuda", generator=g) * torch.exp(torch.randn(n, 1, device="cuda", generator=g))
        for dtype in (torch.bfloat16, torch.float16):
            layer = NvFp4LinearLayer.from_float(w, input_amax=None)
            kernel = TritonNvFp4LinearKernel(layer.config(dtype))
            kernel.process_weights(layer)
            emu_layer = NvFp4LinearLayer.from_float(w, input_amax=None)
            emu = EmulationNvFp4LinearKernel(emu_layer.config(dtype))
            emu.process_weights(emu_layer)
            p = layer.prepared
            x = torch.randn(max(args.ms), k, device="cuda", generator=g).to(dtype)
            ones = None
            for m in args.ms:
                rec = {"n": n, "k": k, "dtype": str(dtype), "m": m}
                try:
                    xm = x[:m]
                    if not supported(xm, p["plan"]):
                        rec["error"] = "not supported"
                        out["rows"].append(rec)
                        continue
                    ref = nvfp4_dequant_gemm(xm, p["weights"], p["plan"], p["alpha"],
                                             tile=tile_for(m, p["plan"]), counters=p["counters"])
                    y = ws_dequant_gemm(xm, p["weights"], p["plan"], p["alpha"], tile=ws_tile_for(m, p["plan"]))
                    torch.cuda.synchronize()
                    if ones is None:
                        ones = torch.cat([ws_dequant_gemm(x[i:i + 1], p["weights"], p["plan"], p["alpha"])
                                          for i in range(8)])
                    e = emu.apply(emu_layer, xm).double()
                    rec.update(
                        bitwise_triton=bool(torch.equal(y, ref)),
                        mismatch_triton=int((y != ref).sum()),
                        bitwise_m1_rows=bool(torch.equal(y[:min(m, 8)], ones[:min(m, 8)])),
                        rel_err_emulation=float((y.double() - e).norm() / e.norm()),
                        nan=bool(torch.isnan(y).any()),
                        tile=dataclasses.asdict(ws_tile_for(m, p["plan"])))
                    for t in _ws_tiles(m):  # every candidate tile: same bits?
                        yt = ws_dequant_gemm(xm, p["weights"], p["plan"], p["alpha"], tile=t)
                        rec.setdefault("tiles_equal", []).append(
                            [dataclasses.asdict(t), bool(torch.equal(yt, y))])
                except Exception as e:
                    rec["error"] = f"{type(e).__name__}: {e}"[:500]
                    rec["trace"] = traceback.format_exc()[-1500:]
                out["rows"].append(rec)
                print(json.dumps({kk: v for kk, v in rec.items() if kk not in ("trace", "tiles_equal")}),
                      flush=True)
            if args.out:
                write_json_atomic(args.out / "check.json", out, create_folder=True)
    return out


def timing(args) -> dict:
    import torch
    from bench_triton_nvfp4 import _layers, kernel_time

    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import tile_for
    from kernels.gemm.wgmma_gemm import ws_dequant_gemm

    out = {"env": _env(), "rows": []}
    props = torch.cuda.get_device_properties(0)
    l2 = props.L2_cache_size
    for shape in args.shapes:
        n, k = map(int, shape.split("x"))
        copies = max(4, -(-2 * l2 // (n * k // 2 + n * k // 16)))
        layers, bf16 = _layers(n, k, copies)
        kern, reps = layers["W4A16"]
        for m in args.ms:
            x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
            row = {"n": n, "k": k, "m": m}

            def t(fns):
                try:
                    return round(kernel_time(fns, args.reps), 2)
                except Exception as e:
                    return f"{type(e).__name__}: {e}"[:300]

            row["shipped"] = t([functools.partial(kern.apply, lay, x) for lay in reps])
            row["triton"] = t([functools.partial(nvfp4_dequant_gemm, x, lay.prepared["weights"],
                                                 lay.prepared["plan"], lay.prepared["alpha"],
                                                 None, tile_for(m, lay.prepared["plan"]),
                                                 lay.prepared["counters"]) for lay in reps])
            row["cublas"] = t([functools.partial(torch.matmul, x, wb.T) for wb in bf16])
            row["ws"] = []
            for tile in _ws_tiles(m):
                us = t([functools.partial(ws_dequant_gemm, x, lay.prepared["weights"], lay.prepared["plan"],
                                          lay.prepared["alpha"], None, tile) for lay in reps])
                row["ws"].append([dataclasses.asdict(tile), us])
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                write_json_atomic(args.out / "time.json", out, create_folder=True)
        del layers, bf16, reps
        torch.cuda.empty_cache()
    return out


def gemlite_probe(args) -> dict:
    import torch
    from bench_triton_nvfp4 import _layers, kernel_time
    from gemlite_peers import (
        FORMATS,
        available,
        build,
        call,
        chosen_family,
        fast_autotune,
        invariance,
    )

    ok, version = available()
    out = {"env": _env(), "gemlite": version, "importable": ok, "rows": []}
    if not ok:
        print("gemlite not importable:", version)
        return out
    fast_autotune()
    for shape in args.shapes:
        n, k = map(int, shape.split("x"))
        layers, bf16 = _layers(n, k, 4)
        ours = layers["W4A16"][1]
        for fmt in args.formats or FORMATS:
            t0 = time.time()
            peer = build(fmt, ours[0], bf16[0], 4)
            rec = {"n": n, "k": k, "format": fmt, "build_error": peer.error, "points": []}
            for m in ([] if peer.error else args.ms):
                x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
                pt = {"m": m, "auto_family": None}
                try:
                    pt["auto_family"] = chosen_family(m, fmt)
                except Exception as e:
                    pt["auto_family"] = f"{type(e).__name__}: {e}"[:200]
                for fam in [None if f == "auto" else f for f in args.families]:
                    key = fam or "auto"
                    try:
                        call(peer.layers[0], x, fam)()
                        torch.cuda.synchronize()
                        pt[key] = round(kernel_time([call(lin, x, fam) for lin in peer.layers], args.reps), 2)
                        if m > 1:
                            pt[key + "_invariant"] = invariance(peer.layers[0], x, fam)
                    except Exception as e:
                        pt[key] = f"{type(e).__name__}: {e}"[:300]
                rec["points"].append(pt)
                print(fmt, json.dumps(pt), flush=True)
            rec["seconds"] = round(time.time() - t0, 1)
            out["rows"].append(rec)
            if args.out:
                write_json_atomic(args.out / "gemlite.json", out, create_folder=True)
            del peer
            torch.cuda.empty_cache()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("check", "time", "gemlite"))
    ap.add_argument("--shapes", nargs="*", default=["8192x8192"])
    ap.add_argument("--ms", nargs="*", type=int, default=[1, 16, 64, 128, 256, 1024])
    ap.add_argument("--reps", type=int, default=25, help="ms of repetitions per timed point")
    ap.add_argument("--families", nargs="*", default=["auto"],
                    help="gemlite kernel families to time ('auto' = gemlite's own choice)")
    ap.add_argument("--formats", nargs="*", help="gemlite formats (default: all)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    {"check": check, "time": timing, "gemlite": gemlite_probe}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
