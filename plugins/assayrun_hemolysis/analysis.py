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
above flag_above_percent (physically impossible) is not classed.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt

from assayrunner import AssayInput, AssayResult, Result, UserError
from assayrunner.stats import cv_percent, mean
from assayrunner.curves import fit
from assayrunner.plots import line_through

UNIT_HB = "mg/mL"
INTERFERENCE = "not interpretable (interference)"
ABOVE_ULOQ = "> ULOQ, re-test diluted"
ABOVE_100 = "not interpretable (above flag_above_percent: interference or a dilution error)"


class Parameters(BaseModel):
    """The [parameters] table of a hemolysis protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    read: str
    calibration_model: Literal["linear", "quadratic"]
    calibration_weights: Literal["none", "1/x", "1/x^2"]
    supernatant_dilution: PositiveFloat
    tbhd_dilution: PositiveFloat
    pfh_dilution: PositiveFloat
    blood_volume_ul: PositiveFloat
    tube_volume_ul: PositiveFloat
    negative_control: str
    positive_control: str
    flag_cv_percent: PositiveFloat
    flag_interference_fraction: PositiveFloat
    flag_above_percent: PositiveFloat
    control_min_wells: PositiveInt


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    layout = inp.layout
    blank_group = _one(inp, "blank")
    blank = mean(inp.values(blank_group, p.read))
    calibrators = inp.with_nominal("calibrator")
    if len(calibrators) < 2:
        raise UserError("a hemolysis layout needs at least two calibrator levels", file=inp.protocol.path,
                        where="layout.wells")
    x = np.concatenate([[g.spec.nominal] * len(g.wells) for g in calibrators])
    y = np.concatenate([inp.values(g, p.read) for g in calibrators]) - blank
    usable = np.isfinite(y)
    curve = fit(x[usable], y[usable], model=p.calibration_model,
                weights=None if p.calibration_weights == "none" else p.calibration_weights)

    def concentrations(group) -> np.ndarray:
        return curve.inverse(inp.values(group, p.read) - blank)[0]

    levels = {role: {g.name: _level(g, concentrations(g), inp.values(g, p.read) - blank)
                     for g in inp.with_nominal(role)} for role in ("calibrator", "qc")}
    lloq, uloq = float(x.min()), float(x.max())
    blood = {name: mean(concentrations(_one(inp, "blood", name))) * dilution
             for name, dilution in (("TBHd", p.tbhd_dilution), ("PFH", p.pfh_dilution))}
    conditions = [_condition(inp, g, concentrations, blood["TBHd"], lloq, uloq)
                  for g in layout.groups(interference=False) if g.role in ("control", "sample")]
    by_name = {c["name"]: c for c in conditions}
    for needed in (p.negative_control, p.positive_control):
        if needed not in by_name:
            raise UserError(f"the layout has no control named {needed!r} (parameters name it)",
                            file=inp.protocol.path, where="layout.wells")
    nc_percent = max(by_name[p.negative_control]["percent"], 0.0)
    table = next((t for t in inp.protocol.interpretation if t.metric == "adjusted_percent_hemolysis"), None)
    results = []
    for c in conditions:
        c["adjusted"] = c["reported_percent"] - nc_percent
        c["interpretation"] = _judgement(c, nc_percent, table)
        q = c["qualifier"]
        results += [
            Result(c["sample"], "supernatant_hemoglobin", c["reported_net"], UNIT_HB, c["flags"], qualifier=q),
            Result(c["sample"], "percent_hemolysis", c["reported_percent"], "%", c["flags"], qualifier=q),
            Result(c["sample"], "adjusted_percent_hemolysis", c["adjusted"], "%", c["flags"], c["interpretation"],
                   qualifier=q),
        ]
    results += [Result(name, "hemoglobin", value, UNIT_HB) for name, value in blood.items()]
    metrics = {
        "blank": {"mean_absorbance": blank},
        "calibration": {"r2": curve.r2, **curve.params, "n": curve.n},
        "calibrators": levels["calibrator"],
        "qc": levels["qc"],
        "blood": {name: {"mg_per_ml": value} for name, value in blood.items()},
        "controls": {c["name"]: _control_metrics(c, p.control_min_wells) for c in conditions if c["role"] == "control"},
    }
    fit_record = {"name": "calibration", **curve.to_dict(), "x": x[usable].tolist(), "y": y[usable].tolist(),
                  "line": line_through(curve.predict, 0.0, uloq), "x_unit": UNIT_HB, "y_label": "A540 − blank"}
    details = {"blank_mean": blank, "levels": levels, "conditions": conditions, "lloq": lloq, "uloq": uloq,
               "blood": blood, "lloq_percent": _percent(p, lloq * p.supernatant_dilution, blood["TBHd"]),
               "uloq_percent": _percent(p, uloq * p.supernatant_dilution, blood["TBHd"]),
               "negative_control_percent": nc_percent}
    return AssayResult(metrics, results, [fit_record], details)


def _one(inp: AssayInput, role: str, name: str | None = None):
    group = inp.layout.group(role, name)
    if group is None:
        what = f"{role} wells" + (f" named {name!r}" if name else "")
        raise UserError(f"the layout has no {what}; the hemolysis assay needs them", file=inp.protocol.path,
                        where="layout.wells")
    return group


def _level(group, conc: np.ndarray, corrected: np.ndarray) -> dict:
    """Back-calculation statistics of one calibrator or QC level."""
    nominal = group.spec.nominal
    m = mean(conc)
    pdft = 100 * (m - nominal) / nominal
    return {"nominal": nominal, "wells": list(group.wells), "absorbance": corrected.tolist(),
            "concentrations": conc.tolist(), "mean": m, "pdft": pdft, "abs_pdft": abs(pdft),
            "cv_percent": cv_percent(conc)}


def _percent(p: Parameters, supernatant: float, tbhd: float) -> float:
    """% hemolysis of a net supernatant hemoglobin (mg/mL)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(100 * supernatant * (p.tube_volume_ul / p.blood_volume_ul) / tbhd)


