"""Agilent BioTek Gen5 text exports (Synergy, Epoch, HTX, Cytation): a header, then tab-separated blocks.

    Software Version	3.12.08
    Plate Number	Plate 1
    Reader Type:	Synergy H1
    Procedure Details
    ...
    Results
    	1	2	...	12
    A	0.056	...	0.055	260:977 [Test]     <- label in the last column
    	0.035	...	0.036	260:900 [Ref]      <- stacked lines of the same plate row
    600
    Time	T° 600	A1	A2	...	H12         <- kinetic: one line per read (or one matrix per read)

Raw measurements are labelled '<read>:<wavelength>' or just '<wavelength>'; every other label
(Blank ..., Corrected [...], Max V [...], concentrations, ratios) is Gen5 data reduction and
becomes a read of kind 'calculated'. Several exports in one file give several plates.
Fluorescence reads ('Fluo:485,528') carry the emission wavelength.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import PLATE_SHAPES, Plate, Read, find_well, row_index, smallest_shape, well_name
from ..registry import Reader
from .text import decode, parse_cell, parse_datetime, parse_duration, read_text, split_lines

_HEADER = {
    "Software Version": "software_version", "Experiment File Path:": "experiment_file",
    "Protocol File Path:": "protocol_file", "Plate Number": "plate_number", "Date": "date", "Time": "time",
    "Reader Type:": "instrument", "Reader Serial Number:": "serial_number", "Reading Type": "reading_type",
}
_SHARED = ("software_version", "experiment_file", "protocol_file")
_ROW_LETTERS = re.compile(r"^(A[A-F]|[A-Z])$")
_RAW_LABEL = re.compile(r"^(?:(?P<name>[^\[\]:]+):)?(?P<wl>\d{3,4}(?:/\d+)?(?:,\s*\d{3,4}(?:/\d+)?)?)"
                        r"(?: \[(?:Test|Ref)\])?$")
_CALC_WAVELENGTH = re.compile(r"[:\[](\d{3,4})(?![\d/])")
_READ_NUMBER = re.compile(r"^(?P<base>.+?)\s+Read#\d+$")
_TIME_TITLE = re.compile(r"\bTime\s+\d+\s+\((\d+:\d\d:\d\d)\)")
_MODE = re.compile(r"^(Absorbance|Fluorescence|Luminescence|Time Resolved|Alpha\w*)\b")
_READ_STEP_TYPE = re.compile(r"(Endpoint|Kinetic|Spectrum|Scan)$")


@dataclass
class _Export:
    """What one export (one plate) holds, as cell texts keyed by (row, column)."""

    meta: dict[str, object] = field(default_factory=dict)
    grids: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)
    series: dict[str, list[tuple[float, dict[tuple[int, int], str]]]] = field(default_factory=dict)
    layout: dict[str, dict[str, str]] = field(default_factory=dict)
    read_names: set[str] = field(default_factory=set)
    temperatures: list[float] = field(default_factory=list)
    extent: tuple[int, int] = (0, 0)
    data_end: int = 0  # the line after the last data block

    def grow(self, rows: int, columns: int) -> None:
        self.extent = (max(self.extent[0], rows), max(self.extent[1], columns))


def _split(line: str, sep: str) -> list[str]:
    return line.split("\t") if sep == "\t" else next(csv.reader([line]), [""]) or [""]


def _texts(cells: list[str]) -> list[str]:
    return [c.strip() for c in cells if c.strip()]


def _grid_width(cells: list[str]) -> int:
    """N when the cells are '', 1, 2, ..., N (a matrix header), else 0."""
    if cells[0].strip():
        return 0
    numbers = [c.strip() for c in cells[1:]]
    while numbers and not numbers[-1]:
        numbers.pop()
    return len(numbers) if numbers and numbers == [str(k) for k in range(1, len(numbers) + 1)] else 0


def _title_above(rows: list[list[str]], i: int, lo: int) -> str:
    """The nearest title line above a block header (its cells joined); '' if none close by."""
    for k in range(i - 1, max(lo - 1, i - 4), -1):
        texts = _texts(rows[k])
        if texts:
            return "" if texts[0].endswith(":") else " ".join(texts)  # 'Actual Temperature:' is no title
    return ""


def _read_matrix(rows: list[list[str]], i: int, hi: int, width: int, title: str, out: _Export) -> int:
    """A plate matrix under the header at line i: rows A.. with stacked lines and labels in the last column."""
    by_label: dict[str, dict[tuple[int, int], str]] = {}
    letter, j = None, i + 1
    while j < hi and any(c.strip() for c in rows[j]):
        cells = rows[j]
        head = cells[0].strip().upper()
        if head:
            if not _ROW_LETTERS.match(head):
                break
            letter = head
        elif letter is None:
            break
        label = (cells[width + 1].strip() if len(cells) > width + 1 else "") or title or "Results"
        r = row_index(letter)
        target = by_label.setdefault(label, {})
        for c in range(min(width, len(cells) - 1)):
            if cells[c + 1].strip():
                target[(r, c)] = cells[c + 1]
        out.grow(r + 1, width)
        j += 1
    out.data_end = max(out.data_end, j)
    time = _TIME_TITLE.search(title)
    for label, cells in by_label.items():
        if title == "Layout":
            out.layout[label] = {well_name(r, c): text.strip() for (r, c), text in cells.items()}
        elif (m := _READ_NUMBER.match(label)) and time:
            out.series.setdefault(m["base"], []).append((parse_duration(time[1]) or 0.0, cells))
        else:
            out.grids.setdefault(label, {}).update(cells)
    return j


def _read_time_table(rows: list[list[str]], i: int, hi: int, title: str, out: _Export, decimal_comma: bool) -> int:
    """'Time, T° 600, A1, A2, ...' with one line per read; lines with no values (a stopped run) are skipped."""
    header = [c.strip() for c in rows[i]]
    wells = {k: w for k, h in enumerate(header) if k > 0 and (w := find_well(h))}
    temp_column = 1 if 1 not in wells else None
    columns, positions = list(wells), list(wells.values())
    last = max(columns, default=0)
    label = title or (header[1].split(" ", 1)[-1] if temp_column else "Kinetic")
    frames = out.series.setdefault(label, [])
    j = i + 1
    while j < hi and any(c.strip() for c in rows[j]):
        cells = rows[j]
        seconds = parse_duration(cells[0])
        if seconds is None:
            break
        if len(cells) > last and "" not in (values := [cells[k] for k in columns]):
            frame = dict(zip(positions, values))  # the common full row, without a test per cell
        else:
            frame = {w: cells[k] for k, w in wells.items() if k < len(cells) and cells[k].strip()}
        if frame:
            frames.append((seconds, frame))
            if temp_column and len(cells) > 1:
                temperature, _ = parse_cell(cells[1], decimal_comma)
                if temperature is not None:
                    out.temperatures.append(temperature)
        j += 1
    out.data_end = max(out.data_end, j)
    for r, c in wells.values():
        out.grow(r + 1, c + 1)
    return j


def _read_procedure(rows: list[list[str]], i: int, hi: int, out: _Export) -> int:
    """The 'Procedure Details' lines up to the next blank line: plate type, read names, kinetic settings."""
    while i < hi and not _texts(rows[i]):
        i += 1
    lines = []
    while i < hi and _texts(rows[i]):
        texts = _texts(rows[i])
        lines.append(" ".join(texts))
        if texts[0] == "Plate Type" and len(texts) > 1:
            out.meta["plate_type"] = texts[1]
        elif texts[0] == "Set Temperature" and len(texts) > 1:
            out.meta["set_temperature"] = texts[1]
        elif texts[0] == "Read" and len(texts) > 1 and not _READ_STEP_TYPE.search(texts[1]):
            out.read_names.add(texts[1])
        elif texts[0] == "Start Kinetic" and len(texts) > 1:
            interval = re.search(r"Interval (\d+:\d\d(?::\d\d)?)", texts[1])
            planned = re.search(r"(\d+) Reads", texts[1])
            if interval:
                out.meta["kinetic_interval_s"] = parse_duration(interval[1])
            if planned:
                out.meta["kinetic_reads_planned"] = int(planned[1])
        if (mode := _MODE.match(texts[-1])) and _READ_STEP_TYPE.search(texts[-1]):
            out.meta.setdefault("read_mode", mode[1])
        i += 1
    out.meta["procedure"] = lines
    return i


def _read_table(rows: list[list[str]], i: int, hi: int) -> tuple[list[dict[str, str]], int]:
    """A titled table (header line, then lines up to a blank line) as a list of dicts."""
    i += 1
    while i < hi and not _texts(rows[i]):
        i += 1
    names = [c.strip() for c in rows[i]] if i < hi else []
    table, i = [], i + 1
    while i < hi and _texts(rows[i]):
        table.append({n: c.strip() for n, c in zip(names, rows[i]) if n and c.strip()})
        i += 1
    return table, i


def _parse_export(rows: list[list[str]], lo: int, hi: int, decimal_comma: bool) -> _Export:
    out = _Export()
    i = lo
    while i < hi:
        cells = rows[i]
        texts = _texts(cells)
        first = cells[0].strip()
        if not texts:
            i += 1
        elif first == "Procedure Details":
            i = _read_procedure(rows, i + 1, hi, out)
        elif first == "Time" and len(cells) > 2 and any(find_well(c.strip()) for c in cells[1:3]):
            i = _read_time_table(rows, i, hi, _title_above(rows, i, lo), out, decimal_comma)
        elif width := _grid_width(cells):
            i = _read_matrix(rows, i, hi, width, _title_above(rows, i, lo), out)
        elif first == "Curve Fitting Results":
            out.meta["curve_fits"], i = _read_table(rows, i, hi)
        else:
            if len(texts) == 2:
                _key_value(first, texts[1], out, decimal_comma)
            i += 1
    return out


def _key_value(key: str, value: str, out: _Export, decimal_comma: bool) -> None:
    """A 'key<TAB>value' line: header fields, gains and temperatures."""
    if key in _HEADER:
        out.meta[_HEADER[key]] = value
    elif gain := re.match(r"^Gain\((.+)\)$", key):
        out.meta.setdefault("gain", {})[gain[1]] = value
    elif key in ("Actual Temperature:", "Min Temperature:", "Max Temperature:"):
        number, _ = parse_cell(value, decimal_comma)
        if number is not None and key == "Actual Temperature:":
            out.temperatures.append(number)
        elif number is not None:
            out.meta["temperature_" + key.split()[0].lower() + "_c"] = number


def _export_starts(rows: list[list[str]]) -> list[int]:
    """Line numbers where an export begins: a 'Software Version' or 'Plate Number' after a plate or data."""
    starts, seen = [0], False
    for n, cells in enumerate(rows):
        key = cells[0].strip()
        if seen and key in ("Software Version", "Plate Number"):
            starts.append(n)
            seen = False
        seen = seen or key in ("Plate Number", "Time") or bool(_grid_width(cells))
    return starts


def _is_raw(label: str, read_names: set[str]) -> bool:
    m = _RAW_LABEL.match(label)
    if not m:
        return False
    name = (m["name"] or "").strip()
    if name.startswith(("Blank", "Corrected")):
        return False
    return not (name and read_names and name not in read_names)


def _wavelength(label: str, raw: bool) -> float | None:
    """Raw '260:977 [Test]' -> 977, 'Fluo:485,528' -> 528 (emission); calculated 'Blank 260:260' -> 260."""
    if raw:
        return float(re.split(r"[/\s]", _RAW_LABEL.match(label)["wl"].split(",")[-1].strip())[0])
    found = _CALC_WAVELENGTH.findall(label)
    return float(found[-1]) if found else None


def _fill(read: Read, index: tuple, text: str, decimal_comma: bool) -> None:
    value, flag = parse_cell(text, decimal_comma)
    if flag == "invalid" and read.kind == "calculated" and (seconds := parse_duration(text)) is not None:
        value, flag = seconds, None  # 't at Max V', 'Lagtime': durations, as seconds
    if value is not None:
        read.values[index] = value
    well = well_name(*index[:2]) if flag else ""
    if flag and well not in read.flags:
        read.flags[well] = flag
        if flag == "invalid":
            read.texts[well] = text.strip()


def _fill_table(read: Read, frames: list[dict]) -> bool:
    """Fast path for a kinetic table whose time points all hold the same wells, every cell a plain
    finite number: numpy parses the whole table at once. False (nothing filled) otherwise."""
    wells = list(frames[0])
    if any(len(frame) != len(wells) or list(frame) != wells for frame in frames):
        return False
    try:
        values = np.array([list(frame.values()) for frame in frames], dtype=float)
    except ValueError:
        return False
    if not np.isfinite(values).all():
        return False  # 'nan' / 'inf' text: let parse_cell flag it
    rows, columns = zip(*wells)
    read.values[rows, columns, :] = values.T
    return True


def _reads(out: _Export, shape: tuple[int, int], decimal_comma: bool) -> list[Read]:
    """Raw reads (endpoint, kinetic) first, then calculated ones; kinetic reduction tables are noted, not read."""
    raw, calculated, skipped = [], [], []
    for label, frames in out.series.items():
        frames = [(t, frame) for t, frame in frames if frame]  # a stopped run leaves empty time points
        if not frames:
            continue
        if not _is_raw(label, out.read_names):
            skipped.append(label)
            continue
        read = Read(label, np.full((*shape, len(frames)), np.nan), "kinetic", _wavelength(label, True),
                    np.array([t for t, _ in frames], dtype=float))
        if not _fill_table(read, [frame for _, frame in frames]):
            for k, (_, frame) in enumerate(frames):
                for (r, c), text in frame.items():
                    _fill(read, (r, c, k), text, decimal_comma)
        raw.append(read)
    for label, cells in out.grids.items():
        is_raw = _is_raw(label, out.read_names)
        read = Read(label, np.full(shape, np.nan), "endpoint" if is_raw else "calculated", _wavelength(label, is_raw))
        for (r, c), text in cells.items():
            _fill(read, (r, c), text, decimal_comma)
        (raw if is_raw else calculated).append(read)
    if skipped:
        out.meta["calculated_kinetic_not_read"] = skipped
    return raw + calculated


def _shape(out: _Export) -> tuple[int, int]:
    m = re.search(r"(\d+)\s*WELL", str(out.meta.get("plate_type", "")), re.IGNORECASE)
    declared = PLATE_SHAPES.get(int(m[1])) if m else None
    if declared and declared[0] >= out.extent[0] and declared[1] >= out.extent[1]:
        return declared
    return smallest_shape(*out.extent)


def _metadata(out: _Export, reads: list[Read]) -> dict[str, object]:
    meta: dict[str, object] = {"vendor": "Agilent BioTek", "software": "Gen5"}
    meta.update({k: v for k, v in out.meta.items() if v not in ("", None, [], {})})
    if when := parse_datetime(str(meta.get("date", "")), str(meta.get("time", ""))):
        meta["datetime"] = when
    if out.temperatures:
        meta["temperature_c"] = out.temperatures[0]
        if any(r.kind == "kinetic" for r in reads):
            meta.setdefault("temperature_min_c", min(out.temperatures))
            meta.setdefault("temperature_max_c", max(out.temperatures))
    wavelengths = [r.wavelength_nm for r in reads if r.kind != "calculated" and r.wavelength_nm]
    meta["wavelengths_nm"] = list(dict.fromkeys(wavelengths))
    if out.layout:
        meta["layout"] = out.layout
    return meta


def read_gen5(path: Path) -> list[Plate]:
    text = read_text(path)
    lines = split_lines(text)
    sep = "\t" if any("\t" in line for line in lines[:200]) else ","
    rows = [_split(line, sep) for line in lines]
    starts = _export_starts(rows)
    plates, shared = [], {}
    for lo, hi in zip(starts, starts[1:] + [len(rows)]):
        out = _parse_export(rows, lo, hi, decimal_comma=sep == "\t")
        for key in _SHARED:
            out.meta.setdefault(key, shared.get(key))
        shared = {key: out.meta[key] for key in _SHARED}
        if not out.grids and not any(out.series.values()):
            raise UserError("no data block (a plate matrix or a 'Time' table) in this Gen5 export: "
                            "export the plate again with its data", file=path, where=f"line {lo + 1}")
        if out.data_end >= len(rows) and not text.endswith(("\n", "\r")):
            raise UserError("the file ends in the middle of a line of data: it is truncated; export it again",
                            file=path, where=f"line {len(rows)}")
        shape = _shape(out)
        reads = _reads(out, shape, decimal_comma=sep == "\t")
        plates.append(Plate(path.stem, shape[0], shape[1], reads, _metadata(out, reads)))
    if len(plates) > 1:
        for k, plate in enumerate(plates, start=1):
            plate.name = f"{path.stem} #{k}"
    return plates


def sniff_gen5(head: bytes, path: Path) -> float:
    keys = {re.split(r"[\t,]", line, maxsplit=1)[0].strip() for line in split_lines(decode(head))[:80]}
    gen5_keys = {"Procedure Details", "Reader Type:", "Plate Number", "Reading Type", "Experiment File Path:"}
    return 0.9 if "Software Version" in keys and keys & gen5_keys else 0.0


@hookimpl
def register_readers(register):
    register(Reader(
        name="gen5",
        title="Agilent BioTek Gen5 text export (Synergy, Epoch, HTX, Cytation)",
        sniff=sniff_gen5,
        read=read_gen5,
        extensions=(".txt", ".csv", ".tsv"),
        instruments=("BioTek Synergy H1/HTX/Neo2", "BioTek Epoch", "BioTek Cytation", "Gen5 software"),
    ))
