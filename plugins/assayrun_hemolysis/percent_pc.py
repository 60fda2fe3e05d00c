"""Hemolysis as % of the positive control over a dose series (no calibration line), HC50 per sample.

    A    = A_read - A_reference (when the plate has the reference read) - mean A blank
    A*   = A - (mean A blood-free - mean A blank)   for a concentration with blood-free (interference) wells
    % hemolysis = 100 x (A* - mean A NC) / (mean A PC - mean A NC)      per well (NC = 0 %, PC = 100 %)
    HC50 = where a 4PL on concentration (bottom/top fixed by fit_fixed) crosses hc50_level_percent, with its
           ci_level CI (delta method on ln HC50, Student's t), or "> highest" / "< lowest" tested.

Layout: control groups named by negative_control / positive_control, an optional blank, sample groups
with nominal = dilution step (1 = top concentration; [parameters.dose_series] or the samples file gives
the concentrations). Replicate series: the k-th well of every step group of a sample is series k
(e.g. "B2:C2" for rows B and C): each series gets its own HC50, the combined fit uses every well.
A percentage below flag_below_percent or above flag_above_percent is kept as computed and flagged.
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from assayrunner import (AssayInput, AssayResult, DoseSeries, Result, UserError, dilution_step, doseresponse as dr,
                         series_for)
from assayrunner.stats import cv_percent, mean, sd

SATURATED = "positive control saturated: dilute or read at a lower-sensitivity wavelength"


class Parameters(BaseModel):
    """The [parameters] table of a hemolysis-percent-pc protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    read: str
    reference_read: str | None = None
    negative_control: str
    positive_control: str
    dose_series: DoseSeries
    fit_fixed: dict[Literal["bottom", "top", "hill"], float]
    ci_level: Annotated[float, Field(gt=0, lt=1)]
    hc50_level_percent: Annotated[float, Field(gt=0, lt=100)]
    nonmonotonic_tolerance_percent: PositiveFloat
    saturation_od: PositiveFloat
    flag_cv_percent: PositiveFloat
    flag_below_percent: float
    flag_above_percent: float


def analyze(inp: AssayInput) -> AssayResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-flagged group is NaN, reported as such
        return PercentOfPositive(inp).run()


