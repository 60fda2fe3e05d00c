"""What reader software adds to an export, typed: the plate layout it was told and the values it calculated.

    plate.export_layout()   -> ExportLayout | None   (Gen5 'Layout' block; SoftMax Pro group tables)
    plate.vendor_results()  -> VendorResults | None  (Gen5 '[Concentration]'; SoftMax Pro group 'Result')

Both read what the readers left in Plate.metadata and the plate's calculated reads, so any plugin
can use them. printed_half_unit(values) is half a unit of the last digit a read prints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from .plate import Plate, find_well, parse_well, well_name

#: Role of a layout entry by its Gen5 well-ID prefix.
GEN5_ROLES = {"STD": "calibrator", "BLK": "blank", "CTL": "control", "SPL": "sample"}
_GEN5_ID = re.compile(r"^(?P<prefix>STD|BLK|CTL|SPL)(?P<level>\d*)(?::(?P<dilution>\d+))?$")
#: Gen5's interpolated concentrations: '[Concentration]' by default, 'Conc' or 'Concentration' when renamed.
_GEN5_CONC = re.compile(r"^\[?Conc(?:entration)?\]?$", re.IGNORECASE)
_NUMBER = re.compile(r"^[<>]?\s*-?\d+(?:\.(?P<decimals>\d+))?(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True)
class LayoutEntry:
    """One well as the reader software was told: its group, role and, for a standard, its concentration."""

    well: str
    group: str            # the name the run reports it under: 'STD3', 'SPL2', 'Sample 1'
    role: str             # calibrator, blank, control, qc or sample
    concentration: float | None = None   # a standard's (or a control's) nominal concentration
    dilution: float | None = None        # a sample's dilution factor


@dataclass(frozen=True)
class ExportLayout:
    """The plate layout an export carries, and where in the file it came from."""

    software: str
    version: str | None
    source: str
    entries: tuple[LayoutEntry, ...]
    unit: str | None = None

    def to_json(self) -> dict:
        return {"software": self.software, "version": self.version, "source": self.source, "unit": self.unit,
                "entries": [vars(e) for e in self.entries]}


@dataclass(frozen=True)
class VendorValue:
    """One value the software printed: the number (None for a text such as 'Range?'), the text as printed,
    its qualifier ('<' or '>' for '<0.000', '>40.000'), its half-unit precision, and the wells whose mean
    response it interpolates (one well, or a sample's replicates when the software interpolates their average)."""

    well: str
    value: float | None
    text: str
    qualifier: str | None
    half_unit: float
    wells: tuple[str, ...] = ()


@dataclass(frozen=True)
class VendorResults:
    """The software's own in-well concentrations, per well, with what produced them."""

    software: str
    version: str | None
    source: str
    values: dict[str, VendorValue] = field(default_factory=dict)
    curve: dict | None = None   # the software's printed fit, as printed
    blank_subtracted: dict[str, dict[str, VendorValue]] = field(default_factory=dict)  # raw read label -> values

    def to_json(self) -> dict:
        return {"software": self.software, "version": self.version, "source": self.source, "curve": self.curve,
                "values": _values_json(self.values),
                "blank_subtracted": {label: _values_json(v) for label, v in self.blank_subtracted.items()}}


def _values_json(values: dict[str, VendorValue]) -> dict:
    return {w: {**vars(v), "wells": list(v.wells), "half_unit": v.half_unit if math.isfinite(v.half_unit) else None}
            for w, v in values.items()}


def half_unit(text: str) -> float:
    """Half a unit of the last printed digit of a number's text ('0.125' -> 0.0005); 0.5 for an integer."""
    m = _NUMBER.match(text.strip())
    return 0.5 * 10.0 ** -len(m["decimals"] or "") if m else math.nan


def printed_half_unit(values) -> float:
    """Half a unit of the last digit a read prints, from its numbers: the most decimals (at most 6) any of
    them needs (a printer drops trailing zeros); float32 or binary noise (1e-7 relative, and at most a
    hundredth of that digit) is not a digit. NaN when a number carries more: its precision is not known."""
    v = np.unique(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.5
    d = np.arange(7)[:, None]
    fits = np.abs(np.round(v * 10.0 ** d) / 10.0 ** d - v) <= np.minimum(1e-7 * np.abs(v), 0.01 * 10.0 ** -d)
    if not fits.any(axis=0).all():
        return math.nan
    return 0.5 * 10.0 ** -int(fits.argmax(axis=0).max())


def export_layout(plate: Plate) -> ExportLayout | None:
    """The layout the export carries (Gen5 Layout block, SoftMax Pro group tables), else None."""
    meta = plate.metadata
    if isinstance(meta.get("layout"), dict) and meta["layout"].get("Well ID"):
        return _gen5_layout(meta)
    if meta.get("groups"):
        return _softmax_layout(meta)
    return None


def vendor_results(plate: Plate) -> VendorResults | None:
    """The in-well concentrations the software calculated (Gen5 '[Concentration]', SkanIt 'Standard Curve N:
    Conc.', SoftMax Pro 'Result')."""
    meta = plate.metadata
    if meta.get("software") == "Gen5":
        return _gen5_results(plate)
    if str(meta.get("software", "")).startswith("SkanIt"):
        return _skanit_results(plate)
    if meta.get("groups"):
        return _softmax_results(meta)
    return None


def _gen5_layout(meta: dict) -> ExportLayout:
    ids, conc = meta["layout"]["Well ID"], meta["layout"].get("Conc/Dil", {})
    entries = []
    for well, text in ids.items():
        m = _GEN5_ID.match(text.strip())
        if not m:
            continue  # an empty well or an ID kind the quantitation does not use
        prefix = m["prefix"]
        number = _float(conc.get(well, ""))
        group = prefix if prefix == "BLK" else f"{prefix}{m['level']}"
        if prefix == "SPL" and number is not None and 0 < number < 1:
            number = 1 / number  # Gen5 writes a dilution series as 1, 0.5, 0.25: the fraction of the neat sample
        entries.append(LayoutEntry(well, group, GEN5_ROLES[prefix],
                                   concentration=number if prefix in ("STD", "CTL") else None,
                                   dilution=number if prefix == "SPL" else None))
    return ExportLayout("Gen5", meta.get("software_version"), "Gen5 'Layout' block (Well ID, Conc/Dil)",
                        tuple(entries))


def _softmax_version(meta: dict) -> str | None:
    return f"export format {meta['export_version']}" if meta.get("export_version") else None


def _column(names, *starts: str) -> str | None:
    """The first column whose name starts with one of `starts` (case-insensitive)."""
    return next((n for s in starts for n in names if n.lower().startswith(s.lower())), None)


def _softmax_layout(meta: dict) -> ExportLayout:
    entries, unit = [], None
    for group in meta["groups"]:
        rows = group.get("rows", [])
        names = list(dict.fromkeys(k for row in rows for k in row))
        wells = _column(names, "Well")
        if not wells:
            continue
        conc = _column(names, "Conc")
        dilution = next((n for n in names if n.lower() == "dilution" or n.lower().startswith("dilution factor")),
                        None)
        slot = "Sample" if "Sample" in names else names[0]
        role = _softmax_role(group.get("name", ""), conc is not None)
        if role == "calibrator" and conc and " " in conc:
            unit = unit or conc.split(" ", 1)[1]  # 'Concentration ng/mL'
        carried: dict[str, float | None] = {}
        name = group.get("name", "")
        for row in rows:
            well = row.get(wells, "")
            if not find_well(well):
                continue
            name = row.get(slot, "").strip() or name  # continuation lines leave the sample blank
            for key in (conc, dilution):
                if key and key in row:
                    carried[key] = _float(row[key])
            number = carried.get(conc) if conc else None
            entries.append(LayoutEntry(
                well_name(*find_well(well)), name, role,
                concentration=number if role in ("calibrator", "qc") else None,
                dilution=carried.get(dilution) if dilution and role == "sample" else None))
    return ExportLayout("SoftMax Pro", _softmax_version(meta), "SoftMax Pro group tables (" + ", ".join(
        g.get("name", "") for g in meta["groups"]) + ")", tuple(entries), unit)


def _softmax_role(name: str, has_concentration: bool) -> str:
    lower = name.lower()
    if lower.startswith(("std", "standard")):
        return "calibrator"
    if lower.startswith(("blank", "blk")):
        return "blank"
    if "control" in lower or "ctrl" in lower or "loq" in lower:
        return "qc" if has_concentration else "control"
    return "sample"


def _gen5_results(plate: Plate) -> VendorResults | None:
    read = next((r for r in plate.reads if r.kind == "calculated" and _GEN5_CONC.match(r.label.strip())), None)
    blanked = {r.label[len("Blank "):]: _read_values(r, lambda v, h=printed_half_unit(r.values): h)
               for r in plate.reads if r.kind == "calculated" and r.label.startswith("Blank ")}
    if read is None and not blanked:
        return None
    fits = plate.metadata.get("curve_fits") or []
    source = f"Gen5 '{read.label}' results" + (f" ({read.source})" if read.source else "") if read else \
        "Gen5 blank-subtracted reads"
    values = _read_values(read, lambda v, h=printed_half_unit(read.values): h) if read else {}
    return VendorResults("Gen5", plate.metadata.get("software_version"), source, values, fits[0] if fits else None,
                         blanked)


def _skanit_results(plate: Plate) -> VendorResults | None:
    """SkanIt's 'Standard Curve N: Conc. [unit]' read, printed to a number of significant digits."""
    read = next((r for r in plate.reads if r.kind == "calculated" and _SKANIT_CONC.match(r.label)), None)
    if read is None:
        return None
    digits = printed_significant_digits(read.values)
    software = str(plate.metadata.get("software", "SkanIt"))
    version = re.search(r"ver\.\s*([\d.]+)", software)
    where = f" ({read.source})" if read.source else ""
    return VendorResults("SkanIt", version[1] if version else None, f"SkanIt '{read.label}'{where}",
                         _read_values(read, lambda v: 0.5 * 10.0 ** (math.floor(math.log10(abs(v))) - digits + 1)
                                      if v and math.isfinite(digits) else math.nan))


_SKANIT_CONC = re.compile(r"^Standard Curve \d+: Conc\.")


def printed_significant_digits(values) -> float:
    """The most significant digits any of the numbers needs (a printer of 4 significant digits drops trailing
    zeros: 0.391 for 0.3910); NaN when one needs more than 7 (full precision)."""
    finite = np.asarray(values, dtype=float).ravel()
    finite = finite[np.isfinite(finite) & (finite != 0)]
    most = 1
    for v in np.unique(finite):
        d = next((d for d in range(1, 8) if float(f"{v:.{d}g}") == v), None)
        if d is None:
            return math.nan
        most = max(most, d)
    return most


def _read_values(read, half) -> dict[str, VendorValue]:
    """A calculated read as vendor values: its numbers (half-unit precision from half(value)) and the texts
    it kept for flagged cells ('<0.000', '> Max')."""
    values = {}
    for r in range(read.values.shape[0]):
        for c in range(read.values.shape[1]):
            well = well_name(r, c)
            text = read.texts.get(well)
            if text is not None:
                values[well] = _vendor_value(well, text)
            elif math.isfinite(read.values[r, c]):
                v = float(read.values[r, c])
                step = half(v)
                text = f"{v:.{max(0, round(-math.log10(2 * step)))}f}" if math.isfinite(step) and step else repr(v)
                values[well] = VendorValue(well, v, text, None, step, (well,))
    return values


def _softmax_results(meta: dict) -> VendorResults | None:
    values: dict[str, VendorValue] = {}
    used = []
    for group in meta["groups"]:
        rows = group.get("rows", [])
        names = list(dict.fromkeys(k for row in rows for k in row))
        wells = _column(names, "Well")
        formulas = group.get("formulas", {})
        result = next((n for n in names if "interpx" in formulas.get(n, "").lower()), None)
        if not (wells and result):
            continue
        used.append(group.get("name", ""))
        argument = re.search(r",\s*([^()]+?)\s*\)", formulas[result])
        per_well = argument is None or formulas.get(argument[1], "!WellValues").startswith("!WellValues")
        replicates: dict[str, list[str]] = {}
        for row in rows:
            if find_well(row.get(wells, "")):
                replicates.setdefault(row.get(names[0], ""), []).append(well_name(*find_well(row[wells])))
        for row in rows:
            well = find_well(row.get(wells, ""))
            if well and row.get(result, "").strip():
                name = well_name(*well)
                group_wells = (name,) if per_well else tuple(replicates[row.get(names[0], "")])
                values[name] = replace(_vendor_value(name, row[result]), wells=group_wells)
    if not values:
        return None
    return VendorResults("SoftMax Pro", _softmax_version(meta),
                         "SoftMax Pro group results (InterpX columns of " + ", ".join(used) + ")", values)


def _vendor_value(well: str, text: str) -> VendorValue:
    text = text.strip()
    m = _NUMBER.match(text)
    if m and not math.isfinite(float(text.lstrip("<> "))):  # '1e400': printed, but no number to compare
        m = None
    if not m:  # a text; '< Min' / '> Max' (SkanIt) say the side without the bound
        side = text[0] if text[:1] in ("<", ">") else None
        return VendorValue(well, None, text, side, math.nan, (well,))
    qualifier = text[0] if text[0] in "<>" else None
    return VendorValue(well, float(text.lstrip("<> ")), text, qualifier, half_unit(text), (well,))


def _float(text: str) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def layout_from_export(plate: Plate, path=None):
    """The export's layout as a run Layout (from_export = True): one group per name, role and value; a sample
    group's nominal is its dilution, a standard's its concentration. UserError when the export has none."""
    from .errors import UserError
    from .layout import Layout, WellGroup

    found = export_layout(plate)
    if found is None or not found.entries:
        raise UserError("the export carries no plate layout (a Gen5 'Layout' block or SoftMax Pro group tables); "
                        "export it with its layout, or drop --layout-from-export and give the layout in the "
                        "protocol", file=path)
    groups: dict[tuple, list[str]] = {}
    seen: set[str] = set()
    for e in found.entries:
        if e.well in seen:  # a well listed in two group tables: the first one holds
            continue
        seen.add(e.well)
        nominal = e.dilution if e.role == "sample" else e.concentration
        where = f"{found.source}, {e.group} well {e.well}"
        if e.role == "calibrator" and nominal is None:
            raise UserError(f"standard {e.group} has no concentration in the export's layout; enter it in the "
                            "reader software and export again", file=path, where=where)
        if nominal is not None and (nominal < 0 or (e.role == "sample" and nominal == 0)):
            what = "dilution must be above 0" if e.role == "sample" else "concentration must be 0 or more"
            raise UserError(f"{e.group}: the {what}, not {nominal:g}; correct it in the reader software and "
                            "export again", file=path, where=where)
        r, c = parse_well(e.well)
        if r >= plate.rows or c >= plate.columns:
            raise UserError(f"well {e.well} of {e.group} lies outside the {plate.rows} x {plate.columns} plate; "
                            "correct the layout in the reader software and export again", file=path, where=where)
        groups.setdefault((e.group, e.role, nominal), []).append(e.well)
    wells = [WellGroup(wells=",".join(w), role=role, name=name, nominal=nominal, unit=found.unit)
             for (name, role, nominal), w in groups.items()]
    return Layout(rows=plate.rows, columns=plate.columns, wells=wells, from_export=True)
