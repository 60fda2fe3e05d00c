"""BMG LABTECH MARS exports (PHERAstar, CLARIOstar, FLUOstar/POLARstar/LUMIstar Omega, SPECTROstar): CSV, text, xlsx.

    User: USER,Path: C:\\Program Files (x86)\\BMG\\PHERAstar\\User\\Data,Test run no.: 3
    Test name: 472 ABS 384 QC,Date: 03/03/2016,Time: 16:54:03
    ID1: 472-0016
    Absorbance
    Raw Data (484)
    ,1,2,3,...,24
    A,0.031,0.032,...

MARS writes the same data several ways, all read here:

* microplate view: a grid per read, labelled above ('Raw Data (485/520)': excitation/emission);
* table view, wells as rows: 'Well, Content, Raw Data (600), Raw Data (600), ...' with a 'Time' line
  (kinetic: one column per cycle), or 'Well Row, Well Col, Content, <reads>';
* table view, wells across: a 'Well' line (A01 ...), 'Content' and 'Group' lines, then a line per
  cycle named by its read ('Raw Data (535 A)') with the cycle's time;
* headerless ASCII dumps (Omega .dat): bare 8 x 12 blocks, one per cycle, '-' for unread wells.

Only 'Raw Data ...' tables are measurements; blank corrected, averaged, ratio tables are calculated
reads. A time heading without a unit ('Time') is taken as minutes, MARS's table default; 'Time [s]',
'[min]', '[h]' and '0 h 10 min' texts say their own unit. Semicolon exports use decimal commas.
"""

from __future__ import annotations

import re

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch
from ..plate import Plate, find_well
from ..registry import Reader
from ..source import Sheet, Source

_KEY = re.compile(r"^([A-Za-z][\w .#/()-]{0,40}?)\s*:\s*(.*)$")
_FILTER = re.compile(r"\(\s*(\d+(?:[.,]\d+)?)(?:-\d+)?(?:\s*[/ ]\s*(\d+(?:[.,]\d+)?))?[^)]*\)")
_MODES = ("absorbance", "fluorescence", "luminescence", "fluorescence polarization", "time-resolved fluorescence",
          "alphascreen", "nephelometry", "fluorescence intensity")
_INSTRUMENTS = ("PHERAstar", "CLARIOstar", "FLUOstar", "POLARstar", "SPECTROstar", "NEPHELOstar", "LUMIstar",
                "VANTAstar", "NOVOstar", "Omega")
_META_KEYS = {"user": "user", "path": "path", "test name": "test_name", "test id": "test_id",
              "test run no.": "test_run", "date": "date", "time": "time", "id1": "id1", "id2": "id2", "id3": "id3"}
#: Minutes: what MARS table exports mean by a time heading without a unit.
UNITLESS_TIME_S = 60.0
_STAMP = re.compile(r"^(?P<base>.+?)(?:\s+\d+)?\s+-\s+(?P<time>\d+\s*(?:h|min|s)\b.*)$")
_SNIFF_KEY = re.compile(r"^(User|Test name|Test ID|ID1)\s*:", re.MULTILINE | re.IGNORECASE)


def _sheet_for_sniff(source: Source) -> list[str]:
    if source.kind == "text":
        return source.head_lines(60)
    if source.kind == "workbook":
        return [" ".join(C.text(c) for c in row) for row in source.sheets[0].rows[:60]] if source.sheet_names else []
    return []


def sniff_bmg(source: Source) -> float:
    lines = _sheet_for_sniff(source)
    text = "\n".join(lines)
    if ("Raw Data" in text or "\\BMG\\" in text) and _SNIFF_KEY.search(text):
        return 0.9
    if source.kind == "text" and source.path.suffix.lower() == ".dat" and lines and _is_dump(source):
        return 0.6
    return 0.0


def _is_dump(source: Source) -> bool:
    """An Omega ASCII dump: nothing but comma-separated plate-sized blocks of numbers and '-'."""
    sheet = source.sheets[0]
    filled = [row for row in sheet.rows if not C.row_blank(row)]
    return bool(filled) and all(C.is_value(c) for row in filled[:200] for c in row if not C.is_blank(c))


def _wavelengths(label: str) -> tuple[float | None, float | None]:
    """'Raw Data (450)' -> (450, None); 'Raw Data (485/520)' -> (520, 485); 'Raw Data (No filter)' -> (None, None)."""
    m = _FILTER.search(label[:R.LABEL_CHARS])
    if not m:
        return None, None
    first = float(m.group(1).replace(",", "."))
    second = float(m.group(2).replace(",", ".")) if m.group(2) else None
    if second is not None and R.is_wavelength(second):
        return second, first  # 'Raw Data (485/520)': excitation / emission
    return (first, None) if R.is_wavelength(first) else (None, None)  # '(450)', '(450 1)': a read number after it


