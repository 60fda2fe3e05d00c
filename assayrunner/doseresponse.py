"""Dose-response of one sample (shared by the assays that report an IC50 or HC50): monotonicity, IC50 from a 4PL with its confidence interval, lowest effect.

    4PL: y = bottom + (top - bottom) / (1 + (x / ec50)^hill), fitted to every well (x = concentration)
    IC50: where the fitted curve crosses 50 % (with bottom/top fixed at 0/100 it is ec50)
    CI:   ln IC50 -/+ t(df, (1 + level) / 2) x SE(ln IC50); SE by the delta method from the
          Gauss-Newton covariance s^2 inv(J'J) of the free parameters (what curves.fit reports)

The response is % viability (falls with toxicity) or % cytotoxicity (rises); the side of 50 %
the untreated cells lie on says which way a toxic effect goes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .curves import Fit, fit

IC_LEVEL = 50.0  # the response that defines an IC50, in % (the default of the `level` arguments)
NAMES = ("bottom", "top", "ec50", "hill")
_STANDARDS = re.compile(r"\bstandard(s?)\b")  # curves.py speaks of calibration standards


@dataclass
class IC50:
    """An IC50 or why there is none. status: estimated, above-highest-tested, below-lowest-tested, not-estimated."""

    status: str
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    reason: str = ""


def effect(means: np.ndarray, untreated: float) -> np.ndarray:
    """How far each mean lies from untreated in the toxic direction (percentage points)."""
    return (untreated - means) if untreated >= IC_LEVEL else (means - untreated)


def monotonic_problem(conc: np.ndarray, means: np.ndarray, untreated: float, tolerance: float,
                      what: str, unit: str) -> str:
    """'' for a monotonic series; else which two concentrations break it by more than tolerance."""
    order = np.argsort(conc)
    c, m = conc[order], means[order]
    e = effect(m, untreated)
    drops = np.triu(e[:, None] - e[None, :], k=1)   # [i, j]: effect lost from c_i to a higher c_j
    i, j = np.unravel_index(np.argmax(drops), drops.shape)
    if drops[i, j] <= tolerance:
        return ""
    return (f"no IC50, non-monotonic: mean {what} {m[i]:.3g} at {c[i]:.4g} {unit} but {m[j]:.3g} at the higher "
            f"{c[j]:.4g} {unit}, {drops[i, j]:.3g} points back toward untreated (tolerance {tolerance:g})")


def lowest_effect(conc: np.ndarray, means: np.ndarray, untreated: float, threshold: float) -> float | None:
    """The lowest concentration whose mean differs from untreated by more than threshold points."""
    hit = np.abs(means - untreated) > threshold
    return float(conc[hit].min()) if hit.any() else None


def fit_curve(x: np.ndarray, y: np.ndarray, fixed: dict) -> tuple[Fit | None, str]:
    """(4PL fit, '') or (None, why it could not be fitted)."""
    try:
        return fit(x, y, model="4pl", fixed=fixed), ""
    except ValueError as exc:
        return None, f"no IC50: no 4PL fit: {in_doses(str(exc))}"


def in_doses(message: str) -> str:
    """A curve-fit message in dose-response words: the points fitted are doses, not calibration standards."""
    return _STANDARDS.sub(lambda m: f"dose{m.group(1)}", message)


def ic50(curve: Fit | None, why_no_fit: str, x: np.ndarray, conc: np.ndarray, means: np.ndarray,
         untreated: float, ci_level: float, unit: str, level: float = IC_LEVEL) -> IC50:
    """The IC50 of a monotonic series (x: the fitted wells' concentrations, conc/means: per level): where the
    curve crosses `level` % (50 by default; an HC50's level is a protocol parameter).

    Censored when no level's mean reaches `level` or every one does.
    """
    reached = effect(means, untreated) >= abs(untreated - level)
    lo, hi = float(conc.min()), float(conc.max())
    if not reached.any():
        return IC50("above-highest-tested", reason=f"IC50 > {hi:.4g} {unit} (highest tested)")
    if reached.all():
        return IC50("below-lowest-tested", reason=f"IC50 < {lo:.4g} {unit} (lowest tested)")
    if curve is None or not curve.converged:
        return IC50("not-estimated", reason=why_no_fit or f"no IC50: 4PL {in_doses(curve.message)}")
    value = crossing(curve, level)
    if not math.isfinite(value):
        return IC50("not-estimated", reason=f"no IC50: the fitted curve does not cross {level:g} %")
    if not lo <= value <= hi:
        return IC50("not-estimated", reason=f"no IC50: the fitted curve crosses {level:g} % at {value:.4g} "
                                            f"{unit}, outside the tested {lo:.4g}–{hi:.4g} {unit}")
    lower, upper = confidence_interval(curve, x, value, ci_level, level)
    return IC50("estimated", value, lower, upper)


def crossing(curve: Fit, level: float = IC_LEVEL) -> float:
    """The concentration where the fitted 4PL equals level (NaN when it never does)."""
    b, t, e, h = (curve.params[k] for k in NAMES)
    if not min(b, t) < level < max(b, t):
        return math.nan
    return e * ((t - b) / (level - b) - 1) ** (1 / h)


def confidence_interval(curve: Fit, x: np.ndarray, value: float, ci_level: float,
                        level: float = IC_LEVEL) -> tuple[float | None, float | None]:
    """(lower, upper) of the IC50, symmetric on log concentration; (None, None) when not computable."""
    from scipy.stats import t as student

    se = log_ic50_se(curve, x, level)
    if curve.df < 1 or not math.isfinite(se):
        return None, None
    half = student.ppf((1 + ci_level) / 2, curve.df) * se
    return value * math.exp(-half), value * math.exp(half)


def log_ic50_se(curve: Fit, x: np.ndarray, level: float = IC_LEVEL) -> float:
    """SE of ln IC50 by the delta method over the free parameters (bottom, top, ln ec50, hill)."""
    b, t, e, h = (curve.params[k] for k in NAMES)
    with np.errstate(all="ignore"):
        u = (x / e) ** h
        g = 1 / (1 + u)
        jacobian = np.column_stack([1 - g, g, (t - b) * h * u * g ** 2, -(t - b) * u * g ** 2 * np.log(x / e)])
        k = (t - b) / (level - b) - 1
        gradient = np.array([(t - level) / ((level - b) ** 2 * k * h), 1 / ((level - b) * k * h),
                             1.0, -math.log(k) / h ** 2])
    free = [i for i, name in enumerate(NAMES) if name not in curve.fixed]
    J, grad = jacobian[:, free], gradient[free]
    if not (np.all(np.isfinite(J)) and np.all(np.isfinite(grad))):
        return math.nan
    try:
        covariance = curve.rss / curve.df * np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return math.nan
    variance = float(grad @ covariance @ grad)
    return math.sqrt(variance) if variance >= 0 else math.nan


def plot_mark(found: dict, level: float = IC_LEVEL) -> dict | None:
    """What the plot marks of an IC50/HC50 (vars of an IC50): its reason as the label, and for an estimate the
    point (value, level) with its CI; a censored one is the label alone, a not-estimated one nothing."""
    if found["status"] == "not-estimated":
        return None
    point = {"x": found["value"], "y": level, "lower": found["lower"], "upper": found["upper"]}
    return {"label": found["reason"], **(point if found["status"] == "estimated" else {})}


def fit_record(name: str, curve: Fit | None, x: np.ndarray, y: np.ndarray, unit: str, y_label: str,
               mark: dict | None = None):
    """A sample's FitRecord (log concentration axis, its IC50/HC50 mark); points only when there is no
    converged fit."""
    from .toolkit.records import FitRecord

    plot = {"x_unit": unit, "y_label": y_label, "log_x": True, "mark": mark}
    if curve is None:
        return FitRecord(name, "4pl", {}, {}, None, False, int(x.size), x=x.tolist(), y=y.tolist(), **plot)
    line = []
    if curve.converged:
        xs = np.geomspace(x.min(), x.max(), 60)
        line = list(zip(xs.tolist(), curve.predict(xs).tolist()))
    return FitRecord.of(name, curve, x, y, line, **plot)
