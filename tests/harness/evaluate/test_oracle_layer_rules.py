"""Rules that depend on the layer and the device: weight-only forcing rules, lists cut to the
layer, forced backends picked by support alone (the constructs vLLM 0.32+'s W4A16 path needs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import MatrixError
from harness.evaluate.oracle import Oracle
from harness.load import Matrix, load_matrix

# A small engine: two W4A4 kernels, two batch-invariant ones, two weight-only ones. For a
# weight-only layer with the option left at auto, sm_100 prefers WoFast then Wo, sm_90 leaves
# the choice to automatic selection, every other device forces Wo.
ENGINE = """\
version: 1
target: {name: engine}
profiles:
  b: {name: b, device_type: cuda, capability: "10.0", cuda: "12.8", supported: []}
  h: {name: h, device_type: cuda, capability: "9.0", cuda: "12.8", supported: []}
  a: {name: a, device_type: cuda, capability: "8.0", cuda: "12.8", supported: []}
  c: {name: c, device_type: cpu, supported: []}
layers:
  w4a4: {in_features: 64, out_features: 64}
  w4a16: {in_features: 64, out_features: 64, weight_only: true}
default_layer: w4a4
backends:
  fast:
    kernel: FastKernel
    support: [{device: cuda, families: [10]}]
    implements: {act_dtypes: [bfloat16]}
  bi:
    kernel: BiKernel
    batch_invariant: true
    support: [{device: cuda, families: [10]}]
    implements: {act_dtypes: [bfloat16]}
  wo-fast:
    kernel: WoFastKernel
    support: [{device: cuda, families: [10]}]
    implements: {act_dtypes: [bfloat16], weight_only: true}
  wo:
    kernel: WoKernel
    support: [{device: cuda, min_capability: "7.5"}]
    implements: {act_dtypes: [bfloat16], weight_only: true}
  emu:
    kernel: EmuKernel
    batch_invariant: true
    support: [{device: any}]
    implements: {act_dtypes: [bfloat16]}
precedence:
  validation: lazy
  forced_pick: supported
  forcing:
    - rule: batch_invariant
      variable: VLLM_BATCH_INVARIANT
      value: int-flag
      forces: [bi, emu]
    - rule: linear_backend
      variable: --linear-backend
      value: backend-name
      mode: restrict
      on_empty: auto
      match: exact
      auto_values: [auto]
      choices: [auto, fast, wo, none]
      names: {fast: [fast], wo: [wo, wo-fast], none: []}
    - rule: weight_only_auto
      variable: --linear-backend
      value: unset
      auto_values: [auto]
      match: exact
      layers: weight-only
      forces: [wo]
      forces_by_capability:
        "10.0": [wo-fast, wo]
        "9.0": []
  auto:
    disabled_by: VLLM_DISABLED_KERNELS
    unfit: drop
    order: [fast, bi, wo-fast, wo, emu]
    devices:
      cuda: [fast, bi, wo-fast, wo, emu]
      cpu: []
  errors:
    forced_cannot_implement: "{kernel} does not support W4A16"
