"""Long table: one row per well, columns Well and Value, optionally Read (a label such as "540 nm").

    Well,Value,Read
    A1,0.051,540 nm

An optional Time column (seconds, or h:mm:ss) makes each read kinetic: one row per well and time.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import Plate, Read, parse_well, smallest_shape, well_name
from ..registry import Reader
from .grid import wavelength_in
from .text import decode, parse_cell, parse_duration, read_text, split_lines

_TIME = re.compile(r"time\s*(\(s\)|\[s\]|_s)?")


def _header(lines: list[str]) -> tuple[int, str, list[str]] | None:
    """(line index, separator, lower-cased column names) of the first Well/Value header."""
    for i, line in enumerate(lines):
        for sep in ("\t", ";", ","):
            names = [c.strip().strip('"').lower() for c in line.split(sep)]
            if "well" in names and "value" in names:
                return i, sep, names
    return None


def read_long_table(path: Path) -> list[Plate]:
    lines = split_lines(read_text(path))
    found = _header(lines)
    if found is None:
        raise UserError("no header row with columns Well and Value", file=path)
    start, sep, names = found
    col = {name: names.index(name) for name in ("well", "value", "read") if name in names}
    time_col = next((i for i, name in enumerate(names) if _TIME.fullmatch(name)), None)
    entries: dict[str, list[tuple[int, int, str, float | None]]] = {}
    for n, cells in enumerate(csv.reader(lines[start + 1:], delimiter=sep), start=start + 2):
        if not any(c.strip() for c in cells):
            continue
        try:
            row, column = parse_well(cells[col["well"]])
        except (ValueError, IndexError):
            raise UserError(f"{cells[0]!r} is not a well name (A1 ... AF48)", file=path, where=f"line {n}") from None
        label = cells[col["read"]].strip() if "read" in col and len(cells) > col["read"] else ""
        value_text = cells[col["value"]] if len(cells) > col["value"] else ""
        time = None
        if time_col is not None:
            time = _time(cells[time_col] if len(cells) > time_col else "", sep != ",", path, n)
        entries.setdefault(label, []).append((row, column, value_text, time))
    if not entries:
        raise UserError("the table has a header but no wells", file=path)
    all_wells = [e for rows in entries.values() for e in rows]
    shape = smallest_shape(max(e[0] for e in all_wells) + 1, max(e[1] for e in all_wells) + 1)
    reads = []
    for k, (label, rows) in enumerate(entries.items()):
        read = Read(label=label or f"Read {k + 1}", values=np.full(shape, np.nan), wavelength_nm=wavelength_in(label))
        if time_col is not None:
            read.kind, read.times_s = "kinetic", np.unique([e[3] for e in rows])
            read.values = np.full((*shape, len(read.times_s)), np.nan)
        for row, column, text, time in rows:
            value, flag = parse_cell(text, decimal_comma=sep != ",")
            well = well_name(row, column)
            if value is not None:
                where = (row, column) if time is None else (row, column, np.searchsorted(read.times_s, time))
                read.values[where] = value
            if flag:
                read.flags.setdefault(well, flag)  # a kinetic well keeps its first flag
                if flag == "invalid":
                    read.texts.setdefault(well, text.strip())
        reads.append(read)
    return [Plate(name=path.stem, rows=shape[0], columns=shape[1], reads=reads)]


def _time(text: str, decimal_comma: bool, path: Path, line: int) -> float:
    """A Time cell in seconds ('90', '90.5') or h:mm:ss / m:ss ('0:01:30'); UserError otherwise."""
    value, _ = parse_cell(text, decimal_comma)
    seconds = value if value is not None else parse_duration(text.strip().strip('"'))
    if seconds is None:
        raise UserError(f"time {text.strip()!r} is neither seconds nor h:mm:ss", file=path, where=f"line {line}")
    return seconds


def sniff_long_table(head: bytes, path: Path) -> float:
    return 0.6 if _header(split_lines(decode(head))[:50]) else 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="long",
        title="Long table (Well, Value[, Read][, Time]): one row per well (and time)",
        sniff=sniff_long_table,
        read=read_long_table,
        extensions=(".csv", ".tsv", ".txt"),
        instruments=("any software exporting a well list",),
    ))
