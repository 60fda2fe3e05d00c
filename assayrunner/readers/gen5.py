"""Agilent BioTek Gen5 exports (Synergy, Epoch, ELx808, HTX, Neo2, Cytation): text (tab .txt, comma .csv) or xlsx.

    Software Version	3.12.08
    Plate Number	Plate 1
    Reader Type:	Synergy H1
    Procedure Details
    ...
    Results
    	1	2	...	12
    A	0.056	...	0.055	260:977 [Test]     <- label in the column after the numbers
    	0.035	...	0.036	260:900 [Ref]      <- stacked lines of the same plate row
    600
    Time	T° 600	A1	A2	...	H12         <- kinetic: a line per read (or a matrix per read)

The same blocks appear in Gen5's own xlsx (one column to the right, times as Excel durations)
and in its CSV, which Gen5 writes without quoting: a title like 'GFP:485,530' spills into two
fields. The tables are found by the core (assayrunner.tables); this reader knows which are raw:
labels '<read>:<wavelength>' or '<wavelength>' (and '<read>' for luminescence) are measurements,
everything else (Blank ..., Corrected [...], Max V [...], concentrations, ratios) Gen5's data
reduction, kept as calculated reads. Several exports in one file or workbook give several plates.
"""

from __future__ import annotations

import re

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch
from ..plate import Plate, well_name
from ..registry import Reader
from ..source import Sheet, Source
from .long_table import well_list_reads

_HEADER = {
    "software version": "software_version", "experiment file path:": "experiment_file",
    "protocol file path:": "protocol_file", "plate number": "plate_number", "date": "date", "time": "time",
    "reader type:": "instrument", "reader serial number:": "serial_number", "reading type": "reading_type",
}
_SHARED = ("software_version", "experiment_file", "protocol_file")
_KEYS = {"Software Version", "Procedure Details", "Reader Type:", "Plate Number", "Reading Type",
         "Experiment File Path:", "Protocol File Path:", "Reader Serial Number:"}
_FIRST_FIELD = re.compile(r"[^\t,;]*")  # a line's text up to its first tab, comma or semicolon
_WL = r"\d{3,4}(?:/\d{1,3})?"
_RAW_LABEL = re.compile(rf"^(?:(?P<name>[^\[\]:]+):)?(?P<wl>{_WL}(?:\s*,\s*{_WL})?)"
                        r"(?: \[(?:Test|Ref|Parallel|Perpendicular)\])?(?:\[\d+\])?$")
#: Labels Gen5 gives the raw data of reads that carry no wavelength (luminescence, AlphaScreen).
_MODE_LABELS = re.compile(r"^(?:(?P<name>[^\[\]:]+):)?(?P<mode>Lum|Alpha|Luminescence|AlphaScreen|AlphaLISA)$")
_CALCULATED = re.compile(r"^(Blank|Corrected|Max V|Mean V|R-Squared|t at|Lagtime|Ratio|Delta|Sum|Diff|Count|Average|"
                         r"Std ?Dev|CV|%|\[|Conc|Pathlength|Normalized|Calc|Onset|Area|Slope|Min |Max |Mean )",
                         re.IGNORECASE)
_READ_NUMBER = re.compile(r"^(?P<base>.+?)\s+Read#\d+$")
_TIME_TITLE = re.compile(r"\bTime\s+\d+\s+\((\d+:\d\d:\d\d(?:\.\d+)?)\)")
_MODE = re.compile(r"^(Absorbance|Fluorescence|Luminescence|Time Resolved|Alpha\w*|Fluorescence Polarization)\b")
_STEP_TYPE = re.compile(r"(Endpoint|Kinetic|Spectrum|Scan|Area Scan|Well Scan)$")


def sniff_gen5(source: Source) -> float:
    if source.kind == "text":
        firsts = {_FIRST_FIELD.match(line)[0].strip() for line in source.head_lines(80)}
    elif source.kind == "workbook":
        firsts = {C.text(row[0]) for sheet in source.sheets[:2] for row in sheet.rows[:40] if row}
    else:
        return 0.0
    found = firsts & _KEYS
    if "Software Version" in found and len(found) >= 2:
        return 0.9
    return 0.6 if len(found) >= 3 else 0.0


def _key(cell: object) -> str:
    return C.text(cell).lower()