"""


def _load(tmp_path: Path, text: str = ENGINE) -> Matrix:
    path = tmp_path / "engine.yaml"
    path.write_text(text)
    return load_matrix([path])


@pytest.fixture
def engine(tmp_path: Path) -> Matrix:
    return _load(tmp_path)


def _expect(matrix: Matrix, profile: str, layer: str, env=None, mocks=None):
    oracle = Oracle(matrix)
    return oracle.expect(
        matrix.profile(profile).platform(), env or {}, matrix.layer(layer), mocks
    )


def _summary(e) -> tuple:
    if e.outcome == "backend":
        return ("backend", e.backend, e.rule)
    return ("error", e.rule, e.error_prefix)


@pytest.mark.parametrize(
    ("profile", "layer", "env", "want"),
    [
        # a W4A4 layer never sees the weight-only rule
        ("b", "w4a4", {}, ("backend", "fast", "auto")),
        ("a", "w4a4", {}, ("backend", "wo", "auto")),
        # the weight-only rule, per capability; --linear-backend auto leaves it in charge
        ("b", "w4a16", {}, ("backend", "wo-fast", "weight_only_auto")),
        ("b", "w4a16", {"--linear-backend": "auto"}, ("backend", "wo-fast", "weight_only_auto")),
        ("a", "w4a16", {}, ("backend", "wo", "weight_only_auto")),
        # an empty list for the capability: the rule does not fire, automatic selection decides
        ("h", "w4a16", {}, ("backend", "wo", "auto")),
        # forced: the disabled list does not apply
        ("a", "w4a16", {"VLLM_DISABLED_KERNELS": "WoKernel"}, ("backend", "wo", "weight_only_auto")),
        # a device without a capability gets 'forces'
        ("c", "w4a16", {}, ("error", "weight_only_auto", "Forced NVFP4 kernel WoKernel is not supported: ")),
        # a restriction naming only unfit backends finds nothing here: the cut list decides
        ("b", "w4a16", {"--linear-backend": "fast"}, ("backend", "wo-fast", "linear_backend")),
        ("a", "w4a16", {"--linear-backend": "none"}, ("backend", "wo", "linear_backend")),
        ("b", "w4a4", {"--linear-backend": "fast"}, ("backend", "fast", "linear_backend")),
        # batch invariance: picked by support alone, then refused for the layer
        ("b", "w4a16", {"VLLM_BATCH_INVARIANT": "1"}, ("error", "batch_invariant", "BiKernel does not support W4A16")),
        ("a", "w4a16", {"VLLM_BATCH_INVARIANT": "1"}, ("error", "batch_invariant", "EmuKernel does not support W4A16")),
        ("a", "w4a4", {"VLLM_BATCH_INVARIANT": "1"}, ("backend", "emu", "batch_invariant")),
    ],
)
def test_expected_outcome(engine, profile, layer, env, want):
    e = _expect(engine, profile, layer, env)
    assert _summary(e) == want, e.because


def test_the_unfit_are_not_consulted_nor_named(engine):
    e = _expect(engine, "h", "w4a16", {"VLLM_DISABLED_KERNELS": "WoKernel"})
    assert e.outcome == "error" and e.rule == "auto"
    assert e.candidates == (("wo-fast", "unsupported"), ("wo", "disabled"))
    assert set(e.error_contains) == {
        "Failed to find a kernel that can implement the NVFP4 linear layer", "WoFastKernel", "WoKernel"
    }
    # the same automatic error for a W4A4 layer names every backend of the list
    e = _expect(engine, "h", "w4a4", {"VLLM_DISABLED_KERNELS": "WoKernel"}, {"emu": (False, "x")})
    assert e.outcome == "error" and len(e.candidates) == 5
    assert {"FastKernel", "BiKernel", "EmuKernel"} < set(e.error_contains)


def test_forced_pick_by_support_falls_to_the_last_and_checks_the_layer_first(engine):
    off = {"bi": (False, "no bi"), "emu": (False, "no emu")}
    e = _expect(engine, "b", "w4a16", {"VLLM_BATCH_INVARIANT": "1"}, off)
    assert e.error_prefix == "EmuKernel does not support W4A16"
    assert e.candidates == (("bi", "unsupported"), ("emu", "cannot-implement"))
    # for a layer it implements, the last one's support is the error (with the mocked reason)
    e = _expect(engine, "b", "w4a4", {"VLLM_BATCH_INVARIANT": "1"}, off)
    assert e.error_prefix == "Forced NVFP4 kernel EmuKernel is not supported: no emu"
    # the first supported one is forced even though a later one would fit no better
    e = _expect(engine, "a", "w4a16", {"VLLM_BATCH_INVARIANT": "1"}, {"bi": (True, "")})
    assert e.error_prefix == "BiKernel does not support W4A16"
    assert e.candidates == (("bi", "cannot-implement"), ("emu", "not-reached"))
    # the weight-only rule: WoFast refused by a mock, so Wo; both refused: Wo's support is the error
    e = _expect(engine, "b", "w4a16", {}, {"wo-fast": (False, "gone")})
    assert (e.backend, e.candidates) == ("wo", (("wo-fast", "unsupported"), ("wo", "selected")))
    e = _expect(engine, "b", "w4a16", {}, {"wo-fast": (False, "gone"), "wo": (False, "also gone")})
    assert e.error_prefix == "Forced NVFP4 kernel WoKernel is not supported: also gone"


def test_usable_pick_walks_past_a_backend_that_cannot_implement(tmp_path):
    # the default: the first forced backend that is supported *and* implements the layer
    matrix = _load(tmp_path, ENGINE.replace("  forced_pick: supported\n", ""))
    e = _expect(matrix, "b", "w4a16", {"VLLM_BATCH_INVARIANT": "1"})
    assert e.candidates == (("bi", "cannot-implement"), ("emu", "cannot-implement"))
    assert e.error_prefix == "EmuKernel does not support W4A16"


def test_consulted_follows_the_layer_and_the_capability(engine):
    oracle = Oracle(engine)
    b = engine.profile("b").platform()
    a = engine.profile("a").platform()
    wo = engine.layer("w4a16")
    assert oracle.consulted({}, b, wo) == ("wo-fast", "wo")
    assert oracle.consulted({}, a, wo) == ("wo",)
    # without a platform: every backend the rule can force anywhere
    assert oracle.consulted({}, None, wo) == ("wo", "wo-fast")
    # without a layer the layer is W4A4: no weight-only rule, nothing cut
    assert oracle.consulted({}, b) == ("fast", "bi", "wo-fast", "wo", "emu")
    assert oracle.consulted({"--linear-backend": "fast"}, b, wo) == ("wo-fast", "wo")
    assert oracle.consulted({"--linear-backend": "wo"}, b, wo) == ("wo-fast", "wo")


def test_an_unset_rule_reads_no_value(engine):
    oracle = Oracle(engine)
    wo = engine.layer("w4a16")
    # a value the next rule would refuse is refused by that rule, never read by the unset one
    reading = oracle.read({"--linear-backend": "bogus"}, wo, engine.profile("b").platform())
    assert reading.invalid == ("--linear-backend",)
    e = _expect(engine, "b", "w4a16", {"--linear-backend": "bogus"})
    assert e.outcome == "invalid-env" and e.error_mentions_any == ("--linear-backend",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '        "9.0": []\n',
            '        "9.0": [nope]\n',
            "precedence.forcing[2].forces_by_capability.9.0[0]",
        ),
        (
            "      variable: VLLM_BATCH_INVARIANT\n",
            "      variable: --linear-backend\n",
            "precedence.forcing[1].variable: --linear-backend already has a rule",
        ),
        (
            "      forces: [wo]\n",
            "",
            "an unset rule needs 'forces'",
        ),
        (
            "      mode: restrict\n",
            "      mode: restrict\n      forces_by_capability: {\"10.0\": [fast]}\n",
            "drop 'forces_by_capability'",
        ),
        (
            "      layers: weight-only\n",
            "      layers: w4a16\n",
            "precedence.forcing[2].layers",
        ),
        (
            "    unfit: drop\n",
            "    unfit: skip\n",
            "precedence.auto.unfit",
        ),
    ],
)
def test_the_new_keys_are_checked(tmp_path, old, new, message):
    assert old in ENGINE
    with pytest.raises(MatrixError) as info:
        _load(tmp_path, ENGINE.replace(old, new, 1))
    assert message in str(info.value)
