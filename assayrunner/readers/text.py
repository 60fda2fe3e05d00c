"""Shared helpers for text exports: decoding, line splitting, cells to numbers and flags."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..plate import smallest_shape, well_name

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))

#: Markers readers write in place of a number, and the flag each becomes.
MARKERS = {
    "ovrflw": "saturated", "over": "saturated", "overflow": "saturated", "sat": "saturated",
    "saturated": "saturated", "missed": "missing", "missing": "missing", "n/a": "missing",
    "na": "missing", "nan": "missing", "?????": "missing", "masked": "masked", "range?": "masked",
    "#sat": "saturated",
}

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")


def decode(data: bytes) -> str:
    """Bytes of a text export to str: BOMs, BOM-less UTF-16, UTF-8, else Latin-1 (never fails)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding.replace("-sig", ""), errors="replace")
    head = data[:4000]
    if head and head.count(b"\x00") > len(head) // 4:
        return data.decode("utf-16-le" if head[1:2] == b"\x00" else "utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("mac_roman" if _looks_mac_roman(data) else "latin-1")


def _looks_mac_roman(data: bytes) -> bool:
    """Classic Mac text: bare-CR line ends and bytes 0x80-0x9F (accented letters in Mac Roman, C1 controls in Latin-1)."""
    head = data[:20000]
    return bool(re.search(rb"\r(?!\n)", head)) and b"\n" not in head and bool(re.search(rb"[\x80-\x9f]", head))


def is_binary(data: bytes) -> bool:
    """True for bytes that do not decode to text (a zip, an image, an executable)."""
    head = decode(data[:4000])
    odd = sum(1 for ch in head if (ch < " " and ch not in "\t\r\n") or "\x7f" <= ch <= "\x9f" or ch == "\ufffd")
    return odd > len(head) // 100 + 1


def read_text(path: Path) -> str:
    """A text export's contents; UserError for an empty or binary file."""
    data = path.read_bytes()
    if not data.strip():
        raise UserError("the file is empty: export the plate again", file=path)
    if is_binary(data):
        raise UserError("this is a binary file, not a text export: export as text or CSV", file=path)
    return decode(data)


def split_lines(text: str) -> list[str]:
    """Lines split on CRLF, LF and bare CR alike."""
    return re.split(r"\r\n|\n|\r", text)


def parse_cell(cell: str, decimal_comma: bool = False) -> tuple[float | None, str | None]:
    """One cell to (number, flag): ('0.5', None) -> (0.5, None); 'OVRFLW' -> (None, 'saturated').

    Empty cells give (None, None). Text that is neither a number nor a known marker gives
    (None, 'invalid').
    """
    try:  # fast path: most cells are plain numbers
        value = float(cell)
        if math.isfinite(value) and "_" not in cell:
            return value, None
    except ValueError:
        pass
    text = cell.strip().strip('"').replace("\u00a0", "").strip()
    if not text:
        return None, None
    if _NUMBER.match(text):
        return float(text), None
    if decimal_comma and _DECIMAL_COMMA.match(text):
        return float(text.replace(",", ".")), None
    if text[0] == ">":
        return None, "saturated"
    if text[0] == "<":
        return None, "below-range"
    if len(text) > 2 and text[0] == "*" and text[-1] == "*":
        return None, "masked"
    return None, MARKERS.get(text.lower(), "invalid")


_DURATION = re.compile(r"^\s*(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?\s*$")


def parse_duration(text: str) -> float | None:
    """'47:08:22' (h:mm:ss, hours may pass 24) or '4:30' (m:ss) to seconds; None if it is not a duration."""
    m = _DURATION.match(text)
    if not m:
        return None
    a, b, c = m.groups()
    if c is None:
        return int(a) * 60.0 + int(b)
    return int(a) * 3600.0 + int(b) * 60.0 + float(c)


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%m/%d/%y", "%Y/%m/%d")
_TIME_FORMATS = ("%I:%M:%S %p", "%I:%M %p", "%H:%M:%S", "%H:%M")


def parse_datetime(date: str, time: str = "") -> str | None:
    """A date (and time) as written by instrument software to ISO 8601, or None.

    Slashed dates are read month first (US) unless the first number is above 12.
    """
    date, time = date.strip(), time.strip()
    if not time and " " in date:
        date, time = date.split(" ", 1)
    day = None
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(date, fmt)
            break
        except ValueError:
            continue
    if day is None:
        return None
    if not time:
        return day.date().isoformat()
    for fmt in _TIME_FORMATS:
        try:
            clock = datetime.strptime(time.upper(), fmt)
            return datetime.combine(day.date(), clock.time()).isoformat()
        except ValueError:
            continue
    return day.date().isoformat()


def parse_value(value: object, decimal_comma: bool = False) -> tuple[float | None, str | None]:
    """A spreadsheet cell (number, text or None) to (number, flag), like parse_cell for text cells."""
    if value is None:
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (None, "missing") if value != value else (float(value), None)
    return parse_cell(str(value), decimal_comma)


def cell_text(value: object) -> str:
    """A spreadsheet cell as stripped text ('' for an empty cell)."""
    return "" if value is None else str(value).strip()


def split_cells(lines: list[str], sep: str) -> list[list[str]]:
    """Lines of a delimited export to rows of cells (quotes handled, trailing empty cells dropped)."""
    import csv

    rows = []
    for cells in csv.reader(lines, delimiter=sep):
        while cells and not cells[-1].strip():
            cells.pop()
        rows.append(cells)
    return rows


def xlsx_strings(path: Path, limit: int = 300_000) -> str:
    """The start of an xlsx file's shared strings (else of its first sheet), for a fast sniff; '' if unreadable."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            name = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else next(
                (n for n in sorted(names) if n.startswith("xl/worksheets/sheet")), None)
            if name is None:
                return ""
            with archive.open(name) as member:
                return member.read(limit).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return ""


def read_xlsx(path: Path, wanted=None, max_blank_rows: int = 100) -> dict[str, list[list]]:
    """Sheets of an xlsx workbook as rows of cell values from A1 (empty cells None, trailing ones dropped).

    Read with python-calamine (Rust; about ten times faster than openpyxl on reader exports).
    wanted(title) -> bool picks the sheets to read. A sheet stops after max_blank_rows empty rows
    in a row (exports often format thousands of empty rows). UserError if it is not a workbook.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        titles = [t for t in book.sheet_names if wanted is None or wanted(t)]
        grids = {t: book.get_sheet_by_name(t).to_python(skip_empty_area=False) for t in titles}
    except (CalamineError, OSError, ValueError) as exc:
        raise UserError(f"not a readable Excel workbook ({type(exc).__name__}): export it again as .xlsx",
                        file=path) from None
    sheets: dict[str, list[list]] = {}
    for title, grid in grids.items():
        rows: list[list] = []
        blank = 0
        for values in grid:
            row = [None if v == "" else v for v in values]
            while row and (row[-1] is None or (isinstance(row[-1], str) and not row[-1].strip())):
                row.pop()
            rows.append(row)
            blank = 0 if row else blank + 1
            if blank >= max_blank_rows:
                break
        while rows and not rows[-1]:
            rows.pop()
        sheets[title] = rows
    return sheets


def store_cell(read, row: int, column: int, cell: object, decimal_comma: bool = False, time: int | None = None) -> None:
    """Put one cell (text or spreadsheet value) into read.values[row, column(, time)].

    A marker leaves NaN and sets the well's flag (the first one for a kinetic well) and raw text.
    """
    value, flag = parse_value(cell, decimal_comma)
    if value is not None:
        read.values[(row, column) if time is None else (row, column, time)] = value
    elif flag:
        well = well_name(row, column)
        read.flags.setdefault(well, flag)
        read.texts.setdefault(well, str(cell).strip())


def fit_reads(reads: list, shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """Pad every read's values with NaN to one plate shape: the given one, else the smallest standard
    plate holding them all (kinetic reads keep their time axis). Returns (rows, columns)."""
    if shape is None:
        shape = smallest_shape(max(r.values.shape[0] for r in reads), max(r.values.shape[1] for r in reads))
    for read in reads:
        if read.values.shape[:2] != shape:
            grown = np.full((*shape, *read.values.shape[2:]), np.nan)
            grown[:read.values.shape[0], :read.values.shape[1]] = read.values
            read.values = grown
    return shape