def _export_starts(sheet: Sheet) -> list[int]:
    """Rows where an export begins: 'Software Version' or 'Plate Number' after a plate number or data."""
    starts, seen = [0], False
    for n, row in enumerate(sheet.rows):
        key = C.text(row[0]) if row else ""
        if seen and key in ("Software Version", "Plate Number"):
            starts.append(n)
            seen = False
        seen = seen or key == "Plate Number" or (key == "Time" and len(row) > 2) or key in ("Results", "Layout")
    return starts


class _Export:
    """One export's metadata and reads, filled block by block."""

    def __init__(self, sheet: Sheet, lo: int, hi: int):
        self.sheet, self.lo, self.hi = sheet, lo, hi
        self.meta: dict[str, object] = {}
        self.read_names: dict[str, str] = {}  # read step name -> mode
        self.filters: dict[str, list[tuple[float, float]]] = {}
        self.temperatures: list[float] = []
        self.layout: dict[str, dict[str, str]] = {}
        self.pending: list[tuple[bool, object]] = []  # (raw?, shape -> Read), built once the shape is known
        self.series: dict[str, list[tuple[float | None, dict]]] = {}
        self.extent = (0, 0)
        self.data_end = lo

    def grow(self, extent: tuple[int, int]) -> None:
        self.extent = (max(self.extent[0], extent[0]), max(self.extent[1], extent[1]))


def _values_after(row: list) -> list[str]:
    return [C.text(c) for c in row[1:] if not C.is_blank(c)]


def _header_and_procedure(out: _Export) -> None:
    rows = out.sheet.rows
    i = out.lo
    while i < out.hi:
        row = rows[i]
        key = _key(row[0]) if row and isinstance(row[0], str) and row[0][:1].isalpha() else ""
        if not key:
            i += 1
            continue
        rest = _values_after(row)
        if key == "procedure details":
            i = _procedure(out, i + 1)
            continue
        if key in _HEADER and rest and _HEADER[key] not in out.meta:
            value = row[1] if len(row) > 1 and not C.is_blank(row[1]) else rest[0]
            out.meta[_HEADER[key]] = value if key in ("date", "time") else C.text(value)
        elif re.match(r"^gain\((.+)\)$", key) and rest:
            out.meta.setdefault("gain", {})[C.text(row[0])[5:-1]] = rest[0]
        elif key in ("actual temperature:", "min temperature:", "max temperature:") and rest:
            number = C.number(rest[0], out.sheet.decimal_comma)
            if number is not None:
                if key == "actual temperature:":
                    out.temperatures.append(number)
                else:
                    out.meta["temperature_" + key.split()[0] + "_c"] = number
        i += 1


def _procedure(out: _Export, i: int) -> int:
    """'Procedure Details' lines up to the next blank line: plate type, read steps, filters, kinetic settings."""
    rows = out.sheet.rows
    while i < out.hi and C.row_blank(rows[i]):
        i += 1
    lines, read, mode = [], None, None
    while i < out.hi and not C.row_blank(rows[i]):
        texts = [C.text(c) for c in rows[i] if not C.is_blank(c)]
        line = " ".join(texts)
        lines.append(line)
        first = texts[0]
        if first == "Plate Type" and len(texts) > 1:
            out.meta["plate_type"] = texts[1]
        elif first == "Set Temperature" and len(texts) > 1:
            out.meta["set_temperature"] = ", ".join(texts[1:])
        elif first == "Read" and len(texts) > 1:
            if _STEP_TYPE.search(texts[1]):
                mode = (_MODE.match(texts[1]) or [None, None])[1]
                read = None
            else:
                read = texts[1]
                out.read_names[read] = ""
        elif first == "Start Kinetic" and len(texts) > 1:
            rest = ", ".join(texts[1:])
            interval = re.search(r"Interval (\d+:\d\d(?::\d\d)?)", rest)
            planned = re.search(r"(?<!\d)(\d{1,7}) Reads", rest)  # one try per digit run: linear
            if interval:
                out.meta["kinetic_interval_s"] = C.duration(interval[1])
            if planned:
                out.meta["kinetic_reads_planned"] = int(planned[1])
        m = _MODE.match(texts[-1])
        if m and _STEP_TYPE.search(texts[-1]):
            mode = m[1]
            out.meta.setdefault("read_mode", mode)
            if read is not None:
                out.read_names[read] = mode
        pair = re.search(r"Excitation:\s*(\d{3,4})(?:/\d+)?,?\s+Emission:\s*(\d{3,4})", line)
        if pair and read is not None:
            out.filters.setdefault(read, []).append((float(pair[1]), float(pair[2])))
        i += 1
    out.meta["procedure"] = lines
    return i


