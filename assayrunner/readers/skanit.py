"""Thermo Fisher SkanIt exports (.xlsx): Multiskan (FC, GO, Sky), Varioskan, Fluoroskan, Luminoskan.

A results sheet per protocol step, each starting 'Measurement results', the session, its date, the
step name ('Absorbance 1', 'Blank Subtraction 1', 'Standard Curve 1'), 'Wavelength: 450 nm', then
per plate a 'Plate 1' line and grids: a name cell and the column numbers (1.0, 2.0, ...) across,
rows A, B, ... down. Measurement steps give endpoint reads, calculation steps calculated reads;
text grids (the 'Sample' layout) are skipped, as are cells outside the grid (columns users add).

Kinetic steps write a 'Reading' table (wells across, a line per reading) on the results sheet
and, on a 'Raw data <wavelength>' sheet, a long list 'Well | Wavelength(s) [nm] | Raw absorbance |
Measurement time(s)' with each well's own read times (Multiskan Sky names wells 'A 2'). The raw
list is the read; the results table is the same numbers without times and is read only when no
raw list exists (its times then come from the kinetic interval). '> Max', '< Min' and 'NaN' become
flags. The information sheets give instrument, serial number, software, execution time, plate
template and the temperature.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch
from ..plate import Plate, Read
from ..registry import Reader
from ..source import Sheet, Source
from .long_table import well_list_reads

_MEASUREMENT = re.compile(r"^(Absorbance|Fluorescence|Fluorometric|Luminometric|Luminescence|Photometric|"
                          r"Time-resolved|TRF|AlphaScreen|FRET|Spectrum|Kinetic|Measure)", re.IGNORECASE)
_INFO_SHEETS = ("General information", "Session information", "Instrument information", "Protocol parameters",
                "Run log", "Layout definitions")


_NOT_SKANIT = "no SkanIt results sheet ('Measurement results' with a plate grid) or raw data list in this workbook"
_TEXT_SECTION = re.compile(r"^Plate:\s*(\d+)\s*-\s*Wavelength:\s*(\d+(?:[.,]\d+)?)", re.IGNORECASE)
_ITERATION = re.compile(r"^(Iteration|Reading|Cycle):\s*(\d+)", re.IGNORECASE)


def sniff_skanit(source: Source) -> float:
    if source.kind == "text":
        lines = [line.strip() for line in source.head_lines(40) if line.strip()]
        if lines and lines[0].startswith("Results of") and any(_TEXT_SECTION.match(x) for x in lines[:10]):
            return 0.9
        return 0.0
    if source.kind != "workbook":
        return 0.0
    names = source.sheet_names
    text = source.workbook_text
    if any(sign in text for sign in ("SkanIt", "Multiskan", "Varioskan", "Fluoroskan", "Luminoskan")):
        return 0.9
    first = " ".join(C.text(c) for row in source.sheets[0].rows[:5] for c in row[:3]) if names else ""
    if first.startswith("Measurement results") and any(n in _INFO_SHEETS for n in names):
        return 0.9
    return 0.0


def _key_values(rows: list[list]) -> dict[str, str]:
    """Information sheets: a key cell then its value further right (first of a repeated key wins)."""
    out: dict[str, str] = {}
    for row in rows:
        filled = [C.text(c) for c in row if not C.is_blank(c)]
        if len(filled) >= 2:
            out.setdefault(filled[0].rstrip(":"), filled[-1])
    return out


def _metadata(source: Source) -> dict[str, object]:
    meta: dict[str, object] = {"vendor": "Thermo Fisher Scientific"}
    info: dict[str, str] = {}
    for name in _INFO_SHEETS:
        if name in source.sheet_names:
            for key, value in _key_values(source.sheet(name).rows).items():
                info.setdefault(key, value)
    for key, name in (("Name", "instrument"), ("Serial number", "serial"), ("ESW version", "firmware"),
                      ("Firmware version", "firmware"), ("Report generated with SW version", "software"),
                      ("Executed with", "software"), ("Version", "software_version"), ("Session name", "session"),
                      ("Plate template", "plate_type"), ("Kinetic interval", "kinetic_interval")):
        if info.get(key) and name not in meta:
            meta[name] = info[key]
    if info.get("Execution time"):
        meta["datetime"] = C.parse_datetime(info["Execution time"]) or info["Execution time"]
    if info.get("Set temperature") and (t := C.number(info["Set temperature"].split()[0])) is not None:
        meta["set_temperature_c"] = t
    if "Run log" in source.sheet_names:
        for row in source.sheet("Run log").rows:
            cells = [C.text(v) for v in row]
            if "Temperature" in cells:
                number = next((C.number(c) for c in row[cells.index("Temperature") + 1:]
                               if C.number(str(c).replace("°C", "")) is not None), None)
                number = number if number is not None else C.number(cells[-1].replace("°C", ""))
                if number is not None:
                    meta["temperature_c"] = number
                    break
    return meta


def _steps(source: Source) -> set[str]:
    """Measurement step names listed in 'Protocol parameters' (a name alone on its row)."""
    names = set()
    if "Protocol parameters" in source.sheet_names:
        for row in source.sheet("Protocol parameters").rows[1:]:
            filled = [C.text(v) for v in row if not C.is_blank(v)]
            if len(filled) == 1 and row and not C.is_blank(row[0]):
                names.add(filled[0])
    return names


def _numeric(cells: dict, dc: bool) -> bool:
    """False for a grid of names (a layout): every filled cell is text that is no number or marker."""
    return any(C.is_value(c, dc) for c in cells.values() if not C.is_blank(c))


class _Found(NamedTuple):
    """A read found on a results sheet, built once the plate's shape is known."""

    plate: str
    label: str
    extent: tuple[int, int]
    build: Callable[[tuple[int, int]], Read]
    axis: str | None = None  # kinetic tables: 'time' (a time column) or 'reading' (reading numbers only)
    reading: list | None = None  # the lead cells of that column


