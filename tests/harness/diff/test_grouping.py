"""Describing changed cells: every changed cell in exactly one group, every exact description
true of no unchanged cell, the shortest description that covers the most."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.diff.grouping import Item, group_changes


def _items(rows: list[tuple[str, set[str], tuple[str, str] | None]]) -> list[Item]:
    return [Item(key, frozenset(attrs), change) for key, attrs, change in rows]


def test_one_attribute_describes_what_only_the_changed_cells_share() -> None:
    items = _items([
        ("a", {"BI true", "W4A4 layer", "profile b200"}, ("X", "Y")),
        ("b", {"BI true", "W4A4 layer", "profile h100"}, ("X", "Y")),
        ("c", {"BI false", "W4A4 layer", "profile b200"}, None),
        ("d", {"BI unset", "W4A4 layer", "profile h100"}, None),
    ])
    (group,) = group_changes(items)
    assert group.description == ("BI true",) and group.exact
    assert group.keys == ("a", "b")
    assert [(c.base, c.head, c.keys) for c in group.changes] == [("X", "Y", ("a", "b"))]


def test_a_conjunction_when_no_single_attribute_separates() -> None:
    items = _items([
        ("a", {"BI true", "weight-only layer"}, ("E1", "E2")),
        ("b", {"BI true", "W4A4 layer"}, None),
        ("c", {"BI false", "weight-only layer"}, None),
    ])
    (group,) = group_changes(items)
    assert set(group.description) == {"BI true", "weight-only layer"} and group.exact


def test_groups_that_differ_in_one_value_are_one_line() -> None:
    rows: list[tuple[str, set[str], tuple[str, str] | None]] = []
    for value in ("cutlass", "marlin", "torch"):
        rows.append((f"c-{value}", {"BI true", f"--lb='{value}'"}, ("A", "B")))
    rows += [("u-auto", {"BI true", "--lb='auto'"}, None), ("u-off", {"BI false", "--lb='auto'"}, None)]
    (group,) = group_changes(_items(rows))
    assert group.description == ("--lb in {'cutlass', 'marlin', 'torch'}",)
    assert group.exact and len(group.keys) == 3


def test_changes_inside_a_group_are_split_by_what_changed() -> None:
    items = _items([
        ("a", {"BI true", "humming installed"}, ("err", "Humming")),
        ("b", {"BI true", "humming absent"}, ("err", "not installed")),
        ("c", {"BI true", "humming absent"}, ("err", "not installed")),
        ("d", {"BI false", "humming absent"}, None),
    ])
    (group,) = group_changes(items)
    assert group.description == ("BI true",)
    assert [(c.head, len(c.keys)) for c in group.changes] == [("not installed", 2), ("Humming", 1)]


def test_a_cell_nothing_separates_is_named_not_hidden() -> None:
    items = _items([
        ("changed", {"BI true", "profile b200"}, ("A", "B")),
        ("twin", {"BI true", "profile b200"}, None),  # same attributes, unchanged
    ])
    (group,) = group_changes(items)
    assert group.description == ("cell changed",) and not group.exact and group.overlap == 1


ATTRS = [f"a{i}" for i in range(6)]


@settings(max_examples=200, deadline=None)
@given(st.lists(
    st.tuples(st.sets(st.sampled_from(ATTRS)), st.sampled_from([None, ("x", "y"), ("x", "z")])),
    min_size=1, max_size=30,
))
def test_every_changed_cell_is_in_one_group_and_exact_groups_exclude_the_unchanged(rows) -> None:
    items = [Item(f"k{i}", frozenset(attrs), change) for i, (attrs, change) in enumerate(rows)]
    groups = group_changes(items)
    changed = [i.key for i in items if i.change is not None]
    grouped = [k for g in groups for k in g.keys]
    assert sorted(grouped) == sorted(changed)  # each once
    by_key = {i.key: i for i in items}
    for g in groups:
        assert sum(len(c.keys) for c in g.changes) == len(g.keys)
        for c in g.changes:
            assert all(by_key[k].change == (c.base, c.head) for k in c.keys)
        if not g.exact:
            continue
        clauses = [d for d in g.description if " in {" not in d]
        for item in items:
            if item.change is None and set(clauses) <= item.attributes:
                values = [d for d in g.description if " in {" in d]
                assert values, (g, item)  # a merged value list excludes it instead
