#!/usr/bin/env bash
# Nsight Compute summary of the batch-invariant NVFP4 GEMM kernel (decode and M = 256).
# Usage: bash benchmarks/ncu_summary.sh [OUTDIR]   (needs ncu and a CUDA GPU)
# Profiles the third call of the GEMM kernel at M = 1 and M = 256 (8192x8192, W4A4):
# speed of light (DRAM and SM throughput), occupancy, warp-state (stall) statistics and the
# tensor-pipe activity, and writes one text report per point to OUTDIR (default: .).
set -u
out=${1:-.}
mkdir -p "$out"
cd "$(dirname "$0")/.."
# metric names differ between ncu versions: take the tensor-pipe ones this ncu knows
tensor=$(ncu --query-metrics --chip gh100 2>/dev/null \
  | awk '$1 ~ /^sm__pipe_tensor_op_(gmma|hmma)_cycles_active$/ || $1 ~ /^sm__inst_executed_pipe_tensor_op_gmma$/ {print $1}' \
  | sed -e 's/_cycles_active$/_cycles_active.avg.pct_of_peak_sustained_active/' \
        -e 's/_pipe_tensor_op_gmma$/_pipe_tensor_op_gmma.sum/' | paste -sd, -)
# stall reasons: warps stalled per issued instruction, by reason
stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$'
for m in 1 256; do
  # --clock-control none: the GPU's own clocks, as in the benchmark (ncu locks base clocks by default)
  ncu --clock-control none --kernel-name regex:_nvfp4_dequant_gemm_kernel --launch-skip 2 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
      --section MemoryWorkloadAnalysis --metrics "${tensor:+$tensor,}$stalls" \
      python benchmarks/profile_triton_nvfp4.py --shape 8192x8192 --m "$m" --scheme W4A4 --calls 3 \
      > "$out/ncu_m$m.txt" 2>&1
  echo "== M = $m (exit $?) =="
  grep -E "issue_stalled" "$out/ncu_m$m.txt" | sort -k3 -g -r | head -6
  grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Warp Cycles Per Issued|No Eligible|Issued Warp|pipe_tensor|Stall|stall|Grid Size|Shared Memory Configuration|Dynamic Shared" "$out/ncu_m$m.txt" | head -40
done
