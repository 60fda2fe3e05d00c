"""Plate input: a clot time per well from its kinetic turbidity curve (assayrunner.kinetics), tests by well region.

A flat curve is told apart by its level. The test's wells that rose after a baseline (a majority
of baseline_reads before their onset) give the unclotted level (their median baseline) and a
typical rise (their median amplitude). A flat curve below the unclotted level + clot_fraction x
that rise did not clot ("> last read"; a turbid nanoparticle only raises the level a little); at
or above it, it clotted before the first reads ("< the first read at its half level"). With no
well to compare, a flat curve has no clot time. A saturated rise gives a lower bound ("> t").
"""

from __future__ import annotations

from dataclasses import asdict
from itertools import cycle

import numpy as np

from assayrunner import (SATURATED, AssayInput, CurveSummary, Group, Read, UserError, expand_wells, kinetic_plot,
                         parse_well, plateau_from_start, summarize_curve)

from .model import Condition, KineticSettings, Parameters, Replicate, role_of

COLORS = {"normal control": "#136f2d", "abnormal control": "#b00020", "vehicle": "#777777"}
PALETTE = ("#1f4e9c", "#e08a00", "#7b3fa0", "#0f8b8d", "#c2185b", "#5d7f00", "#8d6e63", "#3f51b5", "#d4a017")
NOTES = {"no-rise": "no clot", "saturated": "clot-time-unreliable (saturated: a lower bound)",
         "no-data": "too few reads", "at-plateau": "clotted-before-first-read",
         "flat": "flat curve, no clotting well to compare: no clot or clotted before the first read"}


def plate_conditions(inp: AssayInput) -> tuple[dict[str, list[Condition]], dict, dict]:
    """Per test, the layout's controls and samples with a clot time per well; per-well curve details and plots."""
    p: Parameters = inp.parameters
    k = p.kinetics
    read = inp.reads.get(k.read)
    if read is None or read.kind != "kinetic":
        raise UserError(f"{k.read!r} is not a kinetic read of this protocol's [[reads]]", file=inp.protocol.path,
                        where="parameters.kinetics.read")
    test_of = _test_regions(inp)
    conditions: dict[str, list[Condition]] = {test: [] for test in p.tests}
    wells: dict[str, list[dict]] = {test: [] for test in p.tests}
    curves: dict[str, list[dict]] = {test: [] for test in p.tests}
    colors: dict[str, str] = {}
    palette = cycle(PALETTE)
    members = []  # (test, group, role, label, well, curve)
    for group in inp.layout.groups():
        if group.role not in ("control", "sample"):
            raise UserError(f"role {group.role!r} is not used by the coagulation assay (roles: control, sample)",
                            file=inp.protocol.path, where=f"layout.wells[{group.index}]")
        role = role_of(group.name, p, group.role)
        label = inp.sample_name(group.name) if group.role == "sample" else group.name
        if label not in colors:
            colors[label] = COLORS.get(role) or next(palette)
        for test, test_wells in _wells_by_test(group, test_of, inp).items():
            members += [(test, group, role, label, well, _curve(read, well, k)) for well in test_wells]
    references = _unclotted_levels(members, k)
    before_onset: dict[str, list[int]] = {test: [] for test in p.tests}
    by_condition: dict[tuple, Condition] = {}
    for test, group, role, label, well, curve in members:
        replicate, reads_before = _replicate(read, well, curve, references.get(test), k)
        if reads_before is not None:
            before_onset[test].append(reads_before)
        if (test, group.name) not in by_condition:
            by_condition[test, group.name] = Condition(group.name, label, role, [])
            conditions[test].append(by_condition[test, group.name])
        by_condition[test, group.name].replicates.append(replicate)
        wells[test].append({"well": well, "sample": label, **asdict(curve), "reported": _reported(replicate),
                            "note": replicate.note})
        curves[test].append({"label": label, "color": colors[label], "points": _points(read, well),
                             "mark": None if curve.status != "ok" else
                             (curve.fraction_time_s, curve.baseline + k.clot_fraction * curve.amplitude)})
    axis = f"absorbance at {read.wavelength_nm:g} nm" if read.wavelength_nm else f"absorbance ({read.label})"
    details = {test: {"wells": wells[test], "plot": kinetic_plot(curves[test], "time (s)", axis, "clot time",
                                                                 _plot_end(curves[test]))} for test in p.tests}
    interval = float(np.median(np.diff(read.times_s))) if len(read.times_s) > 1 else float("nan")
    minimum = {test: float(min(n)) if n else float("nan") for test, n in before_onset.items()}
    for test in p.tests:
        details[test]["unclotted_level"], details[test]["typical_rise"] = references.get(test, (None, None))
    return conditions, {"kinetics": {"read_interval_s": interval, "reads_before_onset": minimum}}, details


