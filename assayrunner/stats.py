"""Replicate statistics every assay reports: mean, SD (n - 1) and %CV of the finite values of a group."""

from __future__ import annotations

import math

import numpy as np


def mean(values) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = _finite(values)
    return float(finite.mean()) if finite.size else math.nan


def sd(values) -> float:
    """Sample standard deviation (n - 1) of the finite values; NaN for fewer than two."""
    finite = _finite(values)
    return float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def cv_percent(values) -> float:
    """100 x SD / mean of the finite values; NaN for fewer than two or a zero mean."""
    m = mean(values)
    return 100 * sd(values) / m if m else math.nan


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]
