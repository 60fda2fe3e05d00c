"""Each sample's dose series over the plate readings of a run: per-concentration % hemolysis, HC50 (combined
and per replicate series) and the lowest tested concentration reaching the HC50 level."""

from __future__ import annotations

import math

import numpy as np

from assayrunner import (NOT_COMPUTABLE, NOT_REACHED, REPLICATE_CV, AssayInput, AssayResult, Replicates, Result, doseresponse as dr,
                         mean, series_for)

CENSORED = {"above-highest-tested": ">", "below-lowest-tested": "<"}


class SampleSeries:
    """The samples of a run, their concentrations on every plate reading, and what is reported of them."""

    def __init__(self, inp: AssayInput, readings: list):
        self.inp, self.p, self.readings = inp, inp.parameters, readings
        seen: dict = {}
        self.steps = []  # a plate's dilution step: its place in its replicate set
        for r in readings:
            seen[r.replicate] = seen.get(r.replicate, 0) + 1
            self.steps.append(seen[r.replicate])

    def result(self, metrics: dict) -> AssayResult:
        p = self.p
        samples, results, fits = [], [], []
        slots = dict.fromkeys(g.name for r in self.readings for g in r.inp.layout.groups("sample", interference=False))
        for slot in slots:
            detail, rows, fit_record = self.sample(slot, {s["name"] for s in samples})
            samples.append(detail)
            results += rows
            fits.append(fit_record)
        first = self.readings[0]
        units = {s["unit"] for s in samples}
        shared_unit = units.pop() if len(units) == 1 else None  # a plate's unit when the run sheet gives none
        details = {"reads": f"{p.read} − {p.reference_read}" if first.referenced else p.read,
                   "reference_missing": p.reference_read if p.reference_read and not first.referenced else None,
                   "plates": [{"name": r.name, "position": r.plate.position, "file": r.plate.file,
                               "concentration": r.plate.concentration, "unit": r.plate.unit or shared_unit,
                               "step": step, "replicate": r.replicate, "blank": r.blank, "nc": r.nc, "pc": r.pc}
                              for r, step in zip(self.readings, self.steps) if r.plate],
                   "plate_controls": p.plate_controls if self.inp.series else None,
                   "blank": first.blank, "nc": first.nc, "pc": first.pc,
                   "controls": [c for r in self.readings for c in r.controls], "samples": samples,
                   "ci_level": p.ci_level, "fit_fixed": p.fit_fixed, "level": p.hc50_level_percent,
                   "saturation_od": p.saturation_od,
                   "saturation_note": metrics["saturation"][p.positive_control].get("note")}
        return AssayResult(metrics, results, fits, details)

    def sample(self, slot: str, taken: set[str]) -> tuple[dict, list[Result], dict]:
        """One sample: per-concentration rows, HC50 combined and per replicate series, its fit record."""
        sample = self.inp.samples.get(slot)
        name = sample.name if sample else slot
        name = f"{name} ({slot})" if name in taken else name
        series, source = series_for(slot, sample, self.p.dose_series)
        unit = next((r.plate.unit for r in self.readings if r.plate and r.plate.unit), series.unit)
        conditions = []
        for reading, step in zip(self.readings, self.steps):
            for g in reading.inp.layout.groups("sample", interference=False):
                if g.name == slot:
                    c = reading.concentration(g, series, source, step)
                    conditions.append(reading.condition(g, c, f"{name} {c:.4g} {unit}"))
        conditions = merged(conditions, self.p)
        rows = [Result(c["label"], "percent_hemolysis", c["mean"], "%", c["flags"], concentration=c["concentration"],
                       concentration_unit=unit) for c in conditions]
        combined, curve, x, y = self.hc50(conditions, None, unit)
        rows += self.hc50_rows(name, combined, unit)
        labels = list(dict.fromkeys(s for c in conditions for s in c["series"] if s is not None))
        replicates = []
        if len(labels) > 1:
            for label in labels:
                one = self.hc50(conditions, label, unit)[0]
                wells = [w for c in conditions for w, s in zip(c["wells"], c["series"]) if s == label]
                replicates.append({"series": label, "wells": wells, **one})
                rows += self.hc50_rows(f"{name} series {label}", one, unit)
        for row in rows:
            row.slot = slot
        detail = {"slot": slot, "name": name, "unit": unit, "series_source": "run sheet" if any(
            r.plate and r.plate.concentration is not None for r in self.readings) else source,
                  "conditions": conditions, **combined, "replicates": replicates}
        mark = dr.plot_mark(combined["hc50"], self.p.hc50_level_percent)
        return detail, rows, dr.fit_record(name, curve, x, y, unit, "% hemolysis", mark)

    def hc50(self, conditions: list[dict], label, unit: str) -> tuple[dict, object, np.ndarray, np.ndarray]:
        """HC50 and lowest concentration reaching the level, over every well (label None) or one replicate series."""
        p = self.p
        wells = [[v for v, s in zip(c["percent"], c["series"]) if label is None or s == label] for c in conditions]
        conc = np.array([c["concentration"] for c, w in zip(conditions, wells) if w])
        wells = [w for w in wells if w]
        levels = np.array([mean(w) for w in wells])
        x = np.concatenate([[c] * len(w) for c, w in zip(conc, wells)] or [[]])
        y = np.concatenate(wells or [[]])
        x, y = x[np.isfinite(y)], y[np.isfinite(y)]
        finite = np.isfinite(levels)
        conc, levels = conc[finite], levels[finite]
        reached = conc[levels >= p.hc50_level_percent]
        lowest = float(reached.min()) if reached.size else None
        at_lowest = lowest is not None and lowest == conc.min()
        problem = "no concentration has a value" if not conc.size else dr.monotonic_problem(
            conc, levels, 0.0, p.nonmonotonic_tolerance_percent, "% hemolysis", unit)
        curve, why = (None, "") if problem or at_lowest else dr.fit_curve(x, y, p.fit_fixed)
        if problem:
            hc50 = dr.IC50("not-estimated", reason=problem.replace("IC50", "HC50"))
        elif at_lowest:
            hc50 = dr.IC50("below-lowest-tested", reason=f"HC50 < {lowest:.4g} {unit} (lowest tested)")
        else:
            hc50 = dr.ic50(curve, why, x, conc, levels, 0.0, p.ci_level, unit, p.hc50_level_percent)
            hc50.reason = hc50.reason.replace("IC50", "HC50")
        if hc50.status == "estimated":
            ci = f"{hc50.lower:.4g}–{hc50.upper:.4g}" if hc50.lower is not None else "not computable"
            hc50.reason = f"HC50 {hc50.value:.4g} {unit} ({100 * p.ci_level:g} % CI {ci})"
        bound = {"above-highest-tested": max, "below-lowest-tested": min}.get(hc50.status, lambda _: None)(conc)
        return ({"hc50": vars(hc50), "hc50_bound": None if bound is None else float(bound),
                 "lowest_reaching": lowest, "highest_tested": float(conc.max()) if conc.size else None},
                curve, x, y)

    def hc50_rows(self, name: str, found: dict, unit: str) -> list[Result]:
        """The HC50 (censored as > or < its bound), its CI and the lowest concentration reaching the level."""
        hc50 = found["hc50"]
        qualifier = CENSORED.get(hc50["status"])
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
                               [NOT_REACHED], f"{level} not reached up to the highest tested", qualifier=">"))
        return rows


