"""The complement computation (SC5b-9 EIA): blank, standard curve, back-calculation, fold change vs NC.

    OD      = OD450 - OD reference (per well, when the export has the reference read)
    OD'     = OD - mean OD(blank);  curve: OD' on the lot's standard concentrations,
              linear OD' = m C + b (the kit's) or 4PL
    C_well  = curve^-1(OD') per well;  C_plasma = C_well x kit_dilution x incubation_dilution
    C, SD   = mean and SD (n - 1) of C_plasma over a condition's wells
    FC = C / C(NC);  delta = C - C(NC), SD(delta) = sqrt(SD^2 + SD(NC)^2)
    p = Dunnett's test of each condition's C_plasma wells vs NC's (one-way ANOVA over all, NCL.md 3.3)
    activated when FC >= activation_fold_change and p < activation_alpha
    kit controls: mean C_well x kit_control_dilution inside the lot's range;  duplicate %CV on OD

Never past the standards: a condition whose mean in-well concentration lies below the lowest or
above the highest standard is reported "< LLOQ" / "> ULOQ" (the standard x the dilutions, with the
qualifier), flagged "re-assay at another dilution", left out of Dunnett's test, and gets no call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from assayrunner import (P_FLOOR, REASSAY, AssayInput, AssayResult, BackCalculated, FitRecord, Quantified, Result,
                         blank_mean, check_reads, cv_percent, dunnett, fit_standards, flag_not_computable, line_through,
                         matched_groups, mean, reference_corrected, required_controls, required_groups, well_flags)

from .parameters import Parameters

NEEDED_BY = "the complement assay"
ACTIVATED, NOT_ACTIVATED = "activated", "not activated"


@dataclass
class Condition:
    """One control or sample: OD, in-well and plasma concentrations per well, the reported concentration (a bound
    with its qualifier outside the standards), flags; and, once compared with the NC, p, fold change, difference
    and the call (None while not compared: the NC itself)."""

    name: str
    sample: str
    role: str
    wells: list[str]
    od: list[float]
    in_well: list[float]
    in_well_mean: float
    plasma: list[float]
    computed_concentration: float
    concentration: float
    sd: float
    qualifier: str | None
    cv_percent: float
    flags: list[str] = field(default_factory=list)
    p_value: float | None = None
    fold_change: float | None = None
    difference: float | None = None
    difference_sd: float | None = None
    call: str | None = None

    def to_dict(self) -> dict:
        """As stored in the details; without the comparison keys for a condition never compared (the NC)."""
        out = asdict(self)
        if self.p_value is None:
            for key in ("p_value", "fold_change", "difference", "difference_sd", "call"):
                del out[key]
        return out


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    check_reads(inp, "read", "reference_read")
    od, reference = reference_corrected(inp, p.read, p.reference_read)

    blank_group = required_groups(inp, "blank", needed_by=NEEDED_BY)[0]
    blank = blank_mean(od(blank_group), blank_group.wells)
    standards = matched_groups(inp, "calibrator", p.standards, "standards", needed_by=NEEDED_BY)
    curve = fit_standards(standards, od, blank, p.calibration_model, response="OD")
    lloq, uloq = curve.lloq, curve.uloq

    def in_well(group) -> np.ndarray:
        return curve.back_calculate(od(group) - blank)

    levels = {g.name: _standard(g, nominal, od(g), in_well(g), blank) for g, nominal in standards}
    kit = {g.name: _kit_control(inp, g, od(g), in_well(g), rng)
           for g, rng in matched_groups(inp, "qc", p.kit_control_ranges, "kit_control_ranges", needed_by=NEEDED_BY)}
    conditions = [_condition(inp, g, od(g), curve, blank)
                  for g in inp.layout.groups(interference=False) if g.role in ("control", "sample")]
    by_name = {c.name: c for c in conditions}
    required_controls(inp, by_name, (p.negative_control, p.positive_control))
    nc = by_name[p.negative_control]
    others = [c for c in conditions if c is not nc]
    tested = [c for c in others if c.qualifier is None and nc.qualifier is None]
    p_values, anova_p = dunnett([c.plasma for c in tested], nc.plasma, p.dunnett_alternative)
    for c in others:
        c.p_value = p_values[tested.index(c)] if c in tested else math.nan
        compare_to_negative_control(c, nc, p.activation_fold_change, p.activation_alpha)
    metrics = _metrics(cv_percent(od(blank_group)), blank, curve.fit, levels, kit, conditions)
    y_label = " − ".join(_od_label(inp.reads[name]) for name in (p.read, reference) if name)
    fit_record = FitRecord.of("standard curve", curve.fit, curve.x, curve.y, line_through(curve.fit.predict, 0.0, uloq),
                              x_unit=p.unit, y_label=y_label + " − blank")
    details = {
        "blank_mean": blank, "blank_wells": list(blank_group.wells), "blank_od": od(blank_group).tolist(),
        "reference": ({"read": reference, "wavelength_nm": inp.reads[reference].wavelength_nm} if reference else None),
        "plate_reads": [r.label for r in inp.plate.reads], "lloq": lloq, "uloq": uloq, "levels": levels,
        "kit_controls": kit, "conditions": [c.to_dict() for c in conditions], "negative_control": nc.name,
        "dilution": p.kit_dilution * p.incubation_dilution, "anova_p": anova_p,
        "lloq_plasma": lloq * p.kit_dilution * p.incubation_dilution,
        "uloq_plasma": uloq * p.kit_dilution * p.incubation_dilution, "p_floor": P_FLOOR,
    }
    return AssayResult(metrics, _results(p, conditions, nc, kit), [fit_record], details)


def compare_to_negative_control(c: Condition, nc: Condition, threshold: float, alpha: float) -> None:
    """Fold change, difference with propagated SD, and the activation call of one condition (c.p_value set).

    A censored condition's fold change and difference are bounds with its qualifier, and it gets no
    call; against a censored NC nothing is compared.
    """
    if nc.qualifier is not None:
        c.fold_change = c.difference = c.difference_sd = math.nan
        c.call = None
        c.flags.append(f"{nc.name} outside the standards: no comparison")
        return
    c.fold_change = c.concentration / nc.concentration if nc.concentration > 0 else math.nan
    c.difference = c.concentration - nc.concentration
    c.difference_sd = math.sqrt(c.sd ** 2 + nc.sd ** 2) if c.qualifier is None else math.nan
    c.call = None if c.qualifier or not (math.isfinite(c.fold_change) and math.isfinite(c.p_value)) \
        else ACTIVATED if c.fold_change >= threshold and c.p_value < alpha else NOT_ACTIVATED


def _metrics(blank_cv: float, blank: float, curve, levels: dict, kit: dict, conditions: list[Condition]) -> dict:
    """What the protocol's acceptance criteria point into (calibration.r2, kit_controls, replicates, controls.PC)."""
    controls = [c for c in conditions if c.role == "control"]
    return {
        "blank": {"mean_od": blank, "cv_percent": blank_cv},
        "calibration": {"r2": curve.r2, **curve.params, "n": curve.n},
        "standards": levels,
        "kit_controls": {name: {key: k[key] for key in ("concentration", "low", "high", "in_range", "cv_percent")}
                         for name, k in kit.items()},
        "controls": {c.name: {**{key: getattr(c, key) for key in ("concentration", "sd", "fold_change", "difference",
                                                                  "difference_sd", "cv_percent", "p_value")},
                              **_bounded(c)} for c in controls},
        "replicates": {**{f"standard {n}": {"cv_percent": v["cv_percent"]} for n, v in levels.items()},
                       **{f"kit {n}": {"cv_percent": v["cv_percent"]} for n, v in kit.items()},
                       **{c.name: {"cv_percent": c.cv_percent} for c in controls}},
    }