def _kind(label: str) -> str:
    return "endpoint" if label.strip().lower().startswith("raw data") else "calculated"


def _fields(label: str, meta: dict) -> dict:
    wavelength, excitation = _wavelengths(label)
    mode = str(meta.get("mode", "")).split(" (")[0].lower() or None
    return {"wavelength_nm": wavelength, "excitation_nm": excitation, "mode": mode}


def _metadata(sheet: Sheet, stop: int) -> dict[str, object]:
    meta: dict[str, object] = {"vendor": "BMG LABTECH", "software": "MARS"}
    for row in sheet.rows[:stop]:
        filled = [C.text(c) for c in row if not C.is_blank(c)]
        for cell in filled:
            m = _KEY.match(cell)
            if m and m.group(1).lower() in _META_KEYS:
                meta.setdefault(_META_KEYS[m.group(1).lower()], m.group(2).strip())
        if len(filled) == 1 and not _KEY.match(filled[0]) and filled[0].lower().split(" (")[0] in _MODES:
            meta["mode"] = filled[0]
    where = str(meta.get("path", ""))
    for instrument in _INSTRUMENTS:
        if instrument.lower() in where.lower():
            meta["instrument"] = instrument
            break
    when = C.parse_datetime(str(meta.get("date", "")), str(meta.get("time", "")))
    if when:
        meta["datetime"] = when
    return meta


def _time_unit(heading: str) -> float:
    return C.header_unit(heading) or UNITLESS_TIME_S


_CYCLE = re.compile(r"^(?P<base>.*?\S)\s*(?:\((?P<inner>[^)]*?)\s+(?P<n1>\d+)\)|\s(?P<n2>\d+))$")


def _cycle(label: str) -> tuple[str, int] | None:
    """'Raw Data (600) 3' or 'Raw Data (600 3)' -> ('Raw Data (600)', 3): a microplate view's cycle number."""
    m = _CYCLE.match(label[:R.LABEL_CHARS])
    if not m:
        return None
    if m["n1"]:
        return f"{m['base']} ({m['inner']})", int(m["n1"])
    return m["base"], int(m["n2"])


def _grid_reads(sheet: Sheet, grids: list[T.Grid], meta: dict):
    """A read per grid; grids named alike but for a cycle number (1, 2, 3 ...) make one kinetic read."""
    labelled = []
    for k, grid in enumerate(grids):
        cells = grid.layers.get("") or next(iter(grid.layers.values()))
        labelled.append((_grid_title(sheet, grid) or f"Read {k + 1}", grid, cells))
    series: dict[str, list] = {}
    for label, grid, cells in labelled:
        found = _cycle(label)
        if found:
            series.setdefault(found[0], []).append((found[1], label, grid, cells))
    kinetic = {}
    for base, items in series.items():
        items.sort(key=lambda item: item[0])
        numbers = [n for n, *_ in items]
        if len(items) > 1 and numbers == list(range(numbers[0], numbers[0] + len(items))):  # cycles 1, 2, 3 ...
            kinetic[base] = items
    done = {id(item[2]) for items in kinetic.values() for item in items}
    for base, items in kinetic.items():
        wells = sorted({p for *_, cells in items for p in cells})
        points = [[cells.get(w) for w in wells] for *_, cells in items]
        times = [_grid_time(sheet, grid) for _, _, grid, _ in items]
        extent = (max(g.extent[0] for _, _, g, _ in items), max(g.extent[1] for _, _, g, _ in items))
        yield extent, (lambda shape, base=base, wells=wells, points=points, times=times, where=items[0][2].where:
                       R.mark_unread(R.kinetic(base, wells, points, times, shape, sheet.decimal_comma,
                                               source=where, **_fields(base, meta)), wells))
    for label, grid, cells in labelled:
        if id(grid) in done:
            continue
        yield grid.extent, (lambda shape, label=label, cells=cells, grid=grid:
                            R.mark_unread(R.endpoint(label, cells, shape, sheet.decimal_comma, _kind(label),
                                                     source=grid.where, **_fields(label, meta)), grid.wells))


def _grid_title(sheet: Sheet, grid: T.Grid) -> str:
    """The line naming a grid ('Raw Data (450)'), above any 'Time [s]: ...' line of a cycle."""
    for k in range(grid.top - 1, max(-1, grid.top - 4), -1):
        filled = [C.text(c) for c in sheet.rows[k] if not C.is_blank(c)]
        if len(filled) == 1 and not filled[0].lower().startswith(("time", "cycle")):
            return " ".join(filled[0].split())
        if len(filled) > 1:
            return ""
    return ""


