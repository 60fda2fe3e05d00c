"""The vendor cross-check: our in-well concentrations (and blank-subtracted responses) against the reader
software's, well by well.

    tolerance_i = |dc_i/dy_i| d_i + sum_j |dc_i/dy_j| d_j + sum_b |dc_i/dy_b| d_b + u_i

d = half a unit of the last printed digit of a response (both reads' when a reference is subtracted),
j the standard wells (through the refitted curve, to first order: dθ/dy = (J'WJ)^-1 J'W), b the blank
wells (their mean is subtracted from every response), u_i half a unit of the vendor's printed value.
A well agrees when |ours - vendor| <= tolerance; a vendor bound ('<0.000', '>40.000') agrees when our value
lies on its side (within the tolerance); a vendor text ('Range?') agrees when we find no value either.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def sensitivities(curve, x_std: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dc/dy of each well's own response, dc/dy_std: one row per well, one column per standard well) at the
    responses y; NaN where the curve has no inverse."""
    c = curve.inverse(y)[0]
    slope = _slope(curve, c)
    free, dtheta = parameter_sensitivities(curve, x_std, weights)
    G = _param_jacobian(curve, np.where(np.isfinite(c), c, 0.0))[:, free]  # (n_wells, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = 1.0 / slope
        through = -(G @ dtheta) / slope[:, None]
    return own, through


def parameter_sensitivities(curve, x_std: np.ndarray, weights: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(indices of the free parameters, dθ/dy_std (k_free, n_std)): how the refitted parameters move with each
    standard well's response, to first order ((J'WJ)^-1 J'W)."""
    free = [k for k, name in enumerate(curve.params) if name not in curve.fixed]
    J = _param_jacobian(curve, x_std)[:, free]                           # (n_std, k)
    JW = J.T * weights                                                   # (k, n_std)
    return free, np.linalg.pinv(JW @ J) @ JW


#: Gen5's printed curves: Y = (A-D)/(1+(X/C)^B) + D (A the response at X = 0, D at infinity, C the ec50) and
#: Y=A*X+B, spaces left out.
GEN5_FORMULAS = {"Y=(A-D)/(1+(X/C)^B)+D": "4pl", "Y=A*X+B": "linear"}


def _gen5_names(curve) -> dict[str, str]:
    """Gen5's letters -> our parameter names for the fitted curve."""
    if curve.model == "linear":
        return {"A": "slope", "B": "intercept"}
    rising = curve.params["hill"] < 0  # our 4PL keeps bottom <= top: y(0) is the bottom when the curve rises
    return {"A": "bottom" if rising else "top", "B": "hill", "C": "ec50", "D": "top" if rising else "bottom"}


def curve_rows(curve, x_std, weights, half: float, printed: dict | None) -> list[dict]:
    """The software's printed curve parameters beside ours, each with its tolerance (the standards' printed
    precision through the refit, plus half a unit of the printed digit); [] for a curve we cannot map."""
    from assayrunner import half_unit

    if not printed or GEN5_FORMULAS.get(printed.get("Curve Formula", "").replace(" ", "")) != curve.model:
        return []
    p = curve.params
    names = _gen5_names(curve)
    ours = {key: abs(p[name]) if name == "hill" else p[name] for key, name in names.items()}
    free, dtheta = parameter_sensitivities(curve, x_std, weights)
    moved = dict(zip([list(p)[k] for k in free], np.abs(dtheta).sum(axis=1) * half))
    rows = []
    for key, value in ours.items():
        text = str(printed.get(key, "")).strip()
        try:
            theirs = float(text)
        except ValueError:
            continue
        tol = float(moved.get(names[key], 0.0) + half_unit(text))
        diff = abs(abs(theirs) - value) if names[key] == "hill" else abs(theirs - value)
        rows.append({"parameter": key, "ours": float(value), "vendor": text, "difference": float(diff),
                     "tolerance": tol, "agrees": bool(diff <= tol)})
    return rows


def tolerances(curve, x_std, y_std_half, weights, y, y_half, blank_half: np.ndarray, dilution: np.ndarray,
               vendor_half: np.ndarray) -> np.ndarray:
    """Each well's tolerance (see the module docstring), in the units compared (x dilution)."""
    own, through = sensitivities(curve, x_std, y, weights)
    raw = np.abs(own) * y_half + np.abs(through) @ y_std_half
    if blank_half.size:  # the blank mean moves every response: well and standards alike
        shift = own + through.sum(axis=1)
        raw = raw + np.abs(shift) * blank_half.sum() / blank_half.size
    return raw * dilution + np.nan_to_num(vendor_half)


def compare(ours: float, side: str, vendor, tolerance: float, bounds: tuple[float, float]) -> tuple[bool, float]:
    """(agrees, |difference|) of one well; side is 'below' or 'above' the curve when ours is NaN; bounds
    (LLOQ, ULOQ) stand in for a vendor's '< Min' / '> Max' without a number."""
    if vendor.value is None and vendor.qualifier:
        vendor = dataclasses.replace(vendor, value=bounds[0] if vendor.qualifier == "<" else bounds[1])
    if vendor.value is None:  # a text such as 'Range?': the software found no value
        return (not math.isfinite(ours)), math.nan
    if not math.isfinite(ours):
        wanted = {"<": "below", ">": "above"}.get(vendor.qualifier)
        return wanted == side, math.nan
    diff = abs(ours - vendor.value)
    if vendor.qualifier == "<":
        return ours <= vendor.value + tolerance, diff if ours > vendor.value else 0.0
    if vendor.qualifier == ">":
        return ours >= vendor.value - tolerance, diff if ours < vendor.value else 0.0
    return diff <= tolerance, diff


