"""Molecular Devices SoftMax Pro exports: '##BLOCKS= n', then Note, Plate and Group blocks, each ending '~End'.

    ##BLOCKS= 2
    Plate:	Plate1	1.3	PlateFormat	Endpoint	Absorbance	Raw	FALSE	1	...	1	450	1	12	96	1	8
    	Temperature(¡C)	1	2	...	12
    	24.00	0.051	...	0.048            <- PlateFormat: a line per plate row, wavelengths side by side
    ~End
    Original Filename: x; Date Last Saved: 2/14/2024 4:07:59 PM

TimeFormat has a line per read (time, temperature, A1 ... H12), a paragraph per wavelength;
kinetic PlateFormat a plate-row block per time point ('Time(hh:mm:ss)' heads the table). The
plate header gives the first column, column count, well count, first row and row count, so
partial plates land on the right wells and unread wells are marked. Tables after the raw one
(a header without 'Temperature', or a second header) are SoftMax's reduced data: calculated
reads. Group tables go to metadata['groups']. Text (tab, any encoding, decimal commas) and the
same layout in a workbook are read alike. Fluorescence reads carry excitation and emission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from ..errors import FormatMismatch, UserError
from ..plate import PLATE_SHAPES, Plate, find_well, smallest_shape
from ..registry import Reader
from ..source import Sheet, Source, detect_decimal_comma

_BLOCKS = re.compile(r"^##BLOCKS=\s*(\d{1,6})")
_TRAILER = re.compile(r"Original Filename:\s*(?P<file>.*?)[;\s]\s*Date Last Saved:\s*(?P<date>.*)$")
_NOT_SOFTMAX = "not a SoftMax Pro export (no '##BLOCKS=' first line)"
_DATA_TYPES = ("Raw", "Reduced", "Both")


@dataclass
class _Header:
    """The fields of a 'Plate:' line that say where the numbers go."""

    name: str
    version: str
    layout: str  # PlateFormat or TimeFormat
    read_type: str
    mode: str
    data_type: str
    wavelengths: list[float]
    excitation: list[float]
    first_column: int
    columns: int
    first_row: int
    rows: int
    shape: tuple[int, int]


def _texts(row: list) -> list[str]:
    return [C.text(c) for c in row]


def _numbers(text: str) -> list[float]:
    return [float(t) for t in text.replace(",", ".").split() if re.fullmatch(r"\d+(\.\d+)?", t)]


def _parse_header(row: list, source: Source, where: str) -> _Header:
    f = _texts(row)
    d = next((k for k in (6, 7) if len(f) > k and f[k] in _DATA_TYPES), None)
    if d is None or len(f) < d + 13:
        raise UserError("the 'Plate:' line is incomplete (fewer fields than SoftMax Pro writes): "
                        "export the plate again as text", file=source.path, where=where)

    def number(k: int, default: int) -> int:
        found = C.whole_number(f[k]) if len(f) > k else None
        return default if found is None else found

    first_column, columns, wells = number(d + 10, 1), number(d + 11, 12), number(d + 12, 96)
    rows_at = d + 13 if f[5] == "Absorbance" else d + 22
    first_row = number(rows_at, 1)
    rows = number(rows_at + 1, PLATE_SHAPES.get(wells, (8, 12))[0])
    shape = PLATE_SHAPES.get(wells) or smallest_shape(first_row - 1 + rows, first_column - 1 + columns)
    excitation = _numbers(f[d + 13]) if f[5] != "Absorbance" and len(f) > d + 13 else []
    return _Header(f[1], f[2], f[3], f[4], f[5], f[d], _numbers(f[d + 9]), excitation,
                   first_column, columns, first_row, rows, shape)


def _split_blocks(rows: list[list], source: Source, sheet: Sheet) -> tuple[list[tuple[int, list]], int]:
    """The '##BLOCKS= n' blocks as (first row index, rows without '~End'), and the row after them."""
    i = next((k for k, row in enumerate(rows) if not C.row_blank(row)), len(rows))
    m = _BLOCKS.match(C.text(rows[i][0])) if i < len(rows) else None
    if not m:
        raise FormatMismatch(_NOT_SOFTMAX, file=source.path,
                             where=sheet.where(min(i, len(rows) - 1)) if rows else None)
    blocks, i = [], i + 1
    for _ in range(int(m[1])):
        while i < len(rows) and C.row_blank(rows[i]):
            i += 1
        if i >= len(rows):
            raise UserError(f"the file ends after {len(blocks)} of {m[1]} blocks: it is truncated; export it again",
                            file=source.path, where=sheet.where(len(rows) - 1))
        end = next((k for k in range(i, len(rows)) if rows[k] and str(rows[k][0]).strip() == "~End"), None)
        if end is None:
            raise UserError("this block has no '~End' line: the file is truncated; export it again",
                            file=source.path, where=sheet.where(i))
        blocks.append((i, rows[i:end]))
        i = end + 1
    return blocks, i


def _is_raw_header(row: list) -> bool:
    return len(row) > 2 and bool(row[1]) and C.text(row[1]).startswith("Temperature")


def _is_reduced_header(row: list, h: _Header) -> bool:
    """A header of well names (TimeFormat) or column numbers (PlateFormat) without 'Temperature'."""
    if len(row) < 3 or (h.layout != "TimeFormat" and C.text(row[2]) != str(h.first_column)):
        return False  # the usual plate-row line, decided by its first value
    if not C.is_blank(row[1]) or (not C.is_blank(row[0]) and not C.text(row[0]).startswith("Time")):
        return False
    texts = [t for t in _texts(row[2:]) if t]
    if not texts:
        return False
    if h.layout == "TimeFormat":
        return all(find_well(t) for t in texts)
    return texts[:2] == [str(h.first_column + k) for k in range(min(2, len(texts)))]


def _sections(rows: list[list], h: _Header) -> list[tuple[str, list, list[list]]]:
    """A plate block's tables: ('raw' | 'reduced', header cells, data rows); the first 'Temperature'
    header starts the raw data, any later header a reduced table."""
    sections: list[tuple[str, list, list[list]]] = []
    for row in rows:
        if _is_raw_header(row) or (sections and _is_reduced_header(row, h)):
            sections.append(("raw" if not sections else "reduced", row, []))
        elif not sections and _is_reduced_header(row, h):
            sections.append(("reduced", row, []))
        elif sections:
            sections[-1][2].append(row)
    return sections


def _paragraphs(rows: list[list]) -> list[list[list]]:
    out: list[list[list]] = [[]]
    for row in rows:
        if C.row_blank(row):
            out.append([])
        else:
            out[-1].append(row)
    return [p for p in out if p]


def _column_groups(header: list) -> list[list[tuple[int, int]]]:
    """PlateFormat header '1..12, blank, 1..12' -> per wavelength [(cell index, plate column)]."""
    groups: list[list[tuple[int, int]]] = [[]]
    for k, cell in enumerate(header[2:], start=2):
        text = C.text(cell)
        if (column := C.whole_number(text, 2)) is not None:
            groups[-1].append((k, column - 1))
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


@dataclass
class _Series:
    """One wavelength's table: the wells in cell order, a line of cells per point, each point's time and temperature."""

    wells: list[tuple[int, int]]
    points: list[list]
    times: list
    temperatures: list


def _time_format(kind: str, h: _Header, header: list, rows: list[list]) -> list[_Series]:
    """TimeFormat: a line per point (time, temperature, A1 ... H12), a paragraph per wavelength."""
    columns = [(k, w) for k, t in enumerate(header) if k > 1 and (w := find_well(C.text(t)))]
    groups = _paragraphs(rows)
    n = max(1, len(h.wavelengths)) if kind == "raw" else 1
    if len(groups) != n:  # no blank lines between wavelengths: equal runs of lines, one per wavelength
        flat = [row for p in groups for row in p]
        size = len(flat) // n if n else len(flat)
        groups = [flat[k * size:(k + 1) * size] for k in range(n)] if size and len(flat) % n == 0 else groups[:n]
    wells = [w for _, w in columns]
    return [_Series(wells, [[row[k] if k < len(row) else None for k, _ in columns] for row in group],
                    [row[0] if row else None for row in group], [row[1] if len(row) > 1 else None for row in group])
            for group in groups]


def _plate_format(kind: str, h: _Header, header: list, rows: list[list], source: Source, where: str) -> list[_Series]:
    """PlateFormat: a plate-row line per row, wavelengths side by side; a block of rows per time point."""
    columns = _column_groups(header)
    kinetic = kind == "raw" and h.read_type == "Kinetic"
    timed = [k for k, row in enumerate(rows) if row and not C.is_blank(row[0])] if kinetic else []
    if timed:  # a block per time point: the line with the time and the plate rows under it
        n_rows = h.rows
        chunks = []
        for k, end in zip(timed, timed[1:] + [len(rows)]):
            # plate rows, not the short separator line ('\t\t') between time points
            chunk = [row for row in rows[k:end] if len(row) >= 2 + h.columns or not C.row_blank(row[2:])]
            if len(chunk) != n_rows:
                raise UserError(f"the time point {C.text(rows[k][0])!r} has {len(chunk)} plate rows, not {n_rows}: "
                                "the file is truncated or edited; export it again", file=source.path,
                                where=f"{where}, time point line {k + 1} of the table")
            chunks.append(chunk)
    else:
        data = [row for row in rows if not C.row_blank(row)]
        n_rows = h.rows if kinetic else len(data)
        if not columns or not data or len(data) % n_rows:
            raise UserError(f"a {kind} data table has {len(data)} lines, not a multiple of {h.rows} plate rows: "
                            "the file is truncated or edited; export it again", file=source.path, where=where)
        chunks = [data[k:k + n_rows] for k in range(0, len(data), n_rows)]
    offset = h.first_row - 1 if h.first_row - 1 + n_rows <= h.shape[0] else 0
    out = []
    for group in columns:
        wells = [(offset + r, col) for r in range(n_rows) for _, col in group]
        points = [_cells_at(chunk, [k for k, _ in group]) for chunk in chunks]
        out.append(_Series(wells, points, [chunk[0][0] for chunk in chunks],
                           [chunk[0][1] if len(chunk[0]) > 1 else None for chunk in chunks]))
    return out


def _cells_at(rows: list[list], columns: list[int]) -> list:
    """The cells at `columns` of each row, row after row (a slice per row when the columns are adjacent)."""
    lo, hi = columns[0], columns[-1] + 1
    if columns == list(range(lo, hi)) and all(len(row) >= hi for row in rows):
        return list(chain.from_iterable(row[lo:hi] for row in rows))
    return [row[k] if k < len(row) else None for row in rows for k in columns]


def _label(h: _Header, g: int) -> tuple[str, dict]:
    if g >= len(h.wavelengths):
        return h.mode or "Read", {"mode": h.mode.lower() or None}
    wavelength = h.wavelengths[g]
    mode = h.mode.lower() or None
    if g < len(h.excitation):
        return (f"{h.mode or 'Fluorescence'} {h.excitation[g]:g}/{wavelength:g}",
                {"wavelength_nm": wavelength, "excitation_nm": h.excitation[g], "mode": mode})
    return f"{wavelength:g} nm", {"wavelength_nm": wavelength, "mode": mode}


def _make_read(label: str, kind: str, series: _Series, h: _Header, dc: bool, where: str, fields: dict):
    shape = h.shape
    inside = [k for k, (r, c) in enumerate(series.wells) if r < shape[0] and c < shape[1]]
    wells = [series.wells[k] for k in inside]
    points = [[line[k] for k in inside] for line in series.points]
    if kind == "kinetic":
        read = R.kinetic(label, wells, points, R.time_axis(series.times), shape, dc, source=where, **fields)
    else:
        read = R.endpoint(label, dict(zip(wells, points[0])) if points else {}, shape, dc, kind, source=where,
                          **fields)
    read_area = [(r, c) for r in range(h.first_row - 1, h.first_row - 1 + h.rows)
                 for c in range(h.first_column - 1, h.first_column - 1 + h.columns)]
    R.mark_unread(read, read_area)
    return read


def _read_plate(block: list[list], start: int, source: Source, sheet: Sheet) -> Plate:
    where = sheet.where(start)
    h = _parse_header(block[0], source, where)
    if h.read_type not in ("Endpoint", "Kinetic"):
        raise FormatMismatch(f"SoftMax Pro {h.read_type or 'unnamed'} reads are not supported: "
                             "export an Endpoint or Kinetic read", file=source.path, where=where)
    # decimal commas are decided per block: an export can write plate blocks with commas, group tables with dots
    dc = detect_decimal_comma(block) if sheet.separator != "," else sheet.decimal_comma
    reads, temperatures = [], []
    for kind, header, data in _sections(block[1:], h):
        if h.layout == "TimeFormat":
            groups = _time_format(kind, h, header, data)
        else:
            groups = _plate_format(kind, h, header, data, source, where)
        for g, series in enumerate(groups):
            if kind == "raw":
                label, fields = _label(h, g)
                reads.append(_make_read(label, "kinetic" if h.read_type == "Kinetic" else "endpoint",
                                        series, h, dc, where, fields))
                temperatures += [t for x in series.temperatures if (t := C.number(x, dc)) is not None]
            elif series.points:
                wavelength = h.wavelengths[0] if len(h.wavelengths) == 1 else None
                reads.append(_make_read("Reduced", "calculated", series, h, dc, where,
                                        {"wavelength_nm": wavelength}))
    if not any(r.kind != "calculated" for r in reads):
        raise FormatMismatch(f"plate {h.name!r} has no raw data table (a line with 'Temperature' above the "
                             "numbers): export with raw data", file=source.path, where=where)
    meta: dict[str, object] = {
        "vendor": "Molecular Devices", "software": "SoftMax Pro", "export_version": h.version,
        "plate_name": h.name, "export_format": h.layout, "read_type": h.read_type, "read_mode": h.mode,
        "data_type": h.data_type, "wavelengths_nm": h.wavelengths,
    }
    if h.excitation:
        meta["excitation_nm"] = h.excitation
    if temperatures:
        meta["temperature_c"] = temperatures[0]
    if (h.rows, h.columns) != h.shape:
        meta["read_area"] = f"{h.rows} rows from row {h.first_row}, {h.columns} columns from column {h.first_column}"
    return Plate(h.name, h.shape[0], h.shape[1], reads, meta)


def _read_group(block: list[list]) -> dict[str, object]:
    """A 'Group:' block: its table as a list of dicts, its column formulas and its summaries."""
    first = C.text(block[0][0])
    group: dict[str, object] = {"name": first.split(":", 1)[1].strip() or (C.text(block[0][1]) if len(block[0]) > 1
                                                                          else "")}
    paragraphs = _paragraphs(block[1:])
    if paragraphs:
        names = _texts(paragraphs[0][0])
        rows, last = [], ""
        for row in paragraphs[0][1:]:
            cells = _texts(row)
            last = cells[0] or last  # continuation lines leave the sample blank
            entry = {n: c for n, c in zip(names, cells) if n and c}
            rows.append({names[0]: last, **entry} if names[0] and last else entry)
        group["rows"] = rows
    for paragraph in paragraphs[1:]:
        title = C.text(paragraph[0][0])
        body = [_texts(row) for row in paragraph[1:]]
        if title == "Group Column":
            group["formulas"] = {c[1]: c[2] for c in body if len(c) > 2 and c[1]}
        elif title == "Group Summaries":
            keys = ("name", "description", "value", "formula")
            group["summaries"] = [{k: v for k, v in zip(keys, c) if v} for c in body]
    return group


def read_softmax(source: Source) -> list[Plate]:
    marked = [s for s in source.sheets if any(_BLOCKS.match(C.text(r[0])) for r in s.rows[:5] if r)]
    if not marked:
        raise FormatMismatch(_NOT_SOFTMAX, file=source.path)
    plates = [plate for sheet in marked for plate in _sheet_plates(source, sheet)]
    if not plates:
        raise FormatMismatch("no 'Plate:' block in this SoftMax Pro export: export the plate section",
                             file=source.path)
    return plates


def _sheet_plates(source: Source, sheet: Sheet) -> list[Plate]:
    blocks, after = _split_blocks(sheet.rows, source, sheet)
    plates, groups, notes = [], [], []
    for start, block in blocks:
        first = C.text(block[0][0]) if block and block[0] else ""
        if first.startswith("Plate:"):
            plates.append(_read_plate(block, start, source, sheet))
        elif first.startswith("Group:"):
            groups.append(_read_group(block))
        elif first.startswith("Note:"):
            notes += [t for row in block for t in [" ".join(x for x in _texts(row) if x)] if t and t != "Note:"]
    trailer = next((m for k in range(after, len(sheet.rows)) if (m := _TRAILER.search(sheet.line_text(k)))), None)
    names = {p.name for p in plates}
    for plate in plates:
        if notes:
            plate.metadata["notes"] = notes
        if trailer:
            plate.metadata["original_filename"] = trailer["file"].strip()
            plate.metadata["date_saved"] = trailer["date"].strip()
            if when := C.parse_datetime(trailer["date"].strip()):
                plate.metadata["datetime"] = when
        wells_of = [{r.get("WellPlateName") for r in g.get("rows", [])} for g in groups]
        mine = [g for g, plates_named in zip(groups, wells_of) if plate.name in plates_named
                or not names & plates_named]
        if mine:
            plate.metadata["groups"] = mine
    return plates


def sniff_softmax(source: Source) -> float:
    if source.kind == "text":
        first = next((line.strip() for line in source.head_lines(20) if line.strip()), "")
    elif source.kind == "workbook" and source.sheet_names:
        rows = source.sheets[0].rows
        first = next((C.text(r[0]) for r in rows[:10] if r and not C.is_blank(r[0])), "")
    else:
        return 0.0
    return 0.9 if _BLOCKS.match(first) else 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="softmax",
        title="Molecular Devices SoftMax Pro export (##BLOCKS=; text in any encoding, or workbook)",
        sniff=sniff_softmax,
        read=read_softmax,
        extensions=(".txt", ".xls", ".xlsx"),
        instruments=("SpectraMax M2/M5/iD3/iD5/ABS Plus/190/340PC", "FlexStation", "SoftMax Pro software"),
    ))
