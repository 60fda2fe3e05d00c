"""Building Reads from the cells of found tables: numbers and flags, time axes, plate shapes, unread wells.

Every reader, built-in or not, can make its reads with these so that markers, blanks, empty
time points and partial plates are handled one way everywhere.
"""

from __future__ import annotations

import re
from itertools import chain

import numpy as np

from . import cells as C
from .errors import FormatMismatch, UserError
from .plate import PLATE_SHAPES, Read, smallest_shape, well_name


def endpoint(label: str, cells: dict[tuple[int, int], object], shape: tuple[int, int], decimal_comma: bool,
             kind: str = "endpoint", **fields) -> Read:
    """A read with one value per well from {(row, column): cell}; markers become flags."""
    grid = np.full(shape, np.nan)  # C-contiguous: grid.ravel() is a view of it
    read = Read(label, grid, kind, **fields)
    places = [p for p in cells if p[0] < shape[0] and p[1] < shape[1]]
    values, flags = C.to_array([cells[p] for p in places], decimal_comma)
    flat = [r * shape[1] + c for r, c in places if r >= 0 <= c]
    if len(flat) == len(places):  # flat positions: fewer steps than indexing by a pair of tuples
        grid.ravel()[flat] = values
    else:  # a negative place counts from the plate's end, as numpy indexes
        rows, columns = zip(*places)
        grid[rows, columns] = values
    for k, (flag, raw) in flags.items():
        well = well_name(*places[k])
        read.flags[well], read.texts[well] = flag, raw
    return read


def distinct_wells(wells: list[tuple[int, int]], where: str | None = None) -> list[tuple[int, int]]:
    """The wells of a table that names each well once; UserError for a well named twice (which value is meant
    is not known)."""
    if len(set(wells)) < len(wells):
        seen: set[tuple[int, int]] = set()
        twice = next(w for w in wells if w in seen or seen.add(w))
        raise UserError(f"well {well_name(*twice)} is listed twice in one table: remove the duplicate", where=where)
    return wells


def kinetic(label: str, wells: list[tuple[int, int]], points: list[list], times: list[float | None],
            shape: tuple[int, int], decimal_comma: bool, well_times: list[list[float | None]] | None = None,
            **fields) -> Read:
    """A kinetic read from points[p][w] (point p of well w) at times[p] seconds.

    Points where every well is empty (a stopped run's placeholder lines) are dropped; a first
    time the export left empty is taken one read interval before the second.
    """
    distinct_wells(wells, fields.get("source"))
    keep = [p for p, line in enumerate(points) if not C.row_blank(line)]
    points = [points[p] for p in keep]
    times = fill_first_time([times[p] for p in keep])
    n = len(points)
    read = Read(label, np.full((*shape, n), np.nan), "kinetic", times_s=np.array(
        [np.nan if t is None else t for t in times], dtype=float), **fields)
    inside = [k for k, (r, c) in enumerate(wells) if r < shape[0] and c < shape[1]]
    if not n or not inside:
        return read
    values, flags = _table_values(points, inside, len(wells), decimal_comma)
    rows, columns = zip(*(wells[k] for k in inside))
    read.values[rows, columns, :] = values.reshape(n, len(inside)).T
    for index, (flag, raw) in flags.items():
        p, k = divmod(index, len(inside))
        well = well_name(*wells[inside[k]])
        read.point_flags.setdefault(well, {})[p] = flag
        if well not in read.flags:
            read.flags[well], read.texts[well] = flag, raw
    if well_times is not None:
        read.well_times_s = np.full((*shape, n), np.nan)
        for k in inside:
            series = [well_times[k][p] if p < len(well_times[k]) else None for p in keep]
            read.well_times_s[wells[k][0], wells[k][1], :] = [np.nan if t is None else t for t in series]
    return read


def _table_values(points: list[list], inside: list[int], width: int, decimal_comma: bool):
    """points[p][k] for the wells `inside`, as one flat array; a whole table of plain numbers in one numpy call."""
    whole = len(inside) == width and all(len(line) == width for line in points)
    if whole and not decimal_comma:
        try:
            block = np.array(points, dtype=float)
            if block.ndim == 2 and np.isfinite(block).all():
                return block.ravel(), {}
        except (ValueError, TypeError):
            pass
    flat = list(chain.from_iterable(points)) if whole else \
        [line[k] if k < len(line) else None for line in points for k in inside]
    return C.to_array(flat, decimal_comma)


def fill_first_time(times: list[float | None]) -> list[float | None]:
    """[None, 900, 1800] -> [0, 900, 1800]: a missing first time one interval before the second."""
    if len(times) >= 3 and times[0] is None and times[1] is not None and times[2] is not None:
        return [max(0.0, times[1] - (times[2] - times[1])), *times[1:]]
    return times


def time_axis(cells: list, unit: float | None = None) -> list[float | None]:
    """Time-axis cells in seconds; numbers in `unit` seconds (1 when the header names none).

    Clock texts and Excel durations carry their own unit; Excel day values (datetime cells) that
    all lie on a later day than 0 are made relative to day 0 (see cells.elapsed).
    """
    seconds = C.durations(cells, unit or 1.0)
    if any(hasattr(c, "year") and hasattr(c, "hour") for c in cells):
        seconds = C.elapsed(seconds)
    return seconds


_LARGEST = max(PLATE_SHAPES.values())


