"""Writes the malformed-matrix corpus of ``tests/harness/load/test_fuzz_corpus.py``.

Every case is the valid base document (``base.yaml``) with one thing broken, or
raw bytes, and the problem it must produce: the line (found by a marker
string), the dotted key and a piece of the message. ``python
tests/harness/load/corpus/make_corpus.py`` rewrites ``cases/`` and
``EXPECTED.tsv``; the test reads only those, so the corpus is data.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The valid document every case breaks (also the fuzz tests' seed).
BASE = (HERE / "base.yaml").read_text(encoding="utf-8")


@dataclasses.dataclass
class Case:
    name: str
    data: bytes
    line: int | None  # None: the file cannot be read at all
    key: str
    message: str


CASES: list[Case] = []


def case(name: str, text: str | bytes, at: str | int | None, key: str, message: str) -> None:
    """Add a case; ``at`` is the expected line, or a string whose first line is the expected one."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if isinstance(at, str):
        marker = at.encode("utf-8")
        index = data.find(marker)
        if index < 0:
            raise SystemExit(f"{name}: marker {at!r} not in the text")
        line: int | None = data.count(b"\n", 0, index) + 1
    else:
        line = at
    CASES.append(Case(name, data, line, key, message))


def broken(name: str, old: str, new: str, at: str | int | None, key: str, message: str) -> None:
    """The base document with ``old`` replaced by ``new`` (which must occur once)."""
    if BASE.count(old) != 1:
        raise SystemExit(f"{name}: {old!r} occurs {BASE.count(old)} times in the base")
    case(name, BASE.replace(old, new), at, key, message)


# --- YAML itself ----------------------------------------------------------------------------
case("empty-file", "", 1, "", "this one is empty")
case("only-comments", "# nothing here\n# at all\n", 1, "", "this one is empty")
case("top-level-scalar", "just a string\n", 1, "", "this one is a string")
case("top-level-list", "- version: 1\n", 1, "", "this one is a list")
case("top-level-number", "42\n", 1, "", "this one is a integer")
case("null-document", "null\n", 1, "", "this one is empty")
case("unclosed-flow-list", "version: 1\ninclude: [a.yaml\n", 3, "", "invalid YAML")
case("unclosed-flow-map", "version: 1\nprofiles: {big: {name: x}\n", 3, "", "invalid YAML")
case("unclosed-quote", 'version: 1\ninclude: ["a.yaml]\n', 3, "", "invalid YAML")
case("bad-indentation", "version: 1\nprofiles:\n  big:\n    name: x\n   device_type: cuda\n",
     "   device_type", "", "invalid YAML")
case("tab-indentation", "version: 1\nprofiles:\n\tbig: {}\n", "\tbig", "", "invalid YAML")
case("two-documents", "version: 1\n---\nversion: 1\n", "---", "", "expected a single document")
case("undefined-alias", "version: 1\ninclude: *nowhere\n", 2, "", "undefined alias")
case("colon-in-plain-key", "version: 1\nprofiles: a: b\n", 2, "", "invalid YAML")
case("stray-block-entry", "version: 1\n- x\n", 2, "", "invalid YAML")
case("directive-only", "%YAML 1.1\n", 2, "", "invalid YAML")
broken("duplicate-top-key", "layers:\n", "version: 1\nlayers:\n", "version: 1\nlayers",
       "version", "duplicate key 'version' (first defined at line 1)")
broken("duplicate-profile", "  laptop:\n", "  big:\n    name: x\n  laptop:\n", "  big:\n    name: x",
       "profiles.big", "duplicate key 'big'")
broken("duplicate-field", "    memory_gib: 180\n", "    memory_gib: 180\n    memory_gib: 80\n",
       "memory_gib: 80", "profiles.big.memory_gib", "duplicate key 'memory_gib'")
broken("merge-key", "  laptop:\n    name: cpu\n", "  laptop:\n    <<: {name: cpu}\n    name: cpu\n",
       "<<", "profiles.laptop", "merge keys (<<) are not supported")
broken("complex-key", "layers:\n", "? [a, b]\n: c\nlayers:\n", "? [a", "",
       "mapping keys must be plain scalars")
broken("python-tag-scalar", "    name: cpu\n", "    name: !!python/name:os.system cpu\n",
       "!!python", "profiles.laptop.name", "invalid YAML")
broken("python-tag-map", "  laptop:\n", "  laptop: !!python/object:os.system\n", "!!python",
       "profiles.laptop", "is not supported")
broken("set-tag", "    supported: [slow]\n", "    supported: !!set {slow}\n", "!!set",
       "profiles.laptop.supported", "is not supported")
broken("omap-tag", "    supported: [slow]\n", "    supported: !!omap [a: 1]\n", "!!omap",
       "profiles.laptop.supported", "is not supported")
broken("binary-tag", "    name: cpu\n", "    name: !!binary aGVsbG8=\n", "!!binary",
       "profiles.laptop.name", "wrong type")
broken("timestamp-value", "    name: cpu\n", "    name: 2024-01-01\n", "2024-01-01",
       "profiles.laptop.name", "wrong type")

# --- bytes ----------------------------------------------------------------------------------
case("nul-byte", "version: 1\nprofiles:\n  big\x00: {}\n", 3, "", "U+0000 is not allowed")
case("nul-in-include", "version: 1\ninclude: [\"a\\0b.yaml\"]\n", 2, "include[0]",
     "U+0000 (a control character) is not allowed")