class PercentOfPositive:
    """One plate: corrected absorbances, the NC and PC levels, every sample's dose series."""

    def __init__(self, inp: AssayInput):
        self.inp, self.p = inp, inp.parameters
        reads = [r.name for r in inp.protocol.reads]
        for key in ("read", "reference_read"):
            name = getattr(self.p, key)
            if name is not None and name not in reads:
                raise UserError(f"{name!r} is not one of the protocol's reads ({', '.join(reads)})",
                                file=inp.protocol.path, where=f"parameters.{key}")
        self.referenced = self.p.reference_read in inp.reads
        blank = inp.layout.group("blank")
        self.blank = mean(self.absorbance(blank)) if blank else 0.0
        self.controls = {name: self.control(self.required(name)) for name in (self.p.negative_control,
                                                                              self.p.positive_control)}
        self.nc = self.controls[self.p.negative_control]["mean_absorbance"]
        self.pc = self.controls[self.p.positive_control]["mean_absorbance"]

    def required(self, name: str):
        group = self.inp.layout.group("control", name)
        if group is None:
            raise UserError(f"the layout has no control wells named {name!r} (parameters name it); add "
                            f"{{ wells = ..., role = \"control\", name = \"{name}\" }}", file=self.inp.protocol.path,
                            where="layout.wells")
        return group

    def absorbance(self, group) -> np.ndarray:
        """Blank-uncorrected absorbance per well: the read, less the reference read when there is one."""
        a = self.inp.values(group, self.p.read)
        return a - self.inp.values(group, self.p.reference_read) if self.referenced else a

    def saturation(self, group) -> dict[str, str]:
        """Well -> flag for wells the reader flagged, or whose raw read is at or above saturation_od."""
        flagged = dict(self.inp.flagged(group, self.p.read))
        raw = self.inp.values(group, self.p.read)
        flagged.update({w: "saturated" for w, v in zip(group.wells, raw) if v >= self.p.saturation_od})
        return flagged

    def control(self, group) -> dict:
        """A control's corrected absorbances, mean, %CV and saturated wells."""
        a = self.absorbance(group) - self.blank
        raw = self.inp.values(group, self.p.read)
        flags = self.saturation(group)
        all_saturated = not np.isfinite(raw).any() and "saturated" in flags.values()
        return {"name": group.name, "wells": list(group.wells), "absorbance": a.tolist(), "mean_absorbance": mean(a),
                "sd": sd(a), "cv_percent": cv_percent(a), "raw_mean": math.inf if all_saturated else mean(raw),
                "flags": [f"{flag} well {well}" for well, flag in flags.items()],
                "saturated_wells": sum(f == "saturated" for f in flags.values())}

    def percent(self, a: np.ndarray) -> np.ndarray:
        return 100 * (a - self.nc) / (self.pc - self.nc)

    def condition(self, group, concentration: float, label: str) -> dict:
        """One concentration's wells: corrected A, blood-free correction, % per well, mean, SD, %CV, flags."""
        p = self.p
        a = self.absorbance(group) - self.blank
        free = self.inp.layout.groups("sample", interference=True)
        free = next((g for g in free if g.name == group.name and g.spec.nominal == group.spec.nominal), None)
        shift = mean(self.absorbance(free) - self.blank) if free else 0.0
        percent = self.percent(a - shift)
        flags = [f"{flag} well {well}" for g in (group, free) if g for well, flag in self.saturation(g).items()]
        m = mean(percent)
        if cv_percent(percent) > p.flag_cv_percent:
            flags.append("replicate-cv")
        flags += [f"{name}-{limit:g}-percent" for name, limit, out in (
            ("below", p.flag_below_percent, m < p.flag_below_percent),
            ("above", p.flag_above_percent, m > p.flag_above_percent)) if out]
        return {"label": label, "concentration": concentration, "wells": list(group.wells),
                "blood_free_wells": list(free.wells) if free else [], "absorbance": a.tolist(),
                "blood_free": shift if free else None, "percent": percent.tolist(), "mean": m, "sd": sd(percent),
                "cv_percent": cv_percent(percent), "flags": flags}

    def run(self) -> AssayResult:
        p, layout = self.p, self.inp.layout
        samples, results, fits = [], [], []
        for slot in dict.fromkeys(g.name for g in layout.groups("sample", interference=False)):
            detail, rows, fit_record = self.sample(slot, {s["name"] for s in samples})
            samples.append(detail)
            results += rows
            fits.append(fit_record)
        pc = self.controls[p.positive_control]
        headroom = p.saturation_od - pc["raw_mean"]
        saturation = {"headroom_od": headroom if math.isfinite(headroom) else math.nan}
        if not headroom > 0:
            saturation["note"] = f"{SATURATED} (mean raw {p.read} at or above saturation_od {p.saturation_od:g})"
        metrics = {"blank": {"mean_absorbance": self.blank},
                   "controls": {c["name"]: {k: c[k] for k in ("mean_absorbance", "cv_percent", "saturated_wells")}
                                for c in self.controls.values()},
                   "saturation": {p.positive_control: saturation},
                   "separation": {"pc_minus_nc_od": self.pc - self.nc}}
        details = {"reads": f"{p.read} − {p.reference_read}" if self.referenced else p.read,
                   "reference_missing": p.reference_read if p.reference_read and not self.referenced else None,
                   "blank": self.blank, "nc": self.nc, "pc": self.pc, "controls": list(self.controls.values()),
                   "samples": samples, "ci_level": p.ci_level, "fit_fixed": p.fit_fixed,
                   "level": p.hc50_level_percent, "saturation_od": p.saturation_od,
                   "saturation_note": saturation.get("note")}
        return AssayResult(metrics, results, fits, details)

    def sample(self, slot: str, taken: set[str]) -> tuple[dict, list[Result], dict]:
        """One sample's dose series: per-concentration rows, HC50 (combined and per replicate series), fit."""
        p, inp = self.p, self.inp
        sample = inp.samples.get(slot)
        name = sample.name if sample else slot
        name = f"{name} ({slot})" if name in taken else name
        series, source = series_for(slot, sample, p.dose_series)
        unit = series.unit
        steps = [(g, series.at(dilution_step(g, series, source, inp.protocol.path)))
                 for g in inp.layout.groups("sample", interference=False) if g.name == slot]
        conditions = [self.condition(g, c, f"{name} {c:.4g} {unit}") for g, c in steps]
        conditions.sort(key=lambda c: -c["concentration"])
        rows = [Result(c["label"], "percent_hemolysis", c["mean"], "%", c["flags"], concentration=c["concentration"],
                       concentration_unit=unit) for c in conditions]
        combined, curve, x, y = self.hc50(conditions, None, unit)
        rows += self.hc50_rows(name, combined, conditions, unit)
        replicates = []
        if len({len(c["percent"]) for c in conditions}) == 1 and len(conditions[0]["percent"]) > 1:
            for k in range(len(conditions[0]["percent"])):
                one = self.hc50(conditions, k, unit)[0]
                replicates.append({"series": k + 1, "wells": [c["wells"][k] for c in conditions], **one})
                rows += self.hc50_rows(f"{name} series {k + 1}", one, conditions, unit)
        for row in rows:
            row.slot = slot
        detail = {"slot": slot, "name": name, "unit": unit, "series_source": source, "conditions": conditions,
                  **combined, "replicates": replicates}
        return detail, rows, dr.fit_record(name, curve, x, y, unit, "% hemolysis")

    def hc50(self, conditions: list[dict], k: int | None, unit: str) -> tuple[dict, object, np.ndarray, np.ndarray]:
        """HC50 and lowest concentration reaching the level, over every well (k None) or replicate series k."""
        p = self.p
        wells = [[c["percent"][k]] if k is not None else c["percent"] for c in conditions]
        levels = np.array([mean(w) for w in wells])
        conc = np.array([c["concentration"] for c in conditions])
        x = np.concatenate([[c] * len(w) for c, w in zip(conc, wells)] or [[]])
        y = np.concatenate(wells or [[]])
        x, y = x[np.isfinite(y)], y[np.isfinite(y)]
        finite = np.isfinite(levels)
        conc, levels = conc[finite], levels[finite]
        reached = conc[levels >= p.hc50_level_percent]
        lowest = float(reached.min()) if reached.size else None
        problem = "no concentration has a value" if not conc.size else dr.monotonic_problem(
            conc, levels, 0.0, p.nonmonotonic_tolerance_percent, "% hemolysis", unit)
        curve, why = (None, "") if problem or lowest == conc.min() else dr.fit_curve(x, y, p.fit_fixed)
        if problem:
            hc50 = dr.IC50("not-estimated", reason=problem.replace("IC50", "HC50"))
        elif lowest is not None and lowest == conc.min():
            hc50 = dr.IC50("below-lowest-tested", reason=f"HC50 < {lowest:.4g} {unit} (lowest tested)")
        else:
            hc50 = dr.ic50(curve, why, x, conc, levels, 0.0, p.ci_level, unit, p.hc50_level_percent)
            hc50.reason = hc50.reason.replace("IC50", "HC50")
        if hc50.status == "estimated":
            ci = f"{hc50.lower:.4g}–{hc50.upper:.4g}" if hc50.lower is not None else "not computable"
            hc50.reason = f"HC50 {hc50.value:.4g} {unit} ({100 * p.ci_level:g} % CI {ci})"
        bound = {"above-highest-tested": conc.max(), "below-lowest-tested": conc.min()}.get(hc50.status)
        return ({"hc50": vars(hc50), "hc50_bound": None if bound is None else float(bound),
                 "lowest_reaching": lowest, "highest_tested": float(conc.max()) if conc.size else None},
                curve, x, y)

    def hc50_rows(self, name: str, found: dict, conditions: list[dict], unit: str) -> list[Result]:
        """The HC50 (censored as > or < its bound), its CI and the lowest concentration reaching the level."""
        hc50 = found["hc50"]
        qualifier = {"above-highest-tested": ">", "below-lowest-tested": "<"}.get(hc50["status"])
        estimated = hc50["status"] == "estimated"
        rows = [Result(name, "hc50", hc50["value"] if qualifier is None else found["hc50_bound"], unit,
                       [] if estimated else [hc50["status"]], hc50["reason"], qualifier=qualifier)]
        if estimated:
            rows += [Result(name, "hc50_ci_lower", hc50["lower"], unit), Result(name, "hc50_ci_upper", hc50["upper"], unit)]
        level = f"{self.p.hc50_level_percent:g} %"
        if found["lowest_reaching"] is not None:
            rows.append(Result(name, "lowest_concentration_reaching_level", found["lowest_reaching"], unit, [],
                               f"lowest tested with mean ≥ {level}"))
        else:
            rows.append(Result(name, "lowest_concentration_reaching_level", found["highest_tested"], unit,
                               ["not-reached"], f"{level} not reached up to the highest tested", qualifier=">"))
        return rows
