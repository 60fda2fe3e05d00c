"""Tables found anywhere in a sheet, whatever the vendor: plate grids, well tables and bare value blocks.

- A grid: a header row of column numbers (1..N, '01'.., 1.0..; a chunk may start at 13) at any
  column, row letters (A.., AA.. on 1536-well plates) in the column before it, a line per plate
  row or several stacked lines per row, optionally a label in the column after the numbers.
- A well table: well names ('A1', 'A01', 'A 1') across a header row with one line per time
  point below (wells across), or down a column with one column per point (wells down); a well
  column whose names repeat is a long table (a line per well and time).
- A bare block: rows of numbers (or '-') with no labels, exactly a plate's rows x columns.

The finders say where a table is and what its cells hold; what a table means (raw or
calculated, which wavelength, which time unit) is for the vendor's reader to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import compress, islice, repeat

import numpy as np

from . import cells as C
from .plate import PLATE_SHAPES, find_well, row_label
from .source import Sheet, trim_row

_ROW_INDEX = {row_label(k): k for k in range(32)}  # 'A' -> 0 ... 'Z' -> 25, 'AA' -> 26 ... 'AF' -> 31


def _row_label(cell: object) -> int | None:
    """The plate row a row-label cell names ('A' -> 0, 'AF' -> 31), else None."""
    return _ROW_INDEX.get(cell.strip().upper()) if isinstance(cell, str) else None


#: The texts of a column number 1..48 (one or two ASCII digits, maybe '.0' after them) and the number.
_COLUMN_TEXTS = {f"{text}{end}": n for n in range(1, 49) for text in {str(n), f"{n:02d}"} for end in ("", ".0")}


def _column_number(cell: object) -> int | None:
    """The column number a header cell holds (1, '01', 1.0), else None."""
    if isinstance(cell, str):  # first: a text export's every cell
        return _COLUMN_TEXTS.get(cell.strip())
    if isinstance(cell, bool):
        return None
    if isinstance(cell, (int, float)):
        return int(cell) if cell == int(cell) and 1 <= cell <= 48 else None
    return None


def title_above(sheet: Sheet, row: int, column: int = 0, reach: int = 3) -> str:
    """The nearest text above a table (its cells from `column` on, joined) within `reach` rows; ''."""
    for k in range(row - 1, max(-1, row - 1 - reach), -1):
        texts = [C.text(c) for c in sheet.rows[k][max(0, column - 1):] if not C.is_blank(c)]
        if texts:
            return _unruled(" ".join(texts))
    return ""


_RULE = re.compile(r"^[\W_]{3,}")


def _unruled(text: str) -> str:
    """'=====Data=====' -> 'Data': rules of 3+ signs cut at both ends (anchored both ways: linear time)."""
    return _RULE.sub("", _RULE.sub("", text)[::-1])[::-1].strip()


# --- grids ----------------------------------------------------------------------------------------

@dataclass
class Grid:
    """A plate grid: cells by (plate row, plate column) per layer; a layer is a label from the column
    after the numbers ('' when the lines carry none), or '#2', '#3' for unlabelled stacked lines."""

    sheet: Sheet
    top: int  # the header row
    left: int  # the row-letter column
    width: int
    first_column: int  # plate column (0-based) of the first number in the header
    bottom: int  # the row after the grid
    layers: dict[str, dict[tuple[int, int], object]] = field(default_factory=dict)
    letters: list[int] = field(default_factory=list)  # plate rows in the order they appear
    beyond: list[tuple[int, int]] = field(default_factory=list)  # (sheet row, column) of numbers right of the grid

    @property
    def extent(self) -> tuple[int, int]:
        """(rows, columns) the grid spans on the plate, counted from A1."""
        return max(self.letters) + 1, self.first_column + self.width

    @property
    def wells(self) -> list[tuple[int, int]]:
        """Every (row, column) the grid spans: the wells the export read, filled or not."""
        return [(r, c) for r in self.letters for c in range(self.first_column, self.first_column + self.width)]

    @property
    def where(self) -> str:
        return self.sheet.where(self.top)

    def title(self, reach: int = 3) -> str:
        return title_above(self.sheet, self.top, self.left, reach)

    def coverage(self, shape: tuple[int, int]) -> np.ndarray:
        """reads.coverage(shape, self.wells), a row at a time: the wells the grid spans on a plate of that shape."""
        mask = np.zeros(shape, dtype=bool)
        for r in self.letters:
            if r < shape[0]:
                mask[r, self.first_column:self.first_column + self.width] = True
        return mask


def _header_run(row: list, start: int = 0) -> tuple[int, int, int] | None:
    """(sheet column of the first number, first number, count) of a run of consecutive column numbers."""
    n = len(row)
    j = start
    while j < n:
        first = _column_number(row[j])
        if first is not None and j > 0 and (j + 1 < n and _column_number(row[j + 1]) == first + 1):
            k = 2
            while j + k < n and _column_number(row[j + k]) == first + k:
                k += 1
            return j, first, k
        j += 1
    return None


def _is_header_candidate(row: list) -> bool:
    """A quick test before the real one: a column number 1 somewhere, or two consecutive numbers early on
    (the second chunk of a split table starts at 13)."""
    if "1" in row or "01" in row or 1 in row:
        return True
    for j in range(min(4, len(row) - 1)):
        first = _column_number(row[j])
        if first is not None and _column_number(row[j + 1]) == first + 1:
            return True
    return False


def find_grids(sheet: Sheet, start: int = 0, stop: int | None = None) -> list[Grid]:
    """Every labelled plate grid in sheet rows [start, stop), in order."""
    rows = sheet.rows
    stop = len(rows) if stop is None else stop
    lettered = sheet.lettered
    grids: list[Grid] = []
    i = start
    while i < stop - 1:
        row = rows[i]
        grid = _grid_at(sheet, i, stop) if lettered[i + 1] and _is_header_candidate(row) else None
        if grid is None:
            i += 1
            continue
        grids.append(grid)
        i = grid.bottom
    return grids


def has_grid(sheet: Sheet) -> bool:
    """True when find_grids(sheet) finds a grid: decided at the first grid's header, without reading it."""
    rows, lettered = sheet.rows, sheet.lettered
    stop = len(rows)
    return any(lettered[i + 1] and _is_header_candidate(rows[i]) and _grid_header(rows, i, stop) is not None
               for i in range(stop - 1))


