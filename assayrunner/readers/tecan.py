"""Tecan i-control, SparkControl and Magellan exports: xlsx, or the same layout as CSV/TSV text.

i-control / Spark: a metadata header (Application, Device, Serial number, Date, Time, User, Plate,
then Mode/Wavelength/Excitation/Emission rows per label) and a block per label:

* kinetic, time across columns: 'Cycle Nr.', 'Time [s]', 'Temp. [°C]' rows, then a row per well (A1 ...);
* kinetic, time down: a header 'Cycle Nr.', 'Time [s]', 'Temp. [°C]', A1, A2, ... then a row per cycle;
* endpoint: a '<>' header with the column numbers, then a row per plate row (A, B, ...).

Magellan: a long list 'Raw data | Well positions | Plate' (every column other than the well and the
plate is a read), then footer lines: 'Date of measurement: .../Time of measurement: ...', method
(.mth) and workspace (.wsp), user, instrument, 'Instrument serial number: ...', 'Measurement
wavelength: 595 nm', 'Meas. temperature: Raw data: 23.4 °C'.

'OVER', 'INVALID' and the like become flags. Sheets are plates (an empty sheet is skipped).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import PLATE_SHAPES, Plate, Read, find_well, row_label, smallest_shape
from ..registry import Reader
from .grid import wavelength_in
from .text import (cell_text, decode, fit_reads, parse_datetime, parse_value, read_text, read_xlsx, split_cells,
                   split_lines, store_cell, xlsx_strings)

_SIGNS = ("Tecan", "i-control", "SparkControl", "Magellan")
_TIME_UNITS = {"[s]": 1.0, "[ms]": 0.001, "[min]": 60.0, "[h]": 3600.0}
_KEY_CELL = re.compile(r"^([A-Za-z][\w .()/-]{0,40}?):\s*(.*)$")


def sniff_tecan(head: bytes, path: Path) -> float:
    if head.startswith(b"PK"):
        text = xlsx_strings(path) if path.suffix.lower() in (".xlsx", ".xlsm") else ""
    else:
        text = decode(head[:16384])
    if any(sign in text for sign in _SIGNS) or ("Well positions" in text and "Raw data" in text):
        return 0.9
    return 0.0


def _number(value: object, decimal_comma: bool = False) -> float | None:
    return parse_value(value, decimal_comma)[0]


def _shape_for(plate_type: str, rows: int, columns: int) -> tuple[int, int]:
    """The plate named in the plate type ('Greiner 96 Flat Bottom', 'GRE96ft.pdf') if the data fits it."""
    m = re.search(r"(?<!\d)(1536|384|96|48|24|12|6)(?!\d)", plate_type)
    if m:
        shape = PLATE_SHAPES[int(m.group(1))]
        if shape[0] >= rows and shape[1] >= columns:
            return shape
    return smallest_shape(rows, columns)


# --- i-control / Spark ------------------------------------------------------------------------

def _kinetic_across(rows: list[list], i: int, label: str, dc: bool) -> tuple[Read, int, list[float]]:
    """'Cycle Nr.' row at i, then Time and Temp rows, then a row per well; time runs across columns."""
    times_row, temps_row, scale, j = [], [], 1.0, i + 1
    while j < len(rows) and rows[j] and cell_text(rows[j][0]).startswith(("Time", "Temp")):
        head = cell_text(rows[j][0])
        if head.startswith("Time"):
            times_row = rows[j][1:]
            scale = next((f for unit, f in _TIME_UNITS.items() if unit in head), 1.0)
        else:
            temps_row = rows[j][1:]
        j += 1
    times = []
    for value in times_row:
        number = _number(value, dc)
        if number is None:
            break
        times.append(number * scale)
    wells = []
    while j < len(rows) and rows[j] and find_well(rows[j][0]) is not None:
        wells.append((find_well(rows[j][0]), rows[j][1:len(times) + 1]))
        j += 1
    read = _kinetic_read(label, wells, times, dc)
    temps = [t for t in (_number(v, dc) for v in temps_row[:len(times)]) if t is not None]
    return read, j, temps


def _kinetic_down(rows: list[list], i: int, label: str, dc: bool) -> tuple[Read, int, list[float]]:
    """Header at i: 'Cycle Nr.', 'Time [s]', 'Temp. [°C]', A1, A2, ...; then a row per cycle."""
    header = [cell_text(v) for v in rows[i]]
    time_col = next((k for k, h in enumerate(header) if h.startswith("Time")), None)
    temp_col = next((k for k, h in enumerate(header) if h.startswith("Temp")), None)
    scale = next((f for unit, f in _TIME_UNITS.items() if time_col is not None and unit in header[time_col]), 1.0)
    columns = [(k, find_well(h)) for k, h in enumerate(header) if find_well(h) is not None]
    cycles, j = [], i + 1
    while j < len(rows) and rows[j] and _number(rows[j][0], dc) is not None:
        cycles.append(list(rows[j]) + [None] * len(header))
        j += 1
    times = [(_number(c[time_col], dc) or 0.0) * scale if time_col is not None else float(n)
             for n, c in enumerate(cycles)]
    wells = [(well, [c[k] for c in cycles]) for k, well in columns]
    read = _kinetic_read(label, wells, times, dc)
    temps = [t for t in (_number(c[temp_col], dc) for c in cycles) if t is not None] if temp_col is not None else []
    return read, j, temps


def _kinetic_read(label: str, wells: list, times: list[float], dc: bool) -> Read:
    rows = max((w[0][0] for w in wells), default=0) + 1
    columns = max((w[0][1] for w in wells), default=0) + 1
    shape = smallest_shape(rows, columns)
    read = Read(label=label, values=np.full((*shape, len(times)), np.nan), kind="kinetic",
                times_s=np.array(times, dtype=float))
    for (r, c), cells in wells:
        for t, cell in enumerate(cells[:len(times)]):
            store_cell(read, r, c, cell, dc, time=t)
    return read


def _endpoint_grid(rows: list[list], i: int, label: str, dc: bool) -> tuple[Read, int]:
    """'<>' header at i with column numbers 1..N, then rows A, B, ..."""
    n = 0
    for value in rows[i][1:]:
        if _number(value) != n + 1:
            break
        n += 1
    body, j = [], i + 1
    while j < len(rows) and rows[j] and cell_text(rows[j][0]).upper() == row_label(len(body)):
        body.append(rows[j][1:n + 1])
        j += 1
    read = Read(label=label, values=np.full(smallest_shape(len(body), n), np.nan))
    for r, cells in enumerate(body):
        for c, cell in enumerate(cells):
            store_cell(read, r, c, cell, dc)
    return read, j


def _header_row(row: list, meta: dict[str, object], modes: list[dict]) -> str | None:
    """Take what one header row says into meta / modes; returns a label name it declares."""
    key = cell_text(row[0]).rstrip(":") if row else ""
    rest = [v for v in row[1:] if cell_text(v)]
    value = rest[0] if rest else None
    label = None
    if key in ("Mode", "Measurement mode") and value is not None:
        modes.append({"mode": cell_text(value)})
    elif modes and key in ("Wavelength", "Excitation Wavelength", "Emission Wavelength", "Measurement Wavelength"):
        modes[-1][key.split()[0].lower()] = _number(value)
    elif key in ("Label", "Name") and value is not None:
        label = cell_text(value)
    elif key == "Date" and value is not None:
        meta["date"] = value.isoformat()[:10] if isinstance(value, (datetime, date)) else cell_text(value)
    elif key == "Time" and value is not None:
        meta["time"] = value.isoformat() if isinstance(value, time) else cell_text(value)
    elif key in ("User", "System", "Plate") and value is not None:
        meta[{"Plate": "plate_type"}.get(key, key.lower())] = cell_text(value)
    elif key in ("Start Time", "End Time") and value is not None:
        meta[key.lower().replace(" ", "_")] = parse_datetime(cell_text(value)) or cell_text(value)
    for cell in row:
        m = _KEY_CELL.match(cell.strip()) if isinstance(cell, str) else None
        if not m or not m.group(2).strip():
            continue
        k, v = m.group(1).strip(), m.group(2).strip()
        if k == "Application":
            meta["software"] = " ".join(cell_text(value or v).replace(",", " ").split())
        elif k == "Device":
            meta["instrument"] = v
        elif k == "Serial number":
            meta["serial"] = v
        elif k == "Firmware":
            meta["firmware"] = v
        elif k in ("Target Temperature", "Temperature"):
            number = _number(v.split()[0])
            if number is not None:
                meta["target_temperature_c" if k.startswith("Target") else "temperature_c"] = number
        elif k == "Label" and sum(1 for x in row if cell_text(x)) == 1:
            label = v
    return label


def _kind(text: str) -> str:
    text = text.lower()
    if text.startswith(("od", "abs")) or "absorbance" in text:
        return "absorbance"
    if "fluo" in text or any(tag in text for tag in ("gfp", "rfp", "fitc", "yfp", "cfp")):
        return "fluorescence"
    return "luminescence" if "lum" in text else ""


def _assign_wavelengths(reads: list[Read], modes: list[dict], meta: dict[str, object]) -> None:
    """Match each read to a Mode entry: by label, else by kind (OD -> Absorbance), else in order."""
    unused = list(modes)
    excitation: dict[str, float] = {}
    for read in reads:
        entry = next((m for m in unused if m.get("label") == read.label), None) \
            or next((m for m in unused if _kind(read.label) and _kind(m["mode"]) == _kind(read.label)), None) \
            or (unused[0] if unused else None)
        if entry is None:
            read.wavelength_nm = wavelength_in(read.label)
            continue
        unused.remove(entry)
        read.wavelength_nm = entry.get("emission") or entry.get("wavelength") or entry.get("measurement")
        if entry.get("excitation"):
            excitation[read.label] = entry["excitation"]
    if excitation:
        meta["excitation_nm"] = excitation


def _read_icontrol(rows: list[list], dc: bool) -> tuple[list[Read], dict[str, object]]:
    meta: dict[str, object] = {"vendor": "Tecan"}
    modes: list[dict] = []
    reads: list[Read] = []
    temps: list[float] = []
    title, pending, i = "", None, 0
    while i < len(rows):
        row = rows[i]
        first = cell_text(row[0]) if row else ""
        if first.startswith("Cycle Nr"):
            down = any(find_well(v) is not None for v in row[1:])
            read, i, read_temps = (_kinetic_down if down else _kinetic_across)(rows, i, title or f"Read {len(reads) + 1}", dc)
            reads.append(read)
            temps.extend(read_temps)
            continue
        if first == "<>":
            read, i = _endpoint_grid(rows, i, title or f"Read {len(reads) + 1}", dc)
            reads.append(read)
            continue
        count = len(modes)
        label = _header_row(row, meta, modes)
        if len(modes) > count and pending:
            modes[-1]["label"], pending = pending, None
        if label:
            title = pending = label
        elif first and not any(cell_text(v) for v in row[1:]) and ":" not in first:
            title = first
        i += 1
    _assign_wavelengths(reads, modes, meta)
    if temps:
        meta.setdefault("temperature_c", temps[0])
        meta["temperature_range_c"] = [min(temps), max(temps)]
    when = parse_datetime(str(meta.get("date", "")), str(meta.get("time", "")))
    if when:
        meta["datetime"] = when
    return reads, meta


# --- Magellan ---------------------------------------------------------------------------------

def _read_magellan(rows: list[list], h: int, dc: bool, stem: str) -> list[Plate]:
    header = [cell_text(v).lower() for v in rows[h]]
    well_col = header.index("well positions")
    plate_col = header.index("plate") if "plate" in header else None
    value_cols = [k for k, name in enumerate(header) if name and k not in (well_col, plate_col)]
    entries, plate_id, j = [], "", h + 1
    while j < len(rows):
        row = list(rows[j]) + [None] * len(header)
        well = find_well(row[well_col])
        if well is None:
            break
        plate_id = cell_text(row[plate_col]) if plate_col is not None and cell_text(row[plate_col]) else plate_id
        entries.append((well, plate_id, row))
        j += 1
    if not entries:
        raise UserError("the Magellan table has a 'Well positions' header but no wells", where=f"row {h + 1}")
    first_id = next((e[1] for e in entries if e[1]), "")
    footer = [cell_text(r[0]) for r in rows[j:] if r and cell_text(r[0])]
    meta, wavelengths, temperatures = _magellan_footer(footer)
    shape = _shape_for(str(meta.get("plate_type", "")), max(e[0][0] for e in entries) + 1,
                       max(e[0][1] for e in entries) + 1)
    plates: dict[str, Plate] = {}
    for (r, c), pid, row in entries:
        pid = pid or first_id
        plate = plates.get(pid)
        if plate is None:
            plate = plates[pid] = Plate(name=pid or stem, rows=shape[0], columns=shape[1], metadata=dict(meta))
            for n, k in enumerate(value_cols):
                label = cell_text(rows[h][k])
                wavelength = wavelengths[n] if len(wavelengths) == len(value_cols) else \
                    (wavelengths[0] if len(wavelengths) == 1 else wavelength_in(label))
                plate.reads.append(Read(label=label, values=np.full(shape, np.nan), wavelength_nm=wavelength))
            if pid:
                plate.metadata["plate_id"] = pid
            if temperatures:
                plate.metadata["temperature_c"] = next(iter(temperatures.values()))
        for read, k in zip(plate.reads, value_cols):
            store_cell(read, r, c, row[k], dc)
    for plate in plates.values():
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})
    return list(plates.values())


def _magellan_footer(lines: list[str]) -> tuple[dict[str, object], list[float], dict[str, float]]:
    meta: dict[str, object] = {"vendor": "Tecan", "software": "Magellan"}
    wavelengths: list[float] = []
    temperatures: dict[str, float] = {}
    for k, line in enumerate(lines):
        m = re.match(r"Date of measurement: (\S+)/Time of measurement: (\S+)", line)
        if m:
            meta["datetime"] = parse_datetime(m.group(1), m.group(2)) or f"{m.group(1)} {m.group(2)}"
        elif line.lower().endswith(".mth"):
            meta["method"] = line
        elif line.lower().endswith(".wsp"):
            meta["workspace"] = line
        elif line.startswith("Instrument serial number:"):
            meta["serial"] = line.split(":", 1)[1].strip()
            if k >= 2 and ":" not in lines[k - 1]:
                meta["instrument"] = lines[k - 1]
                if ":" not in lines[k - 2] and not re.match(r"^\d+ ?nm$", lines[k - 2]):
                    meta["user"] = lines[k - 2]
        elif line.startswith("Measurement wavelength:"):
            number = _number(line.split(":", 1)[1].split()[0])
            if number is not None:
                wavelengths.append(number)
        elif line.startswith("Measurement mode:"):
            meta["mode"] = line.split(":", 1)[1].strip()
        elif line.startswith("Plate definition file:"):
            meta["plate_type"] = line.split(":", 1)[1].strip()
        else:
            t = re.match(r"Meas\. temperature: (.+): (-?[\d.]+) ?°C", line)
            if t:
                temperatures[t.group(1)] = float(t.group(2))
    return meta, wavelengths, temperatures


# --- files ------------------------------------------------------------------------------------

def _sheet_plates(rows: list[list], dc: bool, name: str) -> list[Plate]:
    for h, row in enumerate(rows[:20]):
        if any(cell_text(v).lower() == "well positions" for v in row):
            return _read_magellan(rows, h, dc, name)
    reads, meta = _read_icontrol(rows, dc)
    if not reads:
        return []
    extent = max(r.values.shape[0] for r in reads), max(r.values.shape[1] for r in reads)
    shape = fit_reads(reads, _shape_for(str(meta.get("plate_type", "")), *extent))
    meta["wavelengths_nm"] = sorted({r.wavelength_nm for r in reads if r.wavelength_nm})
    return [Plate(name=name, rows=shape[0], columns=shape[1], reads=reads, metadata=meta)]


def _text_rows(path: Path) -> tuple[list[list], bool]:
    lines = split_lines(read_text(path))
    enough = max(1, len(lines[:200]) // 5)
    sep = next((s for s in ("\t", ";") if sum(1 for line in lines[:200] if s in line) >= enough), ",")
    return [[c or None for c in row] for row in split_cells(lines, sep)], sep != ","


def read_tecan(path: Path) -> list[Plate]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        sheets = {title: (rows, False) for title, rows in read_xlsx(path).items() if rows}
    else:
        sheets = {path.stem: _text_rows(path)}
    plates: list[Plate] = []
    for title, (rows, dc) in sheets.items():
        name = path.stem if len(sheets) == 1 else title
        try:
            plates.extend(_sheet_plates(rows, dc, name))
        except UserError as exc:
            raise UserError(exc.message, file=path, where=f"sheet {title}" if len(sheets) > 1 else None) from None
    if not plates:
        raise UserError("no Tecan data block found (a 'Cycle Nr.' kinetic block, a '<>' plate grid or a "
                        "'Well positions' list)", file=path)
    names = [p.name for p in plates]
    if len(set(names)) < len(names):
        for k, plate in enumerate(plates, 1):
            plate.name = f"{plate.name} #{k}"
    return plates


@hookimpl
def register_readers(register):
    register(Reader(
        name="tecan",
        title="Tecan i-control / SparkControl / Magellan (xlsx, CSV)",
        sniff=sniff_tecan,
        read=read_tecan,
        extensions=(".xlsx", ".csv", ".txt", ".asc"),
        instruments=("Infinite 200 PRO", "Infinite M Plex", "Spark", "Sunrise", "Ultra"),
    ))
