"""The hemolysis computation: blank, calibration line, back-calculation, % hemolysis per condition.

    A' = A540 - mean(blank)                   calibration: A' = m C + b over every calibrator well
    C  = (A' - b) / m                         per well, mg/mL in the well
    Hb_sup = mean C(wells) x supernatant_dilution;  net = with blood - without blood
    TBHd = mean C(TBHd) x tbhd_dilution;      PFH = mean C(PFH) x pfh_dilution
    % hemolysis = 100 x net x (tube_volume / blood_volume) / TBHd;  adjusted = % - max(%(negative control), 0)

What is reported is never past the data (NCL.md 1.6): with-blood wells below CAL6 give "< LLOQ"
(the LLOQ as % hemolysis of this run, classed only when that whole range is in one class),
above CAL1 or all saturated "> ULOQ, re-test diluted" (no class); a no-blood signal above
flag_interference_fraction of the with-blood signal is "not interpretable (interference)"; a
negative net is reported as 0 (flag negative-net, the signed value kept in the details); a value
above flag_above_percent (physically impossible) is not classed. Blood whose hemoglobin (TBHd) is not a
positive number (its wells saturated or excluded, or at or below the blank) gives no % hemolysis: those
results are NaN with the flag tbhd-unusable, and the TBHd check fails the run.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from assayrunner import (ABOVE_ULOQ, BELOW_LLOQ, INTERFERENCE, NEGATIVE_NET, NOT_COMPUTABLE, REPLICATE_CV,
                         SATURATED, AssayInput, AssayResult, FitRecord, Result, blank_mean, cv_percent, fit_standards,
                         line_through, mean, parse_well, percent_difference, range_flag, required_controls,
                         required_group, well_flags)

from .parameters import Parameters

UNIT_HB = "mg/mL"
NEEDED_BY = "the hemolysis assay"
NOT_INTERPRETABLE = "not interpretable (interference)"
RETEST_DILUTED = "> ULOQ, re-test diluted"
ABOVE_100 = "not interpretable (above flag_above_percent: interference or a dilution error)"
NO_TBHD = "not interpretable (no usable TBHd)"
#: The flag of a % hemolysis that cannot be computed: the blood's hemoglobin (TBHd) is not a positive number.
TBHD_UNUSABLE = "tbhd-unusable"


@dataclass
class Condition:
    """One control or sample: its wells, hemoglobin with and without blood, % hemolysis computed (signed) and
    reported (censored outside the calibrators), flags; adjusted and interpretation once the NC is known."""

    name: str
    sample: str
    role: str
    wells: list[str]
    wells_without_blood: list[str]
    in_well: list[float]
    in_well_without_blood: list[float]
    usable_wells: int
    excluded_wells: dict[str, str]
    cv_percent: float
    supernatant_with_blood: float
    supernatant_without_blood: float
    percent_with_blood: float
    percent_without_blood: float
    net: float
    percent: float
    qualifier: str | None
    reported_net: float
    reported_percent: float
    flags: list[str]
    adjusted: float = math.nan
    interpretation: str | None = None

    def to_dict(self) -> dict:
        """Every field in order, lists and dicts copied (what dataclasses.asdict gives for these fields)."""
        return {k: v.copy() if type(v) in (list, dict) else v for k, v in vars(self).items()}


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    layout = _Groups(inp)
    blank_group = layout.required("blank")
    plate = _Plate(inp, p.read, layout.every)
    blank = blank_mean(plate.values(blank_group))
    calibrators = layout.with_nominal("calibrator")
    curve = fit_standards([(g, g.spec.nominal) for g in calibrators], plate.values, blank, p.calibration_model,
                          None if p.calibration_weights == "none" else p.calibration_weights, file=inp.protocol.path)
    level_groups = {"calibrator": calibrators, "qc": layout.with_nominal("qc")}
    blood_groups = [(name, layout.required("blood", name), dilution)
                    for name, dilution in (("TBHd", p.tbhd_dilution), ("PFH", p.pfh_dilution))]
    pairs = [(g, layout.without.get((g.role, g.name))) for g in layout.conditions]
    plate.back_calculate(curve, blank, [g for groups in level_groups.values() for g in groups] +
                         [g for _, g, _ in blood_groups] + [g for pair in pairs for g in pair if g is not None])

    levels = {role: {g.name: _level(g, plate.concentrations(g), plate.corrected(g)) for g in groups}
              for role, groups in level_groups.items()}
    lloq, uloq = curve.lloq, curve.uloq
    blood = {name: mean(plate.concentrations(g)) * dilution for name, g, dilution in blood_groups}
    tbhd = blood["TBHd"] if blood["TBHd"] > 0 else math.nan  # % hemolysis needs a positive TBHd
    conditions = [_condition(inp, plate, g, w, tbhd, lloq, uloq) for g, w in pairs]
    by_name = {c.name: c for c in conditions}
    required_controls(inp, by_name, (p.negative_control, p.positive_control))
    nc_percent = max(by_name[p.negative_control].percent, 0.0)
    table = next((t for t in inp.protocol.interpretation if t.metric == "adjusted_percent_hemolysis"), None)
    results = []
    usable = not math.isnan(tbhd)  # else no % hemolysis (NaN, flagged), no class
    for c in conditions:
        c.adjusted = c.reported_percent - nc_percent
        c.interpretation = _judgement(c, nc_percent, table) if usable else NO_TBHD
        q = c.qualifier
        pq, percent_flags = (q, c.flags) if usable else (None, [*c.flags, TBHD_UNUSABLE])
        results += [
            Result(c.sample, "supernatant_hemoglobin", c.reported_net, UNIT_HB, c.flags, qualifier=q),
            Result(c.sample, "percent_hemolysis", c.reported_percent, "%", percent_flags, qualifier=pq),
            Result(c.sample, "adjusted_percent_hemolysis", c.adjusted, "%", percent_flags, c.interpretation,
                   qualifier=pq),
        ]
    results += [Result(name, "hemoglobin", blood[name], UNIT_HB, well_flags(inp, [g], [p.read]) +
                       ([] if math.isfinite(blood[name]) else [NOT_COMPUTABLE])) for name, g, _ in blood_groups]
    metrics = {
        "blank": {"mean_absorbance": blank},
        "calibration": {"r2": curve.fit.r2, **curve.fit.params, "n": curve.fit.n},
        "calibrators": levels["calibrator"],
        "qc": levels["qc"],
        "blood": {name: {"mg_per_ml": value} for name, value in blood.items()},
        "controls": {c.name: _control_metrics(c, p.control_min_wells) for c in conditions if c.role == "control"},
    }
    fit_record = FitRecord.of("calibration", curve.fit, curve.x, curve.y, line_through(curve.fit.predict, 0.0, uloq),
                              x_unit=UNIT_HB, y_label="A540 − blank")
    details = {"blank_mean": blank, "levels": levels, "conditions": [c.to_dict() for c in conditions], "lloq": lloq,
               "uloq": uloq,
               "blood": blood, "lloq_percent": _percent(p, lloq * p.supernatant_dilution, tbhd),
               "uloq_percent": _percent(p, uloq * p.supernatant_dilution, tbhd),
               "negative_control_percent": nc_percent}
    return AssayResult(metrics, results, [fit_record], details)


class _Groups:
    """The layout's groups sorted in one pass: every one, those with blood by role, the controls and samples
    (with blood, in layout order), and the first no-blood (interference) group of each (role, name). Finding
    one that is not there (or a level without its nominal) raises the error of the toolkit function or
    AssayInput method that looks it up."""

    def __init__(self, inp: AssayInput):
        self._inp = inp
        self.every = inp.layout.groups()
        self.by_role: dict[str, list] = {}
        self.conditions: list = []
        self.without: dict[tuple[str, str], object] = {}
        for g in self.every:
            spec = g.spec
            if spec.interference:
                self.without.setdefault((spec.role, g.name), g)
            else:
                self.by_role.setdefault(spec.role, []).append(g)
                if spec.role in ("control", "sample"):
                    self.conditions.append(g)

    def required(self, role: str, name: str | None = None):
        """required_group(inp, role, name): the first group of the role (and name), not interference wells."""
        for g in self.by_role.get(role, ()):
            if name is None or g.name == name:
                return g
        return required_group(self._inp, role, name, needed_by=NEEDED_BY)  # raises: there is none

    def with_nominal(self, role: str) -> list:
        """inp.with_nominal(role): the role's groups (not interference wells), every one with its nominal."""
        groups = self.by_role.get(role, [])
        return groups if all(g.spec.nominal is not None for g in groups) else self._inp.with_nominal(role)


