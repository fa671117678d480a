"""Fuzzing the matrix loader: mutated documents and raw bytes.

Every outcome must be a successful load or the project's own
:class:`~harness.errors.MatrixError`, each problem with its file and line,
within a time bound and a traced-memory bound per input. The inputs are the
corpus's valid base document with its keys, types, values and structure
mutated, the same document's bytes mutated, and arbitrary bytes.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import MatrixError
from harness.evaluate.oracle import Oracle
from harness.load import load_matrix

#: The corpus's valid base document.
BASE = (Path(__file__).parent / "corpus" / "base.yaml").read_text(encoding="utf-8")

#: Per input: refusing or loading takes less than this, and traces less memory than this.
TIME_BOUND_S = 2.0
MEMORY_BOUND_MIB = 32

FUZZ = settings(
    max_examples=40,
    deadline=None,  # the time bound is asserted below, with a message
    derandomize=True,  # the same inputs on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

BASE_DATA = yaml.safe_load(BASE)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["10.0", "12.8", "bfloat16", "cuda", "cpu", "$BACKENDS", "1", "", "fast"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


PATHS = _paths(BASE_DATA)


@st.composite
def mutated_documents(draw) -> Any:
    """The base document with 1-3 mutations: a key renamed or dropped, a value replaced
    by one of another type, a node wrapped in a list or replaced by its parent."""
    import copy

    doc = copy.deepcopy(BASE_DATA)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            if path and path[-1] not in (parent if isinstance(parent, dict) else range(len(parent))):
                continue
        except (KeyError, IndexError, TypeError):
            continue
        if not path:
            doc = draw(st.one_of(values, st.just(doc)))
            continue
        key = path[-1]
        action = draw(st.sampled_from(["replace", "drop", "rename", "wrap", "duplicate-up"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(st.text(max_size=10), st.sampled_from(
                [str(key).upper(), str(key) + "s", str(key)[:-1], str(key).replace("_", "")]
            )))
            parent[new] = parent.pop(key)
        elif action == "wrap":
            parent[key] = [parent[key]]
        else:
            parent[key] = copy.deepcopy(doc)
    return doc


def _check(path: Path) -> None:
    """Load ``path`` as a run does; success or a MatrixError located at a line of a file."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        Oracle(load_matrix([path]))
    except MatrixError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file and problem.line is not None and problem.line >= 1, problem
            assert "\n" not in str(problem), problem
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND_S, f"{elapsed:.2f} s"
    assert peak < MEMORY_BOUND_MIB * 2**20, f"{peak / 2**20:.1f} MiB"


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "matrix.yaml"


@FUZZ
@given(doc=mutated_documents())
def test_mutated_documents_load_or_are_refused_with_a_line(target, doc):
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    _check(target)


@st.composite
def mutated_bytes(draw) -> bytes:
    data = bytearray(BASE.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "flip", "cut", "repeat"]))
        if action == "insert":
            data[at:at] = draw(st.one_of(
                st.binary(min_size=1, max_size=4),
                st.sampled_from([b"&a ", b"*a", b"[", b"{", b"- ", b": ", b"\t", b"\x00", b"\xff",
                                 b"'", b'"', b"!!python/object ", b"<<: ", b"---\n", b"#"]),
            ))
        elif action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 30))] * draw(st.integers(1, 20))
    return bytes(data)


@FUZZ
@given(data=mutated_bytes())
def test_mutated_bytes_load_or_are_refused_with_a_line(target, data):
    target.write_bytes(data)
    _check(target)


@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_with_a_line(target, data):
    target.write_bytes(data)
    _check(target)