def plate_shape(extent: tuple[int, int], declared: tuple[int, int] | None = None, where: str = "") -> tuple[int, int]:
    """The plate's shape: the one the file declares, else the smallest standard plate holding the data.

    FormatMismatch when the data reach beyond the declared plate.
    """
    if declared:
        if declared[0] > _LARGEST[0] or declared[1] > _LARGEST[1] or min(declared) < 1:
            raise FormatMismatch(f"the file declares a {declared[0]} x {declared[1]} plate; plates have 1 to "
                                 f"{_LARGEST[0]} rows and 1 to {_LARGEST[1]} columns", where=where or None)
        if extent[0] > declared[0] or extent[1] > declared[1]:
            raise FormatMismatch(f"the file declares a {declared[0]} x {declared[1]} plate but has data up to "
                                 f"well {well_name(extent[0] - 1, extent[1] - 1)}", where=where or None)
        return declared
    return smallest_shape(*extent)


def plate_type_shape(plate_type: object, extent: tuple[int, int]) -> tuple[int, int]:
    """The shape for a free-text plate type ('96 WELL PLATE', 'Generic 24'): the plate it names when the
    data fit on it, else (no size named, or a name the data contradict) the smallest plate holding them."""
    return fitting_shape(extent, declared_shape(str(plate_type or "")))


def fitting_shape(extent: tuple[int, int], declared: tuple[int, int] | None) -> tuple[int, int]:
    """The declared shape when the data fit on it, else the smallest standard plate holding the data."""
    fits = declared is not None and declared[0] >= extent[0] and declared[1] >= extent[1]
    return plate_shape(extent, declared if fits else None)


def declared_shape(text: str) -> tuple[int, int] | None:
    """A plate size named in text: '96 WELL PLATE', '6-well', '384' -> its (rows, columns). A size among
    other words counts only beside 'well' ('Corning 384 flat' may be a catalogue number)."""
    m = re.search(r"(?<!\d)(6|12|24|48|96|384|1536)[\s-]*(?:well|wells|-well)?\b", text, re.IGNORECASE)
    if m and ("well" in text.lower() or text.strip().isdigit()):
        return PLATE_SHAPES[int(m[1])]
    return None


def mark_unread(read: Read, covered) -> Read:
    """Record which wells the export read at all, as (row, column) pairs or a mask of the plate; the
    others are flagged 'missing' (and stay NaN). Returns the read."""
    if not isinstance(covered, np.ndarray):
        covered = coverage(read.values.shape[:2], covered)
    read.covered = covered
    for r, c in zip(*np.nonzero(~covered)):
        well = well_name(int(r), int(c))
        read.flags.setdefault(well, "missing")
    return read


def describe_area(covered: np.ndarray) -> str:
    """The wells a coverage mask holds, for people: 'A1:D12' for a rectangle, else '36 of 96 wells'."""
    rows, columns = np.nonzero(covered)
    if not len(rows):
        return "no wells"
    r0, r1, c0, c1 = rows.min(), rows.max(), columns.min(), columns.max()
    if covered[r0:r1 + 1, c0:c1 + 1].all() and covered.sum() == (r1 - r0 + 1) * (c1 - c0 + 1):
        return f"{well_name(int(r0), int(c0))}:{well_name(int(r1), int(c1))}"
    return f"{int(covered.sum())} of {covered.size} wells"


def coverage(shape: tuple[int, int], wells) -> np.ndarray:
    """A (rows, columns) mask, True at the given wells."""
    mask = np.zeros(shape, dtype=bool)
    for r, c in wells:
        if r < shape[0] and c < shape[1]:
            mask[r, c] = True
    return mask


def unique_labels(reads: list[Read]) -> None:
    """'OD' and 'OD' become 'OD' and 'OD #2' so every read of a plate has its own label."""
    seen: dict[str, int] = {}
    for read in reads:
        seen[read.label] = seen.get(read.label, 0) + 1
        if seen[read.label] > 1:
            read.label = f"{read.label} #{seen[read.label]}"


def is_wavelength(nm: float) -> bool:
    """A number a plate reader could name as a wavelength in nm: 200 to 1100 (UV to near infrared)."""
    return 200 <= nm <= 1100


_WAVELENGTH = re.compile(r"(?<![\d.])(\d{3,4})(?:[.,]0+)?\s*(?:nm)?(?![\d.])", re.IGNORECASE)


def wavelength_in(text: str) -> float | None:
    """A wavelength in nm named in a label ('540 nm', 'Abs 405', 'OD600'), else None (200-1100 nm only)."""
    for m in _WAVELENGTH.finditer(text):
        if is_wavelength(int(m.group(1))):
            return float(m.group(1))
    return None


#: No read label is longer; label patterns look at this much of a text.
LABEL_CHARS = 300


def filter_pair(text: str) -> tuple[float | None, float | None]:
    """Excitation and emission in a fluorescence label: '485/530', 'Ex 485 / Em 530', 'GFP:485,530',
    '485-20/528-20' (a bandwidth after a dash) -> (485, 530); (None, None) if it names no pair."""
    text = text[:LABEL_CHARS]  # adjacent optional spaces below: a long label would take quadratic time
    m = re.search(r"(?<![\d.])(\d{3,4})(?:[-/]\d{1,3}(?=[,/ ]))?\s*(?:nm)?\s*(?:[,/]|\s+em\.?\s*)\s*(?:em\.?\s*)?"
                  r"(\d{3,4})(?![\d.])", text, re.IGNORECASE)
    if m and is_wavelength(int(m[1])) and is_wavelength(int(m[2])):
        return float(m[1]), float(m[2])
    return None, None