def _results_sheet(sheet: Sheet, measured: set[str]) -> list[_Found]:
    """Every numeric grid and kinetic table of a results sheet."""
    header = [C.text(r[0]) for r in sheet.rows[1:12] if r and not C.is_blank(r[0])]
    step = header[2] if len(header) > 2 else sheet.name
    wavelength = next((R.wavelength_in(h) for h in header if h.startswith("Wavelength")), None) or \
        R.wavelength_in(sheet.name)
    kind = "endpoint" if step in measured or _MEASUREMENT.match(step) else "calculated"
    out = []
    plate, plate_at = "Plate 1", []
    for i, row in enumerate(sheet.rows):
        first = C.text(row[0]) if row else ""
        if re.match(r"^Plate \d+$", first):
            plate_at.append((i, first))
    grids = [g for g in T.find_grids(sheet) if g.title(reach=1) != "Sample"]
    named = [(g, C.text(sheet.rows[g.top][g.left]) if g.left >= 0 else "") for g in grids]
    named = [(g, n) for g, n in named if n != "Sample" and _numeric(g.layers.get("") or {}, sheet.decimal_comma)]
    on_plate = [max((p for p in plate_at if p[0] < grid.top), default=(0, "Plate 1"))[1] for grid, _ in named]
    per_plate = Counter(on_plate)
    for (grid, name), plate in zip(named, on_plate):
        label = step if per_plate[plate] == 1 else f"{step}: {name}"
        cells = grid.layers.get("") or {}
        out.append(_Found(plate, label, grid.extent, lambda shape, label=label, cells=cells, grid=grid:
                          R.mark_unread(R.endpoint(label, cells, shape, sheet.decimal_comma, kind,
                                                   wavelength_nm=wavelength, source=grid.where), grid.wells)))
    for table in T.find_wells_across(sheet):
        reading = table.lead_column("reading", "time", "cycle")
        if reading is None:
            continue
        name = next((n for n in table.lead_names if n), "")
        unit = C.header_unit(name)
        times = R.time_axis(reading, unit) if name.lower().startswith("time") else [None] * len(reading)
        out.append(_Found(plate, step, table.extent(), lambda shape, table=table, times=times: R.mark_unread(
            R.kinetic(step, table.wells, table.cells, times, shape, sheet.decimal_comma, wavelength_nm=wavelength,
                      source=table.where), table.wells),
            "time" if name.lower().startswith("time") else "reading", reading))
    return out


