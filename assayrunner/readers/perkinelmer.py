"""PerkinElmer / Revvity plate-reader CSV: EnVision and EnSpire Workstation, Kaleido (EnSight).

EnVision / EnSpire: each measured or calculated plate is a 'Plate information' section (a header
row and, usually, a row for the plate), optional 'Background information', then a title and a
grid: EnVision writes 16 x 24 values with no labels, EnSpire labels rows A.. and columns 01..
A 'Formula' in the section, or a 'Calculated results: Calc 1: ...' title, makes a calculated
read. EnSpire titles say what a grid is: 'Signal for Meas A' and 'Results for Meas A' are
measurements, 'Saturated for Meas A' marks saturated wells (SAT) and is kept as its own read,
'Measurement time Meas A' gives each well's read time (a layer of the signal read).

Kaleido: 'Results for ABS mono 1' (or 'Result for ...'), a barcode line, then a labelled grid;
grids under 'Analysis Result' are calculated, the 'Platemap' grid is the layout, not data.

The footer gives software, serial number, protocol, plate type and each label's wavelengths
('Excitation wavelength,,,,530 nm'). A footer plate size that contradicts the grid (Kaleido 3.5
writes rows and columns swapped) yields to the grid, and the metadata says so.
"""

from __future__ import annotations

import re

import numpy as np

from .. import cells as C
from .. import hookimpl
from .. import reads as R
from .. import tables as T
from ..errors import FormatMismatch
from ..plate import Plate, well_name
from ..registry import Reader
from ..source import Sheet, Source

_SECTION = "Plate information"
_FOOTERS = ("Basic assay information", "Measurement Basic Information", "Measurement Information",
            "Protocol information", "Exported with")
# the sniff's patterns (the first three tried only when the words beside them are in the text)
_SECTION_LINE = re.compile(r"^Plate information\s*$", re.MULTILINE)
_PLATE_REPEAT = re.compile(r"^Plate[,;\t]Repeat[,;\t]", re.MULTILINE)
_RESULTS_FOR = re.compile(r"^Results? for .+$", re.MULTILINE)
_EXPORTED_WITH = re.compile(r"Exported with (EnVision|EnSpire)")


def sniff_perkinelmer(source: Source) -> float:
    if source.kind == "text":
        text = "\n".join(source.head_lines(400))
    elif source.head_sheet is not None:  # the same layout saved as a workbook
        text = "\n".join(",".join(C.text(c) for c in row[:24]) for row in source.head_sheet.rows)
    else:
        return 0.0
    text = text.replace("\u00a0", " ")
    if "Plate information" in text and _SECTION_LINE.search(text) and _PLATE_REPEAT.search(text):
        return 0.9
    if ("PlateRepeat" in text or "Barcode" in text) and _RESULTS_FOR.search(text):
        return 0.9
    if "Kaleido" in text or "EnSight Results from" in text or _EXPORTED_WITH.search(text):
        return 0.9
    return 0.0


def _footer_start(sheet: Sheet) -> int:
    for k, row in enumerate(sheet.rows):
        first = C.text(row[0]) if row else ""
        if first.startswith(_FOOTERS):
            return k
    return len(sheet.rows)


def _footer(sheet: Sheet, start: int) -> dict[str, str]:
    """'Key,,,,value' and 'Key:,,value' rows from start on (the first of a repeated key wins)."""
    found: dict[str, str] = {}
    for row in sheet.rows[start:]:
        filled = [(k, C.text(c)) for k, c in enumerate(row) if not C.is_blank(c)]
        if len(filled) >= 2 and filled[0][0] == 0:
            found.setdefault(filled[0][1].rstrip(":").strip(), filled[-1][1].strip('="'))
    return found


