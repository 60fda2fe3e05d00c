"""Generic well lists: a column of well names, a line per well (or per well and time point).

    Well,Value,Read                Well,Content,Raw Data (600),Raw Data (600),...
    A1,0.051,540 nm                ,Time,0,10,...
    A1,0.047,405 nm                A01,water,0.236,0.239,...

A value column is a read named by its header; a 'Read' (or 'Label') column splits the lines into
reads; a 'Time' column, or a well listed again, makes a read kinetic (each well's own times are
kept); a 'Time' line above wide columns makes those columns one kinetic read. A constant
'Wavelength' column names the read's wavelength. Vendor readers reuse `well_list_reads`.
"""

from __future__ import annotations

import re

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch, UserError
from ..plate import Plate, well_name
from ..registry import Reader
from ..source import Sheet, Source
from .grid import is_calculated, sheet_metadata

_TIME = re.compile(r"^(time|zeit|measurement time|read time|kinetic time)\b", re.IGNORECASE)
_READ = re.compile(r"^(read|label|reading|wavelength|filter|channel|measurement)\b", re.IGNORECASE)
_SKIP = re.compile(r"^(plate|cycle|cycle nr\.?|repeat|index|no\.?|#|row|col|column|kinetic index)\b", re.IGNORECASE)


def _column_names(table: T.WellTable) -> list[str]:
    """Each point column's name: the nearest header line's text at that column."""
    names = []
    for lead in table.lead:
        name = next((C.text(c) for c in reversed(lead) if not C.is_blank(c) and C.number(c) is None), "") or \
            next((C.text(c) for c in lead if not C.is_blank(c)), "")  # a header '450' names its column too
        names.append(name)
    return names


def well_list_reads(table: T.WellTable, shape: tuple[int, int], title: str = "", only: list[int] | None = None) -> list:
    """The reads of a wells-down table (see the module docstring); `only`: these of its lines (one plate's)."""
    dc = table.sheet.decimal_comma
    names = _column_names(table)
    time_line = next((k for k, n in enumerate(table.lead_names) if _TIME.match(n)), None)
    read_notes = {n: v for n, v in table.notes.items() if _READ.match(n)}
    time_cols = [p for p, n in enumerate(names) if _TIME.match(n)]
    wavelength_cols = [p for p, n in enumerate(names) if n.lower().startswith("wavelength")]
    skip = set(time_cols) | set(wavelength_cols) | {p for p, n in enumerate(names) if _SKIP.match(n)}
    value_cols = [p for p in range(len(names)) if p not in skip]
    repeated = len(set(table.wells)) < len(table.wells)
    if time_line is not None and not repeated:
        return _wide_kinetic(table, names, value_cols, time_line, shape, title)
    groups: dict[str, list[int]] = {}
    labels = next(iter(read_notes.values()), None)
    for k in (range(len(table.wells)) if only is None else only):
        key = C.text(labels[k]) if labels is not None else ""
        groups.setdefault(key, []).append(k)
    reads = []
    for key, rows in groups.items():
        for p in value_cols:
            label = key or names[p] or title or "Value"
            if key and len(value_cols) > 1:
                label = f"{key} {names[p]}".strip()
            kind = "calculated" if is_calculated(names[p]) else "endpoint"
            excitation, emission = R.filter_pair(label)
            wavelength = _wavelength(table, wavelength_cols, rows) or emission or R.wavelength_in(label) or (
                R.wavelength_in(title) if kind == "endpoint" else None)
            wells = [table.wells[k] for k in rows]
            if not time_cols:
                _check_repeats(table, rows, label)
            if len(set(wells)) < len(wells) or time_cols:
                read = _long_kinetic(table, rows, p, _time_for(table, p, time_cols), label, shape, wavelength,
                                     names)
            else:
                cells = {table.wells[k]: table.cells[p][k] for k in rows}
                read = R.endpoint(label, cells, shape, dc, kind, wavelength_nm=wavelength, source=table.where)
            if excitation and wavelength == emission:
                read.excitation_nm, read.mode = excitation, "fluorescence"
            R.mark_unread(read, wells)
            reads.append(read)
    return reads


def _check_repeats(table: T.WellTable, rows: list[int], label: str) -> None:
    """Without a time column a well listed again means a series only when every well is listed equally often;
    a well listed more often than the others is a duplicate (which of its values is meant is unknown)."""
    seen: dict[tuple[int, int], list[int]] = {}
    for k in rows:
        seen.setdefault(table.wells[k], []).append(k)
    counts = {len(lines) for lines in seen.values()}
    if len(counts) > 1:
        well, lines = max(seen.items(), key=lambda item: len(item[1]))
        raise UserError(f"well {well_name(*well)} is listed more than once ({len(lines)} times) in read {label!r}, "
                        f"other wells {min(counts)} time(s): remove the duplicate line",
                        where=table.sheet.where(table.top + lines[-1]))


def _wavelength(table: T.WellTable, columns: list[int], rows: list[int]) -> float | None:
    for p in columns:
        found = {C.number(table.cells[p][k], table.sheet.decimal_comma) for k in rows}
        if len(found) == 1 and (w := found.pop()) is not None and R.is_wavelength(w):
            return w
    return None


def _time_for(table: T.WellTable, p: int, time_cols: list[int]) -> list[int]:
    """The time column of value column p: the nearest one left of it (Victor writes a Time before each label)."""
    left = [t for t in time_cols if table.point_rows[t] < table.point_rows[p]]
    return [max(left, key=lambda t: table.point_rows[t])] if left else time_cols[:1]