def _slope(curve, x: np.ndarray) -> np.ndarray:
    """df/dx at x by central differences (NaN where x is NaN)."""
    h = 1e-6 * np.maximum(np.abs(x), 1e-6)
    lo = np.maximum(x - h, 0.0) if curve.model in ("4pl", "5pl") else x - h
    return (curve.predict(x + h) - curve.predict(lo)) / (x + h - lo)


def _param_jacobian(curve, x: np.ndarray) -> np.ndarray:
    """df/dθ (n, k) at x by central differences in each parameter."""
    columns = []
    for name, value in curve.params.items():
        h = 1e-6 * max(abs(value), 1e-6)
        up = dataclasses.replace(curve, params={**curve.params, name: value + h})
        down = dataclasses.replace(curve, params={**curve.params, name: value - h})
        columns.append((up.predict(x) - down.predict(x)) / (2 * h))
    return np.column_stack(columns)


def agreement(inp, sc, standards: list, blanks: list, response) -> dict:
    """Our in-well concentrations against the software's: {'metrics': ..., 'details': ... or None}."""
    from assayrunner import printed_half_unit, weight_vector

    vendor = inp.plate.vendor_results()
    groups = standards + [g for g in inp.layout.groups() if g.role in ("sample", "control", "qc", "spike")]
    by_well = {w: (g, r) for g in groups for w, r in zip(g.wells, response(g))}
    compared = [v for v in (vendor.values.values() if vendor else ()) if v.wells and all(w in by_well for w in v.wells)]
    if not compared:
        note = ("the export carries no concentrations calculated by the reader software: nothing to compare"
                if vendor is None or not vendor.values else "no layout well has a value from the reader software")
        return {"metrics": {"compared": 0, "outside": 0, "note": note}, "details": None}
    p = inp.parameters
    reads = [name for name in (p.read, p.reference_read) if name in inp.reads]
    half = sum(printed_half_unit(inp.reads[name].values) for name in dict.fromkeys(reads))
    half = half if math.isfinite(half) else 0.0
    responses = np.array([np.mean([by_well[w][1] for w in v.wells]) for v in compared])
    ours = sc.back_calculate(responses)
    curve = sc.fit
    blank_half = np.full(sum(len(g.wells) for g in blanks), half) if p.subtract_blank else np.array([])
    tol = tolerances(curve, sc.x, np.full(sc.x.size, half), weight_vector(curve.weights, sc.x, sc.y), responses,
                     np.full(responses.size, half), blank_half, np.ones(responses.size),
                     np.array([v.half_unit for v in compared]))
    blank_rows = _blank_rows(inp, vendor, groups, blanks)
    rows, outside = [], [f"{r['well']} (blank-subtracted)" for r in blank_rows if not r["agrees"]]
    for v, c, r, t in zip(compared, ours, responses, tol):
        ok, diff = compare(float(c), "below" if sc.below(r) else "above", v, float(t), (sc.lloq, sc.uloq))
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
        if not inp.layout.from_export and inp.plate.export_layout() is not None:
            metrics["note"] += ("; the export carries its own layout, which this run did not use: with "
                                "--layout-from-export the run takes it")
    details = {"software": vendor.software, "version": vendor.version, "source": vendor.source, "curve": vendor.curve,
               "curve_rows": curve_rows(curve, sc.x, weight_vector(curve.weights, sc.x, sc.y), half, vendor.curve),
               "rows": rows, "blank_rows": blank_rows, "outside": outside, "largest": largest,
               "read_half_unit": half}
    return {"metrics": metrics, "details": details}


def _blank_rows(inp, vendor, groups: list, blanks: list) -> list[dict]:
    """The software's blank-subtracted values of our response read (Gen5 'Blank <read>') against ours, raw minus
    the mean of the blank wells; tolerance: the read's half unit for the well and for the blank mean, plus the
    software's. Only for a response without a reference read (the software blanks one read)."""
    from assayrunner import mean, printed_half_unit

    p = inp.parameters
    read = inp.reads[p.read]
    printed = vendor.blank_subtracted.get(read.label)
    if not printed or not blanks or (p.reference_read in inp.reads and p.reference_read != p.read):
        return []
    blank = mean(np.concatenate([inp.values(g, p.read) for g in blanks]))
    half = printed_half_unit(read.values)
    half = half if math.isfinite(half) else 0.0
    rows = []
    for g in groups:
        for well, raw in zip(g.wells, inp.values(g, p.read)):
            v = printed.get(well)
            if v is None or v.value is None or not math.isfinite(raw):
                continue
            diff, tol = abs(raw - blank - v.value), 2 * half + np.nan_to_num(v.half_unit)
            rows.append({"well": well, "group": g.name, "ours": float(raw - blank), "vendor": v.text,
                         "difference": float(diff), "tolerance": float(tol), "agrees": bool(diff <= tol)})
    return rows
