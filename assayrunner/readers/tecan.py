"""Tecan i-control, SparkControl and Magellan exports: xlsx (or the same layout as CSV/TSV text).

i-control / Spark: a header (Application, Device, Serial number, Date, Time, User, Plate, then per
label a Mode with its Measurement / Excitation / Emission wavelength) and a data block per label:

* wells as rows: 'Cycle Nr.', 'Time [s]', 'Temp. [°C]' lines, then a line per well (A1 ...);
* cycles as rows: a header 'Cycle Nr.', 'Time [s]', 'Temp. [°C]', A1, A2, ... then a line per cycle;
* several reads per well: a block per well ('B1' with the cycle numbers, Time, Temp, Mean, StDev,
  then a line per read position '1;2'): the value is the Mean, StDev and positions are layers;
* endpoint: a '<>' header with the column numbers, then a line per plate row (A, B, ...).

Only cycles that were run are read (a stopped run leaves numbered but empty cycles). A plate area
('A1-B12;C1-C9') marks the wells outside it unread. Sheets are plates; a kinetic run the software
split over sheets (cycle numbers continuing) is joined back into one plate.

Magellan: a long list 'Raw data | Well positions | Plate' (every column other than the well and
the plate is a read), then footer lines: 'Date of measurement: .../Time of measurement: ...',
method (.mth), workspace (.wsp), user, instrument, 'Instrument serial number: ...',
'Measurement wavelength: 595 nm', 'Meas. temperature: Raw data: 23.4 °C'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch
from ..plate import Plate, Read, find_well, parse_well
from ..registry import Reader
from ..source import Sheet, Source

_SIGNS = ("Tecan", "i-control", "SparkControl", "Magellan", "infinite 200", "Infinite M")
_KEY_CELL = re.compile(r"^([A-Za-z][\w .()/-]{0,40}?):\s*(.*)$")
_POSITION = re.compile(r"^\d+;\d+$")
_STAT_ROWS = ("mean", "stdev", "std dev", "sd", "median", "cv")


def sniff_tecan(source: Source) -> float:
    if source.kind == "text":
        text = "\n".join(source.head_lines(400))
    elif source.kind == "workbook":
        text = "\n".join(C.text(c) for sheet in source.sheets[:3] for row in sheet.rows[:60] for c in row[:8])
    else:
        return 0.0
    if any(sign in text for sign in _SIGNS) or ("Well positions" in text and "Raw data" in text):
        return 0.9
    return 0.0


@dataclass
class _Block:
    """A data block of one label: where it starts and how to build its read once the shape is known."""

    top: int
    build: object  # shape -> Read
    extent: tuple[int, int]
    cycles: list[float] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)
    label: str = ""


def _key_value(row: list) -> tuple[str, object] | None:
    """(key, value) of a header line: 'Key' ... value further right, or 'Key: value' in one cell."""
    if not row or C.is_blank(row[0]):
        return None
    first = C.text(row[0])
    value = next((c for c in row[1:] if not C.is_blank(c)), None)
    if first.endswith(":") and value is not None:
        return first[:-1].strip(), value
    m = _KEY_CELL.match(first)
    if m and m[2].strip():
        return m[1].strip(), m[2].strip()
    if value is not None and ":" not in first:
        return first, value
    return (first[:-1].strip(), "") if first.endswith(":") else None


def _header(sheet: Sheet) -> tuple[dict[str, object], list[dict], list[tuple[int, str]]]:
    """Metadata, the Mode entries (mode, wavelengths, label) and the label declarations (row, label)."""
    meta: dict[str, object] = {"vendor": "Tecan"}
    modes: list[dict] = []
    labels: list[tuple[int, str]] = []
    for i, row in enumerate(sheet.rows):
        kv = _key_value(row)
        if kv is None:
            continue
        key, value = kv
        lower = key.lower()
        text = C.text(value)
        if lower == "mode" and text and text.lower() != "kinetic":
            modes.append({"mode": text})
        elif modes and lower in ("measurement wavelength", "wavelength", "excitation wavelength",
                                 "emission wavelength"):
            modes[-1][lower.split()[0]] = C.number(value, sheet.decimal_comma)
        elif lower in ("name", "label") and text:
            labels.append((i, text))
            if modes and "label" not in modes[-1]:
                modes[-1]["label"] = text
        elif lower == "date" and text:
            meta["date"] = value.isoformat()[:10] if hasattr(value, "isoformat") else text
        elif lower == "time" and text:
            meta["time"] = value.strftime("%H:%M:%S") if hasattr(value, "strftime") else text
        elif lower in ("user", "system") and text:
            meta[lower] = text
        elif lower == "plate" and text:
            meta["plate_type"] = text
        elif lower in ("start time", "end time") and text:
            meta[lower.replace(" ", "_")] = C.parse_datetime(value) or text
        elif lower in ("part of plate", "plate area") and text:
            meta.setdefault("plate_area", text)
        elif lower == "application":
            version = C.text(next((c for c in row[1:] if not C.is_blank(c)), ""))
            name = version if version.startswith(text) else f"{text} {version}"
            meta["software"] = " ".join(name.replace(",", " ").split())
        elif lower == "device":
            meta["instrument"] = text
        for cell in row[:8]:
            m = _KEY_CELL.match(cell.strip()) if isinstance(cell, str) else None
            if m and m[2].strip():
                k, v = m[1].strip(), m[2].strip()
                if k == "Serial number":
                    meta["serial"] = v
                elif k == "Firmware":
                    meta["firmware"] = v
                elif k in ("Target Temperature", "Temperature") and (t := C.number(v.split()[0])) is not None:
                    meta["target_temperature_c" if k.startswith("Target") else "temperature_c"] = t
    return meta, modes, labels


def _title_rows(sheet: Sheet) -> list[tuple[int, str]]:
    """Lines holding a single text cell (a label's title like 'OD 600' right above its block)."""
    out = []
    for i, row in enumerate(sheet.rows):
        filled = [c for c in row if not C.is_blank(c)]
        if len(filled) == 1 and isinstance(filled[0], str) and not C.is_blank(row[0]) and ":" not in filled[0]:
            out.append((i, C.text(filled[0])))
    return out


_NOT_TITLES = ("cycles / well", "cycle nr", "time", "temp", "well", "<>")


def _label_for(block: _Block, labels: list[tuple[int, str]], titles: list[tuple[int, str]]) -> str:
    """A block's label: its own title line, a title line just above it, else the last 'Label:'/'Name' above it."""
    if block.label:
        return block.label
    top = block.top
    near = [t for r, t in titles if top - 3 <= r < top and not t.lower().startswith(_NOT_TITLES)]
    if near:
        return near[-1]
    above = [t for r, t in labels if r < top]
    return above[-1] if above else ""


def _temperatures(cells: list | None, dc: bool) -> list[float]:
    return [t for c in cells or [] if (t := C.number(c, dc)) is not None]


def _kinetic_block(sheet: Sheet, table: T.WellTable) -> _Block | None:
    """A kinetic block under 'Cycle Nr.', 'Time [s]', 'Temp. [°C]' lead lines (wells as rows) or columns (cycles
    as rows); None for a table without a cycle or time lead."""
    dc = sheet.decimal_comma
    time_cells, cycle_cells = table.lead_column("time"), table.lead_column("cycle")
    if time_cells is None and cycle_cells is None:
        return None
    name = next((n for n in table.lead_names if n.lower().startswith("time")), "")
    times = R.time_axis(time_cells, C.header_unit(name)) if time_cells is not None else [None] * len(table.cells)
    title = "" if table.across else next((n for n in table.lead_names
                                          if n and not n.lower().startswith(_NOT_TITLES)), "")
    return _Block(table.top, lambda shape, label: R.kinetic(label, table.wells, table.cells, times, shape, dc,
                                                             source=table.where),
                  table.extent(), [c for x in cycle_cells or [] if (c := C.number(x, dc)) is not None],
                  _temperatures(table.lead_column("temp"), dc), title)


def _endpoint_grid(sheet: Sheet, grid: T.Grid) -> _Block:
    cells = grid.layers.get("") or next(iter(grid.layers.values()))

    def build(shape, label):
        read = R.endpoint(label, cells, shape, sheet.decimal_comma, source=grid.where)
        return R.mark_unread(read, grid.wells)

    return _Block(grid.top, build, grid.extent)


def _multiread_blocks(sheet: Sheet) -> _Block | None:
    """Per-well blocks of a multiple-reads-per-well kinetic: well + cycle numbers, Time, Temp, Mean, StDev, positions."""
    rows = sheet.rows
    wells, series, top = [], [], None
    i = 0
    while i < len(rows) - 1:
        row = rows[i]
        well = find_well(C.text(row[0])) if row and isinstance(row[0], str) else None
        nxt = C.text(rows[i + 1][0]).lower() if rows[i + 1] else ""
        if well is None or not nxt.startswith(("time", "temp", "mean")) or C.number(row[1] if len(row) > 1 else None) \
                is None:
            i += 1
            continue
        top = i if top is None else top
        named: dict[str, list] = {}
        j = i + 1
        while j < len(rows) and rows[j] and not C.is_blank(rows[j][0]) and find_well(C.text(rows[j][0])) is None:
            named[C.text(rows[j][0])] = list(rows[j][1:])
            j += 1
        named["#cycles"] = list(row[1:])
        wells.append(well)
        series.append(named)
        i = j
    if not wells:
        return None
    return _multiread_block(sheet, top, wells, series)


def _multiread_block(sheet: Sheet, top: int, wells: list, series: list[dict[str, list]]) -> _Block:
    dc = sheet.decimal_comma
    time_key = next((k for k in series[0] if k.lower().startswith("time")), None)
    unit = C.header_unit(time_key) if time_key else None
    well_times = [R.time_axis(s.get(time_key, []), unit) for s in series]
    n = max((sum(1 for t in wt if t is not None) for wt in well_times), default=0)
    if n == 0:  # no times: as many points as the longest Mean line
        n = max(len([c for c in s.get("Mean", []) if not C.is_blank(c)]) for s in series)
    well_times = [wt[:n] for wt in well_times]
    value_key = next((k for k in series[0] if k.lower() == "mean"), None) or \
        next((k for k in series[0] if _POSITION.match(k)), None)
    points = [[s.get(value_key, [])[p] if p < len(s.get(value_key, [])) else None for s in series] for p in range(n)]
    times = [next((wt[p] for wt in well_times if p < len(wt) and wt[p] is not None), None) for p in range(n)]
    layer_keys = [k for k in series[0] if k != value_key and (k.lower() in _STAT_ROWS or _POSITION.match(k))]
    temps = _temperatures(next((s[k] for s in series for k in s if k.lower().startswith("temp")), None), dc)[:n]

    def build(shape, label):
        read = R.kinetic(label, wells, points, times, shape, dc, well_times=well_times, source=sheet.where(top))
        for key in layer_keys:
            layer = np.full(read.values.shape, np.nan)
            for w, s in zip(wells, series):
                line = s.get(key, [])
                values, _ = C.to_array([line[p] if p < len(line) else None for p in range(n)], dc)
                layer[w[0], w[1], :len(values)] = values[:layer.shape[2]]
            read.layers[key] = layer
        R.mark_unread(read, wells)
        return read

    extent = (max(r for r, _ in wells) + 1, max(c for _, c in wells) + 1)
    cycles = [c for x in series[0]["#cycles"][:n] if (c := C.number(x, dc)) is not None]
    return _Block(top, build, extent, cycles, temps)


def _kind(text: str) -> str:
    text = text.lower()
    if text.startswith(("od", "abs")) or "absorbance" in text:
        return "absorbance"
    if "fluo" in text or any(tag in text for tag in ("gfp", "rfp", "fitc", "yfp", "cfp", "mcherry")):
        return "fluorescence"
    return "luminescence" if "lum" in text else ""


def _assign_modes(reads: list[Read], modes: list[dict]) -> None:
    """Match each read to a Mode entry: by label, else by kind (OD -> Absorbance), else in order."""
    unused = list(modes)
    for read in reads:
        entry = next((m for m in unused if m.get("label") == read.label), None) \
            or next((m for m in unused if _kind(read.label) and _kind(m["mode"]) == _kind(read.label)), None) \
            or (unused[0] if unused else None)
        if entry is None:
            read.wavelength_nm = R.wavelength_in(read.label)
            continue
        unused.remove(entry)
        read.mode = _kind(entry["mode"]) or entry["mode"].lower()
        read.wavelength_nm = entry.get("emission") or entry.get("measurement") or entry.get("wavelength")
        if entry.get("excitation"):
            read.excitation_nm = entry["excitation"]


def _area(text: str, shape: tuple[int, int]) -> np.ndarray | None:
    """'A1-B12;C1-C9;D1-D12' (row-major ranges) as a coverage mask; None if it is not one."""
    mask = np.zeros(shape, dtype=bool)
    for part in text.replace(",", ";").split(";"):
        ends = [p.strip() for p in part.split("-")]
        try:
            (r0, c0), (r1, c1) = parse_well(ends[0]), parse_well(ends[-1])
        except ValueError:
            return None
        start, stop = r0 * shape[1] + c0, r1 * shape[1] + c1
        for k in range(start, stop + 1):
            if k < mask.size:
                mask[divmod(k, shape[1])] = True
    return mask


def _icontrol_plate(sheet: Sheet, name: str) -> tuple[Plate, list[list[float]]] | None:
    meta, modes, labels = _header(sheet)
    titles = _title_rows(sheet)
    tables = T.find_wells_down(sheet) + T.find_wells_across(sheet)
    blocks = [block for table in tables if (block := _kinetic_block(sheet, table)) is not None]
    blocks += [_endpoint_grid(sheet, grid) for grid in T.find_grids(sheet)]
    multi = _multiread_blocks(sheet)
    if multi is not None:
        blocks.append(multi)
    if not blocks:
        return None
    blocks.sort(key=lambda b: b.top)
    extent = (max(b.extent[0] for b in blocks), max(b.extent[1] for b in blocks))
    shape = R.plate_type_shape(meta.get("plate_type"), extent)
    reads = []
    for k, block in enumerate(blocks):
        label = _label_for(block, labels, titles) or f"Read {k + 1}"
        reads.append(block.build(shape, label))
    _assign_modes(reads, modes)
    if meta.get("plate_area") and (mask := _area(str(meta["plate_area"]), shape)) is not None:
        for read in reads:
            R.mark_unread(read, mask & (read.covered if read.covered is not None else True))
    temps = [t for b in blocks for t in b.temperatures]
    if temps:
        meta.setdefault("temperature_c", temps[0])
        meta["temperature_range_c"] = [min(temps), max(temps)]
    when = C.parse_datetime(meta.get("date", ""), meta.get("time", ""))
    if when:
        meta["datetime"] = when
    meta["wavelengths_nm"] = sorted({r.wavelength_nm for r in reads if r.wavelength_nm})
    excitation = {r.label: r.excitation_nm for r in reads if r.excitation_nm}
    if excitation:
        meta["excitation_nm"] = excitation
    return Plate(name, shape[0], shape[1], reads, meta), [b.cycles for b in blocks]


# --- Magellan ---------------------------------------------------------------------------------

def _magellan_plates(sheet: Sheet, name: str) -> list[Plate]:
    header_row = next((i for i, row in enumerate(sheet.rows[:40])
                       if any(C.text(c).lower() == "well positions" for c in row)), None)
    if header_row is None:
        return []
    table = next((t for t in T.find_wells_down(sheet, min_wells=1) if t.top == header_row + 1), None)
    if table is None:
        raise FormatMismatch("the Magellan table has a 'Well positions' header but no wells",
                             where=sheet.where(header_row))
    header = [C.text(c) for c in sheet.rows[header_row]]
    plate_col = next((k for k, h in enumerate(header) if h.lower() == "plate"), None)
    ids, last = [], ""
    for r in range(table.top, table.bottom):
        row = sheet.rows[r]
        cell = C.text(row[plate_col]) if plate_col is not None and plate_col < len(row) else ""
        last = cell or last
        ids.append(last)
    first_id = next((x for x in ids if x), "")
    ids = [x or first_id for x in ids]
    footer = [C.text(r[0]) for r in sheet.rows[table.bottom:] if r and not C.is_blank(r[0])]
    meta, wavelengths, temperatures = _magellan_footer(footer)
    extent = table.extent()
    shape = R.plate_type_shape(meta.get("plate_type"), extent)
    value_points = [p for p, col in enumerate(table.point_rows) if col != plate_col]
    plates: dict[str, Plate] = {}
    for pid in dict.fromkeys(ids):
        rows = [k for k, x in enumerate(ids) if x == pid]
        plate = plates[pid] = Plate(pid or name, shape[0], shape[1], metadata=dict(meta))
        for n, p in enumerate(value_points):
            label = header[table.point_rows[p]] or f"Read {n + 1}"
            wavelength = wavelengths[n] if len(wavelengths) == len(value_points) else \
                (wavelengths[0] if len(wavelengths) == 1 else R.wavelength_in(label))
            R.distinct_wells([table.wells[k] for k in rows], table.where)
            cells = {table.wells[k]: table.cells[p][k] for k in rows}
            read = R.endpoint(label, cells, shape, sheet.decimal_comma, wavelength_nm=wavelength,
                              source=sheet.where(header_row))
            R.mark_unread(read, cells)
            plate.reads.append(read)
        if pid:
            plate.metadata["plate_id"] = pid
        if temperatures:
            plate.metadata["temperature_c"] = next(iter(temperatures.values()))
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})
    return list(plates.values())