def _grid_time(sheet: Sheet, grid: T.Grid) -> float | None:
    """A 'Time [s]: 30' (or 'Time: 0 h 30 s') line just above a cycle's grid, in seconds."""
    for k in range(grid.top - 1, max(-1, grid.top - 4), -1):
        for cell in sheet.rows[k]:
            text = C.text(cell)
            if text.lower().startswith("time"):
                head, _, value = text.partition(":")
                seconds = C.duration(value.strip(), C.header_unit(head) or UNITLESS_TIME_S)
                if seconds is not None:
                    return seconds
    return None


def _wells_down_reads(sheet: Sheet, table: T.WellTable, meta: dict):
    """Table view with wells as rows: a read per value column, or per read name across a 'Time' line."""
    names = [next((C.text(c) for c in reversed(lead) if not C.is_blank(c) and C.number(c) is None), "")
             for lead in table.lead]
    time_line = next((k for k, n in enumerate(table.lead_names) if n.lower().startswith("time")), None)
    groups: dict[str, list[int]] = {}
    stamped: dict[int, float] = {}  # 'Raw Data (600) 2 - 0 h 10 min': the cycle's time in its own header
    for p, name in enumerate(names):
        m = _STAMP.match(name[:R.LABEL_CHARS])
        if m and (seconds := C.duration(m["time"])) is not None:
            name, stamped[p] = m["base"], seconds
        if name.lower().startswith(("raw data", "blank", "average", "ratio", "corrected")) or time_line is not None:
            groups.setdefault(name or "Raw Data", []).append(p)
        elif name:
            groups.setdefault(name, []).append(p)
    for label, points in groups.items():
        kinetic = (time_line is not None or all(p in stamped for p in points)) and len(points) > 1
        if kinetic and all(p in stamped for p in points):
            times = [stamped[p] for p in points]
        elif kinetic:
            times = R.time_axis([table.lead[p][time_line] for p in points], _time_unit(table.lead_names[time_line]))
        else:
            times = []
        yield table.extent(), _builder(table, label, points, times, kinetic, meta)


def _builder(table: T.WellTable, label: str, points: list[int], times: list, kinetic: bool, meta: dict):
    """shape -> the read of a well table's points: kinetic over them, or the first as an endpoint read."""
    dc, fields = table.sheet.decimal_comma, _fields(label, meta)
    if kinetic:
        return lambda shape: R.mark_unread(R.kinetic(label, table.wells, [table.cells[p] for p in points], times,
                                                     shape, dc, source=table.where, **fields), table.wells)
    return lambda shape: R.mark_unread(R.endpoint(label, dict(zip(R.distinct_wells(table.wells, table.where), table.cells[points[0]])), shape, dc,
                                                  _kind(label), source=table.where, **fields), table.wells)


def _row_col_table(sheet: Sheet, meta: dict):
    """'Well Row, Well Col, Content, <reads>': the well split over two columns."""
    for i, row in enumerate(sheet.rows):
        if not sheet.lettered[i] or "well" not in sheet.line_text(i).lower():
            continue
        lower = [" ".join(C.text(c).lower().split()) for c in row]  # 'Well\nRow' in a workbook cell
        if "well row" not in lower or "well col" not in lower:
            continue
        r_col, c_col = lower.index("well row"), lower.index("well col")
        skip = {r_col, c_col, *(k for k, n in enumerate(lower) if n in ("content", "sample", "sample id", "group"))}
        wells, lines, j = [], [], i + 1
        while j < len(sheet.rows) and (w := find_well(
                C.text(_at(sheet.rows[j], r_col)) + C.text(_at(sheet.rows[j], c_col)))) is not None:
            wells.append(w)
            lines.append(sheet.rows[j])
            j += 1
        for k, name in enumerate(lower):
            if k in skip or not name or not wells:
                continue
            label = C.text(row[k])
            cells = dict(zip(wells, (_at(line, k) for line in lines)))
            extent = (max(r for r, _ in wells) + 1, max(c for _, c in wells) + 1)
            yield extent, (lambda shape, label=label, cells=cells: R.mark_unread(R.endpoint(
                label, cells, shape, sheet.decimal_comma, _kind(label), source=sheet.where(i),
                **_fields(label, meta)), cells))


def _at(row: list, k: int) -> object:
    return row[k] if k < len(row) else None