def _bounded(c: Condition) -> dict:
    """A control's values its checks may use: a '>' bound proves a '>=' limit, a '<' bound proves nothing."""
    if c.qualifier == "<":
        return {"concentration": math.nan, "fold_change": math.nan,
                "note": f"{c.name} below the lowest standard: re-assay at another dilution"}
    if c.qualifier == ">":
        return {"note": f"{c.name} above the highest standard: its values are lower bounds"}
    return {}


def _results(p: Parameters, conditions: list[Condition], nc: Condition, kit: dict) -> list[Result]:
    results = []
    for c in conditions:
        q = c.qualifier
        rows = [("concentration", c.concentration, p.unit, None, q), ("concentration_sd", c.sd, p.unit, None, None)]
        if c is not nc:
            rows += [("fold_change", c.fold_change, "fold", c.call or _why_no_call(c), q),
                     ("difference", c.difference, p.unit, None, q),
                     ("difference_sd", c.difference_sd, p.unit, None, None),
                     ("p_value", c.p_value, "", None, None)]
        results += [Result(c.sample, metric, value, unit, list(c.flags), call, qualifier=qualifier)
                    for metric, value, unit, call, qualifier in rows]
    results += [Result(f"kit {name} control", "concentration", k["concentration"], p.unit, list(k["flags"]))
                for name, k in kit.items()]
    return flag_not_computable(results)