class _Plate:
    """The groups' wells in the protocol's read, read once: raw values, and blank-corrected values and
    concentrations as Python lists of floats. An endpoint read holding every group's wells is taken in one
    indexing and back-calculated in one call; any other read group by group (inp.values), in the order the
    analysis needs them. The curve's inverse (linear or quadratic, the models Parameters allows) is
    elementwise: the same numbers as group by group."""

    def __init__(self, inp: AssayInput, read: str, groups):
        self._inp, self._read = inp, read
        self._array, self._at = _every_group(inp, read, groups)
        self._raw: dict[int, np.ndarray] = {}
        self._corrected: dict[int, list[float]] = {}
        self._concentrations: dict[int, list[float]] = {}

    def values(self, group) -> np.ndarray:
        """The group's wells in the read (flagged wells NaN), as inp.values(group, read) gives them."""
        if self._array is not None:
            return self._array[self._at[group.index]]
        raw = self._raw.get(group.index)
        if raw is None:
            raw = self._raw[group.index] = self._inp.values(group, self._read)
        return raw

    def back_calculate(self, curve, blank: float, groups) -> None:
        """Blank-correct and back-calculate the groups' wells (with one array, every group's) through the curve."""
        if self._array is not None:
            corrected, at = self._array - blank, self._at
        else:
            groups = list({g.index: g for g in groups}.values())
            corrected = np.concatenate([self.values(g) for g in groups]) - blank
            at = _slices((g.index, g.wells) for g in groups)
        concentrations = curve.back_calculate(corrected).tolist()
        corrected = corrected.tolist()
        for index, where in at.items():
            self._corrected[index], self._concentrations[index] = corrected[where], concentrations[where]

    def corrected(self, group) -> list[float]:
        return self._corrected[group.index]

    def concentrations(self, group) -> list[float]:
        return self._concentrations[group.index]


