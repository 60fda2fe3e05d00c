"""Thermo Fisher SkanIt Software report (.xlsx): Multiskan, Varioskan, Fluoroskan, Luminoskan.

A sheet per protocol step, each starting 'Measurement results', the session file, its date, the step
name ('Absorbance 1', 'Blank Subtraction 1', 'Standard Curve 1'), 'Wavelength: 450 nm', then per
plate a 'Plate 1' line and grids: a name cell and the column numbers (as 1.0, 2.0, ...) across,
rows A, B, ... down. Measurement steps give endpoint reads, calculation steps calculated reads;
text grids (the 'Sample' layout) are skipped, as are cells outside the grid (columns users add).
'> Max', '< Min' and 'NaN' become flags. The information sheets give instrument, serial number,
software, execution time, plate template and the run log's temperature.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import Plate, Read, row_label, smallest_shape
from ..registry import Reader
from .grid import wavelength_in
from .text import cell_text, fit_reads, parse_datetime, parse_value, read_xlsx, store_cell, xlsx_strings

_MEASUREMENT = re.compile(r"^(Absorbance|Fluorescence|Fluorometric|Luminometric|Luminescence|Photometric|"
                          r"Time-resolved|TRF|AlphaScreen|FRET|Spectrum|Kinetic)", re.IGNORECASE)
_INFO_SHEETS = ("General information", "Session information", "Instrument information", "Protocol parameters",
                "Run log", "Layout definitions")


def sniff_skanit(head: bytes, path: Path) -> float:
    if not head.startswith(b"PK") or path.suffix.lower() not in (".xlsx", ".xlsm"):
        return 0.0
    text = xlsx_strings(path)
    return 0.9 if "SkanIt" in text or ("Measurement results" in text and "Autoloading range" in text) else 0.0


def _grid_columns(row: list) -> int:
    """N when row is a grid header: a name, then 1, 2, ..., N (numbers or text)."""
    n = 0
    for value in row[1:]:
        if parse_value(value)[0] != n + 1:
            break
        n += 1
    return n if n >= 2 and cell_text(row[0]) else 0


def _grids(rows: list[list]) -> list[tuple[str, str, list[list]]]:
    """(plate name, grid name, cells) for every grid on a results sheet."""
    found, plate, i = [], "Plate 1", 0
    while i < len(rows):
        row = rows[i]
        first = cell_text(row[0]) if row else ""
        n = _grid_columns(row) if row else 0
        if n and i + 1 < len(rows) and rows[i + 1] and cell_text(rows[i + 1][0]) == "A":
            body, i = [], i + 1
            while i < len(rows) and rows[i] and cell_text(rows[i][0]) == row_label(len(body)):
                body.append(list(rows[i][1:n + 1]) + [None] * (n - len(rows[i][1:n + 1])))
                i += 1
            found.append((plate, first, body))
            continue
        if re.match(r"^Plate \d+$", first):
            plate = first
        i += 1
    return found


def _numeric(cells: list[list]) -> bool:
    """True unless every filled cell is text that is neither a number nor a known marker (a layout)."""
    filled = [parse_value(v) for row in cells for v in row if cell_text(v)]
    return any(flag != "invalid" for _, flag in filled)


def _key_values(rows: list[list]) -> dict[str, str]:
    """Information sheets: a key cell then its value further right (first of a repeated key wins)."""
    out: dict[str, str] = {}
    for row in rows:
        cells = [cell_text(v) for v in row]
        filled = [c for c in cells if c]
        if len(filled) >= 2:
            out.setdefault(filled[0], filled[-1])
    return out


def _metadata(sheets: dict[str, list[list]]) -> dict[str, object]:
    meta: dict[str, object] = {"vendor": "Thermo Fisher Scientific"}
    info = {}
    for name in _INFO_SHEETS:
        for key, value in _key_values(sheets.get(name, [])).items():
            info.setdefault(key, value)
    for key, name in (("Name", "instrument"), ("Serial number", "serial"), ("ESW version", "firmware"),
                      ("Report generated with SW version", "software"), ("Executed with", "software"),
                      ("Session name", "session"), ("Plate template", "plate_type")):
        if info.get(key) and name not in meta:
            meta[name] = info[key]
    if info.get("Execution time"):
        meta["datetime"] = parse_datetime(info["Execution time"]) or info["Execution time"]
    for row in sheets.get("Run log", []):
        cells = [cell_text(v) for v in row]
        if "Temperature" in cells:
            number = parse_value(cells[-1].replace("°C", ""))[0]
            if number is not None:
                meta["temperature_c"] = number
                break
    return meta


def _steps(sheets: dict[str, list[list]]) -> set[str]:
    """Measurement step names listed in 'Protocol parameters' (a name alone on its row)."""
    names = set()
    for row in sheets.get("Protocol parameters", [])[1:]:
        filled = [cell_text(v) for v in row if cell_text(v)]
        if len(filled) == 1 and row and cell_text(row[0]):
            names.add(filled[0])
    return names


def read_skanit(path: Path) -> list[Plate]:
    sheets = read_xlsx(path)
    meta = _metadata(sheets)
    measured = _steps(sheets)
    plates: dict[str, Plate] = {}
    for title, rows in sheets.items():
        if not rows or not rows[0] or cell_text(rows[0][0]) != "Measurement results":
            continue
        header = [cell_text(r[0]) for r in rows[1:12] if r and cell_text(r[0])]
        step = header[2] if len(header) > 2 else title
        wavelength = next((wavelength_in(h) for h in header if h.startswith("Wavelength")), None)
        kind = "endpoint" if step in measured or _MEASUREMENT.match(step) else "calculated"
        grids = [g for g in _grids(rows) if g[1] != "Sample" and _numeric(g[2])]
        per_plate = {}
        for plate_name, _, _ in grids:
            per_plate[plate_name] = per_plate.get(plate_name, 0) + 1
        for plate_name, grid_name, cells in grids:
            label = step if per_plate[plate_name] == 1 else f"{step}: {grid_name}"
            shape = smallest_shape(len(cells), len(cells[0]))
            read = Read(label=label, values=np.full(shape, np.nan), kind=kind, wavelength_nm=wavelength)
            for r, row in enumerate(cells):
                for c, cell in enumerate(row):
                    store_cell(read, r, c, cell)
            plate = plates.setdefault(plate_name, Plate(name=plate_name, rows=shape[0], columns=shape[1],
                                                        metadata=dict(meta)))
            plate.reads.append(read)
    if not plates:
        raise UserError("no SkanIt results sheet ('Measurement results' with a plate grid) in this workbook",
                        file=path)
    for plate in plates.values():
        plate.rows, plate.columns = fit_reads(plate.reads)
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})
    return list(plates.values())


@hookimpl
def register_readers(register):
    register(Reader(
        name="skanit",
        title="Thermo SkanIt Software report (xlsx)",
        sniff=sniff_skanit,
        read=read_skanit,
        extensions=(".xlsx",),
        instruments=("Multiskan", "Varioskan", "Fluoroskan", "Luminoskan"),
    ))