def _condition(inp: AssayInput, group, concentrations, tbhd: float, lloq: float, uloq: float) -> dict:
    """% hemolysis of one control or sample: the computed (signed) value, what is reported, and its flags."""
    p: Parameters = inp.parameters
    with_blood = concentrations(group)
    without = inp.layout.group(group.role, group.name, interference=True)
    without_blood = concentrations(without) if without else np.zeros(1)
    sup_with = mean(with_blood) * p.supernatant_dilution
    sup_without = mean(without_blood) * p.supernatant_dilution
    net = sup_with - sup_without
    percent = _percent(p, net, tbhd)
    in_well = mean(with_blood)
    excluded = {**inp.flagged(group, p.read), **(inp.flagged(without, p.read) if without else {})}
    flags = [f"{flag} well {well}" for well, flag in excluded.items()]
    if cv_percent(with_blood) > p.flag_cv_percent:
        flags.append("replicate-cv")
    qualifier, reported_net = None, net
    saturated = "saturated" in inp.flagged(group, p.read).values()
    if not np.isfinite(with_blood).any() and not saturated:
        flags.append("not-computable")  # no usable with-blood well, and none over range: nothing to report
    elif not np.isfinite(with_blood).any() or in_well > uloq:
        flags.append("above-uloq")
        qualifier, reported_net = ">", uloq * p.supernatant_dilution - max(sup_without, 0.0)
    elif in_well < lloq:
        flags.append("below-lloq")
        qualifier, reported_net = "<", lloq * p.supernatant_dilution
    if (sup_without > 0 and sup_without > p.flag_interference_fraction * sup_with) or not math.isfinite(sup_without):
        flags.append("interference")
    if net < 0:
        flags.append("negative-net")
        if qualifier is None:
            reported_net = 0.0
    if percent > p.flag_above_percent:
        flags.append("above-100-percent")
    return {"name": group.name, "sample": inp.sample_name(group.name), "role": group.role,
            "wells": list(group.wells), "wells_without_blood": list(without.wells) if without else [],
            "in_well": with_blood.tolist(), "in_well_without_blood": without_blood.tolist() if without else [],
            "usable_wells": int(np.isfinite(with_blood).sum()), "excluded_wells": excluded,
            "cv_percent": cv_percent(with_blood), "supernatant_with_blood": sup_with,
            "supernatant_without_blood": sup_without, "percent_with_blood": _percent(p, sup_with, tbhd),
            "percent_without_blood": _percent(p, sup_without, tbhd), "net": net, "percent": percent,
            "qualifier": qualifier, "reported_net": reported_net, "reported_percent": _percent(p, reported_net, tbhd),
            "flags": flags}


def _judgement(c: dict, nc_percent: float, table) -> str | None:
    """The class the protocol allows for a condition, or why it has none (None: the engine classes it)."""
    if "interference" in c["flags"]:
        return INTERFERENCE
    if "above-100-percent" in c["flags"] and c["qualifier"] is None:
        return ABOVE_100
    if c["qualifier"] == ">":
        return ABOVE_ULOQ
    if c["qualifier"] == "<":
        label = table.classify_interval(-nc_percent, c["adjusted"]) if table else None
        return label or f"< LLOQ ({c['reported_percent']:.3g} %), no class"
    return None


def _control_metrics(c: dict, min_wells: int) -> dict:
    """A control's % hemolysis for its check; NaN, with a note the check shows, when too few wells are usable."""
    out = {"percent_hemolysis": c["percent"], "usable_wells": c["usable_wells"]}
    if c["excluded_wells"]:
        left = f"{c['name']} judged on {c['usable_wells']} of {len(c['wells'])} wells"
        why = ", ".join(f"{w} {flag}" for w, flag in c["excluded_wells"].items())
        if c["usable_wells"] < min_wells:
            out["percent_hemolysis"] = math.nan
            out["note"] = f"{left} ({why}); the protocol needs {min_wells} (control_min_wells): not judged"
        else:
            out["note"] = f"{left} ({why})"
    return out
