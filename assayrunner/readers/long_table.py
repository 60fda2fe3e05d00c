"""Long table: one row per well, columns Well and Value, optionally Read (a label such as "540 nm").

    Well,Value,Read
    A1,0.051,540 nm
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import Plate, Read, parse_well, smallest_shape, well_name
from ..registry import Reader
from .grid import wavelength_in
from .text import decode, parse_cell, read_text, split_lines


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
    entries: dict[str, list[tuple[int, int, str, int]]] = {}
    for n, cells in enumerate(csv.reader(lines[start + 1:], delimiter=sep), start=start + 2):
        if not any(c.strip() for c in cells):
            continue
        try:
            row, column = parse_well(cells[col["well"]])
        except (ValueError, IndexError):
            raise UserError(f"{cells[0]!r} is not a well name (A1 ... AF48)", file=path, where=f"line {n}") from None
        label = cells[col["read"]].strip() if "read" in col and len(cells) > col["read"] else ""
        value_text = cells[col["value"]] if len(cells) > col["value"] else ""
        entries.setdefault(label, []).append((row, column, value_text, n))
    if not entries:
        raise UserError("the table has a header but no wells", file=path)
    all_wells = [e for rows in entries.values() for e in rows]
    shape = smallest_shape(max(e[0] for e in all_wells) + 1, max(e[1] for e in all_wells) + 1)
    reads = []
    for k, (label, rows) in enumerate(entries.items()):
        read = Read(label=label or f"Read {k + 1}", values=np.full(shape, np.nan), wavelength_nm=wavelength_in(label))
        for row, column, text, _ in rows:
            value, flag = parse_cell(text, decimal_comma=sep != ",")
            well = well_name(row, column)
            if value is not None:
                read.values[row, column] = value
            if flag:
                read.flags[well] = flag
                if flag == "invalid":
                    read.texts[well] = text.strip()
        reads.append(read)
    return [Plate(name=path.stem, rows=shape[0], columns=shape[1], reads=reads)]


def sniff_long_table(head: bytes, path: Path) -> float:
    return 0.6 if _header(split_lines(decode(head))[:50]) else 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="long",
        title="Long table (Well, Value[, Read]): one row per well",
        sniff=sniff_long_table,
        read=read_long_table,
        extensions=(".csv", ".tsv", ".txt"),
        instruments=("any software exporting a well list",),
    ))