def _slices(groups) -> dict[int, slice]:
    """Group index -> where its wells lie when the groups' wells (given as (index, wells)) are laid end to end."""
    at, start = {}, 0
    for index, wells in groups:
        at[index], start = slice(start, start + len(wells)), start + len(wells)
    return at


def _every_group(inp: AssayInput, read: str, groups) -> tuple[np.ndarray | None, dict[int, slice]]:
    """(values, where): the wells of every group (groups: the layout's) in the read, laid end to end, from one
    indexing of the plate's array (what inp.values(group, read) gives: float64, flagged wells NaN), and where
    each group's lie. (None, {}) unless the read is a float64 endpoint array holding every group's wells."""
    array, flags = inp.reads[read].values, inp.reads[read].flags
    if array.ndim != 2 or array.dtype != np.float64:
        return None, {}
    rows, columns, shape, where, positions = _positions(tuple((g.index, g.wells) for g in groups))
    if not rows.size or shape[0] > array.shape[0] or shape[1] > array.shape[1]:
        return None, {}
    values = array[rows, columns]
    if flags:
        values[[i for well in flags for i in positions.get(well, ())]] = np.nan
    return values, where


@functools.lru_cache(maxsize=64)
def _positions(groups: tuple[tuple[int, tuple[str, ...]], ...]):
    """(rows, columns, shape, where, positions) of a layout's groups given as (index, wells): the plate row and
    column of each well laid end to end (read-only arrays), the least plate shape holding them, where each
    group's wells lie, and each well's positions. A function of the well names alone, worked out once per
    layout and process."""
    wells = [w for _, group_wells in groups for w in group_wells]
    rows, columns = (np.array(v, dtype=np.intp) for v in zip(*map(parse_well, wells))) if wells else \
        (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp))
    rows.setflags(write=False)
    columns.setflags(write=False)
    where = _slices(groups)
    positions: dict[str, list[int]] = {}
    for i, w in enumerate(wells):
        positions.setdefault(w, []).append(i)
    shape = (int(rows.max()) + 1, int(columns.max()) + 1) if wells else (0, 0)
    return rows, columns, shape, where, positions


