"""The selection table: every profile under the default environment and each forcing variable.

Evaluated through the session (its environment, its target, its oracle);
:mod:`harness.output.table` renders it.
"""

from __future__ import annotations

import dataclasses

from harness.evaluate.cells import Cell, cell_id
from harness.evaluate.compare import compare
from harness.evaluate.oracle import ErrorKind
from harness.evaluate.session import Session

__all__ = ["SelectionTable", "TableCell", "selection_table"]


@dataclasses.dataclass(frozen=True)
class TableCell:
    """One profile under one environment.

    ``backend`` is the backend selected (``None``: an error); ``error_kind``
    which error the matrix's rules say it is, when the code agrees with them
    (``None`` for a disagreement: ``detail`` then says how).
    """

    backend: str | None
    agrees: bool
    error_kind: ErrorKind | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """A backend was selected."""
        return self.backend is not None


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


def selection_table(session: Session) -> SelectionTable:
    """The target's choice for every profile under the default and each forcing variable."""
    m = session.matrix
    assert m.precedence is not None
    columns: list[tuple[str, dict[str, str]]] = [("default", {})]
    named: list[str] = []
    for rule in m.precedence.forcing:
        if rule.value == "backend-name":
            if rule.variable not in named:
                named.append(rule.variable)
        elif rule.value != "unset":
            columns.append((f"{rule.variable}=1", {rule.variable: "1"}))
    rows = []
    forcible: dict[tuple[str, str], tuple[str, ...]] = {}
    disagreements = 0
    layer = m.default_layer_id

    def evaluate(pid: str, env: dict[str, str]) -> TableCell:
        env_t = session.vocabulary.ordered(env)
        cell = Cell(cell_id(pid, env_t, None), "table", pid, env_t, layer)
        query = session.query(cell)
        expected = session.expect(query)
        actual = session.evaluate(query)
        problems = compare(expected, actual, m)
        backend = actual.backend if actual.kind == "backend" else None
        if problems:
            return TableCell(backend, False, None, "; ".join(problems))
        return TableCell(backend, True, expected.error_kind, actual.error or "")

    with session.environment():
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
