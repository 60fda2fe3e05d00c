"""The quantitation: responses, standard curve, back-calculation, concentrations per sample and dilution.

    y      = read - reference read (per well, when the export has it) - mean(blank) (when subtract_blank)
    curve  = calibration_model fitted to (nominal, y) over every standard well (weights: calibration_weights)
    c_well = curve^-1(y)  (in the well);  LLOQ, ULOQ = lowest non-zero and highest standard
    per sample and dilution d:  C = mean(c_well) x d,  SD = sd(c_well x d),  %CV = cv(c_well)
      mean(c_well) below LLOQ (or under the curve) -> "<" LLOQ x d;  above ULOQ -> ">" ULOQ x d (never extrapolated)
    standards: PDFT = 100 (mean back-calculated - nominal) / nominal, %CV of the responses; the lowest and highest
      non-zero levels are the items "LLOQ" and "ULOQ" of metrics.standards (so a protocol can give them wider limits)
    spike:  recovery % = 100 (mean c(spiked) - mean c(sample, same dilution)) / spike nominal
    qc:     recovery % = 100 mean c_well / nominal

A sample group's dilution is its layout entry's nominal, else the samples file's `dilution` column, else 1.
When the export carries the reader software's own concentrations, they are compared well by well
(crosscheck.py) into metrics.vendor_agreement.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveFloat

from assayrunner import AssayInput, AssayResult, Result, UserError
from assayrunner.curves import fit, weight_vector
from assayrunner.plots import line_through
from assayrunner.registry import flag_not_computable
from assayrunner.stats import cv_percent, mean, sd
from assayrunner.vendor import printed_half_unit

from . import crosscheck

REASSAY = "re-assay at another dilution"


class Parameters(BaseModel):
    """The [parameters] table of a quant protocol (and --param overrides); every number is the protocol's."""

    model_config = ConfigDict(extra="forbid")

    read: str
    reference_read: str | None = None
    analyte: str
    unit: str
    calibration_model: Literal["linear", "quadratic", "4pl", "5pl"]
    calibration_weights: Literal["none", "1/x", "1/x^2", "1/y", "1/y^2"]
    subtract_blank: bool
    flag_cv_percent: PositiveFloat
    spike_recovery_percent: tuple[float, float]


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    reference = p.reference_read if p.reference_read in inp.reads and p.reference_read != p.read else None

    def raw(group) -> np.ndarray:
        values = inp.values(group, p.read)
        return values - inp.values(group, reference) if reference else values

    blanks = inp.layout.groups("blank", interference=False)
    blank_wells = np.concatenate([raw(g) for g in blanks]) if blanks else np.array([])
    blank = mean(blank_wells) if p.subtract_blank and blanks else 0.0
    if p.subtract_blank and not math.isfinite(blank):
        raise UserError("subtract_blank is true but the layout has no usable blank wells; add blank wells or set "
                        "subtract_blank = false", file=inp.protocol.path, where="parameters.subtract_blank")

    def response(group) -> np.ndarray:
        return raw(group) - blank

    standards = inp.with_nominal("calibrator")
    curve, x, y = _standard_curve(p, standards, response)
    nonzero = sorted({g.spec.nominal for g in standards if g.spec.nominal > 0})
    lloq, uloq = nonzero[0], nonzero[-1]

    def in_well(group) -> np.ndarray:
        return curve.inverse(response(group))[0]

    rising = float(curve.predict(uloq)) > float(curve.predict(lloq))
    levels = _levels(standards, response, in_well, lloq, uloq)
    conditions = [_condition(inp, g, response(g), in_well(g), lloq, uloq, rising, curve)
                  for g in inp.layout.groups(interference=False) if g.role in ("sample", "control", "qc")]
    spikes = [_spike(inp, g, in_well(g), conditions) for g in inp.layout.groups("spike")]
    vendor = _vendor_agreement(inp, curve, x, y, standards, blanks, response, in_well, conditions, lloq, uloq, rising)
    metrics = {
        "calibration": {"r2": curve.r2, "abs_r": math.sqrt(max(curve.r2, 0.0)), "n": curve.n, **curve.params},
        "blank": {"mean": mean(blank_wells), "cv_percent": cv_percent(blank_wells)},
        "standards": levels,
        "vendor_agreement": vendor["metrics"],
    }
    fit_record = {"name": "standard curve", **curve.to_dict(), "x": x.tolist(), "y": y.tolist(),
                  "line": line_through(curve.predict, 0.0 if curve.model != "4pl" else lloq / 2, uloq),
                  "x_unit": p.unit, "y_label": _y_label(inp, reference, p.subtract_blank and bool(blanks)),
                  "log_x": curve.model in ("4pl", "5pl")}
    details = {
        "analyte": p.analyte, "unit": p.unit, "lloq": lloq, "uloq": uloq, "blank_mean": blank if blanks else None,
        "reference": reference, "weights": p.calibration_weights, "conditions": conditions, "spikes": spikes,
        "levels": {item: v for item, v in levels.items()}, "layout_source": _layout_source(inp),
        "layout_rows": _layout_rows(inp), "vendor": vendor["details"],
    }
    return AssayResult(metrics, _results(p, conditions, spikes), [fit_record], details)


