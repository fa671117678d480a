"""The selection table as text: a backend name, or a short error, per profile and environment."""

from __future__ import annotations

from harness.evaluate.table import SelectionTable, TableCell

__all__ = ["cell_text", "table_rows_text"]

#: The short form of each error the matrix's rules name.
_ERROR_TEXT = {
    "forced-unsupported": "✗ unsupported",
    "forced-cannot-implement": "✗ cannot implement",
    "restrict-empty": "✗ no kernel",
    "nothing": "✗ no kernel",
}


def cell_text(cell: TableCell) -> str:
    """The backend, or the error's short form (``≠`` marks a disagreement with the rules)."""
    if cell.backend is not None:
        text = cell.backend
    elif cell.error_kind is not None:
        text = _ERROR_TEXT[cell.error_kind]
    else:
        text = "✗ error"
    return text if cell.agrees else text + " ≠"


def table_rows_text(table: SelectionTable) -> list[list[str]]:
    """Plain-text rows (``≠`` marks a cell where the code and the oracle disagree)."""
    out = []
    for pid, label, cells in table.rows:
        row = [pid, label] + [cell_text(c) for c in cells]
        row += [", ".join(table.forcible.get((v, pid), ())) or "-" for v in table.named_variables]
        out.append(row)
    return out
