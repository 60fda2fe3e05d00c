"""Molecular Devices SoftMax Pro text exports: '##BLOCKS= n', then Note, Plate and Group blocks, each ending '~End'.

    ##BLOCKS= 2
    Plate:	Plate1	1.3	PlateFormat	Endpoint	Absorbance	Raw	FALSE	1	...	1	450	1	12	96	1	8
    	Temperature(¡C)	1	2	...	12
    	24.00	0.051	...	0.048            <- PlateFormat: one line per plate row, wavelengths side by side
    ~End
    Original Filename: x; Date Last Saved: 2/14/2024 4:07:59 PM

TimeFormat has one line per read (time, temperature, A1 ... H12) and one paragraph per wavelength.
The plate header gives the first column, column count, well count, first row and row count, so
partial plates land on the right wells. A table after the raw data (header without 'Temperature')
is SoftMax's reduced data: a read of kind 'calculated'. Group tables go to metadata['groups'].
Fluorescence reads carry the emission wavelength.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import PLATE_SHAPES, Plate, Read, find_well, smallest_shape, well_name
from ..registry import Reader
from .text import decode, parse_cell, parse_datetime, parse_duration, read_text, split_lines

_BLOCKS = re.compile(r"^##BLOCKS=\s*(\d+)")
_TRAILER = re.compile(r"Original Filename:\s*(?P<file>.*?)[;\s]\s*Date Last Saved:\s*(?P<date>.*)$")
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
    first_row: int
    rows: int
    shape: tuple[int, int]


def _cells(line: str) -> list[str]:
    return line.split("\t")


def _blank(line: str) -> bool:
    return not line.strip()


def _well(text: str) -> tuple[int, int] | None:
    """A well name as SoftMax Pro writes it (upper case, no spaces), else None."""
    return find_well(text) if re.fullmatch(r"[A-Z]{1,2}\d{1,2}", text.strip()) else None


def _numbers(text: str) -> list[float]:
    return [float(t) for t in text.split() if re.fullmatch(r"\d+(\.\d+)?", t)]


def _parse_header(line: str, path: Path, where: str) -> _Header:
    f = [c.strip() for c in _cells(line)]
    d = next((k for k in (6, 7) if len(f) > k and f[k] in _DATA_TYPES), None)
    if d is None or len(f) < d + 13:
        raise UserError("the 'Plate:' line is incomplete (fewer fields than SoftMax Pro writes): "
                        "export the plate again as text", file=path, where=where)

    def number(k: int, default: int) -> int:
        return int(f[k]) if len(f) > k and f[k].isdigit() else default

    first_column, columns, wells = number(d + 10, 1), number(d + 11, 12), number(d + 12, 96)
    rows_at = d + 13 if f[5] == "Absorbance" else d + 22
    first_row = number(rows_at, 1)
    rows = number(rows_at + 1, PLATE_SHAPES.get(wells, (8, 12))[0])
    shape = PLATE_SHAPES.get(wells) or smallest_shape(first_row - 1 + rows, first_column - 1 + columns)
    excitation = _numbers(f[d + 13]) if f[5] != "Absorbance" and len(f) > d + 13 else []
    return _Header(f[1], f[2], f[3], f[4], f[5], f[d], _numbers(f[d + 9]), excitation,
                   first_column, first_row, rows, shape)


def _split_blocks(lines: list[str], path: Path) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """The '##BLOCKS= n' blocks as (first line number, lines without '~End'), and the lines after them."""
    i = next((k for k, line in enumerate(lines) if not _blank(line)), len(lines))
    m = _BLOCKS.match(lines[i].strip()) if i < len(lines) else None
    if not m:
        raise UserError("not a SoftMax Pro text export (no '##BLOCKS=' first line)", file=path, where=f"line {i + 1}")
    blocks, i = [], i + 1
    for _ in range(int(m[1])):
        while i < len(lines) and _blank(lines[i]):
            i += 1
        if i >= len(lines):
            raise UserError(f"the file ends after {len(blocks)} of {m[1]} blocks: it is truncated; export it again",
                            file=path, where=f"line {i}")
        end = next((k for k in range(i, len(lines)) if lines[k].strip() == "~End"), None)
        if end is None:
            raise UserError("this block has no '~End' line: the file is truncated; export it again",
                            file=path, where=f"line {i + 1}")
        blocks.append((i + 1, lines[i:end]))
        i = end + 1
    return blocks, lines[i:]


def _is_column_header(cells: list[str], h: _Header) -> bool:
    """Cells 2.. name wells (TimeFormat) or count columns from the first one (PlateFormat), not values."""
    texts = [t.strip() for t in cells[2:] if t.strip()]
    if not texts or cells[0].strip() or cells[1].strip():
        return False
    if h.layout == "TimeFormat":
        return all(_well(t) for t in texts)
    return texts[:2] == [str(h.first_column + k) for k in range(min(2, len(texts)))]


def _sections(lines: list[str], h: _Header) -> list[tuple[str, list[str], list[str]]]:
    """Split a plate block's data into ('raw' | 'reduced', header cells, data lines) at each header line."""
    sections: list[tuple[str, list[str], list[str]]] = []
    for line in lines:
        cells = _cells(line)
        if len(cells) > 2 and not cells[0].strip() and cells[1].strip().startswith("Temperature"):
            sections.append(("raw", cells, []))
        elif len(cells) > 2 and _is_column_header(cells, h):
            sections.append(("reduced", cells, []))
        elif sections:
            sections[-1][2].append(line)
    return sections


