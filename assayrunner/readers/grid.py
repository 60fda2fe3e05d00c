"""Generic plate tables, from any software: the reader of last resort before `allotropy`.

    Instrument,Generic 540
    Wavelength,540 nm
    ,1,2,3,...,12
    A,0.051,0.049,...

Reads plate grids (rows A.., columns 1.., anywhere in a text file or sheet, several grids as
several reads, a 384-well table split into column chunks, 1536-well plates), well tables with
the wells across a header line and a line per time point (a kinetic read), and bare blocks of a
plate's size with no labels (several blocks: one kinetic read, in file order, times unknown).
Each grid's label is the line above it ('540 nm', 'Raw Data (450)'); a grid whose label names a
calculation (blank, corrected, mean, ratio, concentration ...) is a calculated read. Workbooks
give a plate per sheet with data. `key,value` lines above the first table become metadata.
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

CALCULATED = re.compile(r"\b(blank(ed)?|corrected|subtract\w*|average|mean|median|sd|std\.?|stdev|cv|%cv|conc\w*|count|"
                        r"ratio|calc\w*|normali[sz]ed|result\w* of|slope|max ?v|r-?squared|lag ?time|fit|sum|"
                        r"difference|delta|quotient|percent|%|layout|platemap|plate map|sample ids?|well ids?)\b",
                        re.IGNORECASE)


def is_calculated(label: str) -> bool:
    """True when a table's label names a calculation rather than a measurement."""
    return bool(CALCULATED.search(label))


def sheet_metadata(sheet: Sheet, stop: int) -> dict[str, str]:
    """'key,value' and 'key: value' lines above the first table."""
    meta: dict[str, str] = {}
    for row in sheet.rows[:stop]:
        filled = [C.text(c) for c in row if not C.is_blank(c)]
        if len(filled) == 2 and filled[0] and not filled[0][0].isdigit():
            meta.setdefault(filled[0].rstrip(":").strip(), filled[1])
        elif len(filled) == 1 and ":" in filled[0]:
            key, _, value = filled[0].partition(":")
            if key.strip() and value.strip() and not key.strip()[0].isdigit():
                meta.setdefault(key.strip(), value.strip())
    return meta


def _grid_reads(grids: list[T.Grid], sheet: Sheet, shape: tuple[int, int], fallback_wavelength: float | None,
                meta: dict, titles: dict):
    reads = []
    for k, grid in enumerate(grids):
        title = titles[grid.top, grid.left]
        for name, cells in grid.layers.items():
            label = name if name and not name.startswith("#") else title or f"Read {len(reads) + 1}"
            if name.startswith("#"):
                label = f"{label} {name}"
            if not _numeric(cells, sheet):  # a grid of names is the plate's layout, not a read
                meta.setdefault("layout", {})[label] = {well_name(*p): C.text(c) for p, c in cells.items()}
                continue
            kind = "calculated" if is_calculated(label) else "endpoint"
            wavelength = R.wavelength_in(label) or (fallback_wavelength if k == 0 and kind == "endpoint" else None)
            read = R.endpoint(label, cells, shape, sheet.decimal_comma, kind, wavelength_nm=wavelength,
                              source=grid.where)
            R.mark_unread(read, grid.coverage(shape))
            read.area_declared = False  # a bare grid names no plate size: where it stops is not a read area
            reads.append(read)
    return reads


def _numeric(cells: dict, sheet: Sheet) -> bool:
    """False for a grid of names (a layout): most filled cells are neither numbers nor markers."""
    filled = list(cells.values())
    return not filled or C.plain_numbers(filled) or \
        sum(C.is_value(c, sheet.decimal_comma) for c in filled) >= len(filled) / 2


_POINT_HEADS = ("time", "zeit", "cycle", "reading", "kinetic", "read")  # lead columns that count the points


def _across_reads(tables: list[T.WellTable], sheet: Sheet, shape: tuple[int, int]):
    reads = []
    for table in tables:
        title = table.title(reach=2)
        label = title or "Kinetic"
        if is_calculated(label):
            continue
        name = next((n for n in table.lead_names if n.lower().startswith(_POINT_HEADS)), "")
        if name.lower().startswith(("time", "zeit")):
            times = R.time_axis(table.lead_column(name), C.header_unit(name))
        else:
            times = [None] * len(table.cells)
        read = R.kinetic(label, table.wells, table.cells, times, shape, sheet.decimal_comma,
                         wavelength_nm=R.wavelength_in(title), source=table.where)
        reads.append(R.mark_unread(read, table.wells))
    return reads


