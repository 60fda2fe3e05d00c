"""The LAL computation (end-point chromogenic, NCL STE-1 style):

    A'        = A405 - mean A405(blank)                      per well
    curve     : log10 A' = b + m log10 C over the standards   (linear, |r| judged by the protocol)
    C_well    = 10 ** ((log10 A' - b) / m)                    per well, EU/mL in the well (NaN for A' <= 0)
    C_sample  = mean C_well x dilution                        EU/mL in the sample (EU/mg with its mg/mL)
    below the lowest standard: "< LLOQ x dilution"; above the highest: "> ULOQ x dilution" (censored)
    PPC       = 100 (C_spiked - C_unspiked) / spike           per sample, in the well; outside the
                protocol's range the sample is invalid, not the run

Written against the public plugin API only (`import assayrunner`).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveFloat, field_validator

import assayrunner

NEEDED_BY = "the LAL assay"
REASSAY = "re-assay at a higher dilution"


class Parameters(BaseModel):
    """The protocol's [parameters]; standards and spike come from the kit lot (override with --param)."""

    model_config = ConfigDict(extra="forbid")

    read: str
    unit: str
    standards: dict[str, PositiveFloat]
    spike: PositiveFloat
    spike_recovery_percent: tuple[float, float]
    default_dilution: PositiveFloat

    @field_validator("spike_recovery_percent")
    @classmethod
    def _low_then_high(cls, limits):
        if limits[0] > limits[1]:
            raise ValueError(f"give [low, high], got [{limits[0]:g}, {limits[1]:g}]")
        return limits


def analyze(inp: assayrunner.AssayInput) -> assayrunner.AssayResult:
    p: Parameters = inp.parameters
    blank_group = assayrunner.required_group(inp, "blank", needed_by=NEEDED_BY)
    blank = assayrunner.blank_mean(inp.values(blank_group, p.read), blank_group.wells)
    standards = assayrunner.matched_groups(inp, "calibrator", p.standards, "standards", needed_by=NEEDED_BY)

    def values(group) -> np.ndarray:
        return inp.values(group, p.read)

    levels = {g.name: {"nominal": nominal, "net": (values(g) - blank).tolist()} for g, nominal in standards}
    curve = assayrunner.fit_standards(standards, values, blank, "linear", file=inp.protocol.path,
                                      response="A405", log_log=True)
    slope, intercept = curve.fit.params["slope"], curve.fit.params["intercept"]
    abs_r = math.sqrt(max(curve.fit.r2, 0.0))
    in_well, lloq, uloq = curve.back_calculate, curve.lloq, curve.uloq
    for name, level in levels.items():
        back = in_well(np.array(level["net"]))
        level["recovery_percent"] = assayrunner.recovery_percent(assayrunner.mean(back), level["nominal"])
    results, samples = [], []
    for group in inp.layout.groups("sample"):
        samples.append(_sample(inp, p, group, blank, in_well, lloq, uloq, results))
    line = [[float(c), float(10 ** (intercept + slope * math.log10(c)))] for c in np.geomspace(lloq, uloq, 25)]
    fit_record = assayrunner.FitRecord.of("standard curve", curve.fit, curve.x, curve.y, line, x_unit=p.unit,
                                          y_label="A405 − blank", log_x=True)
    metrics = {"calibration": {"abs_r": abs_r, "slope": slope, "intercept": intercept, "r2": curve.fit.r2},
               "blank": {"mean": blank}, "levels": {k: {"recovery_percent": v["recovery_percent"]}
                                                   for k, v in levels.items()}}
    details = {"blank": blank, "lloq": lloq, "uloq": uloq, "levels": levels, "samples": samples, "unit": p.unit}
    return assayrunner.AssayResult(metrics, results, [fit_record], details)


def _sample(inp, p: Parameters, group, blank, in_well, lloq, uloq, results) -> dict:
    """One sample's endotoxin (censored outside the standards) and spike recovery; appends its results."""
    dilution = _dilution(inp, p, group.name)
    label = inp.sample_name(group.name)
    c_well = assayrunner.mean(in_well(inp.values(group, p.read) - blank))
    found = c_well if math.isfinite(c_well) else 0.0  # no well above the blank: below the lowest standard
    qualifier, value = assayrunner.censored(found, lloq, uloq, dilution)
    flag = assayrunner.range_flag(found, lloq, uloq)
    flags = [flag, REASSAY] if flag == assayrunner.ABOVE_ULOQ else [flag] if flag else []
    recovery = None
    spike = inp.layout.group("spike", group.name)
    if spike is not None:
        c_spiked = assayrunner.mean(in_well(inp.values(spike, p.read) - blank))
        recovery = 100 * (c_spiked - found) / p.spike
        low, high = p.spike_recovery_percent
        if not (math.isfinite(recovery) and low <= recovery <= high):
            flags.append(f"invalid: PPC recovery outside {low:g}-{high:g} %")
        results.append(assayrunner.Result(label, "ppc_recovery", recovery, "%",
                                          [f for f in flags if f.startswith("invalid")]))
    results.append(assayrunner.Result(label, "endotoxin", value, p.unit, list(flags), qualifier=qualifier))
    sample = inp.samples.get(group.name)
    per_mg = None
    if sample is not None and sample.concentration and (sample.unit or "").lower() == "mg/ml":
        per_mg = value / sample.concentration
        unit = p.unit.replace("/mL", "/mg") if p.unit.endswith("/mL") else f"{p.unit} per mg/mL"
        results.append(assayrunner.Result(label, "endotoxin_per_mg", per_mg, unit, list(flags), qualifier=qualifier))
    return {"slot": group.name, "sample": label, "dilution": dilution, "in_well": c_well, "value": value,
            "qualifier": qualifier, "per_mg": per_mg, "recovery": recovery, "flags": flags}


def _dilution(inp, p: Parameters, slot: str) -> float:
    """The samples file's 'dilution' column for the slot, else the protocol's default_dilution."""
    sample = inp.samples.get(slot)
    text = sample.extra.get("dilution") if sample else None
    if not text:
        return p.default_dilution
    try:
        dilution = float(text)
    except ValueError:
        dilution = math.nan
    if not (math.isfinite(dilution) and dilution >= 1):
        raise assayrunner.UserError(f"dilution {text!r} of slot {slot} is not a dilution factor (a number >= 1)",
                                    file="samples file")
    return dilution
