"""Launch plans for the NVFP4 GEMMs: what is fixed per weight shape, what may follow M.

Batch invariance means that the float32 reduction order of every output
element is the same for every M. The plan therefore splits its choices in two:

* :class:`GemmPlan`, a function of the weight shape ``(N, K)`` only: the K
  chunk length ``block_k``, the number of K splits ``split_k`` (each split a
  contiguous run of chunks, summed in split order with ``total = 0;
  total += part_s``) and the padding. These fix the reduction order.
* :class:`TileConfig`, chosen per M bucket for speed: the batch tile
  ``block_m``, the weight tile ``block_n``, warps, pipeline depth, and how
  the splits meet (:data:`REDUCE_MODES`): in registers of one program
  (``inline``), through a running total that one program parks in memory
  (``spill``), or as float32 partials of one program per split, summed in
  split order by a second kernel (``partial``) or by the last program of the
  tile to finish (``fused``). None of these changes the order of the float32 additions of
  an output element: each K step of 16 is one MMA instruction of the same
  family (sm90: ``wgmma`` m64nXk16 with the weight operand in registers; sm80:
  ``mma.sync`` m16n8k16), issued chunk by chunk in K order into a fresh
  accumulator per split. The claim is checked bitwise on the GPU for every
  bucket (``tests/triton``), because an MMA's internal summation is not
  specified by the ISA.
"""

from __future__ import annotations

import dataclasses

from kernels.errors import FormatError
from kernels.nvfp4 import format as fmt
from kernels.nvfp4.layout import round_up

__all__ = [
    "BUCKETS",
    "GemmPlan",
    "N_ALIGN",
    "REDUCE_MODES",
    "TARGET_PROGRAMS",
    "TileConfig",
    "fused_counter_slots",
    "plan_for",
    "tile_for",
]

#: weight rows are padded to this, the largest ``block_n`` of any tile config
N_ALIGN = 128
#: programs a decode launch should have (about one 64-row weight tile per SM
#: of a 132-SM H100). A constant, not the device's SM count, so that the split
#: depends on (N, K) only. Measured on H100 (kernel time, docs/benchmarks.md):
#: N = K = 8192 decodes 8% faster split in two (23.6 against 25.5 us), but the
#: split costs 4-13% from M = 256 up (fused partials, a second accumulator or
#: a spilled running total), so a layer is split only when it has fewer tiles
#: than this.
TARGET_PROGRAMS = 128
#: longest K run of one split: very long reductions (K = 28672) decode faster
#: split (58.8-64 us split in four or two, 77 us unsplit)
MAX_K_PER_SPLIT = 16384
#: decode programs resident at once on the reference GPU (H100: 132 SMs x 4
#: programs of 64 weight rows at 3 pipeline stages). A constant of the plan,
#: not read from the device: a launch of slightly more programs than this runs
#: a nearly empty second round, so the split either stays within one round or
#: makes at least two full ones.
DECODE_SLOTS = 528
#: the smallest number of K chunks a split may have (keeps the pipeline useful)
MIN_CHUNKS_PER_SPLIT = 4


@dataclasses.dataclass(frozen=True)
class GemmPlan:
    """The M-independent part of a launch: fixes the reduction order.

    Attributes:
        n, k: the logical weight shape ``[N, K]``.
        block_k: K chunk length (elements), 128 or 256.
        split_k: number of K splits; it divides ``k_chunks``.
    """

    n: int
    k: int
    block_k: int
    split_k: int

    def __post_init__(self) -> None:
        if self.n <= 0 or self.k <= 0 or self.k % fmt.BLOCK_SIZE:
            raise FormatError(f"plan needs N > 0 and K a positive multiple of 16, got N={self.n} K={self.k}")
        if self.block_k not in (128, 256):
            raise FormatError(f"block_k must be 128 or 256, got {self.block_k}")
        if self.split_k <= 0 or self.k_chunks % self.split_k:
            raise FormatError(f"split_k={self.split_k} must divide the {self.k_chunks} K chunks")

    @property
    def k_pad(self) -> int:
        return round_up(self.k, self.block_k)

    @property
    def n_pad(self) -> int:
        return round_up(self.n, N_ALIGN)

    @property
    def k_chunks(self) -> int:
        return self.k_pad // self.block_k

    @property
    def chunks_per_split(self) -> int:
        return self.k_chunks // self.split_k