def _operation_settings(sheet: Sheet, start: int, labels: set[str]) -> dict[str, dict[str, str]]:
    """Per measurement ('Tech', 'Operation', 'Meas' lines, or a line naming a label): its settings rows."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for row in sheet.rows[start:]:
        filled = [C.text(c) for c in row if not C.is_blank(c)]
        if len(filled) < 2:
            continue
        key = filled[0].rstrip(":").strip()
        if key in labels:
            current = out.setdefault(key, {})
        elif key in ("Tech", "Operation", "Meas"):
            current = out.setdefault(filled[-1], {})
        elif current is not None:
            current.setdefault(key, filled[-1])
        elif key in ("Excitation wavelength", "Emission wavelength", "Measurements"):
            out.setdefault("", {}).setdefault(key, filled[-1])
    return out


def _sections(sheet: Sheet, stop: int) -> list[tuple[int, dict[str, str]]]:
    """Each 'Plate information' row and the plate's fields (header row zipped with the value row)."""
    out = []
    for i in range(stop):
        row = sheet.rows[i]
        if row and C.text(row[0]) == _SECTION:
            header = [C.text(c) for c in sheet.rows[i + 1]] if i + 1 < stop else []
            values = sheet.rows[i + 2] if i + 2 < stop else []
            info = {}
            if values and C.text(values[0]).isdigit():
                info = {h: C.text(v).strip('="') for h, v in zip(header, values) if h}
            out.append((i, info))
    return out


def _title(sheet: Sheet, top: int, floor: int) -> str:
    """The grid's title: the nearest single-text line above it (not a key/value or table line)."""
    for k in range(top - 1, max(floor - 1, top - 6), -1):
        filled = [C.text(c) for c in sheet.rows[k] if not C.is_blank(c)]
        if filled and C.text(sheet.rows[k][0]) in (_SECTION, "Background information"):
            return ""
        if len(filled) == 1:
            return " ".join(sheet.line_text(k).replace("\u00a0", " ").split()).strip(",; ")
    return ""


def _classify(title: str, info: dict[str, str]) -> tuple[str, str]:
    """(kind, label) of a grid from its title and its section's fields."""
    lower = title.lower()
    if info.get("Formula"):
        return "calculated", info["Formula"].split("=")[0].strip()
    if lower.startswith("calculated results"):
        return "calculated", title.split(":", 1)[1].split("=")[0].strip() if ":" in title else title
    if lower.startswith("analysis result"):
        return "calculated", title
    if lower.startswith("platemap"):
        return "layout", title
    if lower.startswith(("results for ", "result for ")) and not info:
        return "endpoint", title.split(" for ", 1)[1].strip()
    label = re.sub(r"\(\d+\)\s*$", "", info.get("Label", "")).strip()
    return "endpoint", title or label


def _wavelengths(label: str, settings: dict[str, dict[str, str]]) -> dict:
    """wavelength_nm / excitation_nm / mode for a label: the footer's wavelengths, else its filters
    ('Exc. filter: BFP 450', 'Ems. filter: APC 665', '2nd ems. filter' for channel 2), else '@ 562'."""
    mine = settings.get(label) or next((v for k, v in settings.items()
                                        if k and re.search(rf"(?<!\w){re.escape(k)}(?!\w)", label)), None) or \
        settings.get("", {})

    def nm(*keys: str, tail: bool = False) -> float | None:
        for key in keys:
            for k, v in mine.items():
                if k.lower().startswith(key):
                    m = re.search(r"(\d{3,4})(?:[.,]\d+)?\s*(?:nm)?\s*$" if tail else r"^(\d{3,4}(?:[.,]\d+)?)", v.strip())
                    if m and R.is_wavelength(float(m[1].replace(",", "."))):
                        return float(m[1].replace(",", "."))
        return None

    second = "channel 2" in label.lower()
    emission = nm("emission wavelength") or nm("2nd ems. filter" if second else "ems. filter", tail=True)
    excitation = nm("excitation wavelength") or nm("exc. filter", tail=True)
    at = re.search(r"@\s*(\d{3,4})\b", label)
    if emission and excitation:
        return {"wavelength_nm": emission, "excitation_nm": excitation, "mode": "fluorescence"}
    absorbance = "abs" in label.lower() or bool(re.match(r"^(results for )?a\d{3}", label.lower()))
    wavelength = emission or excitation or (float(at[1]) if at else None) or (
        R.wavelength_in(label) if absorbance else None)
    return {"wavelength_nm": wavelength, "mode": "absorbance" if absorbance else None}