def _wells_by_test(group: Group, test_of: dict[str, str], inp: AssayInput) -> dict[str, list[str]]:
    by_test: dict[str, list[str]] = {}
    for well in group.wells:
        if well not in test_of:
            raise UserError(f"well {well} ({group.name}) is in no test's wells (parameters.tests.*.wells)",
                            file=inp.protocol.path, where=f"layout.wells[{group.index}]")
        by_test.setdefault(test_of[well], []).append(well)
    return by_test


def _curve(read: Read, well: str, k: KineticSettings) -> CurveSummary:
    return summarize_curve(
        read.times_s, read.values[parse_well(well)], smoothing_window=k.smoothing_window,
        baseline_reads=k.baseline_reads, fraction=k.clot_fraction, onset_fraction=k.onset_fraction,
        onset_min_au=k.onset_min_au, min_amplitude_au=k.min_amplitude_au, slope_window=k.slope_window,
        saturation_au=k.saturation_au, overflow=read.flags.get(well) == SATURATED)


def _points(read: Read, well: str) -> list[tuple[float, float]]:
    values = read.values[parse_well(well)]
    finite = np.isfinite(values)
    return list(zip(read.times_s[finite].tolist(), values[finite].tolist()))


def _plot_end(curves: list[dict]) -> float | None:
    """Show three times the longest clot time (the plateaus), not a long flat read window."""
    marks = [c["mark"][0] for c in curves if c["mark"]]
    return 3 * max(marks) if marks else None


def _unclotted_levels(members: list, k: KineticSettings) -> dict[str, tuple[float, float]]:
    """Per test, (median baseline, median amplitude) of the wells that rose with a clean baseline."""
    rises: dict[str, list[tuple[float, float]]] = {}
    for test, *_, curve in members:
        if curve.status == "ok" and curve.reads_before_onset > k.baseline_reads // 2:
            rises.setdefault(test, []).append((curve.baseline, curve.amplitude))
    return {test: tuple(float(x) for x in np.median(np.array(values), axis=0)) for test, values in rises.items()}


def _replicate(read: Read, well: str, curve: CurveSummary, reference: tuple[float, float] | None,
               k: KineticSettings) -> tuple[Replicate, int | None]:
    """The well's clot time (a bound when censored) and the reads its baseline had before the onset."""
    if curve.status == "ok":
        return Replicate(curve.fraction_time_s, where=well), curve.reads_before_onset
    if curve.status == "saturated":
        bound = curve.fraction_time_s if curve.fraction_time_s is not None else float("nan")
        return Replicate(bound, ">", well, NOTES["saturated"], f"{NOTES['saturated']} well {well}"), \
            curve.reads_before_onset
    if curve.status == "no-rise":
        if reference is None:
            return Replicate(float("nan"), None, well, NOTES["flat"], f"no clot time well {well}"), None
        early = plateau_from_start(read.times_s, read.values[parse_well(well)], *reference, k.clot_fraction)
        if early is not None:
            return Replicate(early[0], "<", well, NOTES["at-plateau"], f"{NOTES['at-plateau']} well {well}"), early[1]
        return Replicate(curve.censored_after_s, ">", well, NOTES["no-rise"]), None
    return Replicate(float("nan"), None, well, NOTES[curve.status], f"{NOTES[curve.status]} well {well}"), None


def _reported(replicate: Replicate) -> str:
    """The well's clot time as the certificate prints it: '12.3', '> 600.0', '< 30.0' or '—'."""
    if not np.isfinite(replicate.seconds):
        return "—"
    return f"{replicate.qualifier or ''} {replicate.seconds:.1f}".strip()


def _test_regions(inp: AssayInput) -> dict[str, str]:
    """Well -> the test whose wells (parameters.tests.<test>.wells) hold it."""
    test_of: dict[str, str] = {}
    for test, spec in inp.parameters.tests.items():
        if spec.wells is None:
            raise UserError("plate input needs the wells of every test", file=inp.protocol.path,
                            where=f"parameters.tests.{test}.wells")
        for well in expand_wells(spec.wells):
            if well in test_of:
                raise UserError(f"well {well} is in the wells of {test_of[well]} too", file=inp.protocol.path,
                                where=f"parameters.tests.{test}.wells")
            test_of[well] = test
    return test_of
