"""An export file as every reader sees it: its bytes decoded once, into text lines and cells or a workbook's sheets.

Text: any encoding instrument software writes (UTF-8 with or without BOM, UTF-16 LE/BE with or
without BOM, Windows-1252/Latin-1, Mac Roman), any line ends (CRLF, LF, bare CR, mixed), the
separator (tab, semicolon, comma) and decimal commas found from the content. Workbooks (.xlsx,
legacy .xls, .ods) are recognised by their bytes, not their name, and read with python-calamine.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import UserError

HEAD_BYTES = 65536
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_ZIP, _OLE = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SEPARATORS = ("\t", ";", ",")
_NUMERIC = re.compile(r"^\s*[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?\s*$")
_DOT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+\s*$")
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
_LETTER = re.compile(r"[A-Za-z]")
_SPLIT_NUMBER = {sep: re.compile(rf"\d{re.escape(sep)}\s*[+-]?\d") for sep in _SEPARATORS}


@dataclass
class Sheet:
    """A rectangle of cells: a text export's lines split at its separator, or one workbook sheet.

    rows[i][j] is the cell in line i + 1 (text) or Excel row i + 1, column j + 1; text cells are
    str, workbook cells str, float, int, bool, datetime, date, time or timedelta; None or '' is empty.
    """

    name: str
    rows: list[list]
    decimal_comma: bool = False
    from_text: bool = True
    separator: str = ""
    lines: list[str] | None = field(default=None, repr=False)  # text: the line each row was split from

    def line_text(self, row: int) -> str:
        """A row as one text: the text line as written (a title with the separator in it stays whole),
        or a workbook row's filled cells joined by spaces."""
        if self.lines is not None:
            return self.lines[row].strip().strip(self.separator + " ").strip('"').strip()
        cells = (int(c) if isinstance(c, float) and c.is_integer() else c for c in self.rows[row])
        return " ".join(str(c).strip() for c in cells if c is not None and str(c).strip())

    @cached_property
    def lettered(self) -> list[bool]:
        """Per row, whether any cell holds a Latin letter: a row without one names no well and no plate
        row, so table finders pass it by at the cost of one regex search per line."""
        if self.lines is not None:
            return [_LETTER.search(line) is not None for line in self.lines]
        return [any(type(c) is str and _LETTER.search(c) is not None for c in row) for row in self.rows]

    @cached_property
    def may_name_wells(self) -> list[bool]:
        """Per row, whether a cell may name a well: a letter, then (after spaces) a digit, as every well name
        has ('A1', 'b 03'). A row without one starts no well table: the finders pass it by. A text line is
        searched as a whole, one with quotes cell by cell (csv joins '"A"1' into 'A1')."""
        if self.lines is not None:
            return [_WELLISH.search(line) is not None if '"' not in line else _row_wellish(row)
                    for line, row in zip(self.lines, self.rows)]
        return [_row_wellish(row) for row in self.rows]

    def where(self, row: int, column: int | None = None) -> str:
        """'line 12' for text, "sheet 'Plate 1' row 12" (and column letters) for a workbook."""
        if self.from_text:
            return f"line {row + 1}"
        place = f"sheet {self.name!r} row {row + 1}"
        return place if column is None else f"{place} column {_column_letters(column)}"


_WELLISH = re.compile(r"[A-Za-z]\s*\d")


def _row_wellish(row: list) -> bool:
    return any(isinstance(c, str) and _WELLISH.search(c) is not None for c in row)