def _standard_curve(p: Parameters, standards: list, response):
    if len({g.spec.nominal for g in standards}) < 2:
        raise UserError("the layout needs standards (calibrators) at two or more concentrations",
                        where="standard curve")
    x = np.concatenate([[g.spec.nominal] * len(g.wells) for g in standards])
    y = np.concatenate([response(g) for g in standards])
    usable = np.isfinite(y)
    weights = None if p.calibration_weights == "none" else p.calibration_weights
    try:
        curve = fit(x[usable], y[usable], model=p.calibration_model, weights=weights)
    except ValueError as exc:
        raise UserError(f"cannot be fit: {exc}", where="standard curve") from None
    if not curve.converged:
        raise UserError(f"the {p.calibration_model} fit failed ({curve.message}); check the standards' wells or "
                        "choose another calibration_model", where="standard curve")
    return curve, x[usable], y[usable]


def _levels(standards: list, response, in_well, lloq: float, uloq: float) -> dict:
    """Per non-zero standard level (the lowest keyed 'LLOQ', the highest 'ULOQ'): back-calculated mean, PDFT, %CV."""
    levels = {}
    for g in sorted(standards, key=lambda g: -g.spec.nominal):
        nominal = g.spec.nominal
        if nominal <= 0:
            continue
        back = in_well(g)
        m = mean(back)
        pdft = 100 * (m - nominal) / nominal
        key = "LLOQ" if nominal == lloq else "ULOQ" if nominal == uloq else g.name
        levels[key] = {"standard": g.name, "nominal": nominal, "wells": list(g.wells),
                       "response": response(g).tolist(), "back_calculated": back.tolist(), "mean": m,
                       "pdft": pdft, "abs_pdft": abs(pdft), "cv_percent": cv_percent(response(g))}
    return levels


def _dilution(inp: AssayInput, group) -> float:
    if group.role == "sample" and group.spec.nominal:
        return group.spec.nominal
    sample = inp.samples.get(group.name)
    text = sample.extra.get("dilution") if sample else None
    if text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"dilution {text!r} of slot {group.name} is not a number above 0", where="samples file")
        return value
    return 1.0


def _condition(inp: AssayInput, group, y: np.ndarray, c: np.ndarray, lloq: float, uloq: float, rising: bool,
               curve) -> dict:
    """Concentration of one sample (control, QC) at one dilution: mean, SD, %CV, censoring, flags."""
    p: Parameters = inp.parameters
    d = _dilution(inp, group) if group.role == "sample" else 1.0
    m = mean(c)
    flags = [f"{flag} well {w}" for w, flag in inp.flagged(group, p.read).items()]
    flags += [f"not-computable well {w}" for w, yy, cc in zip(group.wells, y, c) if np.isfinite(yy) and np.isnan(cc)]
    if cv_percent(c) > p.flag_cv_percent:
        flags.append("replicate-cv")
    qualifier = None
    if not math.isfinite(m) and np.isfinite(y).any():
        low = (mean(y) < float(curve.predict(lloq))) == rising
        qualifier = "<" if low else ">"
    elif math.isfinite(m) and m < lloq:
        qualifier = "<"
    elif math.isfinite(m) and m > uloq:
        qualifier = ">"
    if qualifier:
        flags += ["below-lloq" if qualifier == "<" else "above-uloq", REASSAY]
    bound = (lloq if qualifier == "<" else uloq) * d if qualifier else None
    nominal = group.spec.nominal if group.role == "qc" else None
    return {"name": group.name, "sample": inp.sample_name(group.name), "role": group.role, "wells": list(group.wells),
            "dilution": d, "response": y.tolist(), "in_well": c.tolist(), "in_well_mean": m,
            "concentration": bound if qualifier else m * d, "sd": math.nan if qualifier else sd(c * d),
            "cv_percent": cv_percent(c), "qualifier": qualifier, "flags": flags, "nominal": nominal,
            "recovery_percent": 100 * m / nominal if nominal and not qualifier else None}


def _spike(inp: AssayInput, group, c: np.ndarray, conditions: list[dict]) -> dict:
    p: Parameters = inp.parameters
    if not group.spec.nominal:
        raise UserError(f"spike {group.name!r} needs a nominal (the concentration the spike adds in the well)",
                        file=inp.protocol.path, where="layout.wells")
    base = next((cd for cd in conditions if cd["name"] == group.name and cd["role"] == "sample"), None)
    if base is None:
        raise UserError(f"spike {group.name!r} has no sample wells of that name to compare with",
                        file=inp.protocol.path, where="layout.wells")
    recovery = 100 * (mean(c) - base["in_well_mean"]) / group.spec.nominal
    low, high = p.spike_recovery_percent
    return {"name": group.name, "sample": base["sample"], "wells": list(group.wells), "nominal": group.spec.nominal,
            "in_well": c.tolist(), "recovery_percent": recovery,
            "flags": [] if low <= recovery <= high else [f"spike recovery outside {low:g}-{high:g} %"]}