def _title(sheet: Sheet, row: int, column: int) -> str:
    """The block title above a table: the nearest text line that is not a 'Key: value' line."""
    for k in range(row - 1, max(-1, row - 4), -1):
        texts = [C.text(c) for c in sheet.rows[k] if not C.is_blank(c)]
        if texts:
            return "" if texts[0].endswith(":") else sheet.line_text(k)
    return ""


def _is_raw(label: str, out: _Export) -> bool:
    if _CALCULATED.match(label):
        return False
    m = _RAW_LABEL.match(label) or _MODE_LABELS.match(label)
    if m:
        name = (m["name"] or "").strip()
        return not (name and out.read_names and name not in out.read_names)
    base = label.split(":")[0].strip()
    return base in out.read_names and out.read_names.get(base, "").startswith("Lum")


def _read_fields(label: str, out: _Export, raw: bool) -> dict:
    """wavelength_nm, excitation_nm and mode of a read from its label and the procedure."""
    name = label.split(":")[0].strip() if ":" in label else ""
    mode = out.read_names.get(name) or None
    m = _RAW_LABEL.match(label) if raw else None
    if m:
        wavelengths = [float(w.split("/")[0]) for w in re.split(r"\s*,\s*", m["wl"])]
        if len(wavelengths) == 2:
            mode = mode or "Fluorescence"
            return {"wavelength_nm": wavelengths[1], "excitation_nm": wavelengths[0], "mode": mode.lower()}
        return {"wavelength_nm": wavelengths[0], "mode": (mode or "Absorbance").lower()}
    if raw:
        m = _MODE_LABELS.match(label)
        guessed = ("luminescence" if m["mode"].startswith("Lum") else "alphascreen") if m else None
        return {"mode": (mode or "").lower() or guessed}
    found = re.findall(r"[:\[](\d{3,4})(?![\d/])", label)
    return {"wavelength_nm": float(found[-1]) if found else None}


def _cells_for(cells: dict, raw: bool) -> dict:
    """Calculated tables hold durations ('t at Max V' 10:10:22): as seconds."""
    if raw:
        return cells
    return {p: s if isinstance(c, str) and ":" in c and (s := C.duration(c)) is not None else c
            for p, c in cells.items()}


def _grids(out: _Export) -> None:
    sheet = out.sheet
    for grid in T.find_grids(sheet, out.lo, out.hi):
        out.data_end = max(out.data_end, grid.bottom)
        title = _title(sheet, grid.top, grid.left)
        if title == "Layout":
            for name, cells in grid.layers.items():
                out.layout[name or "Well ID"] = {well_name(*p): C.text(c) for p, c in cells.items()}
            continue
        out.grow(grid.extent)
        time = _TIME_TITLE.search(title) or _TIME_TITLE.search(T.title_above(sheet, grid.top - 1, 0, 2))
        for name, cells in grid.layers.items():
            label = name if name and not name.startswith("#") else (title if title not in ("Results", "") else "Results")
            if (m := _READ_NUMBER.match(label)) and time:
                out.series.setdefault(m["base"], []).append((C.duration(time[1]), cells))
                continue
            raw = _is_raw(label, out)
            out.pending.append((raw, lambda shape, label=label, cells=cells, raw=raw, grid=grid: R.mark_unread(
                R.endpoint(label, _cells_for(cells, raw), shape, sheet.decimal_comma,
                           "endpoint" if raw else "calculated", source=grid.where, **_read_fields(label, out, raw)),
                grid.wells)))


def _time_tables(out: _Export) -> None:
    sheet = out.sheet
    for table in T.find_wells_across(sheet, out.lo, out.hi, min_wells=1):
        out.data_end = max(out.data_end, table.bottom)
        first = next((n for n in table.lead_names if n), "")
        if first == "Time":
            _kinetic_table(out, table)
        elif first in ("Well", "Wells"):
            _results_table(out, table)
        elif first.startswith("Wavelength"):
            out.meta.setdefault("not_read", []).append(f"spectrum scan at {table.where}")


def _well_lists(out: _Export) -> None:
    """Gen5's well-per-row tables ('Well, Well ID, Conc/Dil, 450' or a statistics table): a read per column."""
    for table in T.find_wells_down(out.sheet, out.lo, out.hi):
        if not table.lead_names or not table.cells:
            continue
        out.data_end = max(out.data_end, table.bottom)
        out.grow(table.extent())

        def build(shape, table=table, raw=True):
            reads = []
            for read in well_list_reads(table, shape):
                is_raw = _is_raw(read.label, out)
                if is_raw != raw:
                    continue
                read.kind = read.kind if read.kind == "kinetic" else ("endpoint" if is_raw else "calculated")
                fields = _read_fields(read.label, out, is_raw)
                for key, value in fields.items():
                    if value is not None:
                        setattr(read, key, value)
                reads.append(read)
            return reads

        out.pending.append((True, lambda shape, build=build: build(shape, raw=True)))
        out.pending.append((False, lambda shape, build=build: build(shape, raw=False)))