def _column_letters(column: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass
class Source:
    """One export file: its bytes and, computed on first use, its text, lines and sheets."""

    path: Path
    content: bytes
    _sheets: dict[str, Sheet] = field(default_factory=dict, repr=False)

    @property
    def head(self) -> bytes:
        return self.content[:HEAD_BYTES]

    @cached_property
    def kind(self) -> str:
        """'workbook', 'text', 'binary' or 'empty', from the bytes."""
        if not self.content.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
            return "empty"
        if self.content.startswith((_ZIP, _OLE)):
            return "workbook" if self._workbook is not None else "binary"
        return "binary" if is_binary(self.content) else "text"

    # --- text -------------------------------------------------------------------------------

    @cached_property
    def decoded(self) -> tuple[str, str]:
        """(text, encoding name)."""
        return decode(self.content)

    @property
    def text(self) -> str:
        if self.kind != "text":
            raise UserError(f"this is not a text export ({self.kind} file)", file=self.path)
        return self.decoded[0]

    @property
    def encoding(self) -> str:
        return self.decoded[1]

    @cached_property
    def lines(self) -> list[str]:
        """The text's lines, split at CRLF, LF and bare CR alike."""
        return split_lines(self.text)

    @cached_property
    def separator(self) -> str:
        return detect_separator(self.lines)

    def head_lines(self, n: int = 200) -> list[str]:
        """The first n lines, for sniffing: decoded from the head bytes only ([] for a non-text file)."""
        if self.kind != "text":
            return []
        if "lines" in self.__dict__ or len(self.content) <= HEAD_BYTES:
            return self.lines[:n]
        return self._head_text_lines[:n]

    @cached_property
    def _head_text_lines(self) -> list[str]:
        return split_lines(decode(self.head)[0])

    @cached_property
    def head_sheet(self) -> Sheet | None:
        """The first 300 lines (or rows of the first sheet) as cells, for sniffing; None if there are none.
        A text of at most 300 lines within the head bytes, with no decimal commas, is its whole sheet, which
        is then split once for the sniffs and the read."""
        if self.kind == "text":
            if len(self.content) <= HEAD_BYTES and len(self.lines) <= 300:
                whole = self.sheet(self.path.stem)
                if not whole.decimal_comma:
                    return whole
            lines = self.head_lines(300)
            return Sheet(self.path.stem, split_cells(lines, self.separator), separator=self.separator, lines=lines)
        if self.kind == "workbook" and self.sheet_names:
            first = self.sheet(self.sheet_names[0])
            return Sheet(first.name, first.rows[:300], first.decimal_comma, from_text=False)
        return None

    # --- sheets -----------------------------------------------------------------------------

    @cached_property
    def _workbook(self):
        if not self.content.startswith((_ZIP, _OLE)):
            return None
        import io

        from python_calamine import CalamineWorkbook

        try:
            return CalamineWorkbook.from_filelike(io.BytesIO(self.content))
        except Exception:  # calamine raises its own error types for anything that is not a workbook
            return None

    @cached_property
    def workbook_text(self) -> str:
        """The start of an xlsx workbook's shared strings (its text cells), for a fast sniff; '' otherwise."""
        if not self.content.startswith(_ZIP):
            return ""
        import io
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(self.content)) as archive:
                names = archive.namelist()
                name = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else next(
                    (n for n in sorted(names) if n.startswith("xl/worksheets/sheet")), None)
                if name is None:
                    return ""
                with archive.open(name) as member:
                    return member.read(300_000).decode("utf-8", errors="replace")
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, ValueError, NotImplementedError):
            return ""

    @cached_property
    def sheet_names(self) -> list[str]:
        """The workbook's sheet names in workbook order, or the text's one sheet (the file's stem)."""
        if self.kind == "workbook":
            return list(self._workbook.sheet_names)
        return [self.path.stem] if self.kind == "text" else []

    def sheet(self, name: str) -> Sheet:
        """One sheet by name (a text file has a single sheet named after the file)."""
        if name not in self._sheets:
            self._sheets[name] = self._load_sheet(name)
        return self._sheets[name]

    @property
    def sheets(self) -> Sequence[Sheet]:
        """The sheets in workbook order, each read from the workbook when first used (a sniff that looks at
        sheets[0] or sheets[:3] does not read the others)."""
        return _Sheets(self)

    def _load_sheet(self, name: str) -> Sheet:
        if self.kind == "text":
            rows = split_cells(self.lines, self.separator)
            comma = self.separator != "," and detect_decimal_comma(rows)  # unquoted: a comma separates cells
            return Sheet(name, rows, comma, separator=self.separator, lines=self.lines)
        if self.kind != "workbook":
            raise UserError(f"this is not a plate export ({self.kind} file)", file=self.path)
        try:
            grid = self._workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        except Exception as exc:  # a damaged sheet inside a readable workbook
            raise UserError(f"cannot read this sheet ({type(exc).__name__}): save the workbook again",
                            file=self.path, where=f"sheet {name!r}") from None
        rows = [trim_row([None if c == "" else c for c in row[:end]]) for row, end in zip(grid, _row_ends(grid))]
        while rows and not rows[-1]:
            rows.pop()
        return Sheet(name, rows, detect_decimal_comma(rows), from_text=False)


class _Sheets(Sequence):
    def __init__(self, source: Source):
        self._source = source

    def __len__(self) -> int:
        return len(self._source.sheet_names)

    def __getitem__(self, k):
        names = self._source.sheet_names[k]
        return [self._source.sheet(name) for name in names] if isinstance(k, slice) else self._source.sheet(names)


def _row_ends(grid: list[list]) -> list[int]:
    """Where each row's cells end, past its trailing '' cells. calamine pads every row to the sheet's
    width (991 columns when one cell sits far right): numpy finds the ends of wide grids at once."""
    width = len(grid[0]) if grid else 0
    if width <= 64 or any(len(row) != width for row in grid):
        return [len(row) for row in grid]
    import numpy as np

    filled = np.array(grid, dtype=object) != ""
    ends = width - np.argmax(filled[:, ::-1], axis=1)
    ends[~filled.any(axis=1)] = 0
    return ends.tolist()