case("escape-char", "version: 1\n# \x1b[31m red\n", 2, "", "U+001B is not allowed")
case("bell-char", "version: 1\nlayers: {}\n\x07\n", 3, "", "U+0007 is not allowed")
case("delete-char", "version: 1\n\x7f: 1\n", 2, "", "U+007F is not allowed")
case("c1-control", "version: 1\n# \u0090\n", 2, "", "U+0090 is not allowed")
case("latin1-byte", b"version: 1\n# caf\xe9 au lait\n", 2, "", "not UTF-8 text: byte 0xe9")
case("lone-continuation", b"version: 1\nprofiles: {}\n\x80\n", 3, "", "not UTF-8 text: byte 0x80")
case("truncated-utf8", b"version: 1\n# \xe2\x82\n", 2, "", "not UTF-8 text")
case("overlong-utf8", b"version: 1\n# \xc0\xaf\n", 2, "", "not UTF-8 text: byte 0xc0")
case("utf16-bom", "version: 1\n".encode("utf-16"), 1, "", "not UTF-8 text")
case("surrogate-bytes", b"version: 1\n# \xed\xa0\x80\n", 2, "", "not UTF-8 text")
case("binary-garbage", bytes(range(256)), 2, "", "not UTF-8 text: byte 0x80")
case("invalid-at-line-5", b"version: 1\nprofiles: {}\nlayers: {}\nsweeps: []\ncases: [\xff]\n", 5,
     "", "not UTF-8 text: byte 0xff")

# --- resource bounds ------------------------------------------------------------------------
_BOMB = "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 9)
)
# The budget runs out deep inside the expansion: the problem is at the alias (or value) reached.
case("alias-bomb", "version: 1\nl0: &l0 [lol]\n" + _BOMB, 3, "l5[1][2][5][7][1]", "alias bomb")
case("alias-bomb-under-unknown-key", "version: 1\nnotes:\n  l0: &l0 [lol]\n"
     + "".join("  " + line + "\n" for line in _BOMB.splitlines()), 3, "notes.l5[1][2][5][7][0][0]",
     "alias bomb")
case("alias-bomb-maps", "version: 1\nz: &z0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n"
     + "".join(
         f"y{i}: &z{i} {{" + ", ".join(f"k{j}: *z{i - 1}" for j in range(8)) + "}\n"
         for i in range(1, 8)
     ), 2, "y5.k0.k1.k4.k2.k3.b", "alias bomb")
case("self-referencing-list", "version: 1\nprofiles: &p [*p]\n", 2, "profiles[0]",
     "refers to the node that contains it")
case("self-referencing-map", "version: 1\nprofiles: &p {big: *p}\n", 2, "profiles.big",
     "refers to the node that contains it")
case("self-reference-nested", "version: 1\nlayers: &l\n  a:\n    b: [1, *l]\n", 4, "layers.a.b[1]",
     "refers to the node that contains it")
case("deep-flow-lists", "version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", 2, "", "nest")
case("deep-block-maps", "version: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(60))
     + "  " * 60 + "v: 1\n", "k32:", "", "nested more than 32 levels deep")
case("deep-block-lists", "version: 1\nx:\n" + "".join("  " * i + "-\n" for i in range(1, 50)),
     34, "", "nested more than 32 levels deep")
case("deep-flow-maps", "version: 1\nx: " + "{a: " * 100 + "1" + "}" * 100 + "\n", 2, "",
     "nested more than 32 levels deep")
case("deep-through-aliases", "version: 1\na0: &a0 [1]\n" + "".join(
    f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40)), 2, "a31" + "[0]" * 32,
     "nested more than 32 levels deep")
case("too-many-values", "version: 1\nx: [" + "1," * 60000 + "1]\n", 2, "",
     "more than 50000 values in one file")
case("too-many-keys", "version: 1\nx:\n" + "".join(f" k{i}: {i}\n" for i in range(26000)),
     " k24997:", "", "more than 50000 values in one file")

# --- the top level --------------------------------------------------------------------------
broken("missing-version", "version: 1\n", "", "profiles:", "version", "missing required key")
broken("version-2", "version: 1\n", "version: 2\n", 1, "version", "is not one of: 1")
broken("version-string", "version: 1\n", 'version: "1"\n', 1, "version",
       "version must be the integer 1, got str '1'")
broken("version-true", "version: 1\n", "version: true\n", 1, "version",
       "version must be the integer 1, got bool True")
broken("version-float", "version: 1\n", "version: 1.0\n", 1, "version",
       "version must be the integer 1, got float 1.0")
broken("version-null", "version: 1\n", "version:\n", 1, "version",
       "version must be the integer 1, got nothing None")
for typo, right in (("profils", "profiles"), ("Profiles", "profiles"), ("layer", "layers"),
                    ("backend", "backends"), ("presedence", "precedence"), ("sweep", "sweeps"),
                    ("case", "cases"), ("includes", "include"), ("known_failure", "known_failures"),
                    ("defaultlayer", "default_layer")):
    broken(f"unknown-top-key-{typo}", "cases:\n", f"{typo}: {{}}\ncases:\n", f"{typo}:", typo,
           f"did you mean '{right}'?")
broken("unknown-top-key-far", "cases:\n", "hardware: {}\ncases:\n", "hardware", "hardware",
       "unknown key 'hardware'")
broken("profiles-a-list", "profiles:\n  big:\n", "profiles:\n- big:\n", "profiles", "profiles",
       "wrong type")
broken("layers-a-string", "layers:\n  w4a4:\n    in_features: 4096\n    out_features: 4096\n"
       "    act_dtype: bfloat16\n", "layers: w4a4\n", "layers:", "layers", "wrong type")
broken("sweeps-a-map", "sweeps:\n  - id: env-cross\n", "sweeps:\n  env-cross:\n    id: env-cross\n",
       "sweeps:", "sweeps", "wrong type")
broken("cases-null", "cases:\n  - id: big-default\n    profile: big\n"
       "    expect: {backend: fast, rule: auto}\n", "cases:\n", "cases:", "cases", "wrong type")
broken("include-a-string", "version: 1\n", "version: 1\ninclude: gpus.yaml\n", "include", "include",
       "wrong type")
broken("include-a-number", "version: 1\n", "version: 1\ninclude: [3]\n", "include", "include[0]",
       "wrong type")
broken("default-layer-unknown", "version: 1\n", "version: 1\ndefault_layer: w4a16\n",
       "default_layer", "default_layer", "unknown layer 'w4a16'")
broken("default-layer-case", "version: 1\n", "version: 1\ndefault_layer: W4A4\n", "default_layer",
       "default_layer", "is not a valid id")