def _block_reads(blocks: list[T.Block], sheet: Sheet) -> tuple[list, tuple[int, int] | None]:
    if not blocks:
        return [], None
    shape, wells, points, same = T.block_series(blocks)
    if len(same) == 1:
        cells = dict(zip(wells, points[0]))
        return [R.endpoint("Read 1", cells, shape, sheet.decimal_comma, source=sheet.where(same[0].top))], shape
    read = R.kinetic("Read 1", wells, points, [None] * len(points), shape, sheet.decimal_comma,
                     source=sheet.where(same[0].top))
    return [read], shape


def plates_of_sheet(sheet: Sheet, name: str) -> list[Plate]:
    grids = T.grid_chunks(T.find_grids(sheet))
    across = T.find_wells_across(sheet)
    first = min([g.top for g in grids] + [t.top for t in across], default=len(sheet.rows))
    meta = sheet_metadata(sheet, first)
    if not grids and not across:
        reads, shape = _block_reads(T.find_blocks(sheet), sheet)
        if not reads:
            return []
        meta["layout_note"] = "bare blocks without row or column labels: wells by position, blocks in file order"
        return [Plate(name, shape[0], shape[1], reads, meta)]
    for grid in grids:
        if grid.beyond:
            row, column = grid.beyond[0]
            raise UserError(f"a number right of the plate grid whose header is on {sheet.where(grid.top)}: the "
                            "line has more cells than the header has columns; correct the export",
                            where=sheet.where(row, column))
    extents = [g.extent for g in grids] + [t.extent() for t in across]
    shape = R.plate_shape((max(e[0] for e in extents), max(e[1] for e in extents)))
    fallback = R.wavelength_in(str(meta.get("Wavelength", meta.get("wavelength", ""))))
    plates = []
    titles = _titles(grids)
    for k, part in enumerate(_repeats_apart(grids, titles) or [[]]):
        plate_meta = meta if k == 0 else dict(meta)
        reads = _grid_reads(part, sheet, shape, fallback, plate_meta, titles) + (_across_reads(across, sheet, shape)
                                                                        if k == 0 else [])
        reads.sort(key=lambda r: r.kind == "calculated")
        if reads:
            plates.append(Plate(name if k == 0 else f"{name} #{k + 1}", shape[0], shape[1], reads, plate_meta))
    return plates


def _repeats_apart(grids: list[T.Grid], titles: dict) -> list[list[T.Grid]]:
    """Grids split into plates (stacked blocks: one plate per block in file order): a grid whose title (and
    layers) repeat an earlier grid's, an untitled grid after an untitled one, or a grid titled as a plate
    ('Plate 2') starts the next plate, so a second plate is never taken for a second read."""
    parts: list[list[T.Grid]] = []
    seen: set = set()
    for grid in grids:
        title = titles[grid.top, grid.left]
        key = (title, tuple(grid.layers))
        if not parts or key in seen or _PLATE_TITLE.match(title):
            parts.append([])
            seen = set()
        parts[-1].append(grid)
        seen.add(key)
    return parts


_PLATE_TITLE = re.compile(r"plate\s*(no\.?|number|#)?\s*[:#]?\s*\w+\s*$", re.IGNORECASE)


def _titles(grids: list[T.Grid]) -> dict[tuple[int, int], str]:
    """(top, left) -> the grid's title (the text within two rows above it), never a row of a grid above it."""
    titles = {}
    for k, grid in enumerate(grids):
        floor = max((g.bottom for g in grids[:k] if g.bottom <= grid.top), default=0)
        titles[grid.top, grid.left] = T.title_above(grid.sheet, grid.top, grid.left, min(2, grid.top - floor))
    return titles


def read_grid(source: Source) -> list[Plate]:
    plates = []
    for sheet in source.sheets:
        name = source.path.stem if source.kind == "text" else sheet.name
        try:
            plates.extend(plates_of_sheet(sheet, name))
        except UserError as exc:
            raise UserError(exc.message, file=source.path, where=exc.where) from None
    if not plates:
        raise FormatMismatch("no plate grid (a header row 1..12 with rows A, B, ... below it), well table or "
                               "plate-sized block of values found", file=source.path)
    return plates


_DUMP_LINE = re.compile(r"^[\s\d.,;+\-eE]*$")


def sniff_grid(source: Source) -> float:
    sheet = source.head_sheet
    if sheet is None:
        return 0.0
    if T.has_grid(sheet):
        return 0.5
    if T.find_wells_across(sheet, min_wells=3):
        return 0.35
    if source.kind == "text" and all(_DUMP_LINE.match(line) for line in source.head_lines(60)) \
            and T.find_blocks(sheet):
        return 0.15
    return 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="grid",
        generic=True,
        title="Generic plate tables: grids (rows A.., columns 1..), wells-across time tables, bare plate blocks",
        sniff=sniff_grid,
        read=read_grid,
        extensions=(".csv", ".tsv", ".txt", ".xlsx", ".xls"),
        instruments=("any reader exporting a plate-shaped table",),
    ))