def _why_no_call(c: Condition) -> str:
    if c.qualifier:
        return f"no call: {'< LLOQ' if c.qualifier == '<' else '> ULOQ'}, {REASSAY}"
    return "no call"


def _od_label(read) -> str:
    return f"OD{read.wavelength_nm:g}" if read.wavelength_nm else f"OD ({read.label})"




def _well_flags(inp: AssayInput, group) -> list[str]:
    return well_flags(inp, [group], [inp.parameters.read, inp.parameters.reference_read])


def _standard(group, nominal: float, od: np.ndarray, back: np.ndarray, blank: float) -> dict:
    level = BackCalculated.of(nominal, back)
    return {"nominal": nominal, "wells": list(group.wells), "od": od.tolist(), "corrected": (od - blank).tolist(),
            "back_calculated": back.tolist(), "mean": level.mean, "pdft": level.pdft, "cv_percent": cv_percent(od)}


def _kit_control(inp: AssayInput, group, od: np.ndarray, in_well: np.ndarray, limits: tuple) -> dict:
    p: Parameters = inp.parameters
    concentration = mean(in_well) * p.kit_control_dilution
    low, high = limits
    inside = bool(low <= concentration <= high)
    flags = _well_flags(inp, group) + ([] if inside else [f"outside the lot range {low:g}-{high:g} {p.unit}"])
    return {"wells": list(group.wells), "od": od.tolist(), "in_well": in_well.tolist(), "concentration": concentration,
            "low": low, "high": high, "in_range": 1.0 if inside else 0.0, "cv_percent": cv_percent(od), "flags": flags}


def _condition(inp: AssayInput, group, od: np.ndarray, curve, blank: float) -> Condition:
    """Concentration in plasma of one control or sample (mean, SD over its wells), with its flags."""
    p: Parameters = inp.parameters
    q = Quantified.of(group, od - blank, curve, (p.kit_dilution, p.incubation_dilution),
                      flag_cv_percent=p.flag_cv_percent, flags=_well_flags(inp, group), cv_values=od)
    concentration = q.concentration if q.qualifier else q.diluted.mean
    return Condition(group.name, inp.sample_name(group.name), group.role, list(group.wells), od.tolist(),
                     q.in_well.tolist(), q.in_well_mean, q.diluted_wells.tolist(), q.diluted.mean,
                     concentration, q.sd, q.qualifier, q.replicate_cv, q.flags)