def merged(conditions: list[dict], p) -> list[dict]:
    """Conditions of the same concentration (replicate plate sets) as one, highest concentration first."""
    by_dose: dict[float, dict] = {}
    for c in conditions:
        into = by_dose.get(c["concentration"])
        if into is None:
            by_dose[c["concentration"]] = dict(c)
            continue
        for key in ("wells", "blood_free_wells", "absorbance", "percent", "series", "flags"):
            into[key] = into[key] + c[key]
        into["absorbance_cv_percent"] = max(into["absorbance_cv_percent"], c["absorbance_cv_percent"])
        shifts = [s for s in (into["blood_free"], c["blood_free"]) if s is not None]
        into["blood_free"] = float(np.mean(shifts)) if shifts else None
    return [summarize(c, p) for c in sorted(by_dose.values(), key=lambda c: -c["concentration"])]


def summarize(condition: dict, p) -> dict:
    """A condition with its mean, SD, %CV of % hemolysis and the flags they call for."""
    stats = Replicates.of(condition["percent"])
    flags = [f for f in condition["flags"] if not f.endswith("-percent") and f != REPLICATE_CV]
    if condition["absorbance_cv_percent"] > p.flag_cv_percent:  # of the read, not of a % that may be near 0
        flags.append(REPLICATE_CV)
    flags += [NOT_COMPUTABLE] if not math.isfinite(stats.mean) and NOT_COMPUTABLE not in flags else []
    flags += [f"{name}-{limit:g}-percent" for name, limit, out in (
        ("below", p.flag_below_percent, stats.mean < p.flag_below_percent),
        ("above", p.flag_above_percent, stats.mean > p.flag_above_percent)) if out]
    return {**condition, "mean": stats.mean, "sd": stats.sd, "cv_percent": stats.cv_percent, "flags": flags}