def _magellan_footer(lines: list[str]) -> tuple[dict[str, object], list[float], dict[str, float]]:
    meta: dict[str, object] = {"vendor": "Tecan", "software": "Magellan"}
    wavelengths: list[float] = []
    temperatures: dict[str, float] = {}
    for k, line in enumerate(lines):
        m = re.match(r"Date of measurement: (\S+)/Time of measurement: (\S+)", line)
        if m:
            meta["datetime"] = C.parse_datetime(m.group(1), m.group(2)) or f"{m.group(1)} {m.group(2)}"
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
            number = C.number(line.split(":", 1)[1].split()[0])
            if number is not None:
                wavelengths.append(number)
        elif line.startswith("Measurement mode:"):
            meta["mode"] = line.split(":", 1)[1].strip()
        elif line.startswith("Plate definition file:"):
            meta["plate_type"] = line.split(":", 1)[1].strip()
        else:
            t = re.match(r"Meas\. temperature: (.+): (-?[\d.,]+) ?°C", line)
            if t:
                temperatures[t.group(1)] = float(t.group(2).replace(",", "."))
    return meta, wavelengths, temperatures


# --- files ------------------------------------------------------------------------------------

def _join_continued(plates: list[tuple[Plate, list[list[float]]]]) -> list[Plate]:
    """A kinetic run split over sheets (the next sheet's cycle numbers continue the last one's) is one plate."""
    out: list[tuple[Plate, list[list[float]]]] = []
    for plate, cycles in plates:
        if out:
            prev, prev_cycles = out[-1]
            labels = [r.label for r in prev.reads] == [r.label for r in plate.reads]
            continues = all(a and b and b[0] == a[-1] + 1 for a, b in zip(prev_cycles, cycles)) and prev_cycles
            if labels and continues and all(r.kind == "kinetic" for r in prev.reads + plate.reads) \
                    and (prev.rows, prev.columns) == (plate.rows, plate.columns):
                for a, b in zip(prev.reads, plate.reads):
                    a.values = np.concatenate([a.values, b.values], axis=2)
                    a.times_s = np.concatenate([a.times_s, b.times_s])
                out[-1] = (prev, [a + b for a, b in zip(prev_cycles, cycles)])
                prev.metadata["sheets_joined"] = prev.metadata.get("sheets_joined", [prev.name]) + [plate.name]
                continue
        out.append((plate, cycles))
    return [p for p, _ in out]