broken("target-bad-versions", "version: 1\n", "version: 1\ntarget: {name: vllm, versions: banana}\n",
       "target", "target.versions", "is not a version specifier")
broken("target-bad-name", "version: 1\n", "version: 1\ntarget: {name: VLLM}\n", "target",
       "target.name", "is not a valid id")
broken("target-unknown-key", "version: 1\n", "version: 1\ntarget: {name: vllm, releases: 1}\n",
       "target", "target.releases", "did you mean 'release'?")
broken("known-failure-missing-reason", "version: 1\n",
       "version: 1\nknown_failures:\n  - {cells: 'big-*', upstream: x}\n", "  - {cells",
       "known_failures[0].reason", "missing required key 'reason'")

# --- profiles -------------------------------------------------------------------------------
P = '    capability: "10.0"\n'
for slug, value, message in (
    ("float", "10.0", "wrong type"),
    ("int", "10", "wrong type"),
    ("no-minor", '"10"', 'expected a version "major.minor"'),
    ("three-parts", '"10.0.1"', 'expected a version "major.minor"'),
    ("arabic-indic-digits", '"١٠.٠"', 'expected a version "major.minor"'),
    ("fullwidth-digits", '"１０.０"', 'expected a version "major.minor"'),
    ("devanagari-digits", '"१०.०"', 'expected a version "major.minor"'),
    ("sm-label", "sm_100", 'expected a version "major.minor"'),
    ("trailing-newline", '"10.0\\n"', 'expected a version "major.minor"'),
    ("leading-space", '" 10.0"', 'expected a version "major.minor"'),
    ("negative", '"-10.0"', 'expected a version "major.minor"'),
    ("empty", '""', 'expected a version "major.minor"'),
):
    broken(f"capability-{slug}", P, f"    capability: {value}\n", "capability",
           "profiles.big.capability", message)
broken("cuda-superscript-digits", '    cuda: "12.8"\n', '    cuda: "¹².8"\n', "cuda:",
       "profiles.big.cuda", 'expected a version "major.minor"')
broken("cuda-missing", '    cuda: "12.8"\n', "", "capability", "profiles.big.capability",
       "a cuda profile needs both 'capability' and 'cuda'")
broken("cpu-with-capability", "    device_type: cpu\n", '    device_type: cpu\n    capability: "8.0"\n',
       'capability: "8.0"', "profiles.laptop.capability", "a cpu profile has no 'capability' or 'cuda'")
for slug, value, message in (
    ("inf", ".inf", "must be a finite number"),
    ("negative-inf", "-.inf", "must be a finite number"),
    ("nan", ".nan", "must be a finite number"),
    ("negative", "-1", "greater than or equal to 0"),
    ("string", "lots", "wrong type"),
    ("bool", "yes", "wrong type"),
):
    broken(f"memory-gib-{slug}", "    memory_gib: 180\n", f"    memory_gib: {value}\n", "memory_gib",
           "profiles.big.memory_gib", message)
for slug, value, message in (
    ("gpu", "gpu", "is not one of: cuda, cpu"),
    ("upper", "CUDA", "did you mean 'cuda'?"),
    ("rocm", "rocm", "is not one of: cuda, cpu"),
    ("bool", "yes", "YAML reads unquoted yes/no"),
):
    broken(f"device-type-{slug}", "    device_type: cpu\n", f"    device_type: {value}\n",
           "device_type: " + value, "profiles.laptop.device_type", message)
broken("package-unknown", "    packages: [flashinfer]\n", "    packages: [flashinfer, cutlass]\n",
       "packages", "profiles.big.packages[1]", "'cutlass' is not one of")
broken("package-twice", "    packages: [flashinfer]\n", "    packages: [flashinfer, flashinfer]\n",
       "packages: [flashinfer, flashinfer]", "profiles.big.packages", "lists a package twice")
broken("package-a-string", "    packages: [flashinfer]\n", "    packages: flashinfer\n", "packages",
       "profiles.big.packages", "wrong type")
broken("triton-without-package", "    memory_gib: 180\n", '    memory_gib: 180\n    triton: "3.4"\n',
       'triton: "3.4"', "profiles.big.triton", "triton is not in 'packages'")
broken("shards-zero", "    memory_gib: 180\n", "    memory_gib: 180\n    shards: 0\n", "shards",
       "profiles.big.shards", "greater than or equal to 1")
broken("shards-bool", "    memory_gib: 180\n", "    memory_gib: 180\n    shards: true\n", "shards",
       "profiles.big.shards", "wrong type")
broken("supported-unknown", "    supported: [slow]\n", "    supported: [slow, turbo]\n",
       "supported: [slow, turbo]", "profiles.laptop.supported[1]", "unknown backend 'turbo'")
broken("supported-wrong", "    supported: [slow]\n", "    supported: [fast, slow]\n",
       14, "profiles.laptop.supported", "lists fast but its rule says no")
broken("supported-missing", "    supported: [fast, slow]\n", "    supported: [slow]\n",
       "supported: [slow]\n  laptop", "profiles.big.supported", "omits fast")
broken("supported-absent", "    supported: [slow]\n", "", "  laptop:", "profiles.laptop.supported",
       "missing required key 'supported'")
broken("profile-id-upper", "  laptop:\n", "  Laptop:\n", "Laptop", "profiles.Laptop",
       "is not a valid id")
broken("profile-id-space", "  laptop:\n", "  my laptop:\n", "my laptop", "profiles.my laptop",
       "is not a valid id")
broken("profile-unknown-key", "    memory_gib: 180\n", "    memory_gib: 180\n    memory: 180\n",
       "memory: 180", "profiles.big.memory", "did you mean 'memory_gib'?")
broken("profile-key-case", "    memory_gib: 180\n", "    Memory_GiB: 180\n", "Memory_GiB",
       "profiles.big.Memory_GiB", "did you mean 'memory_gib'?")
broken("profile-name-missing", "    name: cpu\n", "", "  laptop:", "profiles.laptop.name",
       "missing required key 'name'")
