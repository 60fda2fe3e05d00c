"""Replicate statistics: the small-array path gives numpy's own bits (stored values never change with it)."""

import math

import numpy as np

from assayrunner.stats import cv_percent, mean, sd


def _bits(x: float) -> str:
    return "nan" if math.isnan(x) else x.hex()


def test_small_groups_give_numpys_bits():
    """Every size up to 9 (the Python path and numpy's below and past 8), signs, zeros, NaN and inf wells,
    magnitudes 1e-6 to 1e6: mean and SD bit for bit as numpy's mean and std(ddof=1) of the finite values."""
    rng = np.random.default_rng(14)
    for _ in range(20000):
        n = int(rng.integers(0, 10))
        a = rng.normal(rng.normal(), 1, n) * 10.0 ** int(rng.integers(-6, 7))
        kind = rng.random()
        if kind < 0.05:
            a[:] = 0.0
        elif kind < 0.1:
            a[:] = -0.0
        elif kind < 0.2 and n:
            a[rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf])
        finite = a[np.isfinite(a)]
        m = float(finite.mean()) if finite.size else math.nan
        s = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        for values in (a, a.tolist()):  # an array, and a list of Python floats
            assert _bits(mean(values)) == _bits(m), a
            assert _bits(sd(values)) == _bits(s), a
            assert _bits(cv_percent(values)) == _bits(100 * s / m if m else math.nan), a


def test_worked_by_hand():
    # [1, 2, 4]: mean 7/3; deviations -4/3, -1/3, 5/3; squares 16/9 + 1/9 + 25/9 = 42/9; / 2 = 7/3; SD sqrt(7/3)
    a = np.array([1.0, 2.0, 4.0, np.nan])
    assert math.isclose(mean(a), 7 / 3) and math.isclose(sd(a), math.sqrt(7 / 3))
    assert math.isclose(cv_percent(a), 100 * math.sqrt(7 / 3) / (7 / 3))
    assert math.isnan(mean(np.array([np.nan]))) and math.isnan(sd(np.array([5.0]))) and math.isnan(cv_percent([0.0, 0.0]))
    assert mean([1, 2]) == 1.5  # lists with ints take numpy's path