def read_tecan(source: Source) -> list[Plate]:
    found: list[tuple[Plate, list[list[float]]]] = []
    magellan: list[Plate] = []
    sheets = [s for s in source.sheets if s.rows]
    for sheet in sheets:
        name = source.path.stem if source.kind == "text" or len(sheets) == 1 else sheet.name
        try:
            plates = _magellan_plates(sheet, name)
            if plates:
                magellan.extend(plates)
                continue
            result = _icontrol_plate(sheet, name)
        except FormatMismatch as exc:
            raise FormatMismatch(exc.message, file=source.path, where=exc.where) from None
        if result is not None:
            found.append(result)
    plates = magellan + _join_continued(found)
    if not plates:
        raise FormatMismatch("no Tecan data block found (a 'Cycle Nr.' kinetic block, a '<>' plate grid or a "
                             "'Well positions' list)", file=source.path)
    return plates


@hookimpl
def register_readers(register):
    register(Reader(
        name="tecan",
        title="Tecan i-control / SparkControl / Magellan (xlsx, CSV, text)",
        sniff=sniff_tecan,
        read=read_tecan,
        extensions=(".xlsx", ".xls", ".csv", ".txt", ".asc"),
        instruments=("Infinite 200 PRO", "Infinite M Plex", "Spark", "Sunrise", "Ultra"),
    ))