def _paragraphs(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in lines:
        if _blank(line):
            out.append([])
        else:
            out[-1].append(line)
    return [p for p in out if p]


def _column_groups(header: list[str]) -> list[list[tuple[int, int]]]:
    """PlateFormat header '1..12, blank, 1..12' -> per wavelength [(cell index, column index)]."""
    groups: list[list[tuple[int, int]]] = [[]]
    for k, text in enumerate(header[2:], start=2):
        if text.strip().isdigit():
            groups[-1].append((k, int(text) - 1))
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def _frames(kind: str, h: _Header, header: list[str], lines: list[str], path: Path, where: str):
    """Per wavelength, a list of (time text, temperature text, {(row, column): cell text})."""
    if h.layout == "TimeFormat":
        wells = {k: w for k, t in enumerate(header) if k > 1 and (w := _well(t))}
        groups = _paragraphs(lines)
        n = max(1, len(h.wavelengths)) if kind == "raw" else 1
        if len(groups) != n:  # no blank lines between wavelengths: equal runs of lines, one per wavelength
            rows = [line for p in groups for line in p]
            size = len(rows) // n
            groups = [rows[k * size:(k + 1) * size] for k in range(n)] if len(rows) % n == 0 else groups[:n]
        return [[(c[0], c[1] if len(c) > 1 else "", {w: c[k] for k, w in wells.items() if k < len(c)})
                 for c in map(_cells, group)] for group in groups]
    columns = _column_groups(header)
    data = [line for line in lines if not _blank(line)]
    kinetic = kind == "raw" and h.read_type == "Kinetic"
    n_rows = h.rows if kinetic else len(data)
    if not columns or not data or len(data) % n_rows:
        raise UserError(f"a {kind} data table has {len(data)} lines, not a multiple of {h.rows} plate rows: "
                        "the file is truncated or edited; export it again", file=path, where=where)
    chunks = [data[k:k + n_rows] for k in range(0, len(data), n_rows)]
    offset = h.first_row - 1 if h.first_row - 1 + n_rows <= h.shape[0] else 0
    out = []
    for group in columns:
        frames = []
        for chunk in chunks:
            cells = [_cells(line) for line in chunk]
            values = {(offset + r, col): row[k] for r, row in enumerate(cells) for k, col in group if k < len(row)}
            frames.append((cells[0][0], cells[0][1] if len(cells[0]) > 1 else "", values))
        out.append(frames)
    return out


def _make_read(label: str, kind: str, wavelength: float | None, frames, shape) -> Read:
    kinetic = kind == "kinetic"
    if kinetic:
        frames = [f for f in frames if any(t.strip() for t in f[2].values())]  # a stopped run leaves empty lines
    values = np.full((*shape, len(frames)) if kinetic else shape, np.nan)
    times = np.array([parse_duration(f[0]) or 0.0 for f in frames], dtype=float) if kinetic else None
    read = Read(label, values, kind, wavelength, times)
    for k, (_, _, cells) in enumerate(frames if kinetic else frames[:1]):
        for (r, c), text in cells.items():
            if r >= shape[0] or c >= shape[1]:
                continue
            value, flag = parse_cell(text, decimal_comma=True)
            if value is not None:
                values[(r, c, k) if kinetic else (r, c)] = value
            if flag and well_name(r, c) not in read.flags:
                read.flags[well_name(r, c)] = flag
                if flag == "invalid":
                    read.texts[well_name(r, c)] = text.strip()
    return read


def _label(h: _Header, g: int) -> tuple[str, float | None]:
    if g >= len(h.wavelengths):
        return h.mode or "Read", None
    wavelength = h.wavelengths[g]
    if g < len(h.excitation):
        return f"Ex {h.excitation[g]:g} / Em {wavelength:g} nm", wavelength
    return f"{wavelength:g} nm", wavelength


def _read_plate(lines: list[str], start: int, path: Path) -> Plate:
    h = _parse_header(lines[0], path, f"line {start}")
    if h.read_type not in ("Endpoint", "Kinetic"):
        raise UserError(f"SoftMax Pro {h.read_type or 'unnamed'} reads are not supported: "
                        "export an Endpoint or Kinetic read", file=path, where=f"line {start}")
    reads, temperatures = [], []
    for kind, header, data in _sections(lines[1:], h):
        groups = _frames(kind, h, header, data, path, f"line {start}")
        for g, frames in enumerate(groups):
            if kind == "raw":
                label, wavelength = _label(h, g)
                reads.append(_make_read(label, "kinetic" if h.read_type == "Kinetic" else "endpoint",
                                        wavelength, frames, h.shape))
                temperatures += [t for f in frames if (t := parse_cell(f[1])[0]) is not None]
            elif frames:
                wavelength = h.wavelengths[0] if len(h.wavelengths) == 1 else None
                reads.append(_make_read("Reduced", "calculated", wavelength, frames, h.shape))
    if not any(r.kind != "calculated" for r in reads):
        raise UserError(f"plate {h.name!r} has no raw data table (a line with 'Temperature' above the numbers): "
                        "export with raw data", file=path, where=f"line {start}")
    meta: dict[str, object] = {
        "vendor": "Molecular Devices", "software": "SoftMax Pro", "export_version": h.version,
        "plate_name": h.name, "export_format": h.layout, "read_type": h.read_type, "read_mode": h.mode,
        "data_type": h.data_type, "wavelengths_nm": h.wavelengths,
    }
    if h.excitation:
        meta["excitation_nm"] = h.excitation
    if temperatures:
        meta["temperature_c"] = temperatures[0]
    return Plate(h.name, h.shape[0], h.shape[1], reads, meta)


def _read_group(lines: list[str]) -> dict[str, object]:
    """A 'Group:' block: its table as a list of dicts, its column formulas and its summaries."""
    group: dict[str, object] = {"name": lines[0].split(":", 1)[1].strip()}
    paragraphs = _paragraphs(lines[1:])
    if paragraphs:
        names = [c.strip() for c in _cells(paragraphs[0][0])]
        rows, last = [], ""
        for line in paragraphs[0][1:]:
            cells = [c.strip() for c in _cells(line)]
            last = cells[0] or last  # continuation lines leave the sample blank
            row = {n: c for n, c in zip(names, cells) if n and c}
            rows.append({names[0]: last, **row} if names[0] and last else row)
        group["rows"] = rows
    for paragraph in paragraphs[1:]:
        title = _cells(paragraph[0])[0].strip()
        body = [[c.strip() for c in _cells(line)] for line in paragraph[1:]]
        if title == "Group Column":
            group["formulas"] = {c[1]: c[2] for c in body if len(c) > 2 and c[1]}
        elif title == "Group Summaries":
            keys = ("name", "description", "value", "formula")
            group["summaries"] = [{k: v for k, v in zip(keys, c) if v} for c in body]
    return group


def read_softmax(path: Path) -> list[Plate]:
    lines = split_lines(read_text(path))
    blocks, rest = _split_blocks(lines, path)
    plates, groups, notes = [], [], []
    for start, block in blocks:
        first = block[0].strip() if block else ""
        if first.startswith("Plate:"):
            plates.append(_read_plate(block, start, path))
        elif first.startswith("Group:"):
            groups.append(_read_group(block))
        elif first.startswith("Note:"):
            notes += [t for line in [block[0].strip()[5:], *block[1:]] if (t := line.strip())]
    if not plates:
        raise UserError("no 'Plate:' block in this SoftMax Pro export: export the plate section", file=path)
    trailer = next((m for line in rest if (m := _TRAILER.search(line.strip()))), None)
    names = {p.name for p in plates}
    for plate in plates:
        if notes:
            plate.metadata["notes"] = notes
        if trailer:
            plate.metadata["original_filename"] = trailer["file"].strip()
            plate.metadata["date_saved"] = trailer["date"].strip()
            if when := parse_datetime(trailer["date"]):
                plate.metadata["datetime"] = when
        mine = [g for g in groups if plate.name in {r.get("WellPlateName") for r in g.get("rows", [])}
                or not names & {r.get("WellPlateName") for r in g.get("rows", [])}]
        if mine:
            plate.metadata["groups"] = mine
    return plates


def sniff_softmax(head: bytes, path: Path) -> float:
    first = next((line.strip() for line in split_lines(decode(head)) if line.strip()), "")
    return 0.9 if _BLOCKS.match(first) else 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="softmax",
        title="Molecular Devices SoftMax Pro text export (##BLOCKS=)",
        sniff=sniff_softmax,
        read=read_softmax,
        extensions=(".txt",),
        instruments=("SpectraMax M2/M5/iD3/iD5/ABS Plus/190/340PC", "FlexStation", "SoftMax Pro software"),
    ))
