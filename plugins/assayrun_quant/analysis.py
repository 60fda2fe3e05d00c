"""The quantitation: responses, standard curve, back-calculation, concentrations per sample and dilution.

    y      = read - reference read (per well, when the export has it) - mean(blank) (when subtract_blank)
    curve  = calibration_model fitted to (nominal, y) over every standard well (weights: calibration_weights)
    c_well = curve^-1(y)  (in the well);  LLOQ, ULOQ = lowest non-zero and highest standard
    per sample and dilution d:  C = mean(c_well) x d,  SD = sd(c_well x d),  %CV = cv(c_well)
      mean(c_well) below LLOQ (or under the curve) -> "<" LLOQ x d;  above ULOQ -> ">" ULOQ x d (never extrapolated)
    standards: PDFT = 100 (mean back-calculated - nominal) / nominal, %CV of the responses; the lowest and highest
      non-zero levels are the items "LLOQ" and "ULOQ" of metrics.standards (so a protocol can give them wider limits)
    spike:  recovery % = 100 (mean c(spiked) - mean c(sample, same name)) / spike nominal
    qc:     recovery % = 100 mean c_well / nominal

Concentrations are in the standards' unit (the layout's, e.g. the export's 'Concentration ng/mL'), else
parameters.unit. A sample group's dilution is its layout entry's nominal, else the samples file's `dilution` column, else 1.
The curve, back-calculation, level statistics and censoring are the toolkit's (assayrunner.fit_standards,
BackCalculated, Replicates, Quantified); when the export carries the reader software's own concentrations, they are
compared well by well (crosscheck.py) into metrics.vendor_agreement.
"""

from __future__ import annotations

import math

import numpy as np

from assayrunner import (AssayInput, AssayResult, BackCalculated, FitRecord, Quantified, Replicates, Result, UserError,
                         blank_mean, check_reads, flag_not_computable, fit_standards, line_through, mean,
                         recovery_percent, reference_corrected, well_flags)

from . import crosscheck
from .parameters import Parameters


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    check_reads(inp, "read", "reference_read")
    raw, reference = reference_corrected(inp, p.read, p.reference_read)

    blanks = inp.layout.groups("blank", interference=False)
    blank_wells = np.concatenate([raw(g) for g in blanks]) if blanks else np.array([])
    if p.subtract_blank and not blanks:
        raise UserError("subtract_blank is true but the layout has no blank wells; add blank wells or set "
                        "subtract_blank = false", file=inp.protocol.path, where="parameters.subtract_blank")
    blank = blank_mean(blank_wells, [w for g in blanks for w in g.wells]) if p.subtract_blank else 0.0

    def response(group) -> np.ndarray:
        return raw(group) - blank

    standards = [(g, g.spec.nominal) for g in inp.with_nominal("calibrator")]
    sc = fit_standards(standards, raw, blank, p.calibration_model,
                       None if p.calibration_weights == "none" else p.calibration_weights,
                       file=inp.protocol.path, response=p.read)
    levels = _levels(standards, response, sc)
    unit = next((g.spec.unit for g, _ in standards if g.spec.unit), p.unit)  # the standards' own, else the protocol's
    conditions = [_condition(inp, g, response(g), sc) for g in inp.layout.groups(interference=False)
                  if g.role in ("sample", "control", "qc")]
    spikes = [_spike(inp, g, sc.back_calculate(response(g)), conditions) for g in inp.layout.groups("spike")]
    vendor = crosscheck.agreement(inp, sc, [g for g, _ in standards], blanks, response)
    curve = sc.fit
    metrics = {
        "calibration": {"r2": curve.r2, "abs_r": math.sqrt(max(curve.r2, 0.0)), "n": curve.n, **curve.params},
        "blank": {"mean": mean(blank_wells), "cv_percent": Replicates.of(blank_wells).cv_percent},
        "standards": levels,
        "vendor_agreement": vendor["metrics"],
    }
    logistic = curve.model in ("4pl", "5pl")
    fit_record = FitRecord.of("standard curve", curve, sc.x, sc.y,
                              line_through(curve.predict, sc.lloq / 2 if logistic else 0.0, sc.uloq),
                              x_unit=unit, y_label=_y_label(p, reference, p.subtract_blank), log_x=logistic)
    details = {
        "analyte": p.analyte, "unit": unit, "lloq": sc.lloq, "uloq": sc.uloq,
        "blank_mean": blank if p.subtract_blank else None, "reference": reference,
        "weights": p.calibration_weights, "conditions": conditions, "spikes": spikes, "levels": levels,
        "layout_source": _layout_source(inp), "layout_rows": _layout_rows(inp), "vendor": vendor["details"],
    }
    return AssayResult(metrics, _results(unit, conditions, spikes), [fit_record], details)


