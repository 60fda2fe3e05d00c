"""Fallback reader: any plate-reader export the optional `allotropy` library converts to Allotrope ASM.

Install with `pip install 'assayrunner[allotropy]'`. allotropy is imported only when this reader
reads a file (importing it takes seconds). Its sniff scores 0.2 for a .csv/.txt/.xlsx file that names
software allotropy knows or looks like plate data, when allotropy is installed (0 otherwise), so native
readers win and unrelated files stay unrecognised; `--format allotropy` forces it.

The ASM 'plate reader aggregate document' becomes Plates: one per 'well plate identifier', a read
per detection type and wavelength (data cubes become kinetic reads), ASM error documents become
flags, and calculated data that comes from a single well becomes a calculated read.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import numpy as np

from .. import cells as C
from .. import hookimpl
from ..errors import FormatMismatch, UserError
from ..plate import PLATE_SHAPES, Plate, Read, parse_well, smallest_shape, well_name
from ..registry import Reader
from ..source import Source

INSTALL = "pip install 'assayrunner[allotropy]'"
_EXTENSIONS = (".csv", ".txt", ".xlsx")
_VALUE_KEYS = ("absorbance", "fluorescence", "luminescence")
#: Words in exports of the plate-reader software allotropy converts.
_SIGNS = ("Gen5", "##BLOCKS", "SoftMax", "Raw Data", "Plate information", "EnVision", "Kaleido", "Magellan",
          "Well positions", "SkanIt", "Methodical Mind", "Discovery Workbench", "MSD", "SMART Control", "Lunatic",
          "Stunner", "Mabtech", "ImmunoSpot")
_SIGN = re.compile("|".join(map(re.escape, _SIGNS)))
_GRID_ROW = re.compile(r"^[\"']?A[\"']?[,;\t] *[-+]?\d", re.MULTILINE)
_WELL = re.compile(r"\b[A-P]0?(?:[1-9]|1\d|2[0-4])\b")


@cache
def allotropy_installed() -> bool:
    try:
        return importlib.util.find_spec("allotropy") is not None
    except (ImportError, ValueError):
        return False


def sniff_allotropy(source: Source) -> float:
    """0.2 for a .csv/.txt/.xlsx that names software allotropy knows or looks like plate data; 0 otherwise."""
    if source.path.suffix.lower() not in _EXTENSIONS or not allotropy_installed():
        return 0.0
    if source.kind == "workbook":
        try:
            text = source.workbook_text or " ".join(C.text(c) for sheet in source.sheets[:1]
                                                    for row in sheet.rows[:100] for c in row)
        except UserError:  # a damaged sheet in a zip that opens: nothing allotropy could read either
            return 0.0
    elif source.kind == "text":
        text = "\n".join(source.head_lines(400))
    else:
        return 0.0
    if _GRID_ROW.search(text) or _SIGN.search(text) or len(_WELL.findall(text)) >= 24:  # cheapest first
        return 0.2
    return 0.0


def _vendors(path: Path) -> list:
    """allotropy's plate-reader vendors for this extension, the ones whose sniff accepts the file first."""
    from allotropy.named_file_contents import NamedFileContents
    from allotropy.parser_factory import Vendor

    extension = path.suffix.lower().lstrip(".")
    candidates = []
    for vendor in Vendor:
        try:
            if (vendor.technique == "Plate Reader" and extension in vendor.supported_extensions
                    and not vendor.name.startswith("EXAMPLE")):
                candidates.append(vendor)
        except Exception:  # a vendor allotropy cannot describe is not a candidate
            continue
    sniffed = []
    with open(path, "rb") as handle:
        contents = NamedFileContents(handle, str(path))
        for vendor in candidates:
            handle.seek(0)
            try:
                if type(vendor.get_parser()).sniff(contents):
                    sniffed.append(vendor)
            except Exception:
                continue
    return sniffed + [v for v in candidates if v not in sniffed]


