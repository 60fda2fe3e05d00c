"""Plate and Read: what a reader makes of an export (numpy arrays inside, wells named A1..AF48)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
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


@lru_cache(maxsize=8192)
def parse_well(name: str) -> tuple[int, int]:
    """A well name ('A1', 'b03', 'AF48') to 0-based (row, column); ValueError if it is not one.
    Cached: a run looks up the same few hundred names many times."""
    m = _WELL.match(name)
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"not a well name: {name!r}")
    return row_index(m.group(1)), int(m.group(2)) - 1


def find_well(value: object) -> tuple[int, int] | None:
    """parse_well for a cell that may or may not hold a well name: None when it does not (most cells are
    refused by the pattern alone, without raising)."""
    if not isinstance(value, str) or _WELL.match(value) is None:
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
    'masked', 'no_value', 'below-range' or 'invalid' (the first one for a kinetic well; point_flags
    has each time point's); texts keeps the raw text of flagged cells. covered: the wells the export
    covers at all (False: the file never read that well; it is flagged 'missing'); area_declared says
    whether the export declares that read area (a partial-plate read, a well list) or just stops
    (a grid cut short: the wells after it are not known to be unused). well_times_s:
    each well's own read times when the export gives them (rows, columns, times). layers: other
    numbers per well the export gives beside the value (SD, single read positions, read times).
    """

    label: str
    values: np.ndarray
    kind: ReadKind = "endpoint"
    wavelength_nm: float | None = None
    times_s: np.ndarray | None = None
    flags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    excitation_nm: float | None = None
    mode: str | None = None  # absorbance, fluorescence, luminescence ... when the export says
    point_flags: dict[str, dict[int, str]] = field(default_factory=dict)
    well_times_s: np.ndarray | None = None
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    covered: np.ndarray | None = None
    area_declared: bool = True  # False: the export just stops (a grid cut short), it names no read area
    source: str = ""  # where in the file the read's table starts ('line 50', "sheet 'Sheet2' row 58")

    def value(self, well: str) -> float | np.ndarray:
        r, c = parse_well(well)
        return self.values[r, c]

    @property
    def emission_nm(self) -> float | None:
        """The emission wavelength of a fluorescence or luminescence read (its wavelength_nm)."""
        return self.wavelength_nm if (self.excitation_nm is not None or self.mode in EMISSION_MODES) else None

    def is_covered(self, well: str) -> bool:
        """False when the export never read this well (outside its read area)."""
        return self.covered is None or bool(self.covered[parse_well(well)])

    def to_json(self) -> dict:
        kinetic = self.kind == "kinetic"
        out: dict[str, object] = {"label": self.label, "wavelength_nm": self.wavelength_nm, "kind": self.kind}
        if self.excitation_nm is not None or self.emission_nm is not None:
            out["excitation_nm"], out["emission_nm"] = self.excitation_nm, self.emission_nm
        if self.mode:
            out["mode"] = self.mode
        if kinetic:
            out["times_s"] = _json_list(self.times_s) if self.times_s is not None else []
        out["values"] = _by_well(self.values, kinetic)
        out["flags"] = dict(self.flags)
        if self.texts:
            out["texts"] = dict(self.texts)
        if self.point_flags:
            out["point_flags"] = {w: {str(k): f for k, f in points.items()} for w, points in self.point_flags.items()}
        if self.well_times_s is not None:
            out["well_times_s"] = _by_well(self.well_times_s, True)
        if self.layers:
            out["layers"] = {name: _by_well(layer, layer.ndim == 3) for name, layer in self.layers.items()}
        if self.source:
            out["source"] = self.source
        return out


EMISSION_MODES = ("fluorescence", "luminescence")


def _json_list(values) -> list:
    return [None if not np.isfinite(x) else float(x) for x in values]


def _by_well(values: np.ndarray, series: bool) -> dict[str, object]:
    """Well name -> number (or list for a series), for wells that have any number."""
    out: dict[str, object] = {}
    rows, columns = values.shape[:2]
    for r in range(rows):
        for c in range(columns):
            v = values[r, c]
            if series:
                if np.isfinite(v).any():
                    out[well_name(r, c)] = _json_list(v)
            elif np.isfinite(v):
                out[well_name(r, c)] = float(v)
    return out


@dataclass
class Plate:
    """One plate read: its shape, its reads and what the export says about the instrument."""

    name: str
    rows: int
    columns: int
    reads: list[Read] = field(default_factory=list)
    metadata: dict[str, object] = field(default_factory=dict)

    def export_layout(self):
        """The layout the export carries (an assayrunner.vendor.ExportLayout), or None."""
        from .vendor import export_layout

        return export_layout(self)

    def vendor_results(self):
        """The in-well concentrations the reader software calculated (assayrunner.vendor.VendorResults), or None."""
        from .vendor import vendor_results

        return vendor_results(self)

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "rows": self.rows,
            "columns": self.columns,
            "metadata": self.metadata,
            "reads": [read.to_json() for read in self.reads],
        }
        for key, found in (("export_layout", self.export_layout()), ("vendor_results", self.vendor_results())):
            if found is not None:
                out[key] = found.to_json()
        return out
