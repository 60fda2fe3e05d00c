"""PerkinElmer / Revvity plate-reader CSV: EnVision Workstation and Kaleido (EnSight, VICTOR Nivo).

EnVision: each measured or calculated plate is a 'Plate information' section (a header row, a row
for the plate), an optional 'Background information' section, then the grid, usually 16 x 24
values with no row or column labels and a trailing comma. A non-empty 'Formula' column makes it a
calculated read ('Calc 1: Crosstalk = ...'). Sections with the same plate number and repeat are
reads of one Plate. The footer gives protocol, plate type, serial number and the labels' wavelengths.

Kaleido: 'Results for ABS mono 1', 'Barcode: ..., PlateRepeat: 1, WellRepeat: 1', then a labelled
grid; grids under 'Analysis Result' are calculated reads; the footer has 'Software version:,,Kaleido
2.0...', 'Excitation wavelength [nm],,,,450' and plate dimensions. Non-breaking spaces count as spaces.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import hookimpl
from ..errors import UserError
from ..plate import Plate, Read, smallest_shape
from ..registry import Reader
from .text import decode, fit_reads, parse_cell, parse_datetime, read_text, split_cells, split_lines, store_cell


def sniff_perkinelmer(head: bytes, path: Path) -> float:
    text = decode(head[:16384]).replace("\u00a0", " ")
    if re.search(r"^Plate information\s*$", text, re.MULTILINE) and re.search(r"^Plate[,;\t]Repeat[,;\t]", text,
                                                                               re.MULTILINE):
        return 0.9
    if re.search(r"^Results? for .+$", text, re.MULTILINE) and "PlateRepeat" in text:
        return 0.9
    if "Exported with Kaleido" in text or "Exported with EnVision" in text:
        return 0.9
    return 0.0


def _separator(lines: list[str]) -> str:
    for line in lines[:300]:
        m = re.match(r"^(?:Plate([,;\t])Repeat|([,;\t])1\2 ?2\2)", line)
        if m:
            return m.group(1) or m.group(2)
    return ","


def _block(rows: list[list[str]], start: int) -> tuple[list[list[str]], int]:
    """The non-empty rows from start to the next empty one, and the index after them."""
    end = start
    while end < len(rows) and any(c.strip() for c in rows[end]):
        end += 1
    return rows[start:end], end


def _skip_blank(rows: list[list[str]], i: int) -> int:
    while i < len(rows) and not any(c.strip() for c in rows[i]):
        i += 1
    return i


def _grid_cells(block: list[list[str]]) -> list[list[str]]:
    """A grid block without its row and column labels when it has them (row 2 starting 'A')."""
    if len(block) > 1 and block[1] and block[1][0].strip() == "A":
        return [row[1:] for row in block[1:]]
    return block


def _new_read(label: str, cells: list[list[str]], kind: str, shape: tuple[int, int] | None,
              decimal_comma: bool, wavelength: float | None) -> Read:
    rows, columns = len(cells), max((len(r) for r in cells), default=0)
    shape = shape if shape and shape[0] >= rows and shape[1] >= columns else smallest_shape(rows, columns)
    read = Read(label=label, values=np.full(shape, np.nan), kind=kind, wavelength_nm=wavelength)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            store_cell(read, r, c, cell, decimal_comma)
    return read


def _footer(rows: list[list[str]], start: int) -> dict[str, str]:
    """'Key,,,,value' and 'Key:,,value' rows from start on (the first of a repeated key wins)."""
    found: dict[str, str] = {}
    for row in rows[start:]:
        cells = [c.strip() for c in row]
        if len(cells) >= 2 and cells[0] and cells[-1] and not any(cells[1:-1]):
            found.setdefault(cells[0].rstrip(":").strip(), cells[-1].strip('="'))
    return found


def _sections(rows: list[list[str]], title: str) -> dict[str, dict[str, str]]:
    """Blocks after a title line ('Labels:'), each named by its first row: name -> its key/values."""
    out: dict[str, dict[str, str]] = {}
    starts = [k for k, row in enumerate(rows) if row and row[0].strip() == title]
    if not starts:
        return out
    i = _skip_blank(rows, starts[0] + 1)
    while i < len(rows) and rows[i] and len([c for c in rows[i] if c.strip()]) >= 2:
        block, i = _block(rows, i)
        out[block[0][0].strip()] = _footer(block, 0)
        i = _skip_blank(rows, i)
    return out


def _number(text: object) -> float | None:
    value, _ = parse_cell(str(text or "").split(" ")[0])
    return value


# --- EnVision ---------------------------------------------------------------------------------

def _read_envision(rows: list[list[str]], path: Path, decimal_comma: bool) -> list[Plate]:
    footer_start = next((k for k, row in enumerate(rows) if row and row[0].strip() == "Basic assay information"),
                        len(rows))
    footer = _footer(rows, footer_start)
    labels = _sections(rows, "Labels:")
    common: dict[str, object] = {"vendor": "PerkinElmer", "instrument": "EnVision"}
    exported = next((r[0] for r in rows[footer_start:] if r and r[0].startswith("Exported with")), "")
    if exported:
        common["software"] = exported.replace("Exported with", "").replace(" version", "").strip()
    for key, name in (("Serial number", "serial"), ("Serial#", "serial"), ("Nickname", "nickname"),
                      ("Protocol Name", "protocol"), ("Assay ID", "assay_id"),
                      ("Name of the plate type", "plate_type")):
        if footer.get(key) and name not in common:
            common[name] = footer[key]
    if footer.get("Assay Started"):
        common["datetime"] = parse_datetime(footer["Assay Started"]) or footer["Assay Started"]
    shape = None
    if footer.get("Number of rows", "").isdigit() and footer.get("Number of columns", "").isdigit():
        shape = (int(footer["Number of rows"]), int(footer["Number of columns"]))

    plates: dict[tuple[str, str], Plate] = {}
    i = 0
    while i < footer_start:
        if not rows[i] or rows[i][0].strip() != "Plate information":
            i += 1
            continue
        header = [c.strip() for c in rows[i + 1]] if i + 1 < len(rows) else []
        info = dict(zip(header, [c.strip() for c in rows[i + 2]])) if i + 2 < len(rows) else {}
        if "Plate" not in info:
            raise UserError("a 'Plate information' section has no Plate column and value row", file=path,
                            where=f"line {i + 1}")
        i = _skip_blank(rows, i + 3)
        while i < footer_start and rows[i][0].strip() in ("Background information", "Results", "Calculated results"):
            if rows[i][0].strip() == "Background information":
                i = _block(rows, i)[1]  # its title, header and rows, up to the blank line
            else:
                i += 1  # a 'Results' title right above the grid
            i = _skip_blank(rows, i)
        block, i = _block(rows, i)
        if not block or block[0][0].strip() == "Plate information":
            raise UserError(f"plate {info['Plate']} has no data grid", file=path, where=f"line {i + 1}")
        formula = info.get("Formula", "")
        if formula:
            label, kind, wavelength = formula.split("=")[0].strip(), "calculated", None
        else:
            label = re.sub(r"\(\d+\)\s*$", "", info.get("Label", "")).strip()
            settings = labels.get(label, {})
            text = settings.get("Emission wavelength") or settings.get("Excitation wavelength") or ""
            at = re.search(r"@\s*(\d{3,4})\b", label)
            wavelength = _number(text) or (float(at.group(1)) if at else None)
            kind = "endpoint"
        key = (info["Plate"], info.get("Repeat", "1") or "1")
        plate = plates.get(key)
        if plate is None:
            plate = plates[key] = Plate(name=f"Plate {key[0]}", rows=0, columns=0, metadata=dict(common))
        for name, value in _plate_info(info).items():
            plate.metadata.setdefault(name, value)
        plate.reads.append(_new_read(label or f"Read {len(plate.reads) + 1}", _grid_cells(block), kind, shape,
                                     decimal_comma, wavelength))
    if not plates:
        raise UserError("no 'Plate information' section with a data grid", file=path)
    return _finish(plates)


def _plate_info(info: dict[str, str]) -> dict[str, object]:
    meta: dict[str, object] = {}
    barcode = info.get("Barcode", "").strip('="')
    if barcode:
        meta["barcode"] = barcode
    if info.get("Measurement date"):
        meta["measured"] = parse_datetime(info["Measurement date"]) or info["Measurement date"]
    temperature = _number(info.get("Chamber temperature at start"))
    if temperature is not None:
        meta["temperature_c"] = temperature
    return meta


# --- Kaleido ----------------------------------------------------------------------------------

def _read_kaleido(rows: list[list[str]], path: Path, decimal_comma: bool) -> list[Plate]:
    basic = next((k for k, row in enumerate(rows) if row and row[0].strip() == "Measurement Basic Information"),
                 len(rows))
    footer = _footer(rows, basic)
    techs = _kaleido_measurements(rows, basic)
    common: dict[str, object] = {"vendor": "Revvity"}
    for key, name in (("Software version", "software"), ("Instrument Serial Number", "serial"),
                      ("Protocol Name", "protocol"), ("Plate Type Name", "plate_type"),
                      ("Sequence executed by", "user"), ("Measurement Started", "datetime")):
        if footer.get(key):
            common[name] = footer[key]
    shape = None
    if footer.get("Number of rows", "").isdigit() and footer.get("Number of columns", "").isdigit():
        shape = (int(footer["Number of rows"]), int(footer["Number of columns"]))

    plates: dict[tuple[str, str], Plate] = {}
    info: dict[str, str] = {}
    label, kind, i = "", "endpoint", 0
    while i < basic:
        first = rows[i][0].strip() if rows[i] else ""
        if first.startswith(("Results for ", "Result for ")):
            label, kind = first.split(" for ", 1)[1].strip(), "endpoint"
        elif first.startswith("Analysis Result"):
            kind = "calculated"
        elif first.startswith("Barcode:"):
            info = {k.strip(): v.strip() for k, _, v in (c.partition(":") for c in rows[i]) if k.strip()}
        elif len(rows[i]) > 3 and not first and [c.strip() for c in rows[i][1:4]] == ["1", "2", "3"]:
            block, i = _block(rows, i)
            key = (info.get("Barcode", ""), info.get("PlateRepeat", "1"))
            plate = plates.get(key)
            if plate is None:
                plate = plates[key] = Plate(name=key[0] or path.stem, rows=0, columns=0, metadata=dict(common))
                if key[0]:
                    plate.metadata["barcode"] = key[0]
            settings = techs.get(label, {})
            text = settings.get("Emission wavelength [nm]") or settings.get("Excitation wavelength [nm]") or ""
            wavelength = _number(text) if kind == "endpoint" else None
            plate.reads.append(_new_read(label or f"Read {len(plate.reads) + 1}", _grid_cells(block), kind, shape,
                                         decimal_comma, wavelength))
            continue
        elif first and kind == "calculated":
            label = first
        i += 1
    if not plates:
        raise UserError("no 'Results for ...' section with a plate grid", file=path)
    return _finish(plates)


def _kaleido_measurements(rows: list[list[str]], start: int) -> dict[str, dict[str, str]]:
    """'Tech,,,,ABS mono 1' blocks of the Measurements section: technique name -> its settings."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for row in rows[start:]:
        cells = [c.strip() for c in row]
        if not cells or not cells[0]:
            continue
        if cells[0] == "Tech" and cells[-1]:
            current = out.setdefault(cells[-1], {})
        elif current is not None and len(cells) > 1 and cells[-1]:
            current.setdefault(cells[0], cells[-1])
    return out


