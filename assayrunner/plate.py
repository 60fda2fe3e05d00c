"""Plate and Read: what a reader makes of an export (numpy arrays inside, wells named A1..AF48)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ReadKind = Literal["endpoint", "kinetic", "calculated"]

#: Standard plate formats: wells -> (rows, columns).
PLATE_SHAPES = {6: (2, 3), 12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24), 1536: (32, 48)}

_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,2})\s*$")


def row_label(row: int) -> str:
    """Row index (0-based) to its letters: 0 -> A, 25 -> Z, 26 -> AA (1536-well plates)."""
    return chr(65 + row) if row < 26 else "A" + chr(65 + row - 26)


def row_index(label: str) -> int:
    """Row letters to a 0-based index, the inverse of row_label."""
    label = label.upper()
    if len(label) == 1:
        return ord(label) - 65
    if label[0] != "A":
        raise ValueError(f"not a row label: {label!r}")
    return 26 + ord(label[1]) - 65


def well_name(row: int, column: int) -> str:
    """0-based (row, column) to a well name: (0, 0) -> A1."""
    return f"{row_label(row)}{column + 1}"


def parse_well(name: str) -> tuple[int, int]:
    """A well name ('A1', 'b03', 'AF48') to 0-based (row, column); ValueError if it is not one."""
    m = _WELL.match(name)
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"not a well name: {name!r}")
    return row_index(m.group(1)), int(m.group(2)) - 1


def find_well(value: object) -> tuple[int, int] | None:
    """parse_well for a cell that may or may not hold a well name: None when it does not."""
    if not isinstance(value, str):
        return None
    try:
        return parse_well(value)
    except ValueError:
        return None


def smallest_shape(rows: int, columns: int) -> tuple[int, int]:
    """The smallest standard plate that holds rows x columns of data (or the data's own shape)."""
    for r, c in PLATE_SHAPES.values():
        if r >= rows and c >= columns:
            return r, c
    return rows, columns


@dataclass
class Read:
    """One measurement over a plate.

    values: float64 array (rows, columns) for endpoint/calculated reads, (rows, columns, times)
    for kinetic ones; NaN where a well has no number. flags: well name -> 'saturated', 'missing',
    'masked' or 'invalid'; texts keeps the raw text of non-numeric cells for error messages.
    """

    label: str
    values: np.ndarray
    kind: ReadKind = "endpoint"
    wavelength_nm: float | None = None
    times_s: np.ndarray | None = None
    flags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def value(self, well: str) -> float | np.ndarray:
        r, c = parse_well(well)
        return self.values[r, c]

    def to_json(self) -> dict:
        rows, columns = self.values.shape[:2]
        values: dict[str, object] = {}
        for r in range(rows):
            for c in range(columns):
                v = self.values[r, c]
                if self.kind == "kinetic":
                    if not np.all(np.isnan(v)):
                        values[well_name(r, c)] = [None if np.isnan(x) else float(x) for x in v]
                elif not np.isnan(v):
                    values[well_name(r, c)] = float(v)
        out: dict[str, object] = {"label": self.label, "wavelength_nm": self.wavelength_nm, "kind": self.kind}
        if self.kind == "kinetic":
            out["times_s"] = [float(t) for t in self.times_s] if self.times_s is not None else []
        out["values"] = values
        out["flags"] = dict(self.flags)
        return out


@dataclass
class Plate:
    """One plate read: its shape, its reads and what the export says about the instrument."""

    name: str
    rows: int
    columns: int
    reads: list[Read] = field(default_factory=list)
    metadata: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "columns": self.columns,
            "metadata": self.metadata,
            "reads": [read.to_json() for read in self.reads],
        }