def _kinetic_table(out: _Export, table: T.WellTable) -> None:
    sheet = out.sheet
    names = table.lead_names
    k_time = names.index("Time")
    temperature = next((k for k, n in enumerate(names) if n.startswith("T") and k != k_time and n != "Time"), None)
    title = _title(sheet, table.top, 0)
    label = title or (names[temperature].split(" ", 1)[-1] if temperature is not None else "Kinetic")
    times = R.time_axis([line[k_time] if k_time < len(line) else None for line in table.lead])
    if temperature is not None:
        for line, cells in zip(table.lead, table.cells):
            value = C.number(line[temperature], sheet.decimal_comma) if temperature < len(line) else None
            if value is not None and not C.row_blank(cells):
                out.temperatures.append(value)
    out.grow(table.extent())
    raw = _is_raw(label, out)
    if not raw:
        out.meta.setdefault("calculated_kinetic_not_read", []).append(label)
        return
    out.pending.append((True, lambda shape: R.mark_unread(R.kinetic(
        label, table.wells, table.cells, times, shape, sheet.decimal_comma, source=table.where,
        **_read_fields(label, out, True)), table.wells)))


def _results_table(out: _Export, table: T.WellTable) -> None:
    """Gen5 CSV 'Results': 'Well, A1, A2, ...' then a line per calculated value ('Max V [OD:600], ...')."""
    out.grow(table.extent())
    for line, cells in zip(table.lead, table.cells):
        label = next((C.text(c) for c in line if not C.is_blank(c)), "Results")
        raw = _is_raw(label, out)
        out.pending.append((raw, lambda shape, label=label, cells=cells, raw=raw: R.mark_unread(R.endpoint(
            label, _cells_for(dict(zip(R.distinct_wells(table.wells, table.where), cells)), raw), shape, out.sheet.decimal_comma,
            "endpoint" if raw else "calculated", source=out.sheet.where(table.top), **_read_fields(label, out, raw)),
            table.wells)))


def _matrix_series(out: _Export) -> None:
    """Per-time-point matrices ('OD:600 - Time 1 (0:09:10)' ... 'OD:600 Read#1') joined into kinetic reads."""
    for label, frames in out.series.items():
        frames = [(t, cells) for t, cells in frames if cells]
        if not frames:
            continue
        wells = sorted({p for _, cells in frames for p in cells})
        points = [[cells.get(w) for w in wells] for _, cells in frames]
        out.pending.insert(0, (True, lambda shape, label=label, wells=wells, points=points, frames=frames:
                               R.mark_unread(R.kinetic(label, wells, points, [t for t, _ in frames], shape,
                                                       out.sheet.decimal_comma, **_read_fields(label, out, True)),
                                             wells)))


def _finish(out: _Export, shape: tuple[int, int], name: str) -> Plate:
    built = [(raw, build(shape)) for raw, build in out.pending]
    reads = [r for raw in (True, False) for is_raw, made in built if is_raw == raw
             for r in (made if isinstance(made, list) else [made])]
    meta: dict[str, object] = {"vendor": "Agilent BioTek", "software": "Gen5"}
    meta.update({k: v for k, v in out.meta.items() if v not in ("", None, [], {})})
    if "date" in meta and not isinstance(meta["date"], str):  # a workbook date cell
        meta["date"] = C.parse_datetime(meta["date"])
    if "time" in meta and not isinstance(meta["time"], str):
        meta["time"] = meta["time"].strftime("%H:%M:%S") if hasattr(meta["time"], "hour") else C.text(meta["time"])
    when = C.parse_datetime(meta.get("date", ""), meta.get("time", ""))
    if when:
        meta["datetime"] = when
    if isinstance(meta.get("date"), str) and "T" in meta["date"]:
        meta["date"] = meta["date"][:10]
    if out.temperatures:
        meta["temperature_c"] = out.temperatures[0]
        if any(r.kind == "kinetic" for r in reads):
            meta.setdefault("temperature_min_c", min(out.temperatures))
            meta.setdefault("temperature_max_c", max(out.temperatures))
    meta["wavelengths_nm"] = list(dict.fromkeys(r.wavelength_nm for r in reads if r.kind != "calculated"
                                                and r.wavelength_nm))
    if out.layout:
        meta["layout"] = out.layout
    return Plate(name, shape[0], shape[1], reads, meta)