def _results(p: Parameters, conditions: list[dict], spikes: list[dict]) -> list[Result]:
    results = []
    for cd in conditions:
        label = cd["sample"] if cd["dilution"] == 1 else f"{cd['sample']} (1:{cd['dilution']:g})"
        rows = [("concentration", cd["concentration"], p.unit, cd["qualifier"])]
        if len(cd["wells"]) > 1 and not cd["qualifier"]:  # replicates: their spread
            rows += [("concentration_sd", cd["sd"], p.unit, None), ("cv_percent", cd["cv_percent"], "%", None)]
        if cd["nominal"]:
            rows.append(("recovery_percent", cd["recovery_percent"], "%", None))
        results += [Result(label, metric, value, unit, list(cd["flags"]), qualifier=q, slot=cd["name"]
                           if cd["role"] == "sample" else None) for metric, value, unit, q in rows]
    results += [Result(s["sample"], "spike_recovery_percent", s["recovery_percent"], "%", list(s["flags"]),
                       slot=s["name"]) for s in spikes]
    return flag_not_computable(results)


def _y_label(inp: AssayInput, reference: str | None, blanked: bool) -> str:
    p: Parameters = inp.parameters
    label = p.read + (f" − {reference}" if reference else "")
    return label + (" − blank" if blanked else "")


def _layout_source(inp: AssayInput) -> str:
    if inp.layout.from_export:
        return f"the export: {inp.plate.export_layout().source}"
    return f"protocol {inp.protocol.id} [layout]"


def _layout_rows(inp: AssayInput) -> list[dict]:
    """The run's layout as the certificate lists it: one row per group."""
    return [{"name": g.name, "role": g.role, "wells": list(g.wells), "nominal": g.spec.nominal}
            for g in inp.layout.groups()]


def _vendor_agreement(inp: AssayInput, curve, x, y, standards, blanks, response, in_well, conditions,
                      lloq, uloq, rising) -> dict:
    """Our in-well concentrations against the software's (metrics and certificate details)."""
    vendor = inp.plate.vendor_results()
    if vendor is None or not vendor.values:
        note = "the export carries no concentrations calculated by the reader software: nothing to compare"
        return {"metrics": {"compared": 0, "outside": 0, "note": note}, "details": None}
    p: Parameters = inp.parameters
    reads = [inp.reads[p.read]] + ([inp.reads[p.reference_read]] if p.reference_read in inp.reads
                                   and p.reference_read != p.read else [])
    half = sum(printed_half_unit(r.values) for r in reads)
    half = 0.0 if not math.isfinite(half) else half
    groups = standards + [g for g in inp.layout.groups() if g.role in ("sample", "control", "qc", "spike")]
    by_well = {w: (g, r) for g in groups for w, r in zip(g.wells, response(g))}
    compared = [v for v in vendor.values.values() if v.wells and all(w in by_well for w in v.wells)]
    if not compared:
        return {"metrics": {"compared": 0, "outside": 0, "note": "no layout well has a vendor value"},
                "details": None}
    responses = np.array([mean([by_well[w][1] for w in v.wells]) for v in compared])
    ours = curve.inverse(responses)[0]
    w_std = weight_vector(None if curve.weights is None else curve.weights, x, y)
    blank_half = np.full(sum(len(g.wells) for g in blanks), half) if p.subtract_blank and blanks else np.array([])
    tol = crosscheck.tolerances(curve, x, np.full(x.size, half), w_std, responses, np.full(responses.size, half),
                                blank_half, np.ones(responses.size),
                                np.array([v.half_unit for v in compared]))
    rows, outside = [], []
    low_response = float(curve.predict(lloq))
    for v, c, r, t in zip(compared, ours, responses, tol):
        side = "below" if (r < low_response) == rising else "above"
        ok, diff = crosscheck.compare(float(c), side, v, float(t))
        well = v.well if len(v.wells) == 1 else f"{v.well} (mean of {', '.join(v.wells)})"
        rows.append({"well": well, "group": by_well[v.well][0].name, "ours": float(c), "vendor": v.text,
                     "difference": diff, "tolerance": float(t), "agrees": ok})
        if not ok:
            outside.append(v.well)
    finite = [r for r in rows if math.isfinite(r["difference"])]
    largest = max(finite, key=lambda r: r["difference"]) if finite else None
    metrics = {"compared": len(rows), "outside": len(outside),
               "largest_difference": largest["difference"] if largest else math.nan,
               "tolerance_at_largest": largest["tolerance"] if largest else math.nan}
    if outside:
        metrics["note"] = f"outside the tolerance: {', '.join(outside[:12])}" + (" ..." if len(outside) > 12 else "")
    details = {"software": vendor.software, "version": vendor.version, "source": vendor.source,
               "curve": vendor.curve, "rows": rows, "outside": outside, "largest": largest,
               "read_half_unit": half}
    return {"metrics": metrics, "details": details}