def _grid_at(sheet: Sheet, i: int, stop: int) -> Grid | None:
    header = _grid_header(sheet.rows, i, stop)
    return None if header is None else _read_grid(sheet, i, *header, stop)


def _grid_header(rows: list, i: int, stop: int) -> tuple[int, int, int, int] | None:
    """(row-letter column, sheet column of the first number, its plate column, width) of a grid whose header
    is row i: a run of column numbers with a row letter under the cell before it; None if there is none."""
    run = _header_run(rows[i])
    while run is not None:
        j0, first, width = run
        label_col = j0 - 1
        nxt = rows[i + 1] if i + 1 < stop else []
        if len(nxt) > label_col and _row_label(nxt[label_col]) is not None:
            return label_col, j0, first - 1, width
        run = _header_run(rows[i], j0 + width)
    return None


def _same_texts(a: list, b: list) -> bool:
    """Two rows with the same cells (a header repeated by the next stacked block)."""
    return [C.text(c) for c in trim_row(a)] == [C.text(c) for c in trim_row(b)]


def _read_grid(sheet: Sheet, top: int, label_col: int, j0: int, first_column: int, width: int,
               stop: int) -> Grid:
    rows = sheet.rows
    grid = Grid(sheet, top, label_col, width, first_column, top + 1)
    lines: list[tuple[int, int, list, object]] = []  # (plate row, line in its group, data cells, tail cell)
    current: int | None = None
    line_in_group = 0
    j = top + 1
    while j < stop:
        row = rows[j]
        label = _row_label(row[label_col]) if len(row) > label_col else None
        data = row[j0:j0 + width]
        if label is not None and (current is None or label == current + 1 or label not in grid.letters):
            current, line_in_group = label, 0
            grid.letters.append(label)
        elif label is None and current is not None and (len(row) <= label_col or C.is_blank(row[label_col])) \
                and not C.row_blank(data) and not _same_texts(row, rows[top]):  # not the next block's header
            line_in_group += 1
        else:
            break
        tail = row[j0 + width] if len(row) > j0 + width else None
        if sheet.separator == "," and len(row) > j0 + width + 1:  # an unquoted comma in the label ('Fluo:485,528')
            tail = ",".join(C.text(c) for c in row[j0 + width:]).strip(", ")
        lines.append((current, line_in_group, data, tail))
        j += 1
    grid.bottom = j
    named = _tails_are_labels(lines)
    header_ends = len(trim_row(rows[top])) <= j0 + width
    if not named and header_ends:  # numbers past the header's last column: more cells than the plate has
        grid.beyond = [(j, j0 + width + k) for j in range(top + 1, grid.bottom)
                       for k, cell in enumerate(rows[j][j0 + width:]) if C.number(cell, sheet.decimal_comma) is not None]
    for r, k, data, tail in lines:
        name = C.text(tail) if named and not C.is_blank(tail) else ""
        if not name and k:
            name = f"#{k + 1}"
        grid.layers.setdefault(name, {}).update(_filled(r, first_column, data))
    return grid