def _finish(plates: dict[tuple, Plate]) -> list[Plate]:
    """Plates keyed (plate, repeat): repeats named apart, each given its shape and wavelengths."""
    repeats = len({key[1] for key in plates}) > 1
    for (_, repeat), plate in plates.items():
        if repeats:
            plate.name = f"{plate.name} repeat {repeat}"
        _fit(plate)
    return list(plates.values())


def _fit(plate: Plate) -> None:
    """Give the plate the largest of its reads' shapes and its wavelengths."""
    plate.rows, plate.columns = fit_reads(plate.reads)
    plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})


def read_perkinelmer(path: Path) -> list[Plate]:
    lines = split_lines(read_text(path).replace("\u00a0", " "))
    sep = _separator(lines)
    rows = split_cells(lines, sep)
    if any(line.strip() == "Plate information" for line in lines):
        return _read_envision(rows, path, sep != ",")
    if any(line.startswith(("Results for ", "Result for ")) for line in lines):
        return _read_kaleido(rows, path, sep != ",")
    raise UserError("neither an EnVision ('Plate information') nor a Kaleido ('Results for ...') export",
                    file=path)


@hookimpl
def register_readers(register):
    register(Reader(
        name="perkinelmer",
        title="PerkinElmer/Revvity EnVision and Kaleido CSV",
        sniff=sniff_perkinelmer,
        read=read_perkinelmer,
        extensions=(".csv",),
        instruments=("EnVision", "EnSight", "VICTOR Nivo"),
    ))