def _levels(standards: list, response, sc) -> dict:
    """Per non-zero standard level (the lowest keyed 'LLOQ', the highest 'ULOQ'): back-calculated mean, PDFT, %CV."""
    levels = {}
    for g, nominal in sorted(standards, key=lambda s: -s[1]):
        if nominal <= 0:
            continue
        back = sc.back_calculate(response(g))
        level = BackCalculated.of(nominal, back)
        key = "LLOQ" if nominal == sc.lloq else "ULOQ" if nominal == sc.uloq else g.name
        levels[key] = {"standard": g.name, "nominal": nominal, "wells": list(g.wells),
                       "response": response(g).tolist(), "back_calculated": back.tolist(), "mean": level.mean,
                       "pdft": level.pdft, "abs_pdft": abs(level.pdft),
                       "cv_percent": Replicates.of(response(g)).cv_percent}
    return levels


def _dilution(inp: AssayInput, group) -> float:
    if group.role != "sample":
        return 1.0
    if group.spec.nominal:
        return group.spec.nominal
    sample = inp.samples.get(group.name)
    text = sample.extra.get("dilution") if sample else None
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"dilution {text!r} of slot {group.name} is not a number above 0", where="samples file")
    return value


def _condition(inp: AssayInput, group, y: np.ndarray, sc) -> dict:
    """Concentration of one sample (control, QC) at one dilution: mean, SD, %CV, censoring, flags."""
    p: Parameters = inp.parameters
    d = _dilution(inp, group)
    q = Quantified.of(group, y, sc, d, flags=well_flags(inp, [group], [p.read, p.reference_read]),
                      flag_cv_percent=p.flag_cv_percent, censored_only=True, beyond_curve=True)
    m = q.in_well_mean
    if math.isfinite(m) and not math.isfinite(max(m, sc.uloq) * d):
        raise UserError(f"dilution {d:g} of {group.name} makes its concentration overflow; check the dilution",
                        where=f"{group.name} wells {', '.join(group.wells)}")
    qualifier = q.qualifier
    nominal = group.spec.nominal if group.role == "qc" else None
    return {"name": group.name, "sample": inp.sample_name(group.name), "role": group.role, "wells": list(group.wells),
            "dilution": d, "response": y.tolist(), "in_well": q.in_well.tolist(), "in_well_mean": m,
            "concentration": q.concentration, "sd": q.sd,
            "cv_percent": q.diluted.cv_percent, "qualifier": qualifier, "flags": q.flags, "nominal": nominal,
            "recovery_percent": recovery_percent(m, nominal) if nominal and not qualifier else None}


def _spike(inp: AssayInput, group, c: np.ndarray, conditions: list[dict]) -> dict:
    p: Parameters = inp.parameters
    if not group.spec.nominal:
        raise UserError(f"spike {group.name!r} needs a nominal (the concentration the spike adds in the well)",
                        file=inp.protocol.path, where="layout.wells")
    base = next((cd for cd in conditions if cd["name"] == group.name and cd["role"] == "sample"), None)
    if base is None:
        raise UserError(f"spike {group.name!r} has no sample wells of that name to compare with",
                        file=inp.protocol.path, where="layout.wells")
    recovery = recovery_percent(mean(c) - base["in_well_mean"], group.spec.nominal)
    low, high = p.spike_recovery_percent
    return {"name": group.name, "sample": base["sample"], "wells": list(group.wells), "nominal": group.spec.nominal,
            "in_well": c.tolist(), "recovery_percent": recovery,
            "flags": [] if low <= recovery <= high else [f"spike recovery outside {low:g}-{high:g} %"]}


def _results(unit: str, conditions: list[dict], spikes: list[dict]) -> list[Result]:
    results = []
    for cd in conditions:
        label = cd["sample"] if cd["dilution"] == 1 else f"{cd['sample']} (1:{cd['dilution']:g})"
        rows = [("concentration", cd["concentration"], unit, cd["qualifier"])]
        if len(cd["wells"]) > 1 and not cd["qualifier"]:  # replicates: their spread
            rows += [("concentration_sd", cd["sd"], unit, None), ("cv_percent", cd["cv_percent"], "%", None)]
        if cd["nominal"]:
            rows.append(("recovery_percent", cd["recovery_percent"], "%", None))
        slot = cd["name"] if cd["role"] == "sample" else None
        results += [Result(label, metric, value, unit, list(cd["flags"]), qualifier=q, slot=slot)
                    for metric, value, unit, q in rows]
    results += [Result(s["sample"], "spike_recovery_percent", s["recovery_percent"], "%", list(s["flags"]),
                       slot=s["name"]) for s in spikes]
    return flag_not_computable(results)


def _y_label(p: Parameters, reference: str | None, blanked: bool) -> str:
    return p.read + (f" − {reference}" if reference else "") + (" − blank" if blanked else "")


def _layout_source(inp: AssayInput) -> str:
    if inp.layout.from_export:
        return f"the export: {inp.plate.export_layout().source}"
    return f"protocol {inp.protocol.id} [layout]"


def _layout_rows(inp: AssayInput) -> list[dict]:
    """The run's layout as the certificate lists it: one row per group."""
    return [{"name": g.name, "role": g.role, "wells": list(g.wells), "nominal": g.spec.nominal}
            for g in inp.layout.groups()]