broken("profile-a-list", "  laptop:\n    name: cpu\n    device_type: cpu\n    supported: [slow]\n",
       "  laptop: [cpu]\n", "laptop:", "profiles.laptop", "wrong type")
broken("real-tests-unknown", "    supported: [slow]\n",
       "    supported: [slow]\n    real_tests: {must_run: [], may_skp: []}\n", "real_tests",
       "profiles.laptop.real_tests.may_skp", "did you mean 'may_skip'?")

# --- layers ---------------------------------------------------------------------------------
for slug, old, new, key, message in (
    ("in-features-zero", "    in_features: 4096\n", "    in_features: 0\n", "in_features",
     "greater than 0"),
    ("in-features-negative", "    in_features: 4096\n", "    in_features: -16\n", "in_features",
     "greater than 0"),
    ("in-features-string", "    in_features: 4096\n", '    in_features: "4096"\n', "in_features",
     "wrong type"),
    ("in-features-float", "    in_features: 4096\n", "    in_features: 4096.5\n", "in_features",
     "4096.5"),
    ("out-features-bool", "    out_features: 4096\n", "    out_features: true\n", "out_features",
     "wrong type"),
    ("act-dtype-unknown", "    act_dtype: bfloat16\n", "    act_dtype: bf16\n", "act_dtype",
     "did you mean 'bfloat16'?"),
    ("act-dtype-torch", "    act_dtype: bfloat16\n", "    act_dtype: torch.bfloat16\n", "act_dtype",
     "is not one of"),
    ("has-bias-string", "    act_dtype: bfloat16\n", '    act_dtype: bfloat16\n    has_bias: "yes"\n',
     "has_bias", "wrong type"),
    ("layer-unknown-key", "    act_dtype: bfloat16\n", "    act_dtype: bfloat16\n    k: 16\n",
     "k: 16", "unknown key 'k'"),
):
    line_key = f"layers.w4a4.{key}" if slug != "layer-unknown-key" else "layers.w4a4.k"
    broken(f"layer-{slug}", old, new, new.strip().splitlines()[-1], line_key, message)

# --- backends -------------------------------------------------------------------------------
for slug, old, new, at, key, message in (
    ("kernel-with-dot", "    kernel: SlowNvFp4LinearKernel\n", "    kernel: kernels.Slow\n",
     "kernels.Slow", "backends.slow.kernel", "does not match"),
    ("kernel-missing", "    kernel: SlowNvFp4LinearKernel\n", "", "  slow:", "backends.slow.kernel",
     "missing required key 'kernel'"),
    ("kernel-twice", "    kernel: SlowNvFp4LinearKernel\n", "    kernel: FastNvFp4LinearKernel\n",
     "    kernel: FastNvFp4LinearKernel\n    batch", "backends.slow.kernel",
     "is also declared by backend 'fast'"),
    ("support-empty", "      - {device: any}\n", "", "    support:\n    implements: {act_dtypes: [bfloat16, float16",
     "backends.slow.support", "wrong type: expected list, got null"),
    ("device-unknown", "      - {device: any}\n", "      - {device: gpu}\n", "{device: gpu}",
     "backends.slow.support[0].device", "is not one of: cuda, cpu, any"),
    ("families-negative", "families: [10]", "families: [-10]", "families: [-10]",
     "backends.fast.support[0].families[0]", "greater than or equal to 0"),
    ("families-float", "families: [10]", "families: [10.0]", "families: [10.0]",
     "backends.fast.support[0].families[0]", "10.0"),
    ("families-string", "families: [10]", 'families: ["10"]', 'families: ["10"]',
     "backends.fast.support[0].families[0]", "wrong type"),
    ("families-on-any", "      - {device: any}\n", "      - {device: any, families: [10]}\n",
     "{device: any, families", "backends.slow.support[0]", "only make sense with device: cuda"),
    ("min-cuda-float", 'min_cuda: "12.8"', "min_cuda: 12.8", "min_cuda: 12.8",
     "backends.fast.support[0].min_cuda", "wrong type"),
    ("support-unknown-key", "      - {device: any}\n", "      - {device: any, gpu: true}\n",
     "gpu: true", "backends.slow.support[0].gpu", "unknown key 'gpu'"),
    ("implements-missing", "    implements: {act_dtypes: [bfloat16]}\n", "",
     "  fast:", "backends.fast.implements", "missing required key 'implements'"),
    ("k-multiple-zero", "    implements: {act_dtypes: [bfloat16]}\n",
     "    implements: {act_dtypes: [bfloat16], k_multiple: 0}\n", "k_multiple",
     "backends.fast.implements.k_multiple", "greater than 0"),
    ("act-dtypes-unknown", "    implements: {act_dtypes: [bfloat16]}\n",
     "    implements: {act_dtypes: [fp4]}\n", "[fp4]",
     "backends.fast.implements.act_dtypes[0]", "is not one of"),
    ("batch-invariant-string", "    batch_invariant: true\n", "    batch_invariant: 'true'\n",
     "batch_invariant", "backends.slow.batch_invariant", "wrong type"),
    ("backend-id-upper", "  fast:\n", "  Fast:\n", "Fast:", "backends.Fast", "is not a valid id"),
):
    broken(f"backend-{slug}", old, new, at, key, message)

