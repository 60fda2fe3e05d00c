"""BMG LABTECH MARS CSV export (PHERAstar, CLARIOstar, FLUOstar/POLARstar Omega, SPECTROstar).

    User: USER,Path: C:\\Program Files (x86)\\BMG\\PHERAstar\\User\\Data,Test run no.: 3
    Test name: 472 ABS 384 QC,Date: 03/03/2016,Time: 16:54:03
    ID1: 472-0016
    Absorbance
    Raw Data (484)
    ,1,2,3,...,24
    A,0.031,0.032,...

Every labelled grid is a read: 'Raw Data (485/520)' gives excitation/emission and the emission is
the read's wavelength; grids not labelled 'Raw Data ...' (blank corrected, averages, ratios) are
calculated reads. The table layout (Well, Content, Raw Data (450), ...) gives a read per value
column. Semicolon- or tab-separated exports use decimal commas.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import Plate, Read, find_well, row_label, smallest_shape
from ..registry import Reader
from .text import decode, fit_reads, parse_datetime, read_text, split_cells, split_lines, store_cell

_KEY = re.compile(r"^([A-Za-z][\w .#/()-]{0,40}?)\s*:\s*(.*)$")
_FILTER = re.compile(r"\(\s*(\d+(?:[.,]\d+)?)(?:\s*[/ ]\s*(\d+(?:[.,]\d+)?))?[^)]*\)")
_MODES = ("absorbance", "fluorescence", "luminescence", "fluorescence polarization", "time-resolved fluorescence",
          "alphascreen", "nephelometry")
_INSTRUMENTS = ("PHERAstar", "CLARIOstar", "FLUOstar", "POLARstar", "SPECTROstar", "NEPHELOstar", "LUMIstar",
                "VANTAstar", "Omega")
_META_KEYS = {"user": "user", "path": "path", "test name": "test_name", "test id": "test_id",
              "test run no.": "test_run", "date": "date", "time": "time", "id1": "id1", "id2": "id2", "id3": "id3"}


def sniff_bmg(head: bytes, path: Path) -> float:
    text = decode(head[:8192])
    if re.search(r"^(User|Test name|Test ID|ID1)\s*:", text, re.MULTILINE) and (
            "Raw Data" in text or "\\BMG\\" in text):
        return 0.9
    return 0.0


def _separator(lines: list[str]) -> str:
    """The separator of the column header rows (',1,2,3' / ';1;2;3' / tab)."""
    for line in lines:
        for sep in (",", ";", "\t"):
            cells = [c.strip() for c in line.split(sep)]
            if len(cells) > 3 and cells[1:4] == ["1", "2", "3"]:
                return sep
    return ";" if sum(line.count(";") for line in lines) > sum(line.count(",") for line in lines) else ","


def _grid_columns(cells: list[str]) -> int:
    """N when the cells are '', 1, 2, ..., N (a plate grid's column header); else 0."""
    numbers = [c.strip() for c in cells[1:]]
    if cells and not cells[0].strip() and len(numbers) >= 2 and numbers == [str(i) for i in range(1, len(numbers) + 1)]:
        return len(numbers)
    return 0


def _wavelength(label: str) -> float | None:
    """'Raw Data (450)' -> 450; 'Raw Data (485/520)' -> 520 (emission); 'Raw Data (No filter)' -> None."""
    m = _FILTER.search(label)
    if not m:
        return None
    value = float((m.group(2) or m.group(1)).replace(",", "."))
    return value if 200 <= value <= 1100 else None


def _new_read(label: str, shape: tuple[int, int]) -> Read:
    kind = "endpoint" if label.lower().startswith("raw data") else "calculated"
    return Read(label=label, values=np.full(shape, np.nan), kind=kind, wavelength_nm=_wavelength(label))


def _read_grid(rows: list[list[str]], start: int, n: int, label: str, decimal_comma: bool) -> tuple[Read, int]:
    """The grid whose header is rows[start]; returns the read and the index after its last row."""
    body, j = [], start + 1
    while j < len(rows) and rows[j] and rows[j][0].strip().upper() == row_label(len(body)):
        body.append(rows[j][1:n + 1])
        j += 1
    read = _new_read(label, smallest_shape(len(body), n))
    for r, cells in enumerate(body):
        for c, cell in enumerate(cells):
            store_cell(read, r, c, cell, decimal_comma)
    return read, j


def _table_well(cells: list[str], lower: list[str]) -> tuple[int, int] | None:
    cells = cells + [""] * len(lower)
    if "well" in lower:
        name = cells[lower.index("well")]
    else:
        name = cells[lower.index("well row")].strip() + cells[lower.index("well col")].strip()
    return find_well(name)


def _read_table(rows: list[list[str]], start: int, decimal_comma: bool) -> tuple[list[Read], int]:
    """The table layout: a header with Well (or Well Row + Well Col), Content and value columns."""
    names = [c.strip() for c in rows[start]]
    lower = [n.lower() for n in names]
    skip = {"well", "well row", "well col", "content", "sample", "sample id", "group"}
    value_columns = [k for k, n in enumerate(lower) if n and n not in skip]
    wells, j = [], start + 1
    while value_columns and j < len(rows) and (well := _table_well(rows[j], lower)) is not None:
        wells.append((well, rows[j] + [""] * len(names)))
        j += 1
    if not wells:
        return [], start
    shape = smallest_shape(max(w[0][0] for w in wells) + 1, max(w[0][1] for w in wells) + 1)
    reads = []
    for k in value_columns:
        read = _new_read(names[k], shape)
        for (r, c), cells in wells:
            store_cell(read, r, c, cells[k], decimal_comma)
        reads.append(read)
    return reads, j


def read_bmg(path: Path) -> list[Plate]:
    lines = split_lines(read_text(path))
    sep = _separator(lines[:400])
    rows = split_cells(lines, sep)
    decimal_comma = sep != ","
    meta: dict[str, object] = {"vendor": "BMG LABTECH", "software": "MARS"}
    reads: list[Read] = []
    label = ""
    i = 0
    while i < len(rows):
        cells = [c.strip() for c in rows[i]]
        n = _grid_columns(cells)
        if n and i + 1 < len(rows) and rows[i + 1] and rows[i + 1][0].strip().upper() == "A":
            read, i = _read_grid(rows, i, n, label or f"Read {len(reads) + 1}", decimal_comma)
            reads.append(read)
            label = ""
            continue
        lower = [c.lower() for c in cells]
        if "well" in lower or ("well row" in lower and "well col" in lower):
            table_reads, end = _read_table(rows, i, decimal_comma)
            if table_reads:
                reads.extend(table_reads)
                i = end
                continue
        filled = [c for c in cells if c]
        for cell in filled:
            m = _KEY.match(cell)
            if m and m.group(1).lower() in _META_KEYS:
                meta[_META_KEYS[m.group(1).lower()]] = m.group(2).strip()
        if len(filled) == 1 and not _KEY.match(filled[0]):
            if filled[0].lower().split(" (")[0] in _MODES:
                meta["mode"] = filled[0]
            else:
                label = " ".join(filled[0].split())
        i += 1
    if not reads:
        raise UserError("no BMG plate grid found (a 'Raw Data (...)' label, a header row 1..12 and rows A, B, ...)",
                        file=path)
    _finish_metadata(meta, reads)
    _unique_labels(reads)
    shape = fit_reads(reads)
    name = str(meta.get("id1") or path.stem)
    return [Plate(name=name, rows=shape[0], columns=shape[1], reads=reads, metadata=meta)]


def _finish_metadata(meta: dict[str, object], reads: list[Read]) -> None:
    where = str(meta.get("path", ""))
    for instrument in _INSTRUMENTS:
        if instrument.lower() in where.lower():
            meta["instrument"] = instrument
            break
    when = parse_datetime(str(meta.get("date", "")), str(meta.get("time", "")))
    if when:
        meta["datetime"] = when
    meta["wavelengths_nm"] = sorted({r.wavelength_nm for r in reads if r.wavelength_nm is not None})


def _unique_labels(reads: list[Read]) -> None:
    seen: dict[str, int] = {}
    for read in reads:
        seen[read.label] = seen.get(read.label, 0) + 1
        if seen[read.label] > 1:
            read.label = f"{read.label} #{seen[read.label]}"


@hookimpl
def register_readers(register):
    register(Reader(
        name="bmg",
        title="BMG LABTECH MARS CSV export (PHERAstar, CLARIOstar, Omega, SPECTROstar)",
        sniff=sniff_bmg,
        read=read_bmg,
        extensions=(".csv", ".txt"),
        instruments=("PHERAstar", "CLARIOstar", "FLUOstar Omega", "POLARstar Omega", "SPECTROstar"),
    ))