def read_allotropy(source: Source) -> list[Plate]:
    path = source.path
    try:
        from allotropy import __about__
        from allotropy.to_allotrope import allotrope_from_file
    except ImportError:
        raise UserError(f"the allotropy reader needs the allotropy library: {INSTALL}", file=path) from None
    errors = []
    for vendor in _vendors(path):
        try:
            asm = allotrope_from_file(str(path), vendor)
        except Exception as exc:  # allotropy raises many kinds of errors for a file it cannot convert
            errors.append(f"{vendor.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        return asm_to_plates(asm, path, f"allotropy {__about__.__version__} ({vendor.name})")
    detail = "; ".join(errors[:2]) or "no allotropy plate-reader parser takes this file type"
    raise FormatMismatch(f"allotropy could not convert this file as a plate-reader export ({detail})", file=path)


def _flag(md: dict) -> tuple[str | None, str]:
    """The flag of an ASM error on the measured value itself (errors on calculated features are not ours)."""
    for error in md.get("error aggregate document", {}).get("error document", []):
        if str(error.get("error feature", "")).lower() in (*_VALUE_KEYS, ""):
            text = str(error.get("error", "")).strip()
            return C.parse(text)[1] or "invalid", text
    return None, ""


def _label(md: dict) -> tuple[str, float | None]:
    control = (md.get("device control aggregate document", {}).get("device control document") or [{}])[0]
    detection = str(control.get("detection type") or "").strip() or \
        str(control.get("device type") or "").replace(" detector", "").strip() or \
        next((k for k in _VALUE_KEYS if k in md), "read")
    wavelength = (control.get("detector wavelength setting") or {}).get("value")
    wavelength = float(wavelength) if isinstance(wavelength, (int, float)) else None
    label = detection[:1].upper() + detection[1:]
    return (f"{label} {wavelength:g} nm" if wavelength else label), wavelength


def asm_to_plates(asm: dict, path: Path, converter: str) -> list[Plate]:
    aggregate = asm.get("plate reader aggregate document")
    if not isinstance(aggregate, dict):
        raise FormatMismatch("allotropy's output is not a plate-reader document", file=path)
    meta = _system_metadata(aggregate, converter)
    cells: dict[str, dict[str, dict]] = {}  # plate -> label -> {'wells': [...], ...}
    sources: dict[str, tuple[str, int, int]] = {}
    plate_meta: dict[str, dict] = {}
    for document in aggregate.get("plate reader document", []):
        group = document.get("measurement aggregate document", {})
        seen: dict[str, int] = {}
        for md in group.get("measurement document", []):
            sample = md.get("sample document", {})
            try:
                row, column = parse_well(str(sample.get("location identifier", "")))
            except ValueError:
                continue
            plate = str(sample.get("well plate identifier") or path.stem)
            label, wavelength = _label(md)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label} #{seen[label]}"
            entry = cells.setdefault(plate, {}).setdefault(label, {"wavelength": wavelength, "wells": []})
            cube = next((v for k, v in md.items() if k.endswith("data cube") and isinstance(v, dict)), None)
            flag, text = _flag(md)
            if cube is not None:
                entry["times"] = cube["data"]["dimensions"][0]
                entry["wells"].append((row, column, cube["data"]["measures"][0], flag, text))
            else:
                value = next((md[k].get("value") for k in _VALUE_KEYS if isinstance(md.get(k), dict)), None)
                entry["wells"].append((row, column, None if flag else value, flag, text))
            sources[str(md.get("measurement identifier"))] = (plate, row, column)
            _group_metadata(plate_meta.setdefault(plate, {}), group, document, md)
    _calculated(aggregate, sources, cells)
    if not cells:
        raise FormatMismatch("allotropy converted the file but found no wells in it", file=path)
    return [_plate(name, labels, {**meta, **plate_meta.get(name, {})}) for name, labels in cells.items()]


