"""The selection table: every profile under the default environment and each forcing variable."""

from __future__ import annotations

import dataclasses

from harness.evaluate.cells import Cell, cell_id
from harness.evaluate.compare import compare
from harness.evaluate.runner import Runner, clean_environment

__all__ = ["SelectionTable", "TableCell", "selection_table", "table_rows_text"]


@dataclasses.dataclass(frozen=True)
class TableCell:
    text: str  # backend name, or a short error
    ok: bool  # a backend was selected
    agrees: bool  # the oracle predicts the same
    detail: str = ""  # the error, or the oracle's disagreement


@dataclasses.dataclass(frozen=True)
class SelectionTable:
    """Rows: profiles. Columns: the default env and each single forcing variable.

    ``forcible`` lists, per backend-name variable (``VLLM_NVFP4_GEMM_BACKEND``,
    ``--linear-backend``) and profile, the backends it can force without an error.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[TableCell, ...]], ...]  # profile, "sm_100", cells
    named_variables: tuple[str, ...]
    forcible: dict[tuple[str, str], tuple[str, ...]]
    disagreements: int


def _short_error(actual_error: str | None) -> str:
    text = actual_error or ""
    if "cannot implement" in text:
        return "✗ cannot implement"
    if "is not supported" in text:
        return "✗ unsupported"
    return "✗ no kernel"


def selection_table(runner: Runner) -> SelectionTable:
    """The real selection's choice for every profile under the default and each forcing variable."""
    m = runner.matrix
    assert m.precedence is not None
    columns: list[tuple[str, dict[str, str]]] = [("default", {})]
    named: list[str] = []
    for rule in m.precedence.forcing:
        if rule.value == "backend-name":
            named.append(rule.variable)
        else:
            columns.append((f"{rule.variable}=1", {rule.variable: "1"}))
    rows = []
    forcible: dict[tuple[str, str], tuple[str, ...]] = {}
    disagreements = 0
    layer = m.default_layer_id

    def evaluate(pid: str, env: dict[str, str]) -> TableCell:
        env_t = tuple(env.items())
        cell = Cell(cell_id(pid, env_t, None), "table", pid, env_t, layer)
        actual = runner.target.evaluate(runner.query(cell), m)
        problems = compare(runner.expected(cell), actual, m)
        if actual.kind == "backend":
            text, ok, detail = str(actual.backend), True, ""
        else:
            text, ok, detail = _short_error(actual.error), False, actual.error or ""
        if problems:
            detail = "; ".join(problems)
        return TableCell(text, ok, not problems, detail)

    with clean_environment():
        for pid, profile in m.profiles.items():
            cells = tuple(evaluate(pid, env) for _, env in columns)
            disagreements += sum(not c.agrees for c in cells)
            rows.append((pid, profile.sm, cells))
            for variable in named:
                ok_names = []
                for backend in m.backends:
                    tc = evaluate(pid, {variable: backend})
                    disagreements += not tc.agrees
                    if tc.ok:
                        ok_names.append(backend)
                forcible[(variable, pid)] = tuple(ok_names)
    headers = ("profile", "arch") + tuple(name for name, _ in columns)
    headers += tuple(f"{variable}= accepts" for variable in named)
    return SelectionTable(headers, tuple(rows), tuple(named), forcible, disagreements)


def table_rows_text(table: SelectionTable) -> list[list[str]]:
    """Plain-text rows (``≠`` marks a cell where the code and the oracle disagree)."""
    out = []
    for pid, label, cells in table.rows:
        row = [pid, label] + [c.text + ("" if c.agrees else " ≠") for c in cells]
        row += [", ".join(table.forcible.get((v, pid), ())) or "-" for v in table.named_variables]
        out.append(row)
    return out