# --- precedence -----------------------------------------------------------------------------
F0 = "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT, forces: [slow]}\n"
for slug, new, at, key, message in (
    ("variable-unknown", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANTS, forces: [slow]}\n",
     "VLLM_BATCH_INVARIANTS", "precedence.forcing[0].variable", "did you mean 'VLLM_BATCH_INVARIANT'?"),
    ("variable-lowercase", "    - {rule: batch_invariant, variable: vllm_batch_invariant, forces: [slow]}\n",
     "vllm_batch", "precedence.forcing[0].variable", "did you mean 'VLLM_BATCH_INVARIANT'?"),
    ("forces-unknown", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT, forces: [slo]}\n",
     "[slo]", "precedence.forcing[0].forces[0]", "unknown backend 'slo'; did you mean 'slow'?"),
    ("forces-not-invariant", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT, forces: [fast]}\n",
     "[fast]", "precedence.forcing[0].forces[0]", "fast is not declared batch_invariant"),
    ("boolean-without-forces", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT}\n",
     "rule: batch_invariant", "precedence.forcing[0]", "a boolean rule needs 'forces'"),
    ("rule-id-upper", "    - {rule: Batch, variable: VLLM_BATCH_INVARIANT, forces: [slow]}\n",
     "rule: Batch", "precedence.forcing[0].rule", "does not match"),
    ("value-unknown", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT, value: bool, forces: [slow]}\n",
     "value: bool", "precedence.forcing[0].value", "is not one of: boolean, int-flag, backend-name"),
    ("duplicate-rule", "    - {rule: gemm_backend, variable: VLLM_BATCH_INVARIANT, forces: [slow]}\n",
     "rule: gemm_backend, variable: VLLM_NVFP4", "precedence.forcing[1].rule", "duplicate rule id 'gemm_backend'"),
    ("same-variable-twice", "    - {rule: batch_invariant, variable: VLLM_NVFP4_GEMM_BACKEND, forces: [slow]}\n",
     "rule: gemm_backend", "precedence.forcing[1].variable", "VLLM_NVFP4_GEMM_BACKEND already has a rule"),
    ("auto-values-on-boolean", "    - {rule: batch_invariant, variable: VLLM_BATCH_INVARIANT, forces: [slow], auto_values: [auto]}\n",
     "auto_values: [auto]", "precedence.forcing[0].auto_values", "only makes sense with value: backend-name"),
):
    broken(f"precedence-{slug}", F0, new, at, key, message)
A0 = "  auto: {disabled_by: VLLM_DISABLED_KERNELS, order: [fast, slow]}\n"
for slug, new, at, key, message in (
    ("order-missing", "  auto: {disabled_by: VLLM_DISABLED_KERNELS, order: [fast]}\n", "  auto:",
     "precedence.auto.order", "must list every backend exactly once: missing slow"),
    ("order-twice", "  auto: {disabled_by: VLLM_DISABLED_KERNELS, order: [fast, slow, slow]}\n", "  auto:",
     "precedence.auto.order", "listed twice: slow"),
    ("order-empty", "  auto: {disabled_by: VLLM_DISABLED_KERNELS, order: []}\n", "  auto:",
     "precedence.auto.order", "needs at least one item, got an empty list"),
    ("order-unknown", "  auto: {disabled_by: VLLM_DISABLED_KERNELS, order: [fast, slow, turbo]}\n", "  auto:",
     "precedence.auto.order[2]", "unknown backend 'turbo'"),
    ("disabled-by-forcing", "  auto: {disabled_by: VLLM_BATCH_INVARIANT, order: [fast, slow]}\n", "  auto:",
     "precedence.auto.disabled_by", "VLLM_BATCH_INVARIANT already has a forcing rule"),
    ("auto-rule-clash", "  auto: {rule: gemm_backend, disabled_by: VLLM_DISABLED_KERNELS, order: [fast, slow]}\n",
     "  auto:", "precedence.auto.rule", "is also a forcing rule"),
    ("booleans-overlap", A0 + "  booleans: {true_values: ['1', 'on'], false_values: ['0', 'on']}\n",
     "  booleans", "precedence.booleans", "'on' cannot be both true and false"),
    ("booleans-upper", A0 + "  booleans: {true_values: ['1', 'ON']}\n", "  booleans",
     "precedence.booleans", "spellings are compared lowercased"),
    ("booleans-unquoted", A0 + "  booleans: {true_values: [1, yes]}\n", "  booleans",
     "precedence.booleans.true_values[0]", "wrong type"),
    ("booleans-unquoted-key", A0 + "  booleans: {true: ['1']}\n", "  booleans",
     "precedence.booleans.true", "quote the key"),
    ("validation-unknown", A0 + "  validation: eager\n", "  validation", "precedence.validation",
     "is not one of: upfront, lazy"),
    ("errors-unknown-key", A0 + "  errors: {forced: x}\n", "  errors", "precedence.errors.forced",
     "unknown key 'forced'"),
):
    broken(f"precedence-{slug}", A0, new, at, key, message)
broken("precedence-missing-auto", A0, "", "precedence:", "precedence.auto", "missing required key 'auto'")
broken("precedence-absent", "precedence:\n  forcing:\n" + F0 + "    - {rule: gemm_backend, variable: "
       "VLLM_NVFP4_GEMM_BACKEND, value: backend-name}\n" + A0, "", 1, "",
       "has sweeps or cases but no file defines 'precedence'")