def _level(group, conc: list[float], corrected: list[float]) -> dict:
    """Back-calculation statistics of one calibrator or QC level."""
    nominal = group.spec.nominal
    m = mean(conc)
    pdft = percent_difference(m, nominal)  # as BackCalculated.of(nominal, conc) has them
    return {"nominal": nominal, "wells": list(group.wells), "absorbance": list(corrected),
            "concentrations": list(conc), "mean": m, "pdft": pdft, "abs_pdft": abs(pdft),
            "cv_percent": cv_percent(conc)}


def _percent(p: Parameters, supernatant: float, tbhd: float) -> float:
    """% hemolysis of a net supernatant hemoglobin (mg/mL); Python floats (no numpy warnings)."""
    return float(100 * supernatant * (p.tube_volume_ul / p.blood_volume_ul) / tbhd)





def _condition(inp: AssayInput, plate: _Plate, group, without, tbhd: float, lloq: float, uloq: float) -> Condition:
    """% hemolysis of one control or sample (without: its no-blood group, or None): the computed (signed)
    value, what is reported, and its flags."""
    p: Parameters = inp.parameters
    with_blood = plate.concentrations(group)
    without_blood = plate.concentrations(without) if without else [0.0]
    in_well = mean(with_blood)
    sup_with = in_well * p.supernatant_dilution
    sup_without = mean(without_blood) * p.supernatant_dilution
    net = sup_with - sup_without
    percent = _percent(p, net, tbhd)
    cv = cv_percent(with_blood)
    flagged = inp.flagged(group, p.read)
    excluded = {**flagged, **(inp.flagged(without, p.read) if without else {})}
    flags = well_flags(inp, [group, without], [p.read])
    if cv > p.flag_cv_percent:
        flags.append(REPLICATE_CV)
    qualifier, reported_net = None, net
    flag = range_flag(in_well, lloq, uloq)  # NaN: no usable with-blood well; all saturated ones are over range
    if flag == NOT_COMPUTABLE and SATURATED in flagged.values():
        flag = ABOVE_ULOQ
    if flag:
        flags.append(flag)
    if flag == ABOVE_ULOQ:
        qualifier, reported_net = ">", uloq * p.supernatant_dilution - max(sup_without, 0.0)
    elif flag == BELOW_LLOQ:
        qualifier, reported_net = "<", lloq * p.supernatant_dilution
    if (sup_without > 0 and sup_without > p.flag_interference_fraction * sup_with) or not math.isfinite(sup_without):
        flags.append(INTERFERENCE)
    if net < 0:
        flags.append(NEGATIVE_NET)
        if qualifier is None:
            reported_net = 0.0
    if percent > p.flag_above_percent:
        flags.append("above-100-percent")
    return Condition(group.name, inp.sample_name(group.name), group.role, list(group.wells),
                     list(without.wells) if without else [], list(with_blood),
                     list(without_blood) if without else [], sum(map(math.isfinite, with_blood)), excluded,
                     cv, sup_with, sup_without, _percent(p, sup_with, tbhd),
                     _percent(p, sup_without, tbhd), net, percent, qualifier, reported_net,
                     _percent(p, reported_net, tbhd), flags)


def _judgement(c: Condition, nc_percent: float, table) -> str | None:
    """The class the protocol allows for a condition, or why it has none (None: the engine classes it)."""
    if INTERFERENCE in c.flags:
        return NOT_INTERPRETABLE
    if "above-100-percent" in c.flags and c.qualifier is None:
        return ABOVE_100
    if c.qualifier == ">":
        return RETEST_DILUTED
    if c.qualifier == "<":
        label = table.classify_interval(-nc_percent, c.adjusted) if table else None
        return label or f"< LLOQ ({c.reported_percent:.3g} %), no class"
    return None


def _control_metrics(c: Condition, min_wells: int) -> dict:
    """A control's % hemolysis for its check; NaN, with a note the check shows, when too few wells are usable."""
    out = {"percent_hemolysis": c.percent, "usable_wells": c.usable_wells}
    if c.excluded_wells:
        left = f"{c.name} judged on {c.usable_wells} of {len(c.wells)} wells"
        why = ", ".join(f"{w} {flag}" for w, flag in c.excluded_wells.items())
        if c.usable_wells < min_wells:
            out["percent_hemolysis"] = math.nan
            out["note"] = f"{left} ({why}); the protocol needs {min_wells} (control_min_wells): not judged"
        else:
            out["note"] = f"{left} ({why})"
    return out
