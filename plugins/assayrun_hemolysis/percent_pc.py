"""Hemolysis as % of the positive control over a dose series (no calibration line), HC50 per sample.

    A    = A_read - A_reference (when the plate has the reference read) - mean A blank
    A*   = A - (mean A blood-free - mean A blank)   for a concentration with blood-free (interference) wells
    % hemolysis = 100 x (A* - mean A NC) / (mean A PC - mean A NC)      per well (NC = 0 %, PC = 100 %)
    HC50 = where a 4PL on concentration (bottom/top fixed by fit_fixed) crosses hc50_level_percent, with its
           ci_level CI (delta method on ln HC50, Student's t), or "> highest" / "< lowest" tested.

The series lies in the layout (sample groups with nominal = dilution step, 1 = top concentration) or,
for a plate_series protocol, across plates (one concentration per plate: the run sheet's, else the
protocol's dilution step = the plate's place in its replicate set), with NC and PC on every plate,
used per plate or pooled per replicate set (plate_controls). Replicate series: the k-th well of every
step group (layout), or each replicate plate set (run sheet `replicate`); each gets its own HC50, the
combined one uses every well. A % below flag_below_percent or above flag_above_percent is kept as
computed and flagged; replicate-cv flags a concentration whose wells' read (not their %, which may be
near 0) varies by more than flag_cv_percent.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from assayrunner import (SATURATED, AssayInput, AssayResult, DoseSeries, UserError, check_reads, cv_percent,
                         dilution_step, mean, required_group, sd)

from .dose_series import SampleSeries, summarize
from .parameters import PercentParameters as Parameters

NO_SEPARATION = "no-pc-nc-separation"  # the PC does not lie above the NC: no % can be computed
PC_SATURATED = "positive control saturated: dilute or read at a lower-sensitivity wavelength"
PC_WELLS_SATURATED = "positive control saturated in {n} of {m} wells: dilute or read at a lower-sensitivity wavelength"


def analyze(inp: AssayInput) -> AssayResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-flagged group is NaN, reported as such
        readings = [PlateReading(s.input, s.name, s) for s in inp.series] or [PlateReading(inp, inp.plate.name)]
        if inp.parameters.plate_controls == "pooled" and inp.series:
            pool(readings)
        return SampleSeries(inp, readings).result(control_metrics(readings, inp.parameters))


class PlateReading:
    """One plate: corrected absorbances, its NC and PC levels, its conditions."""

    def __init__(self, inp: AssayInput, name: str, plate=None):
        self.inp, self.p, self.name, self.plate = inp, inp.parameters, name, plate  # plate: SeriesPlate or None
        check_reads(inp, "read", "reference_read")
        self.referenced = self.p.reference_read in inp.reads
        blank = inp.layout.group("blank")
        self.blank = mean(self.absorbance(blank)) if blank else 0.0
        self.controls = [self.control(required_group(inp, "control", n, needed_by="% of the positive control"))
                         for n in (self.p.negative_control, self.p.positive_control)]
        self.nc, self.pc = (c["mean_absorbance"] for c in self.controls)

    @property
    def replicate(self) -> str | None:
        return self.plate.replicate if self.plate else None

    def absorbance(self, group) -> np.ndarray:
        """Absorbance per well before blank correction: the read, less the reference read when there is one."""
        a = self.inp.values(group, self.p.read)
        return a - self.inp.values(group, self.p.reference_read) if self.referenced else a

    def saturation(self, group) -> dict[str, str]:
        """Well -> flag for wells the reader flagged, or whose raw read is at or above saturation_od."""
        flagged = dict(self.inp.flagged(group, self.p.read))
        raw = self.inp.values(group, self.p.read)
        flagged.update({w: SATURATED for w, v in zip(group.wells, raw) if v >= self.p.saturation_od})
        return flagged

    def control(self, group) -> dict:
        """A control's blank-corrected absorbances, mean, SD, %CV, raw mean and saturated wells."""
        a = self.absorbance(group) - self.blank
        raw = self.inp.values(group, self.p.read)
        flags = self.saturation(group)
        all_saturated = not np.isfinite(raw).any() and SATURATED in flags.values()
        return {"name": group.name, "plate": self.name, "wells": list(group.wells), "absorbance": a.tolist(),
                "mean_absorbance": mean(a), "sd": sd(a), "cv_percent": cv_percent(a),
                "raw_mean": math.inf if all_saturated else mean(raw),
                "flags": [f"{flag} well {well}" for well, flag in flags.items()],
                "saturated_wells": sum(f == SATURATED for f in flags.values())}

    def concentration(self, group, series: DoseSeries, source: str, step: int | None) -> float:
        """A sample group's concentration: the run sheet's for its plate, else its dilution step's."""
        if self.plate is None:
            return series.at(dilution_step(group, series, source, self.inp.protocol.path))
        if self.plate.concentration is not None:
            return self.plate.concentration
        if series.steps is not None and step > series.steps:
            raise UserError(f"plate {self.plate.position} is step {step} of its series but the dose series ({source}) "
                            f"lists {series.steps} concentrations; give each plate's concentration in the run sheet",
                            file=self.plate.file)
        return series.at(step)

    def condition(self, group, concentration: float, label: str) -> dict:
        """One concentration's wells: corrected A, blood-free correction, % per well, mean, SD, %CV, flags."""
        p = self.p
        a = self.absorbance(group) - self.blank
        free = self.inp.layout.groups("sample", interference=True)
        free = next((g for g in free if g.name == group.name and g.spec.nominal == group.spec.nominal), None)
        shift = mean(self.absorbance(free) - self.blank) if free else 0.0
        span = self.pc - self.nc
        percent = 100 * (a - shift - self.nc) / span if span > 0 else np.full(a.size, np.nan)
        where = f"plate {self.plate.position} " if self.plate else ""
        flags = [f"{flag} well {where}{well}" for g in (group, free) if g for well, flag in self.saturation(g).items()]
        flags += [] if span > 0 else [NO_SEPARATION]
        series = [self.replicate] * a.size if self.plate else list(range(1, a.size + 1))
        return summarize({"label": label, "concentration": concentration,
                          "absorbance_cv_percent": cv_percent(a + self.blank),
                          "wells": [f"{where}{w}" for w in group.wells],
                          "blood_free_wells": [f"{where}{w}" for w in free.wells] if free else [],
                          "absorbance": a.tolist(), "blood_free": shift if free else None,
                          "percent": percent.tolist(), "series": series, "flags": flags}, p)