def plate_lines(table: T.WellTable) -> dict[str, list[int]]:
    """A 'Plate' column's plate ids -> the table's lines of each plate ({'': all} without one)."""
    names = _column_names(table)
    column = next((table.cells[p] for p, n in enumerate(names) if n.lower() in ("plate", "plate no", "plate #")),
                  next((v for n, v in table.notes.items() if n.lower() == "plate"), None))
    groups: dict[str, list[int]] = {}
    last = ""
    for k in range(len(table.wells)):
        last = C.text(column[k]) if column is not None and not C.is_blank(column[k]) else last
        groups.setdefault(last, []).append(k)
    return groups


def _long_kinetic(table: T.WellTable, rows: list[int], p: int, time_cols: list[int], label: str,
                  shape: tuple[int, int], wavelength: float | None, names: list[str]):
    """Lines per well and time: each well's values in the order listed, each well's own times."""
    dc = table.sheet.decimal_comma
    per_well: dict[tuple[int, int], list[int]] = {}
    for k in rows:
        per_well.setdefault(table.wells[k], []).append(k)
    wells = list(per_well)
    n = max(len(v) for v in per_well.values())
    points = [[table.cells[p][per_well[w][i]] if i < len(per_well[w]) else None for w in wells] for i in range(n)]
    well_times = None
    times: list[float | None] = [None] * n
    if time_cols:
        unit = C.header_unit(names[time_cols[0]]) or 1.0
        column = table.cells[time_cols[0]]
        for k in rows:
            if not C.is_blank(column[k]) and C.duration(column[k], unit) is None:
                raise UserError(f"time {C.text(column[k])!r} is neither seconds nor h:mm:ss",
                                file=None, where=table.sheet.where(table.top + k))
        well_times = [R.time_axis([column[k] for k in per_well[w]], unit) for w in wells]
        times = list(well_times[0]) + [None] * (n - len(well_times[0]))
    return R.kinetic(label, wells, points, times, shape, dc, well_times=well_times, wavelength_nm=wavelength,
                     source=table.where)


def _wide_kinetic(table: T.WellTable, names: list[str], value_cols: list[int], time_line: int,
                  shape: tuple[int, int], title: str) -> list:
    """Columns under a 'Time' header line: one kinetic read per distinct column name."""
    dc = table.sheet.decimal_comma
    unit = C.header_unit(table.lead_names[time_line])
    by_name: dict[str, list[int]] = {}
    for p in value_cols:
        by_name.setdefault(names[p] or title or "Kinetic", []).append(p)
    reads = []
    for label, columns in by_name.items():
        if is_calculated(label):
            continue
        times = R.time_axis([table.lead[p][time_line] for p in columns], unit)
        points = [table.cells[p] for p in columns]
        read = R.kinetic(label, table.wells, points, times, shape, dc,
                         wavelength_nm=R.wavelength_in(label) or R.wavelength_in(title), source=table.where)
        reads.append(R.mark_unread(read, table.wells))
    return reads


def read_long_table(source: Source) -> list[Plate]:
    plates = []
    for sheet in source.sheets:
        try:
            plates.extend(_sheet_plates(source, sheet))
        except UserError as exc:
            raise UserError(exc.message, file=source.path, where=exc.where) from None
    if not plates:
        raise FormatMismatch("no well list (a column of well names A1, B1, ... under a header) found",
                             file=source.path)
    return plates


def _sheet_plates(source: Source, sheet: Sheet) -> list[Plate]:
    """A plate for the sheet's well lists (none when it has no list with a header)."""
    tables = [t for t in T.find_wells_down(sheet, min_wells=1) if t.lead_names]
    if not tables:
        return []
    extents = [t.extent() for t in tables]
    shape = R.plate_shape((max(e[0] for e in extents), max(e[1] for e in extents)))
    name = source.path.stem if source.kind == "text" else sheet.name
    meta = sheet_metadata(sheet, tables[0].top - len(tables[0].lead_names))
    plates: dict[str, Plate] = {}
    for table in tables:
        for plate_id, lines in plate_lines(table).items():
            plate = plates.setdefault(plate_id, Plate(f"Plate {plate_id}" if plate_id else name, shape[0], shape[1],
                                                      metadata=dict(meta)))
            plate.reads += well_list_reads(table, shape, table.title(reach=1), lines)
    return [p for p in plates.values() if p.reads]


def sniff_long_table(source: Source) -> float:
    """0.6 under a 'Well' header cell, 0.3 for a column of at least four well names; 0 otherwise."""
    sheet = source.head_sheet
    if sheet is None:
        return 0.0
    rows, wellish = sheet.rows, sheet.may_name_wells
    run, column = 0, None
    for i, row in enumerate(rows):
        hit = T.first_well(row) if wellish[i] else None
        if hit is None:
            run, column = 0, None
            continue
        if i and run == 0 and hit < len(rows[i - 1]) and C.text(rows[i - 1][hit]).lower().startswith("well"):
            return 0.6
        run = run + 1 if hit == column else 1
        column = hit
        if run >= 4:
            return 0.3
    return 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="long",
        generic=True,
        title="Well lists (Well, Value[, Read][, Time]; a well per line, or per well and time)",
        sniff=sniff_long_table,
        read=read_long_table,
        extensions=(".csv", ".tsv", ".txt", ".xlsx"),
        instruments=("any software exporting a well list",),
    ))