def _filled(r: int, first_column: int, data: list):
    """((plate row, plate column), cell) for the cells of a grid line that are not blank (C.is_blank); a line
    of text cells, the usual one, is filtered by their stripped texts without a Python loop."""
    columns = range(first_column, first_column + len(data))
    try:
        texts = list(map(str.strip, data))
    except TypeError:  # a cell that is no text (None, a workbook's number)
        return (((r, c), cell) for c, cell in zip(columns, data)
                if cell is not None and (not isinstance(cell, str) or cell.strip()))
    return compress(zip(zip(repeat(r), columns), data), texts)


def _tails_are_labels(lines: list[tuple[int, int, list, object]]) -> bool:
    """Cells right of a grid name its lines ('260:977 [Test]', '280') when they are text, or when every
    line has one and they repeat from row to row; numbers a user typed beside a grid do not."""
    tails = [tail for _, _, _, tail in lines]
    filled = [t for t in tails if not C.is_blank(t)]
    if not filled:
        return False
    if any(isinstance(t, str) and C.number(t) is None for t in filled):
        return True
    per_row = max(k for _, k, _, _ in lines) + 1
    return len(filled) == len(tails) and len({C.text(t) for t in filled}) <= per_row


def grid_chunks(grids: list[Grid]) -> list[Grid]:
    """Join grids that continue one another (a 384-well table exported as columns 1-12, then 13-24)."""
    joined: list[Grid] = []
    for grid in grids:
        prev = joined[-1] if joined else None
        if prev is not None and grid.first_column == prev.first_column + prev.width and grid.first_column > 0 \
                and set(grid.layers) == set(prev.layers):
            for name, cells in grid.layers.items():
                prev.layers[name].update(cells)
            prev.width += grid.width
            prev.bottom = grid.bottom
            prev.letters = sorted(set(prev.letters) | set(grid.letters))
            continue
        joined.append(grid)
    return joined


# --- bare blocks ----------------------------------------------------------------------------------

@dataclass
class Block:
    """Rows of values with no row or column labels: cells[r][c] is plate well (r, c)."""

    sheet: Sheet
    top: int
    left: int
    cells: list[list]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.cells), len(self.cells[0])


# a number with a point, '-' or blank; no two runs can take the same characters (linear on a huge cell)
_PLAIN_CELL = r" *(?:(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|--?) *)?"
_PLAIN_LINES = {sep: re.compile(f"{_PLAIN_CELL}(?:{re.escape(sep)}{_PLAIN_CELL})*") for sep in "\t;,"}


def _block_row(sheet: Sheet, i: int) -> bool:
    """A line of a bare block: at least one cell, every filled cell a value (number or marker).
    A text line of plain numbers and dashes is recognised by one regex, anything else cell by cell."""
    row = sheet.rows[i]
    if len(row) <= 1:
        return False
    plain = _PLAIN_LINES.get(sheet.separator)
    if plain is not None and sheet.lines is not None and plain.fullmatch(sheet.lines[i]):
        return True
    return all(C.is_value(c, sheet.decimal_comma) for c in row if not C.is_blank(c))


