"""Generic grid CSV/TSV: row letters down, column numbers across, metadata lines above.

    Instrument,Generic 540
    Wavelength,540 nm
    ,1,2,3,...,12
    A,0.051,0.049,...

Separator comma, tab or semicolon; decimal comma with tab or semicolon. Several grids in one
file are several reads of one plate (each labelled by the line above it, e.g. '405 nm').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import PLATE_SHAPES, Plate, Read, row_label, smallest_shape, well_name
from ..registry import Reader
from .text import decode, parse_cell, read_text, split_lines

_COLUMN_COUNTS = {c for _, c in PLATE_SHAPES.values()}
_WAVELENGTH = re.compile(r"(?<![\d.])(\d{3,4})(?:\.0+)?\s*(?:nm)?\b", re.IGNORECASE)


@dataclass
class _Grid:
    label: str
    first_line: int
    cells: list[list[str]]  # rows of cell texts, row A first


def detect_separator(lines: list[str]) -> str:
    """The separator that turns the most lines into a run of column numbers 1..N."""
    best, best_score = ",", -1
    for sep in ("\t", ";", ","):
        score = sum(1 for line in lines if _header_columns(line.split(sep)))
        if score > best_score:
            best, best_score = sep, score
    return best


def _header_columns(cells: list[str]) -> int:
    """N when cells (after an optional empty/label cell) are exactly 1..N for a plate's N; else 0."""
    stripped = [c.strip().strip('"') for c in cells]
    while stripped and not stripped[-1]:
        stripped.pop()
    if stripped and not stripped[0].isdigit():
        stripped = stripped[1:]
    n = len(stripped)
    if n in _COLUMN_COUNTS and stripped == [str(i) for i in range(1, n + 1)]:
        return n
    return 0


def _find_grids(lines: list[str], sep: str) -> list[_Grid]:
    grids, i = [], 0
    while i < len(lines):
        n = _header_columns(lines[i].split(sep))
        if not n:
            i += 1
            continue
        rows, j = [], i + 1
        while j < len(lines):
            cells = lines[j].split(sep)
            if cells[0].strip().strip('"').upper() != row_label(len(rows)):
                break
            rows.append([c for c in cells[1:n + 1]] + [""] * max(0, n - len(cells) + 1))
            j += 1
        if rows:
            grids.append(_Grid(_label_above(lines, i, sep), i + 1, rows))
        i = j
    return grids


def _label_above(lines: list[str], header: int, sep: str) -> str:
    """The nearest non-empty line above a grid header if it is a lone label ('540 nm'); '' for metadata."""
    for k in range(header - 1, max(-1, header - 3), -1):
        cells = [c.strip().strip('"') for c in lines[k].split(sep) if c.strip()]
        if cells:
            return cells[0] if len(cells) == 1 else ""
    return ""


def _metadata(lines: list[str], sep: str, stop: int) -> dict[str, str]:
    meta = {}
    for line in lines[:stop]:
        cells = [c.strip().strip('"') for c in re.split(rf"{re.escape(sep)}|:\s", line, maxsplit=1)]
        if len(cells) == 2 and cells[0] and cells[1]:
            meta[cells[0].rstrip(":")] = cells[1].strip(sep + " ")
    return meta


def wavelength_in(text: str) -> float | None:
    """A wavelength in nm named in a label or metadata value ('540 nm', 'Abs 405'), else None."""
    m = _WAVELENGTH.search(text)
    return float(m.group(1)) if m and 200 <= int(m.group(1)) <= 1100 else None


def read_grid(path: Path) -> list[Plate]:
    text = read_text(path)
    lines = split_lines(text)
    sep = detect_separator(lines[:2000])
    grids = _find_grids(lines, sep)
    if not grids:
        raise UserError("no plate grid found (a header row 1..12 with rows A, B, ... below it)", file=path)
    decimal_comma = sep != ","
    meta = _metadata(lines, sep, grids[0].first_line - 1)
    shape = smallest_shape(max(len(g.cells) for g in grids), max(len(g.cells[0]) for g in grids))
    reads = []
    for k, grid in enumerate(grids):
        values = np.full(shape, np.nan)
        read = Read(label=grid.label, values=values)
        for r, row in enumerate(grid.cells):
            for c, cell in enumerate(row):
                value, flag = parse_cell(cell, decimal_comma)
                if value is not None:
                    values[r, c] = value
                if flag:
                    read.flags[well_name(r, c)] = flag
                    if flag == "invalid":
                        read.texts[well_name(r, c)] = cell.strip()
        read.wavelength_nm = wavelength_in(grid.label) or (wavelength_in(meta.get("Wavelength", "")) if k == 0 else None)
        read.label = grid.label or (f"{read.wavelength_nm:g} nm" if read.wavelength_nm else f"Read {k + 1}")
        reads.append(read)
    return [Plate(name=path.stem, rows=shape[0], columns=shape[1], reads=reads, metadata=meta)]


def sniff_grid(head: bytes, path: Path) -> float:
    lines = split_lines(decode(head))[:200]
    sep = detect_separator(lines)
    for i, line in enumerate(lines[:-1]):
        if _header_columns(line.split(sep)) and lines[i + 1].split(sep)[0].strip().strip('"').upper() == "A":
            return 0.5
    return 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="grid",
        title="Generic plate grid (CSV, TSV, semicolon; rows A.., columns 1..)",
        sniff=sniff_grid,
        read=read_grid,
        extensions=(".csv", ".tsv", ".txt"),
        instruments=("any reader exporting a plate-shaped table",),
    ))