def _grids(sheet: Sheet, stop: int) -> list[tuple[int, tuple[int, int], dict, list[tuple[int, int]]]]:
    """(top row, extent, cells, covered wells) of every grid, labelled or bare, before the footer."""
    found = []
    for grid in T.grid_chunks(T.find_grids(sheet, 0, stop)):
        cells = grid.layers.get("") or next(iter(grid.layers.values()))
        found.append((grid.top, grid.extent, cells, grid.wells))
    taken = {r for g in found for r in range(g[0], g[0] + g[1][0] + 1)}
    for block in T.find_blocks(sheet, 0, stop):
        if block.top in taken:
            continue
        rows, columns = block.shape
        cells = {(r, c): block.cells[r][c] for r in range(rows) for c in range(columns)}
        found.append((block.top, (rows, columns), cells, list(cells)))
    return sorted(found, key=lambda g: g[0])


def _plates(source: Source, sheet: Sheet) -> list[Plate]:
    stop = _footer_start(sheet)
    footer = _footer(sheet, stop)
    sections = _sections(sheet, stop)
    labels = {re.sub(r"\(\d+\)\s*$", "", info.get("Label", "")).strip() for _, info in sections} - {""}
    settings = _operation_settings(sheet, stop, labels)
    grids = _grids(sheet, stop)
    if not grids:
        return []
    common = _common_metadata(sheet, footer)
    extent = (max(g[1][0] for g in grids), max(g[1][1] for g in grids))
    declared = _declared(footer)
    shape = R.fitting_shape(extent, declared)
    if declared and declared != shape:
        common["plate_size_note"] = (f"the footer says {declared[0]} rows x {declared[1]} columns; "
                                     f"the data are {extent[0]} x {extent[1]}")
    known_plates = [info.get("Plate") for _, info in sections if info.get("Plate")]
    plates: dict[tuple[str, str], Plate] = {}
    saturated: dict[tuple[str, str], dict] = {}
    times: dict[tuple[str, str], dict] = {}
    barcode = ""
    for top, _, cells, covered in grids:
        section = max((s for s in sections if s[0] < top), default=(0, {}), key=lambda s: s[0])
        info = section[1]
        title = _title(sheet, top, section[0])
        barcode = _barcode_above(sheet, top, section[0]) or barcode
        kind, label = _classify(title, info)
        if kind == "layout":
            continue
        plate_no = info.get("Plate") or (next((p for s, p in zip(sections, known_plates) if s[0] > top), None)
                                         if known_plates else None) or (known_plates[-1] if known_plates else "")
        key = (plate_no or barcode, info.get("Repeat", "1") or "1")
        plate = plates.get(key)
        if plate is None:
            name = f"Plate {plate_no}" if plate_no else (barcode or source.path.stem)
            plate = plates[key] = Plate(name, shape[0], shape[1], metadata=dict(common))
        plate.metadata.update({k: v for k, v in _plate_info(info, barcode).items() if k not in plate.metadata})
        lower = title.lower()
        if lower.startswith("measurement time"):
            times[key] = cells
            continue
        fields = _wavelengths(label, settings) if kind == "endpoint" else {}
        read = R.endpoint(label or f"Read {len(plate.reads) + 1}", cells, shape, sheet.decimal_comma, kind,
                          source=sheet.where(top), **fields)
        R.mark_unread(read, covered)
        if lower.startswith("saturated"):
            saturated[key] = cells
        plate.reads.append(read)
    for key, plate in plates.items():
        _apply_status(plate, saturated.get(key), times.get(key), shape)
        plate.metadata["wavelengths_nm"] = sorted({r.wavelength_nm for r in plate.reads if r.wavelength_nm})
    repeats = len({k[1] for k in plates}) > 1
    if repeats:
        for (_, repeat), plate in plates.items():
            plate.name = f"{plate.name} repeat {repeat}"
    return [p for p in plates.values() if p.reads]