def _wells_across_reads(sheet: Sheet, table: T.WellTable, meta: dict):
    """Wells across: a line per cycle, named by its read in the first column, its time in the 'Time' column."""
    time_k, unit = None, UNITLESS_TIME_S
    for r in range(table.top, table.point_rows[0] if table.point_rows else table.top):
        for k, cell in enumerate(sheet.rows[r][:4]):
            if C.text(cell).lower().startswith("time"):
                time_k, unit = k, _time_unit(C.text(cell))
    by_label: dict[str, list[int]] = {}
    for p, lead in enumerate(table.lead):
        label = " ".join(C.text(lead[0]).split()) if lead else ""
        by_label.setdefault(label or "Raw Data", []).append(p)
    for label, points in by_label.items():
        times = R.time_axis([table.lead[p][time_k] if time_k is not None and time_k < len(table.lead[p]) else None
                             for p in points], unit)
        yield table.extent(), _builder(table, label, points, times, len(points) > 1 or time_k is not None, meta)


def _dump_plate(sheet: Sheet, name: str) -> Plate | None:
    blocks = T.find_blocks(sheet)
    if not blocks:
        return None
    shape, wells, points, blocks = T.block_series(blocks)
    numbers = [v for line in points for c in line if (v := C.number(c)) is not None]
    counts = bool(numbers) and all(float(v).is_integer() for v in numbers)
    label = "fluorescence" if counts else "absorbance"
    read = R.kinetic(label, wells, points, [None] * len(points), shape, sheet.decimal_comma,
                     mode=label, source=sheet.where(blocks[0].top))
    meta = {"vendor": "BMG LABTECH", "export": "headerless ASCII plate dump",
            "note": f"the file names no read, no wavelength and no times: {len(blocks)} blocks are taken as cycles "
                    f"in file order, and '{label}' is inferred from {'whole counts' if counts else 'decimal values'}"}
    return Plate(name, shape[0], shape[1], [read], meta)


def _sheet_plate(source: Source, sheet: Sheet, name: str) -> Plate | None:
    grids = T.grid_chunks(T.find_grids(sheet))
    down = [t for t in T.find_wells_down(sheet) if t.cells]
    across = T.find_wells_across(sheet)
    tops = [g.top for g in grids] + [t.top - len(t.lead_names) for t in down] + [t.top for t in across]
    meta = _metadata(sheet, min(tops, default=len(sheet.rows)))
    found = list(_grid_reads(sheet, grids, meta))
    for table in down:
        found += list(_wells_down_reads(sheet, table, meta))
    for table in across:
        found += list(_wells_across_reads(sheet, table, meta))
    found += list(_row_col_table(sheet, meta))
    if not found:
        return _dump_plate(sheet, name) if source.path.suffix.lower() == ".dat" or _is_dump(source) else None
    extent = (max(e[0] for e, _ in found), max(e[1] for e, _ in found))
    shape = R.plate_shape(extent)
    reads = [build(shape) for _, build in found]
    reads.sort(key=lambda r: r.kind == "calculated")
    R.unique_labels(reads)
    meta["wavelengths_nm"] = sorted({r.wavelength_nm for r in reads if r.wavelength_nm is not None})
    if any(r.kind == "kinetic" for r in reads):
        meta.setdefault("time_unit_note", "a 'Time' heading without a unit is read as minutes (MARS table default)")
    return Plate(str(meta.get("id1") or meta.get("id3") or name), shape[0], shape[1], reads, meta)


def read_bmg(source: Source) -> list[Plate]:
    plates, sheets = [], []
    for sheet in source.sheets:
        if not sheet.rows:
            continue
        name = source.path.stem if source.kind == "text" else sheet.name
        plate = _sheet_plate(source, sheet, name)
        if plate is not None:
            plates.append(plate)
            sheets.append(sheet)
    if not plates:
        raise FormatMismatch("no BMG plate grid found (a 'Raw Data (...)' label, a header row 1..12 and rows "
                             "A, B, ...), no table of wells and no plate dump", file=source.path)
    if len(plates) > 1 and len({p.name for p in plates}) < len(plates):
        for plate, sheet in zip(plates, sheets):
            plate.name = f"{plate.name} ({sheet.name})"
    return plates


@hookimpl
def register_readers(register):
    register(Reader(
        name="bmg",
        title="BMG LABTECH MARS export (CSV, text, xlsx; microplate and table views; Omega ASCII dumps)",
        sniff=sniff_bmg,
        read=read_bmg,
        extensions=(".csv", ".txt", ".xlsx", ".dat"),
        instruments=("PHERAstar", "CLARIOstar", "FLUOstar Omega", "POLARstar Omega", "LUMIstar Omega",
                     "SPECTROstar"),
    ))