# --- sweeps ---------------------------------------------------------------------------------
S0 = "  - id: env-cross\n"
for slug, new, at, key, message in (
    ("profiles-empty", S0 + "    profiles: []\n", "profiles: []", "sweeps[0].profiles",
     "an empty list is not allowed here"),
    ("layers-empty", S0 + "    layers: []\n", "layers: []", "sweeps[0].layers",
     "an empty list is not allowed here"),
    ("packages-empty", S0 + "    packages: []\n", "packages: []", "sweeps[0].packages",
     "an empty list is not allowed here"),
    ("profile-unknown", S0 + "    profiles: [big, B200]\n", "profiles: [big", "sweeps[0].profiles[1]",
     "unknown profile 'B200' (known: big, laptop)"),
    ("profile-case", S0 + "    profiles: [Big]\n", "profiles: [Big", "sweeps[0].profiles[0]",
     "unknown profile 'Big'; did you mean 'big'?"),
    ("layer-unknown", S0 + "    layers: [w4a16]\n", "layers: [w4a16", "sweeps[0].layers[0]",
     "unknown layer 'w4a16'; did you mean 'w4a4'?"),
    ("mock-unknown", S0 + "    mock: {turbo: {supported: false}}\n", "mock:", "sweeps[0].mock.turbo",
     "unknown backend 'turbo'"),
    ("mock-and-relevant", S0 + "    mock: {fast: {supported: false}}\n    mock_relevant: true\n",
     "    mock:", "sweeps[0].mock", "use either 'mock' or 'mock_relevant'"),
    ("reserved-id", "  - id: cases\n", "id: cases", "sweeps[0].id", "is reserved for the golden cases"),
    ("id-upper", "  - id: EnvCross\n", "EnvCross", "sweeps[0].id", "is not a valid id"),
    ("packages-unknown", S0 + "    packages: [[cutlass]]\n", "[[cutlass", "sweeps[0].packages[0][0]",
     "'cutlass' is not one of"),
    ("envs-unknown-variable", S0 + "    envs: [{VLLM_USE_FBGEM: '1'}]\n", "envs:",
     "sweeps[0].envs[0].VLLM_USE_FBGEM", "did you mean 'VLLM_USE_FBGEMM'?"),
    ("envs-unquoted-value", S0 + "    envs: [{VLLM_USE_FBGEMM: 1}]\n", "envs:",
     "sweeps[0].envs[0].VLLM_USE_FBGEMM", 'quote it: "1"'),
    ("unknown-key", S0 + "    profile: [big]\n", "    profile:", "sweeps[0].profile",
     "did you mean 'profiles'?"),
):
    broken(f"sweep-{slug}", S0, new, at, key, message)
C0 = '      VLLM_BATCH_INVARIANT: [null, "1"]\n'
for slug, new, at, key, message in (
    ("cross-unknown-variable", '      VLLM_BATCH_INVARIANTT: [null, "1"]\n', "INVARIANTT",
     "sweeps[0].cross.VLLM_BATCH_INVARIANTT", "did you mean 'VLLM_BATCH_INVARIANT'?"),
    ("cross-empty", "      VLLM_BATCH_INVARIANT: []\n", "VLLM_BATCH_INVARIANT: []",
     "sweeps[0].cross.VLLM_BATCH_INVARIANT", "needs at least one value"),
    ("cross-unknown-token", '      VLLM_BATCH_INVARIANT: [null, "$BACKEND"]\n', "$BACKEND\"",
     "sweeps[0].cross.VLLM_BATCH_INVARIANT[1]", "unknown token '$BACKEND'"),
    ("cross-unquoted-int", "      VLLM_BATCH_INVARIANT: [null, 1]\n", "[null, 1]",
     "sweeps[0].cross.VLLM_BATCH_INVARIANT[1]", "wrong type"),
    ("cross-unquoted-bool", "      VLLM_BATCH_INVARIANT: [null, on]\n", "[null, on]",
     "sweeps[0].cross.VLLM_BATCH_INVARIANT[1]", "YAML reads unquoted yes/no"),
    ("cross-a-string", '      VLLM_BATCH_INVARIANT: "1"\n', 'INVARIANT: "1"',
     "sweeps[0].cross.VLLM_BATCH_INVARIANT", "wrong type"),
    ("cross-millions", "".join(
        f"      VLLM_BATCH_INVARIANT: [{', '.join(repr(str(i)) for i in range(40))}]\n"
        f"      VLLM_USE_FBGEMM: [{', '.join(repr(str(i)) for i in range(40))}]\n"
        f"      VLLM_USE_NVFP4_CT_EMULATIONS: [{', '.join(repr(str(i)) for i in range(40))}]\n"
        f"      VLLM_DISABLED_KERNELS: [{', '.join(repr(str(i)) for i in range(40))}]\n"
        for _ in range(1)), "  - id: env-cross", "sweeps[0].id",
     "expands to 15,360,000 cells"),
):
    broken(f"sweep-{slug}", C0, new, at, key, message)
broken("sweep-duplicate-id", "cases:\n", "  - id: env-cross\ncases:\n", "  - id: env-cross\ncases",
       "sweeps[1].id", "duplicate sweep id 'env-cross'")

# --- cases ----------------------------------------------------------------------------------
K0 = "    expect: {backend: fast, rule: auto}\n"
for slug, old, new, at, key, message in (
    ("profile-unknown", "    profile: big\n", "    profile: b200\n", "profile: b200",
     "cases[0].profile", "unknown profile 'b200'"),
    ("profile-missing", "    profile: big\n", "", "  - id: big-default", "cases[0].profile",
     "missing required key 'profile'"),
    ("backend-and-error", K0, "    expect: {backend: fast, error: boom}\n", "expect:",
     "cases[0].expect.backend", "expect exactly one of 'backend' or 'error'"),
    ("neither", K0, "    expect: {rule: auto}\n", "expect:", "cases[0].expect",
     "expect exactly one of 'backend' or 'error'"),
    ("invalid-env-without-error", K0, "    expect: {backend: fast, invalid_env: true}\n", "expect:",
     "cases[0].expect.invalid_env", "'invalid_env' needs 'error'"),
    ("backend-unknown", K0, "    expect: {backend: turbo}\n", "expect:", "cases[0].expect.backend",
     "unknown backend 'turbo'"),
    ("candidate-status", K0, "    expect: {backend: fast, candidates: {slow: skipped}}\n", "expect:",
     "cases[0].expect.candidates.slow", "is not one of: selected, unsupported"),
    ("candidate-unknown", K0, "    expect: {backend: fast, candidates: {turbo: selected}}\n", "expect:",
     "cases[0].expect.candidates.turbo", "unknown backend 'turbo'"),
    ("env-unquoted", "    profile: big\n", "    profile: big\n    env: {VLLM_BATCH_INVARIANT: 1}\n",
     "env:", "cases[0].env.VLLM_BATCH_INVARIANT", 'quote it: "1"'),
    ("env-unknown", "    profile: big\n", "    profile: big\n    env: {VLLM_USE_FLASHINFER: '1'}\n",
     "env:", "cases[0].env.VLLM_USE_FLASHINFER", "unknown selection input 'VLLM_USE_FLASHINFER'"),
    ("layer-unknown", "    profile: big\n", "    profile: big\n    layer: w8a8\n", "layer: w8a8",
     "cases[0].layer", "unknown layer 'w8a8'"),
    ("id-with-space", "  - id: big-default\n", "  - id: big default\n", "big default",
     "cases[0].id", "is not a valid id"),
    ("mock-unknown", "    profile: big\n", "    profile: big\n    mock: {turbo: {supported: false}}\n",
     "mock:", "cases[0].mock.turbo", "unknown backend 'turbo'"),
    ("mock-missing-supported", "    profile: big\n", "    profile: big\n    mock: {fast: {reason: x}}\n",
     "mock:", "cases[0].mock.fast.supported", "missing required key 'supported'"),
    ("expect-unknown-key", K0, "    expect: {backend: fast, because: auto}\n", "expect:",
     "cases[0].expect.because", "unknown key 'because'"),
):
    broken(f"case-{slug}", old, new, at, key, message)