def _calculated(aggregate: dict, sources: dict, cells: dict) -> None:
    """Calculated data whose sources all lie in one well becomes a calculated read of that plate."""
    documents = aggregate.get("calculated data aggregate document", {}).get("calculated data document", [])
    for doc in documents:
        ids = [s.get("data source identifier") for s in
               doc.get("data source aggregate document", {}).get("data source document", [])]
        places = {sources.get(str(i)) for i in ids}
        if len(places) != 1 or None in places:
            continue
        plate, row, column = places.pop()
        name = str(doc.get("calculated data name") or "Calculated")
        entry = cells[plate].setdefault(name, {"wavelength": None, "wells": [], "calculated": True})
        if entry.get("calculated"):
            entry["wells"].append((row, column, (doc.get("calculated result") or {}).get("value"), None, ""))


def _plate(name: str, labels: dict, meta: dict) -> Plate:
    wells = [w for entry in labels.values() for w in entry["wells"]]
    shape = smallest_shape(max(w[0] for w in wells) + 1, max(w[1] for w in wells) + 1)
    count = meta.pop("well_count", None)
    if count in PLATE_SHAPES and PLATE_SHAPES[count][0] >= shape[0] and PLATE_SHAPES[count][1] >= shape[1]:
        shape = PLATE_SHAPES[count]
    reads = []
    for label, entry in labels.items():
        times = entry.get("times")
        kind = "calculated" if entry.get("calculated") else ("kinetic" if times is not None else "endpoint")
        values = np.full((*shape, len(times)) if times is not None else shape, np.nan)
        read = Read(label=label, values=values, kind=kind, wavelength_nm=entry["wavelength"],
                    times_s=np.array(times, dtype=float) if times is not None else None)
        for row, column, value, flag, text in entry["wells"]:
            if isinstance(value, list):
                read.values[row, column, :len(value)] = [_number(v) for v in value[:values.shape[2]]]
            else:
                read.values[row, column] = _number(value)
            if flag:
                read.flags[well_name(row, column)] = flag
                read.texts[well_name(row, column)] = text
        reads.append(read)
    meta["wavelengths_nm"] = sorted({r.wavelength_nm for r in reads if r.wavelength_nm})
    return Plate(name=name, rows=shape[0], columns=shape[1], reads=reads, metadata=meta)


def _number(value: object) -> float:
    number = C.number(value)
    return np.nan if number is None else number


def _system_metadata(aggregate: dict, converter: str) -> dict:
    data = aggregate.get("data system document", {})
    device = aggregate.get("device system document", {})
    meta = {"converter": converter}
    for key, name, doc in (("software name", "software", data), ("software version", "software_version", data),
                           ("model number", "instrument", device), ("equipment serial number", "serial", device),
                           ("product manufacturer", "vendor", device)):
        value = doc.get(key)
        if value is not None and str(value).strip().lower() not in ("", "n/a", "na", "unknown", "none"):
            meta[name] = str(value)
    return meta


def _group_metadata(meta: dict, group: dict, document: dict, md: dict) -> None:
    if "datetime" not in meta and group.get("measurement time"):
        meta["datetime"] = str(group["measurement time"])
    count = (group.get("plate well count") or {}).get("value")
    if isinstance(count, (int, float)):
        meta.setdefault("well_count", int(count))
    if document.get("analyst"):
        meta.setdefault("user", str(document["analyst"]))
    temperature = (md.get("compartment temperature") or {}).get("value")
    if isinstance(temperature, (int, float)) and temperature == temperature:
        meta.setdefault("temperature_c", float(temperature))


@hookimpl
def register_readers(register):
    register(Reader(
        name="allotropy",
        title=f"Any plate-reader export allotropy converts (fallback; needs {INSTALL})",
        sniff=sniff_allotropy,
        read=read_allotropy,
        extensions=_EXTENSIONS,
        instruments=("whatever allotropy supports: Gen5, SoftMax Pro, MARS, EnVision, Kaleido, Magellan, SkanIt, ...",),
    ))
