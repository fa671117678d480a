"""``bench_triton_nvfp4.py --from-json A B``: runs merged row by row, never mixed within a row."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_triton_nvfp4", ROOT / "benchmarks" / "bench_triton_nvfp4.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _run(date, rows, gpu="NVIDIA H100 80GB HBM3"):
    return {"gpu": gpu, "torch": "2.11.0", "triton": "3.6.0", "cuda": "13.0", "date": date,
            "gemlite": {"version": "0.6.0.post2", "build_errors": {}},
            "rows": [{"n": n, "k": k, "m": m, "cublas_us": us} for n, k, m, us in rows]}


def test_a_later_run_replaces_whole_rows_and_says_when_it_ran(bench):
    first = _run("2026-12-06 15:08 UTC", [(8192, 8192, 1, 50.0), (8192, 8192, 2, 51.0), (28672, 8192, 1, 160.0)])
    later = _run("2026-12-06 18:00 UTC", [(8192, 8192, 2, 49.0), (8192, 28672, 2, 170.0), (8192, 8192, 512, 88.0)])
    merged = bench.merge([first, later])
    keys = [(r["n"], r["k"], r["m"]) for r in merged["rows"]]
    # the benchmark's shape order, then M; every key once
    assert keys == [(8192, 8192, 1), (8192, 8192, 2), (8192, 8192, 512), (28672, 8192, 1), (8192, 28672, 2)]
    by_key = dict(zip(keys, merged["rows"], strict=True))
    assert by_key[(8192, 8192, 2)]["cublas_us"] == 49.0
    assert by_key[(8192, 8192, 2)]["date"] == "2026-12-06 18:00 UTC"
    assert "date" not in by_key[(8192, 8192, 1)]  # the header's run
    assert merged["date"] == "2026-12-06 15:08 UTC"
    assert merged["merged_dates"] == ["2026-12-06 15:08 UTC", "2026-12-06 18:00 UTC"]


def test_runs_of_another_gpu_are_not_merged(bench):
    first = _run("a", [(8192, 8192, 1, 50.0)])
    other = _run("b", [(8192, 8192, 2, 40.0)], gpu="NVIDIA H200")
    with pytest.raises(SystemExit, match="cannot merge runs of different GPUs or versions: gpu"):
        bench.merge([first, other])