def _text_plates(source: Source) -> list[Plate]:
    """SkanIt text: 'Results of Photometric1', then per plate and wavelength ('Plate:1 - Wavelength:340')
    a block per iteration ('Iteration: 1') of unlabelled plate rows: a kinetic read per wavelength."""
    sheet = source.sheets[0]
    marks = [(i, line.strip()) for i, line in enumerate(sheet.lines or []) if _TEXT_SECTION.match(line.strip())]
    plates: dict[str, Plate] = {}
    for (start, mark), (stop, _) in zip(marks, marks[1:] + [(len(sheet.rows), "")]):
        m = _TEXT_SECTION.match(mark)
        blocks = T.find_blocks(sheet, start + 1, stop)
        if not blocks:
            continue
        shape = blocks[0].shape
        blocks = [b for b in blocks if b.shape == shape]
        wells = [(r, c) for r in range(shape[0]) for c in range(shape[1])]
        points = [[b.cells[r][c] for r, c in wells] for b in blocks]
        wavelength = float(m[2].replace(",", "."))
        label = f"{wavelength:g} nm"
        plate = plates.setdefault(m[1], Plate(f"Plate {m[1]}", shape[0], shape[1], metadata={
            "vendor": "Thermo Fisher Scientific", "software": "SkanIt", "title": sheet.line_text(0),
            "layout_note": "the export labels no rows or columns: each block is placed from well A1"}))
        if len(blocks) > 1:
            read = R.kinetic(label, wells, points, [None] * len(points), shape, sheet.decimal_comma,
                             wavelength_nm=wavelength, mode="absorbance", source=sheet.where(start))
        else:
            read = R.endpoint(label, dict(zip(wells, points[0])), shape, sheet.decimal_comma,
                              wavelength_nm=wavelength, mode="absorbance", source=sheet.where(start))
        plate.reads.append(read)
    for plate in plates.values():
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads})
    if not plates:
        raise FormatMismatch("no 'Plate:1 - Wavelength:...' section with plate blocks in this SkanIt text export",
                             file=source.path)
    return list(plates.values())


def read_skanit(source: Source) -> list[Plate]:
    if source.kind == "text":
        return _text_plates(source)
    if source.kind != "workbook" or not sniff_skanit(source):
        raise FormatMismatch(_NOT_SKANIT, file=source.path)
    meta = _metadata(source)
    measured = _steps(source)
    found: dict[str, list] = {}
    raw_reads = []
    for name in source.sheet_names:
        if name in _INFO_SHEETS:
            continue
        sheet = source.sheet(name)
        first = C.text(sheet.rows[0][0]) if sheet.rows and sheet.rows[0] else ""
        if first.lower().startswith("raw data"):
            raw_reads.extend((name, t) for t in T.find_wells_down(sheet, min_wells=1) if t.cells)
        elif first.startswith("Measurement results"):
            for entry in _results_sheet(sheet, measured):
                found.setdefault(entry.plate, []).append(entry)
    if not found and not raw_reads:
        raise FormatMismatch(_NOT_SKANIT, file=source.path)
    extents = [e.extent for entries in found.values() for e in entries] + [t.extent() for _, t in raw_reads]
    shape = R.plate_type_shape(meta.get("plate_type"), (max(e[0] for e in extents), max(e[1] for e in extents)))
    plates: dict[str, Plate] = {}
    for name, table in raw_reads:
        plate = plates.setdefault("Plate 1", Plate("Plate 1", shape[0], shape[1], metadata=dict(meta)))
        for read in well_list_reads(table, shape, name):
            read.kind = "kinetic" if read.kind == "kinetic" else "endpoint"
            read.mode = _mode(read.label)
            plate.reads.append(read)
    interval = C.duration(str(meta.get("kinetic_interval", "")))
    for plate_name, entries in found.items():
        plate = plates.setdefault(plate_name, Plate(plate_name, shape[0], shape[1], metadata=dict(meta)))
        for entry in entries:
            read = entry.build(shape)
            if read.kind == "kinetic":
                if any(_same_series(read, raw) for raw in plate.reads):
                    plate.metadata.setdefault("not_read", []).append(
                        f"{read.label}: the results table repeats the raw data list without its times")
                    continue
                if entry.axis == "reading" and interval:  # reading numbers times the kinetic interval
                    read.times_s = np.array([float(C.number(x) or 0) * interval
                                             for x in entry.reading[:len(read.times_s)]])
            plate.reads.append(read)
    for plate in plates.values():
        plate.reads.sort(key=lambda r: r.kind == "calculated")
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})
    return [p for p in plates.values() if p.reads]


def _same_series(read, raw) -> bool:
    """The results sheet's reading table repeats a raw data list: same wells, same number of points."""
    return raw.kind == "kinetic" and raw.values.shape == read.values.shape and bool(
        (np.isfinite(raw.values) == np.isfinite(read.values)).all())


def _mode(label: str) -> str | None:
    lower = label.lower()
    return next((m for m in ("absorbance", "fluorescence", "luminescence") if m in lower), None)


@hookimpl
def register_readers(register):
    register(Reader(
        name="skanit",
        title="Thermo SkanIt Software export (workbook results and raw data lists; text 'Results of ...')",
        sniff=sniff_skanit,
        read=read_skanit,
        extensions=(".xlsx", ".xls", ".txt"),
        instruments=("Multiskan FC/GO/Sky", "Varioskan", "Fluoroskan", "Luminoskan"),
    ))
