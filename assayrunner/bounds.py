"""Bounds on reading one input file ([limits] in assayrun.toml, see config.py): its size, its lines, what a
workbook declares before python-calamine allocates for it, the plates it gives, and the time a read takes.

A workbook is checked from its own records, streamed: xlsx/xlsm sheets' <dimension ref> and every cell and
row reference (calamine allocates a grid up to the farthest cell), ods rows and cells with their repeat
counts, xls BOF and DIMENSIONS records and every cell record's row and column. Each limit exceeded is a
UserError naming the file, the place and the setting to raise.
"""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import threading
import zipfile
from pathlib import Path

from .config import Limits, limits as current_limits
from .errors import UserError

_ZIP, _OLE = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MB = 1024 * 1024


def _exceeded(what: str, setting: str, value, path, where: str | None = None) -> UserError:
    value = f"{value:g}" if isinstance(value, float) else value
    return UserError(f"{what}, above the limit of {value} ([limits] {setting} in assayrun.toml, or "
                     f"ASSAYRUN_LIMITS_{setting.upper()}); export a smaller range or raise the limit",
                     file=path, where=where)


def read_bounded(path: Path, limits: Limits | None = None) -> bytes:
    """A file's (or pipe's) bytes, its size checked before reading and the read stopped at the limit (a
    file growing meanwhile cannot make it read on); a device is refused. OSError as open() raises it."""
    limits = limits or current_limits()
    most = int(limits.max_file_mb * _MB)
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
            raise UserError("this is a device, not an export file: give the export file itself", file=path)
        if info.st_size > most:
            raise _exceeded(f"the file is {info.st_size / _MB:.1f} MB", "max_file_mb", limits.max_file_mb, path)
        content = handle.read(min(info.st_size, most) + 1)  # not a buffer of the limit's size for every file
        if len(content) > info.st_size:  # a pipe, or a file grown since: read on up to the limit
            content += handle.read(most + 1 - len(content))
    if len(content) > most:
        raise _exceeded("the file grew while it was read", "max_file_mb", limits.max_file_mb, path)
    return content


def check_content(path: Path, content: bytes, limits: Limits | None = None) -> None:
    """A workbook's declared sizes, or a text's longest line, before any reader or library sees the bytes."""
    limits = limits or current_limits()
    if content.startswith(_ZIP):
        check_zip(path, content, limits)
    elif content.startswith(_OLE):
        check_xls(path, content, limits)
    else:
        check_lines(path, content, limits)


def check_lines(path: Path, content: bytes, limits: Limits) -> None:
    """No line longer than max_line_chars (a UTF-16 text is measured at two bytes per character)."""
    wide = 2 if content[:2] in (b"\xff\xfe", b"\xfe\xff") or content[1:2] == b"\x00" else 1
    lengths = [len(line) for line in content.splitlines()]
    if lengths and max(lengths) > limits.max_line_chars * wide:
        line = next(k for k, n in enumerate(lengths, start=1) if n > limits.max_line_chars * wide)
        raise _exceeded(f"the line is {lengths[line - 1] // wide} characters long", "max_line_chars",
                        limits.max_line_chars, path, where=f"line {line}")


# XML allows either quote and spaces around '=': a crafted sheet must not slip past by writing r = 'XFD1'.
_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr\s*=\s*[\"']\$?([A-Za-z]+)\$?([0-9]+)[\"']")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr\s*=\s*[\"']([0-9]+)[\"']")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?\sref\s*=\s*[\"']\$?([A-Za-z]*)\$?([0-9]*):?\$?([A-Za-z]*)"
                        rb"\$?([0-9]*)[\"']")


def check_zip(path: Path, content: bytes, limits: Limits) -> None:
    """An xlsx/ods: the members' sizes once inflated, then each sheet's extent."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return  # not a readable zip: the readers say what it is
    inflated = sum(m.file_size for m in members)
    if inflated > limits.max_unzipped_mb * _MB:
        raise _exceeded(f"the workbook holds {inflated / _MB:.0f} MB once decompressed", "max_unzipped_mb",
                        limits.max_unzipped_mb, path)
    for member in members:
        name = member.filename
        try:
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                rows, columns = _xlsx_extent(archive, member)
            elif name == "content.xml":
                rows, columns = _ods_extent(archive, member)
            else:
                continue
        except Exception:  # a damaged member (zlib, XML, zip errors): it cannot be read, by calamine either
            continue
        if rows * columns > limits.max_sheet_cells:
            raise _exceeded(f"a sheet spans {rows} rows x {columns} columns ({rows * columns} cells)",
                            "max_sheet_cells", limits.max_sheet_cells, path, where=name)


def _xlsx_extent(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[int, int]:
    """The farthest row and column a worksheet's dimension, rows and cells name (streamed in chunks)."""
    rows = columns = 0
    tail = b""
    with archive.open(member) as stream:
        while chunk := stream.read(1 << 20):
            text = tail + chunk
            for letters, number in _CELL_REF.findall(text):
                rows, columns = max(rows, int(number)), max(columns, column_number(letters))
            for number in _ROW_REF.findall(text):
                rows = max(rows, int(number))
            for first_letters, first_row, last_letters, last_row in _DIMENSION.findall(text):
                for letters, number in ((first_letters, first_row), (last_letters, last_row)):
                    rows = max(rows, int(number or 0))
                    columns = max(columns, column_number(letters) if letters else 0)
            tail = text[-256:]
    return rows, max(columns, 1)


def column_number(letters: bytes) -> int:
    """b'A' -> 1, b'XFD' -> 16384."""
    number = 0
    for ch in letters.upper():
        number = number * 26 + ch - 64
    return number