def find_blocks(sheet: Sheet, start: int = 0, stop: int | None = None,
                shapes: tuple[tuple[int, int], ...] = tuple(PLATE_SHAPES.values())) -> list[Block]:
    """Runs of unlabelled lines of values, all as long, whose size is a plate's (e.g. 8 x 12).

    A text export writes every line of such a block with the same number of fields, empty rows
    and columns included, so the block keeps its shape even when only part of the plate was read.
    A leading empty column is dropped, and a trailing one (a trailing separator) when the width
    is then one too many.
    """
    rows = sheet.rows
    stop = len(rows) if stop is None else stop
    blocks: list[Block] = []
    i = start
    while i < stop:
        if not _block_row(sheet, i) or C.row_blank(rows[i]):
            i += 1
            continue
        length = len(rows[i])
        j = i + 1
        while j < stop and len(rows[j]) == length and _block_row(sheet, j):
            j += 1
        run = rows[i:j]
        while run and C.row_blank(run[-1]) and len(run) not in {r for r, _ in shapes}:
            run = run[:-1]
        left = 0
        while left < length and all(C.is_blank(r[left]) for r in run):
            left += 1
        width = length - left
        widths = [width] + ([width - 1] if all(C.is_blank(r[-1]) for r in run) else [])
        for w in widths:
            shape = next(((r, c) for r, c in shapes if c == w and len(run) % r == 0), None)
            if shape:
                for k in range(0, len(run), shape[0]):
                    blocks.append(Block(sheet, i + k, left, [r[left:left + w] for r in run[k:k + shape[0]]]))
                break
        i = j
    return blocks


def block_series(blocks: list[Block]) -> tuple[tuple[int, int], list[tuple[int, int]], list[list], list[Block]]:
    """The blocks shaped like the first, as a series: (shape, wells in row order, each block's cells in
    that order, those blocks). Bare blocks in a file are cycles in file order."""
    shape = blocks[0].shape
    same = [b for b in blocks if b.shape == shape]
    wells = [(r, c) for r in range(shape[0]) for c in range(shape[1])]
    return shape, wells, [[b.cells[r][c] for r, c in wells] for b in same], same


# --- well tables ----------------------------------------------------------------------------------

@dataclass
class WellTable:
    """Wells along one axis, points (time points, cycles, value columns) along the other.

    cells[p][w]: point p of well w. lead[p]: for wells across, the cells left of the wells in point p's
    line (Time, T° 600, Cycle Nr. ...); for wells down, the cells of each header line above the wells
    at point p's column. lead_names: the header's lead cells (across) or each header line's name
    (down). notes: text lines about the wells (BMG 'Content', 'Group'), name -> one cell per well.
    """

    sheet: Sheet
    across: bool
    top: int  # the header row (across) or first well row (down)
    bottom: int
    wells: list[tuple[int, int]]
    cells: list[list]
    lead: list[list] = field(default_factory=list)
    lead_names: list[str] = field(default_factory=list)
    notes: dict[str, list] = field(default_factory=dict)
    point_rows: list[int] = field(default_factory=list)  # sheet row (across) or column (down) of each point

    @property
    def where(self) -> str:
        return self.sheet.where(self.top)

    def title(self, reach: int = 3) -> str:
        """The text above the table (above its header lines for wells down)."""
        return title_above(self.sheet, self.top - (0 if self.across else len(self.lead_names)), 0, reach)

    def lead_column(self, *names: str) -> list | None:
        """The lead cells under the first lead name starting with one of `names` (case-insensitive)."""
        for k, name in enumerate(self.lead_names):
            if name.lower().startswith(tuple(n.lower() for n in names)):
                return [line[k] if k < len(line) else None for line in self.lead]
        return None

    def extent(self) -> tuple[int, int]:
        return max(r for r, _ in self.wells) + 1, max(c for _, c in self.wells) + 1