def trim_row(row: list) -> list:
    """A row without its empty cells (None, '' or spaces) at the end."""
    end = len(row)
    while end and (row[end - 1] is None or (isinstance(row[end - 1], str) and not row[end - 1].strip())):
        end -= 1
    return row[:end] if end < len(row) else row


def decode(data: bytes) -> tuple[str, str]:
    """Bytes of a text export to (str, encoding): BOMs; BOM-less UTF-16; UTF-8; else Windows-1252,
    Mac Roman (classic Mac files: bare CR line ends) or Latin-1. Never fails."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace"), encoding
    head = data[:4096]
    if len(head) >= 4 and head.count(b"\x00") > len(head) // 4:
        even, odd = head[0::2].count(b"\x00"), head[1::2].count(b"\x00")
        encoding = "utf-16-le" if odd >= even else "utf-16-be"
        return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _looks_mac_roman(data):
        return data.decode("mac_roman"), "mac_roman"
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _looks_mac_roman(data: bytes) -> bool:
    """Classic Mac text: bare-CR line ends only (Windows and Unix software write LF), with bytes above 0x7F."""
    head = data[:20000]
    return b"\r" in head and b"\n" not in head and bool(re.search(rb"[\x80-\xff]", head))


def is_binary(data: bytes) -> bool:
    """True for bytes that are no text in any encoding an export uses (an image, an executable, a zip)."""
    head = data[:4096]
    if head.startswith((_ZIP, _OLE, b"%PDF", b"\x89PNG", b"\x7fELF", b"MZ")):
        return True
    text, _ = decode(head)
    return len(_ODD_CHARS.findall(text)) > len(text) // 50 + 1


_ODD_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\ufffd]")  # control characters no text uses, and U+FFFD


def split_lines(text: str) -> list[str]:
    """Lines split at CRLF, LF and bare CR alike (a CR inside a CRLF file still ends a line)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


_CELLS_SCORED = 16


def detect_separator(lines: list[str]) -> str:
    """Tab, semicolon or comma: the one that splits the most lines into number cells without cutting
    numbers apart ('0,5;0,7' split at commas leaves '5;0', a number cut by the other separator)."""
    sample = [line for line in lines[:400] if line.strip()][:150]
    middle = max(400, len(lines) // 2)
    sample += [line for line in lines[middle:middle + 50] if line.strip()]
    joined = "\n".join(sample)  # no separator is a line end
    present = [sep for sep in _SEPARATORS if sep in joined]
    if len(present) <= 1:
        return present[0] if present else "\t"
    best, best_score = ",", None
    for sep in present:
        score, splits = 0, 0
        cut = [_SPLIT_NUMBER[other] for other in _SEPARATORS if other != sep]
        for line in sample:
            if sep not in line:
                continue
            splits += 1
            for cell in line.split(sep, _CELLS_SCORED)[:_CELLS_SCORED]:  # wide lines: the first cells tell
                if _NUMERIC.match(cell) and (sep != "," or "," not in cell):
                    score += 1
                elif any(pattern.search(cell) for pattern in cut):
                    score -= 1
        if best_score is None or (score, splits) > best_score:
            best, best_score = sep, (score, splits)
    return best


def detect_decimal_comma(rows: list[list]) -> bool:
    """True when more number cells are written with a decimal comma ('0,0385') than with a point."""
    dot = comma = 0
    for row in rows:
        for cell in row:
            if isinstance(cell, str) and cell and (cell[0].isdigit() or cell[0] in "-+ ,."):
                if "," in cell and _COMMA_NUMBER.match(cell):
                    comma += 1
                elif "." in cell and _DOT_NUMBER.match(cell):
                    dot += 1
        if dot + comma >= 400:  # enough numbers seen to decide
            break
    return comma > dot


def split_cells(lines: list[str], sep: str) -> list[list[str]]:
    """Lines to rows of cells at the separator; quoted cells (which may hold the separator) through csv."""
    rows = []
    for line in lines:
        if '"' in line:
            try:
                rows.append(next(csv.reader([line], delimiter=sep), []))
            except csv.Error:  # a quoted cell beyond csv's field size limit: no plate cell is that long
                rows.append([cell.strip('"') for cell in line.split(sep)])
        else:
            rows.append(line.split(sep))
    return rows


def load(path: Path, limits=None) -> Source:
    """Read a file into a Source within the [limits] (size before reading, then line length or what a
    workbook declares; `limits`: the ones in force, looked up when not given); UserError when it cannot be
    read or is beyond a limit."""
    from . import bounds

    limits = limits or bounds.current_limits()
    try:
        content = bounds.read_bounded(path, limits)
    except FileNotFoundError:
        raise UserError("file not found", file=path) from None
    except IsADirectoryError:
        raise UserError("this is a folder, not an export file", file=path) from None
    except OSError as exc:
        raise UserError(f"cannot read the file: {exc.strerror}", file=path) from None
    bounds.check_content(path, content, limits)
    return Source(path, content)