def pool(readings: list[PlateReading]) -> None:
    """plate_controls = "pooled": every plate of a replicate set uses the NC and PC wells of all its plates."""
    for replicate in dict.fromkeys(r.replicate for r in readings):
        same = [r for r in readings if r.replicate == replicate]
        nc, pc = (mean(np.concatenate([r.controls[k]["absorbance"] for r in same])) for k in (0, 1))
        for r in same:
            r.nc, r.pc = nc, pc


def control_metrics(readings: list[PlateReading], p: Parameters) -> dict:
    """What the acceptance criteria judge, the worst plate for a series: PC saturation headroom, saturated PC
    wells beyond pc_max_saturated_wells, NC and PC %CV, PC - NC separation; a note names the plate a failure
    comes from."""
    many = len(readings) > 1

    def worst(values, pick):
        nan_first = math.inf if pick is max else -math.inf  # a plate that could not be judged is the worst
        k = pick(range(len(values)), key=lambda i: values[i] if math.isfinite(values[i]) else nan_first)
        return values[k], readings[k].name

    headroom, at = worst([p.saturation_od - r.controls[1]["raw_mean"] for r in readings], min)
    saturation = {"headroom_od": headroom if math.isfinite(headroom) else math.nan}
    if not headroom > 0:
        saturation["note"] = (f"{PC_SATURATED} (mean raw {p.read}{f' on plate {at}' if many else ''} at or above "
                              f"saturation_od {p.saturation_od:g})")
    count, at = worst([r.controls[1]["saturated_wells"] for r in readings], max)
    wells = len(readings[0].controls[1]["wells"])
    excess = {"saturated_wells": count, "over_allowed": count - p.pc_max_saturated_wells}
    if excess["over_allowed"] > 0:
        excess["note"] = (PC_WELLS_SATURATED.format(n=count, m=wells) + (f" (plate {at})" if many else "")
                          + f"; the protocol allows {p.pc_max_saturated_wells} (pc_max_saturated_wells)")
    controls = {}
    for k, name in enumerate((p.negative_control, p.positive_control)):
        cv, at = worst([r.controls[k]["cv_percent"] for r in readings], max)
        controls[name] = {"mean_absorbance": mean([r.controls[k]["mean_absorbance"] for r in readings]),
                          "cv_percent": cv, "saturated_wells": sum(r.controls[k]["saturated_wells"] for r in readings),
                          **({"note": f"highest %CV on plate {at}"} if many else {})}
    separation, at = worst([r.pc - r.nc for r in readings], min)
    return {"blank": {"mean_absorbance": mean([r.blank for r in readings])}, "controls": controls,
            "saturation": {p.positive_control: saturation}, "saturated_wells": {p.positive_control: excess},
            "separation": {"pc_minus_nc_od": separation, **({"note": f"smallest on plate {at}"} if many else {})}}