def _layout_block(out: _Export) -> None:
    """The 'Layout' block: a header of column numbers, then per plate row a line per layer ('Well ID',
    'Conc/Dil'), the row letter on the first line only, the layer's name after the last column."""
    rows = out.sheet.rows
    start = next((i for i in range(out.lo, out.hi) if any(C.text(c) == "Layout" for c in rows[i][:2])), None)
    if start is None:
        return
    header = next((i for i in range(start + 1, min(start + 4, out.hi)) if not C.row_blank(rows[i])), None)
    texts = [C.text(c) for c in rows[header]] if header is not None else []
    if "1" not in texts:
        return
    first = texts.index("1")
    columns = [k for k in range(first, len(texts)) if texts[k] == str(k - first + 1)]
    layout: dict[str, dict[str, str]] = {}
    row = -1
    for line in rows[header + 1:out.hi]:
        cells = [C.text(c) for c in line]
        if C.row_blank(line) or len(cells) <= columns[-1]:
            break
        letter = cells[first - 1] if first else ""
        if letter:
            if not re.fullmatch(r"[A-Z]{1,2}", letter):
                break
            row += 1
        name = next((t for t in cells[columns[-1] + 1:] if t), "Well ID")
        for k in columns:
            if cells[k] and row >= 0:
                layout.setdefault(name, {})[well_name(row, k - first)] = cells[k]
    if layout:
        out.layout = layout


def _curve_fits(out: _Export) -> None:
    rows = out.sheet.rows
    for i in range(out.lo, out.hi):
        if rows[i] and C.text(rows[i][0]).endswith("Curve Fitting Results"):  # 'StdCurve Fitting Results' too
            j = i + 1
            while j < out.hi and C.row_blank(rows[j]):
                j += 1
            names = [C.text(c) for c in rows[j]] if j < out.hi else []
            table, j = [], j + 1
            while j < out.hi and not C.row_blank(rows[j]):
                table.append({n: C.text(c) for n, c in zip(names, rows[j]) if n and not C.is_blank(c)})
                j += 1
            out.meta["curve_fits"] = table


def _sheet_plates(source: Source, sheet: Sheet, shared: dict) -> list[Plate]:
    starts = _export_starts(sheet)
    plates = []
    for lo, hi in zip(starts, starts[1:] + [len(sheet.rows)]):
        out = _Export(sheet, lo, hi)
        _header_and_procedure(out)
        _grids(out)
        _time_tables(out)
        _well_lists(out)
        _matrix_series(out)
        _curve_fits(out)
        _layout_block(out)
        for key in _SHARED:
            out.meta.setdefault(key, shared.get(key))
            shared[key] = out.meta[key]
        if not out.pending:
            what = "; ".join(out.meta.get("not_read", [])) or "a plate matrix or a 'Time' table"
            raise FormatMismatch(f"no data block ({what}) in this Gen5 export: export the plate again with "
                                 "its data", file=source.path, where=sheet.where(lo))
        name = source.path.stem if source.kind == "text" else sheet.name
        plates.append(_finish(out, R.plate_type_shape(out.meta.get("plate_type"), out.extent), name))
    return plates


def read_gen5(source: Source) -> list[Plate]:
    plates: list[Plate] = []
    shared: dict = {}
    for sheet in source.sheets:
        if not sheet.rows:
            continue
        plates.extend(_sheet_plates(source, sheet, shared))
    if not plates:
        raise FormatMismatch("no Gen5 export in this workbook", file=source.path)
    if len(plates) > 1 and source.kind == "text":
        for k, plate in enumerate(plates, start=1):
            plate.name = f"{plate.name} #{k}"
    return plates


@hookimpl
def register_readers(register):
    register(Reader(
        name="gen5",
        title="Agilent BioTek Gen5 export (text, CSV, xlsx: Synergy, Epoch, ELx808, Neo2, Cytation)",
        sniff=sniff_gen5,
        read=read_gen5,
        extensions=(".txt", ".csv", ".tsv", ".xlsx", ".xls"),
        instruments=("BioTek Synergy H1/HTX/Neo2", "BioTek Epoch", "BioTek ELx808", "BioTek Cytation",
                     "Gen5 software"),
    ))