def well_at(cell: object) -> tuple[int, int] | None:
    """The well a cell names ('A1', 'A01', 'A 1'), else None (quickly for numbers and empty cells)."""
    if not isinstance(cell, str) or not cell.lstrip()[:1].isalpha():
        return None
    return find_well(cell)


def find_wells_across(sheet: Sheet, start: int = 0, stop: int | None = None, min_wells: int = 2) -> list[WellTable]:
    """Header rows naming wells across, with the lines of points below them."""

    def table_at(i: int, stop: int) -> tuple[WellTable, int] | None:
        header = _across_header(sheet.rows[i], min_wells)
        table = _read_across(sheet, i, header, stop) if header else None
        return (table, table.bottom) if table else None

    return _scan(sheet, start, stop, table_at)


def _scan(sheet: Sheet, start: int, stop: int | None, table_at) -> list[WellTable]:
    """Well tables row by row: table_at(i, stop) gives (table, the row after it) or None. Rows that
    cannot name a well (Sheet.may_name_wells) are passed by."""
    stop = len(sheet.rows) if stop is None else stop
    wellish = sheet.may_name_wells
    tables = []
    i = start
    while i < stop:
        found = table_at(i, stop) if wellish[i] else None
        if found is None:
            i += 1
            continue
        tables.append(found[0])
        i = max(found[1], i + 1)
    return tables


def _across_header(row: list, min_wells: int) -> tuple[int, list[int], list[tuple[int, int]]] | None:
    """(first well column, well columns, wells) when the row names at least min_wells distinct wells in a run."""
    n = len(row)
    for j in range(min(n, 12)):
        well = well_at(row[j])
        if well is None:
            continue
        columns, wells = [j], [well]
        k = j + 1
        while k < n and (w := well_at(row[k])) is not None:
            columns.append(k)
            wells.append(w)
            k += 1
        if len(set(wells)) >= min_wells and len(set(wells)) == len(wells) and \
                C.row_blank(row[k:]):
            return j, columns, wells
        return None
    return None


def _read_across(sheet: Sheet, i: int, header: tuple, stop: int) -> WellTable | None:
    rows = sheet.rows
    first, columns, wells = header
    lead_names = [C.text(c) for c in rows[i][:first]]
    dc = sheet.decimal_comma
    # A header may hold one more field than its lines (an unquoted comma in a title): align at the right.
    shift = 0
    widths = [width for j in range(i + 1, min(stop, i + 6)) if (width := len(trim_row(rows[j])))]
    if widths and columns[-1] + 1 - max(widths) == 1 and first > 0:
        shift = 1
        lead_names = lead_names[:-2] + [",".join(lead_names[-2:])] if len(lead_names) > 1 else lead_names
    value_columns = [c - shift for c in columns]
    table = WellTable(sheet, True, i, i + 1, wells, [], lead_names=lead_names)
    header_end = value_columns[-1] + 1
    first_value, count = value_columns[0], len(value_columns)
    contiguous = value_columns == list(range(first_value, first_value + count))
    lettered = sheet.lettered
    j = i + 1
    while j < stop:
        row = rows[j]
        if C.row_blank(row):
            break
        spill = len(trim_row(row)) - header_end if sheet.separator == "," else 0
        lead = first - shift
        if spill > 0 and lead > 0:  # an unquoted comma in this line's title: its last lead field took more fields
            row = [*row[:lead - 1], ",".join(C.text(c) for c in row[lead - 1:lead + spill]), *row[lead + spill:]]
        if contiguous and len(row) >= header_end:
            cells = row[first_value:header_end]
        else:
            cells = [row[c] if c < len(row) else None for c in value_columns]
        if lettered[j] and _text_line(cells, dc):  # a header or note line has letters
            if table.cells:
                break
            table.notes[C.text(next((c for c in row[:first - shift] if not C.is_blank(c)), f"line {j + 1}"))] = cells
            j += 1
            continue
        table.cells.append(cells)
        table.lead.append(list(row[:first - shift]))
        table.point_rows.append(j)
        j += 1
    table.bottom = j
    return table if table.cells else None