broken("case-duplicate-id", K0, K0 + "  - id: big-default\n    profile: laptop\n"
       "    expect: {backend: slow}\n", "  - id: big-default\n    profile: laptop", "cases[1].id",
       "duplicate case id 'big-default'")

# --- includes -------------------------------------------------------------------------------
for slug, entry, message in (
    ("absolute", "/etc/passwd", "is outside"),
    ("proc", "/proc/self/environ", "is outside"),
    ("dev-zero", "/dev/zero", "is outside"),
    ("dotdot-past-root", "../../../../../../../../etc/hostname", "is outside"),
    ("home", "~/.ssh/config", "does not exist"),
    ("missing", "gpus.yaml", "does not exist"),
    ("directory", ".", "is a directory, not a regular file"),
    ("empty-entry", "", "is a directory, not a regular file"),
):
    broken(f"include-{slug}", "version: 1\n", f"version: 1\ninclude: ['{entry}']\n", "include",
           "include[0]", message)


# --- text that cannot break a report (issue: escapes passed the loader, junit.xml did not parse)
C1 = '      VLLM_BATCH_INVARIANT: [null, "1"]\n'
_X = "sweeps[0].cross.VLLM_BATCH_INVARIANT[1]"
for slug, written, message in (
    ("escaped-soh", r'"a\x01b"', "U+0001 (a control character) is not allowed in a matrix"),
    ("escaped-nul", r'"tri\0ton"', "U+0000 (a control character) is not allowed in a matrix"),
    ("escaped-uffff", r'"\uFFFF"', "U+FFFF (a Unicode non-character) is not allowed"),
    ("escaped-ufffe", r'"\uFFFE"', "U+FFFE (a Unicode non-character) is not allowed"),
    ("escaped-ufdd0", r'"\uFDD0"', "U+FDD0 (a Unicode non-character) is not allowed"),
    ("escaped-plane-16-nonchar", r'"\U0010FFFF"', "U+10FFFF (a Unicode non-character)"),
    ("escaped-esc", r'"\e[31mred"', "U+001B (a control character)"),
    ("escaped-bell", r'"\a"', "U+0007 (a control character)"),
    ("escaped-backspace", r'"\b"', "U+0008 (a control character)"),
    ("escaped-vertical-tab", r'"\v"', "U+000B (a control character)"),
    ("escaped-form-feed", r'"\f"', "U+000C (a control character)"),
    ("escaped-delete", r'"\x7f"', "U+007F (a control character)"),
    ("escaped-nel", r'"\N"', "U+0085 (a control character)"),
    ("escaped-c1-csi", r'"\u009b"', "U+009B (a control character)"),
):
    broken(f"text-{slug}", C1, f"      VLLM_BATCH_INVARIANT: [null, {written}]\n",
           f"[null, {written}", _X, message)
broken("text-escaped-in-a-key", C1, C1 + '      "VLLM_\\x01": ["1"]\n', "VLLM_\\x01",
       "sweeps[0].cross", "U+0001 (a control character) is not allowed in a matrix")
broken("text-escaped-in-a-name", "    name: cpu\n", '    name: "cpu\\x1b]0;title\\x07"\n', "cpu\\x1b",
       "profiles.laptop.name", "U+001B (a control character) is not allowed in a matrix")
broken("text-escaped-in-a-case-env", "    profile: big\n",
       '    profile: big\n    env: {VLLM_DISABLED_KERNELS: "Fast\\0"}\n', "env:",
       "cases[0].env.VLLM_DISABLED_KERNELS", "U+0000 (a control character)")
broken("text-escaped-in-a-folded-scalar", "    profile: big\n",
       '    profile: big\n    why: "first line\n      \\x02 second line"\n', "why:",
       "cases[0].why", "U+0002 (a control character)")
broken("text-raw-nonchar-in-a-value", "    name: cpu\n", "    name: cpu\ufdd0\n", "name: cpu\ufdd0", "",
       "U+FDD0 is not allowed in a YAML file (a Unicode non-character)")
broken("text-raw-plane-1-nonchar", "    name: cpu\n", "    name: cpu\U0001FFFE\n", "name: cpu", "",
       "U+1FFFE is not allowed in a YAML file (a Unicode non-character)")
broken("text-raw-ufffe-in-a-comment", "layers:\n", "# \ufffe\nlayers:\n", "# \ufffe", "",
       "U+FFFE is not allowed in a YAML file")

