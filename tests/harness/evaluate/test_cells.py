"""Expanding sweeps into cells: counts, ids, locations."""

from __future__ import annotations

import math

from harness.evaluate.cells import cell_id, expand, expand_sweep, sweep_envs
from harness.load import Matrix
from harness.targets.project import ProjectTarget

VOCABULARY = ProjectTarget().vocabulary


def _sweep(matrix: Matrix, sweep_id: str):
    return next(s for s in matrix.sweeps if s.id == sweep_id)


def test_cross_product_is_complete(shipped: Matrix):
    sweep = _sweep(shipped, "env-cross")
    sizes = [
        sum(len(shipped.backends) if v == "$BACKENDS" else 1 for v in values)
        for values in sweep.cross.values()
    ]
    envs = sweep_envs(shipped, sweep, VOCABULARY)
    explicit = [e for e, where in envs if where[0] == "envs"]
    assert len(envs) - len(explicit) == math.prod(sizes)
    assert len(explicit) == len(sweep.envs)  # none of the explicit cases repeats a crossed one
    cells = expand_sweep(shipped, sweep, VOCABULARY)
    assert len(cells) == len(envs) * len(shipped.profiles)
    assert len({c.id for c in cells}) == len(cells)


def test_every_backend_is_forced_by_name(shipped: Matrix):
    envs = {
        dict(e).get("VLLM_NVFP4_GEMM_BACKEND")
        for e, _ in sweep_envs(shipped, _sweep(shipped, "env-cross"), VOCABULARY)
    }
    assert set(shipped.backends) <= envs


def test_ids_are_readable_and_stable():
    assert cell_id("b200", (("VLLM_BATCH_INVARIANT", "1"), ("VLLM_USE_FBGEMM", "1")), None) == (
        "b200-VLLM_BATCH_INVARIANT=1-VLLM_USE_FBGEMM=1"
    )
    assert cell_id("v100", (), None) == "v100-default"
    assert cell_id("cpu", (("VLLM_BATCH_INVARIANT", " 1 "),), "w4a16-bf16") == (
        "cpu-VLLM_BATCH_INVARIANT=' 1 '-layer=w4a16-bf16"
    )
    assert cell_id(
        "b200",
        (("VLLM_BATCH_INVARIANT", ""),),
        None,
        (("triton", False, "x"), ("emulation", True, "")),
    ) == ("b200-VLLM_BATCH_INVARIANT=''-mock=triton:off,emulation:on")


def test_mock_relevant_crosses_every_consulted_backend(shipped: Matrix):
    cells = expand_sweep(shipped, _sweep(shipped, "precedence-mocked"), VOCABULARY)
    bi = [c for c in cells if c.profile == "b200" and c.env == (("VLLM_BATCH_INVARIANT", "1"),)]
    assert sorted(tuple((n, ok) for n, ok, _ in c.mocks) for c in bi) == sorted(
        (("triton", a), ("emulation", b)) for a in (True, False) for b in (True, False)
    )
    auto = [c for c in cells if c.profile == "v100" and c.env == ()]
    assert len(auto) == 2 ** len(shipped.backends)


def test_cells_carry_their_yaml_line(shipped: Matrix):
    groups = dict(expand(shipped, VOCABULARY))
    assert list(groups) == ["env-cross", "layers", "precedence-mocked", "cases"]
    case = next(c for c in groups["cases"] if c.id == "b200-batch-invariant")
    assert case.location == shipped.where("case", "b200-batch-invariant")
    explicit = next(c for c in groups["env-cross"] if c.env == (("VLLM_BATCH_INVARIANT", "maybe"),))
    assert explicit.location == shipped.where("sweep", "env-cross", "envs", 0)


def test_environments_are_written_in_the_targets_order(shipped: Matrix):
    from harness.targets import Vocabulary

    sweep = _sweep(shipped, "env-cross")
    backwards = Vocabulary(tuple(reversed(VOCABULARY.inputs)), VOCABULARY.packages)
    forwards = [e for e, _ in sweep_envs(shipped, sweep, VOCABULARY) if len(e) > 1]
    assert forwards and all([k for k, _ in e] == sorted(
        (k for k, _ in e), key=VOCABULARY.inputs.index) for e in forwards)
    reverse = [e for e, _ in sweep_envs(shipped, sweep, backwards) if len(e) > 1]
    assert [tuple(reversed(e)) for e in reverse] == forwards