#: how the K splits of an output tile meet (see :class:`TileConfig`)
REDUCE_MODES = ("inline", "spill", "partial", "fused")


@dataclasses.dataclass(frozen=True)
class TileConfig:
    """The M-dependent part of a launch (speed only; see the module docstring).

    Attributes:
        block_m: batch rows per program (the MMA's N dimension), 16..256.
        block_n: weight rows per program, 64 per warpgroup of 4 warps.
        num_warps, num_stages: Triton launch options.
        reduce: ``"partial"`` (one program per split writes float32
            partials, a second kernel sums them in split order), ``"fused"``
            (the same partials, summed in split order by the last program of
            each output tile to finish: no second launch) or ``"inline"``
            (one program runs all splits and sums them in registers, no extra
            traffic at large M) or ``"spill"`` (one program runs all splits
            with one accumulator, the running total parked in a float32
            buffer between splits: wide tiles without a second accumulator).
            Bitwise identical.
        block_k: K step per loop iteration (at most the plan's chunk, which it
            divides): the MMA still walks K 16 at a time in order, so the step
            only sets how much is staged in shared memory per iteration.
        group_m: batch tiles per launch group (L2 reuse of the weight tiles).
        dense: decode the whole weight into a scratch buffer first and read
            it as a plain operand (large M, where the in-register decode would
            stall the tensor cores); same values, same MMA K order.
        stripe_n: dense only: decode and multiply the weight in stripes of
            this many weight rows (a multiple of :data:`N_ALIGN`), one scratch
            stripe reused for each, so that a decoded stripe can still be in
            L2 when the GEMM reads it; 0 decodes the whole weight first. Each
            output element is computed by the same program code on the same
            values in either case.
    """

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    reduce: str
    block_k: int = 256
    group_m: int = 8
    dense: bool = False
    stripe_n: int = 0

    def __post_init__(self) -> None:
        if self.block_m not in (16, 32, 64, 128, 256):
            raise FormatError(f"block_m must be one of 16, 32, 64, 128, 256, got {self.block_m}")
        if self.block_n not in (64, 128) or self.block_n > N_ALIGN:
            raise FormatError(f"block_n must be 64 or 128, got {self.block_n}")
        # One warpgroup (4 warps) per 64 weight rows keeps every tile on the
        # same MMA family (wgmma m64 on sm90): a narrower warp split would let
        # Triton fall back to mma.sync, a different bit class.
        if self.num_warps != 4 * (self.block_n // 64) and self.num_warps != 4:
            raise FormatError(
                f"num_warps={self.num_warps} does not match block_n={self.block_n} "
                "(4 warps, or 4 per 64 weight rows)"
            )
        if self.reduce not in REDUCE_MODES:
            raise FormatError(f"reduce must be one of {REDUCE_MODES}, got {self.reduce!r}")
        if self.block_k not in (64, 128, 256):
            raise FormatError(f"block_k must be one of (64, 128, 256), got {self.block_k}")
        if self.num_stages < 1 or self.group_m < 1:
            raise FormatError(f"num_stages and group_m must be >= 1, got {self.num_stages}, {self.group_m}")
        if self.stripe_n < 0 or self.stripe_n % N_ALIGN:
            raise FormatError(f"stripe_n must be 0 or a positive multiple of {N_ALIGN}, got {self.stripe_n}")
        if self.stripe_n and not (self.dense and self.reduce in ("inline", "spill")):
            raise FormatError("stripe_n needs dense=True and reduce 'inline' or 'spill' (one program "
                              f"per output tile), got dense={self.dense} reduce={self.reduce!r}")


def plan_for(n: int, k: int, *, target_programs: int = TARGET_PROGRAMS) -> GemmPlan:
    """The plan of an ``[N, K]`` weight. Depends on (N, K) only, never on M."""
    if n <= 0 or k <= 0 or k % fmt.BLOCK_SIZE:
        raise FormatError(f"plan needs N > 0 and K a positive multiple of 16, got N={n} K={k}")
    block_k = 256 if k >= 2048 else 128
    chunks = round_up(k, block_k) // block_k
    tiles = -(-n // 64)
    want = max(1, -(-target_programs // tiles), -(-k // MAX_K_PER_SPLIT))
    if DECODE_SLOTS < tiles * want < 2 * DECODE_SLOTS:
        want = -(-2 * DECODE_SLOTS // tiles)
    split = 1
    for d in range(1, chunks + 1):
        if chunks % d == 0 and d <= want and chunks // d >= min(MIN_CHUNKS_PER_SPLIT, chunks):
            split = d
    return GemmPlan(n=n, k=k, block_k=block_k, split_k=split)


#: (largest M of the bucket, tile when the plan has one split, tile when it has several).
#: The speed table, measured on an H100 in kernel time (docs/benchmarks.md).
#: Small M: one 64-row weight tile per program, 3 stages (4 programs per SM),
#: the K splits of a split plan in separate programs meeting through the fused
#: last-arriver reduction (up to M = 256). Large M: decode the weight once,
#: then a 256 x 128 GEMM tile; a split plan keeps one accumulator by parking
#: its running total in memory between splits (``spill``).
BUCKETS: tuple[tuple[int, TileConfig, TileConfig], ...] = (
    (16, TileConfig(16, 64, 4, 3, "inline", block_k=256),
     TileConfig(16, 64, 4, 3, "fused", block_k=256)),
    (32, TileConfig(32, 64, 4, 3, "inline", block_k=256),
     TileConfig(32, 64, 4, 3, "fused", block_k=256)),
    (64, TileConfig(64, 64, 4, 4, "inline", block_k=128),
     TileConfig(64, 64, 4, 3, "fused", block_k=128)),
    (128, TileConfig(128, 64, 4, 3, "inline", block_k=128),
     TileConfig(128, 64, 4, 3, "fused", block_k=128)),
    (256, TileConfig(128, 128, 8, 3, "inline", block_k=128),
     TileConfig(128, 64, 4, 3, "fused", block_k=128)),
    (512, TileConfig(128, 128, 8, 3, "inline", block_k=128),
     TileConfig(256, 128, 8, 3, "spill", block_k=64, dense=True)),
    (1 << 62, TileConfig(256, 128, 8, 3, "inline", block_k=64, dense=True),
     TileConfig(256, 128, 8, 3, "spill", block_k=64, dense=True)),
)


def fused_counter_slots(plan: GemmPlan) -> int:
    """Ticket counters the ``fused`` tiles of :data:`BUCKETS` need under ``plan`` (0 if none).

    One per output tile of the largest launch of a bucket whose tile is
    ``fused``; the unbounded last bucket may not be fused.
    """
    if plan.split_k == 1:
        return 0
    slots = 0
    for limit, _, several in BUCKETS:
        if several.reduce == "fused":
            if limit >= 1 << 62:
                raise AssertionError("the unbounded bucket cannot use the fused reduction")
            slots = max(slots, -(-plan.n // several.block_n) * -(-limit // several.block_m))
    return slots


def tile_for(m: int, plan: GemmPlan) -> TileConfig:
    """The tile config for ``m`` rows under ``plan``. Only speed depends on it (module docstring)."""
    if m < 1:
        raise FormatError(f"m must be >= 1, got {m}")
    for limit, single, several in BUCKETS:
        if m <= limit:
            tile = single if plan.split_k == 1 else several
            if m <= 32 and plan.split_k == 1 and -(-plan.n // 64) <= DECODE_SLOTS // 4:
                # at most one weight tile per SM: a deeper pipeline beats residency
                # (N = K = 8192 decodes in 25.5 us at 4 stages, 26.4 us at 3)
                tile = dataclasses.replace(tile, num_stages=4)
            return tile
    raise AssertionError("unreachable: the last bucket is unbounded")
