"""Cytotoxicity (NCL GTA-1 LLC-PK1, GTA-2 Hep G2; ASTM E2526): MTT or LDH per well, dose-response per sample.

    A  = A_read - A_reference                    per well (when the plate has the reference read)
    A* = A - (mean A cell-free - mean A blank)   for a condition with cell-free (interference) wells
    MTT: % viability    = 100 x (A* - mean A blank) / (mean A untreated - mean A blank)
    LDH: % cytotoxicity = 100 x (A* - mean A untreated) / (mean A max-release - mean A untreated)

Lowest effect concentration: the lowest whose wells differ from the untreated wells by Dunnett's test
(p < lowest_effect_alpha, toxic direction), or with lowest_effect_rule = "threshold" the lowest whose
mean differs from untreated by more than effect_threshold_percent points. Concentrations flagged for
interference are left out of the IC50 fit unless fit_interference = true.

Layout roles: blank (medium, no cells), untreated, vehicle, positive-control (nominal = its
concentration, with unit), max-release (LDH: cells lysed with Triton X-100), sample (nominal =
dilution step, 1 = top concentration); interference = true marks a condition's cell-free wells.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from assayrunner import (INTERFERENCE, NOT_REACHED, P_FLOOR, REPLICATE_CV, AssayInput, AssayResult,
                         FitRecord, Result, UserError, check_reads, cv_percent, dilution_step, doseresponse as dr,
                         dunnett, mean, reference_corrected, required_group, sd, series_for, well_flags)

METRIC = {"MTT": "percent_viability", "LDH": "percent_cytotoxicity"}
WHAT = {"MTT": "% viability", "LDH": "% cytotoxicity"}
CONTROLS = ("blank", "untreated", "vehicle", "max-release")
NOTES = {("MTT", "blank"): "0 % viability (no cells)", ("MTT", "untreated"): "100 % viability",
         ("LDH", "blank"): "medium background (no cells)", ("LDH", "untreated"): "0 % (spontaneous release)",
         ("LDH", "max-release"): "100 % (maximum release)"}


@dataclass
class Condition:
    """One condition (a control, a positive-control or sample concentration): absorbances, cell-free correction,
    % per well, mean, SD and flags; a control's note, a sample concentration's Dunnett p (None: not one)."""

    role: str
    name: str
    label: str
    concentration: float | None
    well_range: str
    cell_free_range: str
    absorbance: list[float]
    mean_absorbance: float
    cv_percent: float
    cell_free: list[float]
    interference_percent: float | None
    percent: list[float]
    mean: float
    sd: float
    flags: list[str]
    note: str | None = None
    p_value: float | None = None

    def to_dict(self) -> dict:
        """As stored in the details: note and p_value only where they apply."""
        out = asdict(self)
        for key in ("note", "p_value"):
            if out[key] is None:
                del out[key]
        return out


def analyze(inp: AssayInput) -> AssayResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-flagged group is NaN, reported as such
        return Cytotoxicity(inp).run()


class Cytotoxicity:
    """One plate: corrected absorbances, the two reference levels of the percentages, every condition."""

    def __init__(self, inp: AssayInput):
        self.inp, self.p = inp, inp.parameters
        check_reads(inp, "read", "reference_read")
        self.absorbance, self.referenced = reference_corrected(inp, self.p.read, self.p.reference_read)
        self.cell_free = {(g.role, g.name, g.spec.nominal): g for g in inp.layout.groups(interference=True)}
        self.blank = mean(self.absorbance(self.required("blank")))
        self.untreated = mean(self.absorbance(self.required("untreated")))
        if self.p.readout == "MTT":
            self.zero, self.full = self.blank, self.untreated
        else:
            self.zero, self.full = self.untreated, mean(self.absorbance(self.required("max-release")))

    def required(self, role: str):
        return required_group(self.inp, role, needed_by=f"the {self.p.readout} readout")

    def percent(self, a):
        return 100 * (a - self.zero) / (self.full - self.zero)

    def condition(self, group, label: str, concentration: float | None = None) -> Condition:
        """One condition's wells, cell-free correction, % per well, mean, spread and flags."""
        p = self.p
        a = self.absorbance(group)
        cell_free = self.cell_free.get((group.role, group.name, group.spec.nominal))
        a_free = self.absorbance(cell_free) if cell_free else np.array([])
        shift = mean(a_free) - self.blank if cell_free else 0.0
        percent = self.percent(a - shift)
        interference = 100 * shift / (self.untreated - self.blank) if cell_free else None
        flags = well_flags(self.inp, [group, cell_free], [p.read, p.reference_read])
        if cv_percent(a) > p.flag_cv_percent:
            flags.append(REPLICATE_CV)
        if interference is not None and interference > p.flag_interference_percent:
            flags.append(INTERFERENCE)
        if mean(percent) > p.flag_above_percent:
            flags.append(f"above-{p.flag_above_percent:g}-percent")
        return Condition(group.role, group.name, label, concentration, group.spec.wells,
                         cell_free.spec.wells if cell_free else "", a.tolist(), mean(a), cv_percent(a),
                         a_free.tolist(), interference, percent.tolist(), mean(percent), sd(percent), flags)

    def run(self) -> AssayResult:
        p, layout = self.p, self.inp.layout
        metric = METRIC[p.readout]
        controls = [self.condition(g, g.name) for role in CONTROLS for g in layout.groups(role, interference=False)]
        for c in controls:
            c.note = NOTES.get((p.readout, c.role), "")
        positive = [self.condition(g, f"{g.name} {g.spec.nominal:g} {g.spec.unit or ''}".rstrip(), g.spec.nominal)
                    for g in self._positive_groups()]
        reported = [c for c in controls if c.role == "vehicle"] + positive
        results = [Result(c.label, metric, c.mean, "%", c.flags) for c in reported]
        samples, fits = [], []
        for slot in dict.fromkeys(g.name for g in layout.groups("sample", interference=False)):
            sample, rows, fit_record = self.sample(slot, {s["name"] for s in samples})
            samples.append(sample)
            results += rows
            fits.append(fit_record)
        metrics = self.metrics(controls, positive)
        details = {"readout": p.readout, "cell_line": p.cell_line, "exposure_h": p.exposure_h, "what": WHAT[p.readout],
                   "reads": f"{p.read} − {p.reference_read}" if self.referenced else p.read,
                   "reference_missing": p.reference_read if p.reference_read and not self.referenced else None,
                   "blank": self.blank, "untreated": self.untreated, "zero": self.zero, "full": self.full,
                   "controls": [c.to_dict() for c in controls], "positive_control": [c.to_dict() for c in positive],
                   "samples": samples,
                   "ci_level": p.ci_level, "fit_fixed": p.fit_fixed, "effect_threshold": p.effect_threshold_percent,
                   "lowest_effect_rule": p.lowest_effect_rule, "lowest_effect_alpha": p.lowest_effect_alpha,
                   "fit_interference": p.fit_interference, "p_floor": P_FLOOR}
        return AssayResult(metrics, results, fits, details)

    def _positive_groups(self):
        groups = self.inp.layout.groups("positive-control", interference=False)
        for g in groups:
            if g.spec.nominal is None:
                raise UserError("a positive-control group needs nominal = its concentration (and unit)",
                                file=self.inp.protocol.path, where=f"layout.wells[{g.index}]")
        return sorted(groups, key=lambda g: -g.spec.nominal)

    def metrics(self, controls: list[Condition], positive: list[Condition]) -> dict:
        """What the protocol's acceptance criteria point into."""
        relative = self.untreated - self.blank
        metrics = {"blank": {"mean_absorbance": self.blank}, "controls": {
            c.name: {"mean_absorbance": c.mean_absorbance, "cv_percent": c.cv_percent,
                     "percent_of_untreated": 100 * (c.mean_absorbance - self.blank) / relative}
            for c in controls if c.role != "blank"}}
        if self.p.readout == "LDH":
            metrics["max_release"] = {"fold_over_spontaneous": (self.full - self.blank) / relative}
        if positive:
            metrics["positive_control"] = {"top_concentration": positive[0].concentration,
                                           "top_concentration_percent": positive[0].mean}
        return metrics

    def sample(self, slot: str, taken: set[str]) -> tuple[dict, list[Result], FitRecord]:
        """One sample slot: its dilution series, dose-response, result rows and fit record."""
        p, inp = self.p, self.inp
        sample = inp.samples.get(slot)
        name = sample.name if sample else slot
        name = f"{name} ({slot})" if name in taken else name
        series, source = series_for(slot, sample, p.dose_series)
        unit = series.unit
        conditions = []
        for g in inp.layout.groups("sample", interference=False):
            if g.name == slot:
                c = series.at(dilution_step(g, series, source, inp.protocol.path))
                conditions.append(self.condition(g, f"{name} {c:.4g} {unit}", c))
        conditions.sort(key=lambda c: -c.concentration)
        untreated = float(self.percent(self.untreated))
        lowest, p_values = self.lowest_effect(conditions, untreated)
        left_out = [c.concentration for c in conditions if INTERFERENCE in c.flags and not p.fit_interference]
        fitted = [c for c in conditions if c.concentration not in left_out]
        conc = np.array([c.concentration for c in fitted])
        means = np.array([c.mean for c in fitted])
        x = np.concatenate([[c.concentration] * len(c.percent) for c in fitted] or [[]])
        y = np.concatenate([c.percent for c in fitted] or [[]])
        wells, levels = np.isfinite(y), np.isfinite(means)
        conc, means, x, y = conc[levels], means[levels], x[wells], y[wells]
        problem = dr.monotonic_problem(conc, means, untreated, p.nonmonotonic_tolerance_percent, WHAT[p.readout],
                                       unit) if conc.size else "no concentration has a value"
        curve, why = (None, "") if problem else dr.fit_curve(x, y, p.fit_fixed)
        ic50 = dr.IC50("not-estimated", reason=problem) if problem else dr.ic50(
            curve, why, x, conc, means, untreated, p.ci_level, unit)
        if ic50.status == "estimated":
            ci = f"{ic50.lower:.4g}–{ic50.upper:.4g}" if ic50.lower is not None else "not computable"
            ic50.reason = f"IC50 {ic50.value:.4g} {unit} ({100 * p.ci_level:g} % CI {ci})"
        rows = [Result(c.label, METRIC[p.readout], c.mean, "%", c.flags, concentration=c.concentration,
                       concentration_unit=unit) for c in conditions]
        if p.lowest_effect_rule == "dunnett":
            rows += [Result(c.label, "p_value", pv, "", c.flags, concentration=c.concentration,
                            concentration_unit=unit) for c, pv in zip(conditions, p_values)]
        without = [f"fit without {c:.4g} {unit} (interference)" for c in left_out]
        qualifier = {"above-highest-tested": ">", "below-lowest-tested": "<"}.get(ic50.status)
        bound = {">": conc.max(), "<": conc.min()}.get(qualifier) if conc.size else None
        rows.append(Result(name, "ic50", ic50.value if bound is None else float(bound), unit,
                           ([] if ic50.status == "estimated" else [ic50.status]) + without, ic50.reason,
                           qualifier=qualifier))
        if ic50.status == "estimated":
            rows += [Result(name, "ic50_ci_lower", ic50.lower, unit), Result(name, "ic50_ci_upper", ic50.upper, unit)]
        tested = [c.concentration for c in conditions if np.isfinite(c.mean)]
        top = f"none up to {max(tested):.4g} {unit}" if tested else None
        if lowest is not None or not tested:
            rows.append(Result(name, "lowest_effect_concentration", lowest, unit, [] if lowest else [NOT_REACHED]))
        else:  # censored: above the highest concentration tested
            rows.append(Result(name, "lowest_effect_concentration", max(tested), unit, [NOT_REACHED], top,
                               qualifier=">"))
        for row in rows:
            row.slot = slot
        detail = {"slot": slot, "name": name, "unit": unit, "series_source": source,
                  "conditions": [c.to_dict() for c in conditions], "ic50": vars(ic50), "lowest_effect": lowest,
                  "no_lowest_effect": top, "left_out_of_fit": left_out}
        return detail, rows, dr.fit_record(name, curve, x, y, unit, WHAT[p.readout], dr.plot_mark(vars(ic50)))

    def lowest_effect(self, conditions: list[Condition], untreated: float) -> tuple[float | None, list[float]]:
        """The lowest effect concentration by the protocol's rule, and each condition's Dunnett p (NaN under the
        threshold rule); each condition gets its p as c.p_value."""
        p = self.p
        means = np.array([c.mean for c in conditions])
        effect = dr.effect(means, untreated)
        if p.lowest_effect_rule == "threshold":
            finite = np.isfinite(means)
            conc = np.array([c.concentration for c in conditions])[finite]
            hits = [dr.lowest_effect(conc, means[finite], untreated, p.effect_threshold_percent)] if conc.size else []
            p_values = [float("nan")] * len(conditions)
            hits = [h for h in hits if h is not None]
        else:
            control = self.percent(self.absorbance(self.required("untreated")))
            p_values, _ = dunnett([c.percent for c in conditions], control)
            hits = [c.concentration for c, e, pv in zip(conditions, effect, p_values)
                    if pv < p.lowest_effect_alpha and e > 0]
        for c, pv in zip(conditions, p_values):
            c.p_value = pv
        return (float(min(hits)) if hits else None), p_values