def _ods_extent(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[int, int]:
    """Rows x widest row of the largest table in an ods content.xml, repeat counts expanded."""
    from xml.etree.ElementTree import iterparse

    table_ns = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    row_tag, cell_tags = f"{{{table_ns}}}table-row", (f"{{{table_ns}}}table-cell", f"{{{table_ns}}}covered-table-cell")
    repeat_rows, repeat_cols = f"{{{table_ns}}}number-rows-repeated", f"{{{table_ns}}}number-columns-repeated"
    biggest = (0, 0)
    rows = columns = width = 0
    with archive.open(member) as stream:
        for event, element in iterparse(stream, events=("start", "end")):
            if event == "start" and element.tag == f"{{{table_ns}}}table":
                rows = columns = 0
            elif event == "start" and element.tag == row_tag:
                width = 0
            elif event == "end" and element.tag in cell_tags:
                width += int(element.get(repeat_cols, "1"))
                element.clear()
            elif event == "end" and element.tag == row_tag:
                rows += int(element.get(repeat_rows, "1"))
                columns = max(columns, width)
                element.clear()
            elif event == "end" and element.tag == f"{{{table_ns}}}table":
                biggest = max(biggest, (rows, columns), key=lambda rc: rc[0] * rc[1])
    return biggest


_CELL_RECORDS = {0x0203, 0x00FD, 0x027E, 0x0201, 0x0006, 0x0204, 0x0205, 0x00D6, 0x0208}  # row, col first
_MULTI_RECORDS = {0x00BD, 0x00BE}  # MULRK, MULBLANK: row, first col ... last col
_BOF, _DIMENSIONS = 0x0809, 0x0200


def check_xls(path: Path, content: bytes, limits: Limits) -> None:
    """A legacy .xls: its BOF records (one per sheet) and the extent its DIMENSIONS and cell records give."""
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(content)) as ole:
            name = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
            if name is None:
                return
            if ole.get_size(name) > limits.max_unzipped_mb * _MB:
                raise _exceeded(f"the workbook stream is {ole.get_size(name) / _MB:.0f} MB", "max_unzipped_mb",
                                limits.max_unzipped_mb, path)
            stream = ole.openstream(name).read()
    except UserError:
        raise
    except Exception:  # not a readable compound file: the readers say what it is
        return
    sheets, rows, columns, at = 0, 0, 0, 0
    while at + 4 <= len(stream):
        kind, size = int.from_bytes(stream[at:at + 2], "little"), int.from_bytes(stream[at + 2:at + 4], "little")
        body = stream[at + 4:at + 4 + size]
        at += 4 + size
        if kind == _BOF:
            sheets += 1
        elif kind == _DIMENSIONS and len(body) >= 12:
            rows = max(rows, int.from_bytes(body[4:8], "little"))
            columns = max(columns, int.from_bytes(body[10:12], "little"))
        elif kind in _CELL_RECORDS and len(body) >= 4:
            rows = max(rows, int.from_bytes(body[0:2], "little") + 1)
            columns = max(columns, int.from_bytes(body[2:4], "little") + 1)
        elif kind in _MULTI_RECORDS and len(body) >= 6:
            rows = max(rows, int.from_bytes(body[0:2], "little") + 1)
            columns = max(columns, int.from_bytes(body[-2:], "little") + 1)
        if sheets > limits.max_sheets:
            raise _exceeded(f"the workbook has more than {limits.max_sheets} sheets", "max_sheets",
                            limits.max_sheets, path)
        if rows * columns > limits.max_sheet_cells:
            raise _exceeded(f"a sheet spans {rows} rows x {columns} columns ({rows * columns} cells)",
                            "max_sheet_cells", limits.max_sheet_cells, path, where=f"{name} stream byte {at}")


def check_plates(plates: list, path: Path, limits: Limits | None = None) -> None:
    """What a reader returned: not more plates, wells or values than the limits allow."""
    limits = limits or current_limits()
    if len(plates) > limits.max_plates_per_file:
        raise _exceeded(f"the file holds {len(plates)} plates", "max_plates_per_file",
                        limits.max_plates_per_file, path)
    for plate in plates:
        wells = plate.rows * plate.columns
        if wells > limits.max_wells_per_plate:
            raise _exceeded(f"plate {plate.name!r} has {plate.rows} x {plate.columns} = {wells} wells",
                            "max_wells_per_plate", limits.max_wells_per_plate, path)
        values = sum(getattr(read.values, "size", 0) for read in plate.reads)
        if values > limits.max_values_per_plate:
            raise _exceeded(f"plate {plate.name!r} holds {values} values over its reads", "max_values_per_plate",
                            limits.max_values_per_plate, path)


class _Expired(BaseException):
    """Raised by the alarm: a BaseException, so no reader's `except Exception` can swallow it."""


def _expire(signum, frame):
    raise _Expired()


class deadline:
    """Interrupt the read of `path` after max_read_seconds with a UserError (SIGALRM, so only in the main
    thread of a process; elsewhere the size and structure limits bound the work). Python code stops at
    once, a library call when it returns to Python. A context manager; the SIGALRM handler before it is put
    back on leaving."""

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = path
        self.seconds = (limits or current_limits()).max_read_seconds
        self.armed = False
        self.previous = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            self.previous = signal.signal(signal.SIGALRM, _expire)
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, kind, exc, trace) -> None:
        if not self.armed:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        if kind is _Expired:
            raise UserError(f"reading took longer than {self.seconds:g} s ([limits] max_read_seconds in "
                            "assayrun.toml, or ASSAYRUN_LIMITS_MAX_READ_SECONDS); check the export, or raise the "
                            "limit", file=self.path) from None