def _text_line(cells: list, decimal_comma: bool, sample: int = 5) -> bool:
    """True when a line's first filled cells (up to `sample`) are mostly text, not values: a header or a
    note line ('Content', 'Group'), not a line of measurements. Blank lines are not text lines."""
    first = next((c for c in cells if c is not None and c != ""), None)
    if isinstance(first, float) or (isinstance(first, str) and C.number(first, decimal_comma) is not None):
        return False  # the usual measurement line, decided by its first cell
    seen = values = 0
    for cell in cells:
        if C.is_blank(cell):
            continue
        seen += 1
        values += C.is_datum(cell, decimal_comma)
        if seen == sample:
            break
    return seen > 0 and values < seen / 2


def find_wells_down(sheet: Sheet, start: int = 0, stop: int | None = None, min_wells: int = 2,
                    header_reach: int = 6) -> list[WellTable]:
    """Columns of well names with a line per well (or per well and time, a long table)."""
    rows = sheet.rows

    def table_at(i: int, stop: int) -> tuple[WellTable, int] | None:
        col = first_well(rows[i])
        if col is None:
            return None
        j = i
        wells = []
        while j < stop and len(rows[j]) > col and (w := well_at(rows[j][col])) is not None:
            wells.append(w)
            j += 1
        if len(set(wells)) < min_wells:
            return None
        return _read_down(sheet, i, j, col, wells, header_reach), j

    return _scan(sheet, start, stop, table_at)


def first_well(row: list) -> int | None:
    """The column of the first well name among a row's first 8 cells, else None."""
    for j, cell in enumerate(row[:8]):
        if well_at(cell) is not None:
            return j
    return None


def _read_down(sheet: Sheet, top: int, bottom: int, col: int, wells: list, reach: int) -> WellTable:
    rows = sheet.rows
    dc = sheet.decimal_comma
    width = max(len(rows[r]) for r in range(top, bottom))
    points, notes = [], {}
    header_rows = []
    k = top - 1
    while k >= 0 and top - k <= reach and not C.row_blank(rows[k]):
        header_rows.insert(0, k)
        k -= 1
    block = [row if len(row) == width else [*row, *[None] * (width - len(row))] for row in rows[top:bottom]]
    columns = list(zip(*block))
    for c in range(width):
        if c == col:
            continue
        column = list(columns[c])
        filled = list(islice((x for x in column if not C.is_blank(x)), 20))  # a sample decides what it holds
        if not filled:
            continue
        if sum(1 for x in filled if C.is_datum(x, dc)) >= len(filled) / 2:
            points.append(c)
        else:
            name = _column_name(rows, header_rows, c) or f"column {c + 1}"
            notes[name] = column
    table = WellTable(sheet, False, top, bottom, wells, [], notes=notes, point_rows=points)
    table.lead_names = [_line_name(rows[h], min(points, default=col + 1)) for h in header_rows]
    for c in points:
        table.cells.append(list(columns[c]))
        table.lead.append([rows[h][c] if c < len(rows[h]) else None for h in header_rows])
    return table


def _column_name(rows: list, header_rows: list[int], column: int) -> str:
    for h in reversed(header_rows):
        if column < len(rows[h]) and not C.is_blank(rows[h][column]):
            return C.text(rows[h][column])
    return ""


def _line_name(row: list, first_point: int) -> str:
    """A header line's name: its first text left of the first point column ('' if none)."""
    for cell in row[:first_point]:
        if not C.is_blank(cell) and C.number(cell) is None:
            return C.text(cell)
    return ""


def describe_nearest(source) -> str:
    """What came closest to a plate table in a file no reader took, for the error message."""
    for sheet in map(source.sheet, source.sheet_names[:5]):
        for i, row in enumerate(sheet.rows[:5000]):
            run = _header_run(row) if _is_header_candidate(row) else None
            if run is not None:
                return (f"a line of column numbers at {sheet.where(i)} but no row letters A, B, ... "
                        "in the column before them on the next line")
            well = first_well(row)
            if well is not None:
                return f"a well name at {sheet.where(i, well)} but no table of wells with values around it"
    return "no line of column numbers 1, 2, 3 ... with row letters, and no well names A1, B1, ..."