# --- lines as an editor shows them ------------------------------------------------------------
# YAML 1.1 also breaks lines at U+0085, U+2028 and U+2029, which no editor shows as a break: a
# comment would end there (what follows becomes content), a quoted value would fold. Such a file
# does not read as it shows: refused at the character's line, counted as an editor counts.
BREAK = "breaks the line for YAML 1.1 but not in an editor"
for slug, char in (("u2028", "\u2028"), ("u2029", "\u2029"), ("nel", "\x85")):
    case(f"lines-{slug}-in-a-comment", BASE.replace("version: 1\n", f"version: 1\n# a{char}b: {{\n"),
         "# a", "", BREAK)
    case(f"lines-{slug}-in-a-quoted-value",
         BASE.replace("    name: NVIDIA B200\n", f'    name: "NVIDIA{char}B200{char}x"\n')
         .replace("    memory_gib: 180\n", "    memory_gib: lots\n"), "    name: \"NVIDIA", "", BREAK)
    case(f"lines-{slug}-in-a-single-quoted-value",
         BASE.replace("    name: cpu\n", f"    name: 'cpu{char}{char}laptop'\n")
         .replace("    supported: [slow]\n", "    supported: [slow]\n    bogus: 1\n"), "    name: 'cpu",
         "", BREAK)
    case(f"lines-{slug}-in-a-flow-list",
         BASE.replace("    packages: [flashinfer]\n", f'    packages: ["flashinfer{char}",\n      "x{char}"]\n'),
         '    packages: ["flashinfer', "", BREAK)
    case(f"lines-{slug}-in-a-block-scalar",
         BASE.replace("    profile: big\n", f"    profile: big\n    why: |\n      one{char}two\n"),
         "      one", "", BREAK)
# the first such character is the one reported, at the line an editor shows it on
case("lines-u2028-before-bad-yaml", "version: 1\n# \u2028\u2028\u2028\nprofiles: [a\n", 2, "", BREAK)
# a line ending an editor does show (CRLF): lines counted as it counts them
case("lines-crlf", BASE.replace("\n", "\r\n").replace(
    "    memory_gib: 180\r\n", "    memory_gib: 180\r\n    shards: 0\r\n"), "shards", "profiles.big.shards",
     "greater than or equal to 1")

# --- mapping keys that are not strings, each reported at its own line ------------------------
for slug, key, shown in (("null", "~", "null"), ("float", "1.5", "1.5"), ("int", "3", "3"),
                         ("bool", "yes", "true")):
    broken(f"key-{slug}-profile", "  laptop:\n", f"  {key}:\n    name: x\n  laptop:\n", f"  {key}:",
           f"profiles.{shown}", "wrong type: expected string")
broken("key-null-in-cross", C1, C1 + '      ~: ["1"]\n', '      ~: ["1"]', "sweeps[0].cross.null",
       "wrong type: expected string, got null")
broken("key-float-in-cross", C1, C1 + '      2.5: ["1"]\n', '      2.5: ["1"]', "sweeps[0].cross.2.5",
       "wrong type: expected string, got float")
broken("key-null-in-a-profile", "    memory_gib: 180\n", "    memory_gib: 180\n    ~: 3\n", "    ~: 3",
       "profiles.big.null", "keys must be strings, got null")
broken("key-float-in-a-profile", "    memory_gib: 180\n", "    memory_gib: 180\n    0.5: 3\n",
       "    0.5: 3", "profiles.big.0.5", "keys must be strings, got float")
broken("key-null-in-expect", K0, "    expect: {backend: fast,\n      ~: 1}\n", "      ~: 1",
       "cases[0].expect.null", "keys must be strings, got null")

# --- every count has an upper bound; numbers nothing can convert ------------------------------
for slug, value, message in (
    ("shards-400-digits", "9" * 400, "must be at most 256 (a bound of the format)"),
    ("shards-5000-digits", "9" * 5000, "an integer of 5000 digits is out of range"),
    ("shards-257", "257", "must be at most 256"),
):
    broken(f"bound-{slug}", "    memory_gib: 180\n", f"    memory_gib: 180\n    shards: {value}\n",
           "shards", "profiles.big.shards", message)
broken("bound-in-features", "    in_features: 4096\n", "    in_features: 1099511627776\n",
       "in_features", "layers.w4a4.in_features", "must be at most 1048576")
broken("bound-families", "families: [10]", "families: [1000]", "families: [1000]",
       "backends.fast.support[0].families[0]", "must be at most 99")
broken("bound-k-multiple", "    implements: {act_dtypes: [bfloat16]}\n",
       "    implements: {act_dtypes: [bfloat16], k_multiple: 65536}\n", "k_multiple",
       "backends.fast.implements.k_multiple", "must be at most 4096")
broken("bound-memory-gib", "    memory_gib: 180\n", "    memory_gib: 1.0e+300\n", "memory_gib",
       "profiles.big.memory_gib", "must be at most 1048576")
broken("bound-capability-digits", P, '    capability: "10000000000000000000000.0"\n', "capability",
       "profiles.big.capability", 'expected a version "major.minor"')
broken("bound-torch-version-length", "    memory_gib: 180\n",
       f'    memory_gib: 180\n    torch: "2.{"9" * 70}"\n', "torch:", "profiles.big.torch",
       "must be at most this many characters: 64")
broken("bad-timestamp", "    name: cpu\n", "    name: 2024-13-45\n", "2024-13-45", "profiles.laptop.name",
       "'2024-13-45' cannot be read as a timestamp")

# --- a bad value is quoted, not echoed whole ---------------------------------------------------
broken("long-unknown-key", "cases:\n", f"? {'k' * 100000}\n: 1\ncases:\n", "? kkkk", "k" * 197 + "...",
       "... (100000 characters)")
broken("long-unknown-profile", S0, S0 + f"    profiles: [{'p' * 100000}]\n", "    profiles:",
       "sweeps[0].profiles[0]", "... (100000 characters) (known: big, laptop)")


# --- the files of the corpus ----------------------------------------------------------------


def write() -> None:
    cases_dir = HERE / "cases"
    if cases_dir.exists():
        shutil.rmtree(cases_dir)
    cases_dir.mkdir()
    names = set()
    rows = ["# file\tline\tkey\tmessage (the problem each file must produce; - = no line)"]
    for index, c in enumerate(CASES, 1):
        file = f"{index:03d}-{c.name}.yaml"
        if c.name in names:
            raise SystemExit(f"duplicate case name {c.name}")
        names.add(c.name)
        (cases_dir / file).write_bytes(c.data)
        line = "-" if c.line is None else str(c.line)
        rows.append(f"{file}\t{line}\t{c.key}\t{c.message}")
    (HERE / "EXPECTED.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {cases_dir}")


if __name__ == "__main__":
    write()
