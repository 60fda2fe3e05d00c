"""Replicate statistics every assay reports: mean, SD (n - 1) and %CV of the finite values of a group;
one-way ANOVA with Dunnett's many-to-one comparisons against a control."""

from __future__ import annotations

import math

import numpy as np


def mean(values) -> float:
    """Mean of the finite values; NaN when there are none."""
    small = _small(values)
    if small is not None:
        return _mean(small)
    finite = _finite(values)
    return float(finite.mean()) if finite.size else math.nan


def sd(values) -> float:
    """Sample standard deviation (n - 1) of the finite values; NaN for fewer than two."""
    small = _small(values)
    if small is not None:
        return _sd(small, _mean(small))
    finite = _finite(values)
    return float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def cv_percent(values) -> float:
    """100 x SD / mean of the finite values; NaN for fewer than two or a zero mean."""
    small = _small(values)
    if small is None:
        m = mean(values)
        return 100 * sd(values) / m if m else math.nan
    m = _mean(small)
    return 100 * _sd(small, m) / m if m else math.nan


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


#: numpy sums fewer than 8 float64 values in one left-to-right loop from 0.0 (pairwise only from 8 on).
_NUMPY_LOOP = 8


def _small(values) -> list[float] | None:
    """The finite values of a 1-D float64 array or a list of Python floats shorter than _NUMPY_LOOP as Python
    floats, else None: for these Python's arithmetic in numpy's order gives numpy's bits (tests/test_stats.py)
    without its per-call cost."""
    if type(values) is list:
        if len(values) >= _NUMPY_LOOP:
            return None
        for v in values:
            if type(v) is not float:
                return None
        return list(filter(math.isfinite, values))
    if type(values) is np.ndarray and values.dtype == np.float64 and values.ndim == 1 and values.size < _NUMPY_LOOP:
        return [v for v in values.tolist() if math.isfinite(v)]
    return None


def _mean(small: list[float]) -> float:
    return _sum(small) / len(small) if small else math.nan


def _sd(small: list[float], m: float) -> float:
    """SD of the small path's values about their mean m (_mean(small))."""
    if len(small) < 2:
        return math.nan
    total = 0.0  # the squares summed as _sum sums them
    for v in small:
        total += (v - m) * (v - m)
    return math.sqrt(total / (len(small) - 1))


def _sum(values: list[float]) -> float:
    """Left to right from 0.0, as numpy's loop (not sum(): Python 3.12 compensates its rounding)."""
    total = 0.0
    for v in values:
        total += v
    return total


#: p-values below this are reported as "< 0.0001", not as a number. Plugins put it in their details: a
#: certificate prints only numbers the run stored.
P_FLOOR = 0.0001

#: Dunnett's p-values come from a quasi-Monte-Carlo integral: a fixed seed keeps a run reproducible to the bit.
DUNNETT_SEED = 20260


def dunnett(groups: list, control, alternative: str = "two-sided") -> tuple[list[float], float]:
    """(Dunnett p-value of each group vs the control, one-way ANOVA p over all) on the finite values.

    NaN p-values when the control or every group has fewer than two values (no variance to pool).
    """
    from scipy import stats

    control = _finite(control)
    usable = [i for i, g in enumerate(groups) if _finite(g).size >= 2]
    p = [math.nan] * len(groups)
    if control.size < 2 or not usable:
        return p, math.nan
    samples = [_finite(groups[i]) for i in usable]
    result = stats.dunnett(*samples, control=control, alternative=alternative, rng=DUNNETT_SEED)
    for i, value in zip(usable, result.pvalue):
        p[i] = float(value)
    return p, float(stats.f_oneway(control, *samples).pvalue)