def _apply_status(plate: Plate, saturated: dict | None, times: dict | None, shape: tuple[int, int]) -> None:
    """'SAT' in the Saturated grid flags the measured reads' wells; read times become a layer."""
    measured = [r for r in plate.reads if r.kind == "endpoint" and not r.label.lower().startswith("saturated")]
    for (r, c), cell in (saturated or {}).items():
        if C.text(cell).upper().startswith("SAT"):
            for read in measured:
                well = well_name(r, c)
                read.values[r, c] = np.nan
                read.flags[well], read.texts[well] = "saturated", C.text(cell)
    if times and measured:
        layer = np.full(shape, np.nan)
        for (r, c), cell in times.items():
            seconds = C.duration(cell)
            if seconds is not None and r < shape[0] and c < shape[1]:
                layer[r, c] = seconds
        measured[0].layers["measurement_time_s"] = layer


def _barcode_above(sheet: Sheet, top: int, floor: int) -> str:
    for k in range(top - 1, max(floor, top - 8) - 1, -1):
        for cell in sheet.rows[k]:
            text = C.text(cell).replace("\u00a0", " ")
            if text.startswith("Barcode:"):
                return text.split(":", 1)[1].strip()
        first = C.text(sheet.rows[k][0]) if sheet.rows[k] else ""
        if first == "Barcode" and k + 1 < top and sheet.rows[k + 1]:
            return C.text(sheet.rows[k + 1][0])
    return ""


def _plate_info(info: dict[str, str], barcode: str) -> dict[str, object]:
    meta: dict[str, object] = {}
    code = info.get("Barcode", "").strip('="') or barcode
    if code:
        meta["barcode"] = code
    if info.get("Measurement date"):
        meta["measured"] = C.parse_datetime(info["Measurement date"]) or info["Measurement date"]
    temperature = C.number(info.get("Chamber temperature at start"))
    if temperature is not None:
        meta["temperature_c"] = temperature
    return meta


def _declared(footer: dict[str, str]) -> tuple[int, int] | None:
    rows = footer.get("Number of rows") or footer.get("Number of Rows") or ""
    columns = footer.get("Number of columns") or footer.get("Number of Columns") or ""
    rows, columns = C.whole_number(rows), C.whole_number(columns)
    return (rows, columns) if rows and columns else None


def _common_metadata(sheet: Sheet, footer: dict[str, str]) -> dict[str, object]:
    exported = next((sheet.line_text(k) for k in range(len(sheet.rows)) if sheet.rows[k] and
                     C.text(sheet.rows[k][0]).startswith("Exported with")), "")
    software = footer.get("Software version") or footer.get("Software Version") or \
        exported.replace("Exported with", "").replace(" version", "").strip()
    kaleido = "kaleido" in software.lower()
    meta: dict[str, object] = {"vendor": "Revvity" if kaleido else "PerkinElmer"}
    if software:
        meta["software"] = software
    if "EnSpire" in software:
        meta["instrument"] = "EnSpire"
    elif "EnVision" in software:
        meta["instrument"] = "EnVision"
    for key, name in (("Serial number", "serial"), ("Serial#", "serial"), ("Instrument Serial Number", "serial"),
                      ("Nickname", "nickname"), ("Protocol Name", "protocol"), ("Assay ID", "assay_id"),
                      ("Name of the plate type", "plate_type"), ("Plate Type Name", "plate_type"),
                      ("Sequence executed by", "user")):
        if footer.get(key) and name not in meta:
            meta[name] = footer[key]
    started = footer.get("Assay Started") or footer.get("Measurement Started") or footer.get("Measurement Date")
    if started:
        meta["datetime"] = C.parse_datetime(started) or started
    return meta


def read_perkinelmer(source: Source) -> list[Plate]:
    sheet = source.sheets[0] if source.sheet_names else None
    plates = _plates(source, sheet) if sheet is not None else []
    if not plates:
        raise FormatMismatch("no plate grid under a 'Plate information' or 'Results for ...' section",
                             file=source.path)
    return plates


@hookimpl
def register_readers(register):
    register(Reader(
        name="perkinelmer",
        title="PerkinElmer/Revvity EnVision, EnSpire and Kaleido CSV (EnSight)",
        sniff=sniff_perkinelmer,
        read=read_perkinelmer,
        extensions=(".csv", ".xlsx"),
        instruments=("EnVision", "EnSpire", "EnSight (Kaleido)"),
    ))
