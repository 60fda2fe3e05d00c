"""Replicate and level statistics: mean, SD (n - 1) and %CV of a group's finite values, the
back-calculation of a standard or QC level (mean and % difference from its nominal), and the
summary of replicates some of which are censored bounds ('> 300 s', '< 5 s')."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..stats import cv_percent, mean, sd


@dataclass(frozen=True)
class Replicates:
    """Mean, SD and %CV over the finite values of a group's replicates; n counts the finite ones."""

    n: int
    mean: float
    sd: float
    cv_percent: float

    @classmethod
    def of(cls, values) -> "Replicates":
        import numpy as np

        values = np.asarray(values, dtype=float)
        return cls(int(np.isfinite(values).sum()), mean(values), sd(values), cv_percent(values))


def percent_difference(value: float, nominal: float) -> float:
    """100 x (value - nominal) / nominal (the %DFT of a back-calculated level); NaN for a zero nominal."""
    return 100 * (value - nominal) / nominal if nominal else math.nan


def recovery_percent(value: float, nominal: float) -> float:
    """100 x value / nominal; NaN for a zero nominal."""
    return 100 * value / nominal if nominal else math.nan


@dataclass(frozen=True)
class BackCalculated:
    """One standard or QC level back-calculated through the curve: its mean and % difference from nominal."""

    nominal: float
    mean: float
    pdft: float

    @classmethod
    def of(cls, nominal: float, concentrations) -> "BackCalculated":
        m = mean(concentrations)
        return cls(nominal, m, percent_difference(m, nominal))


@dataclass(frozen=True)
class CensoredReplicates:
    """Replicates that may be censored bounds: a numeric mean and %CV, or a bound when all are censored
    the same way ('>' the lowest bound, '<' the highest); mixed (never averaged) otherwise."""

    n: int
    censored: bool
    qualifier: str | None
    mixed: bool
    mean: float
    cv: float

    @classmethod
    def of(cls, values, qualifiers) -> "CensoredReplicates":
        """values with their qualifiers ('>', '<' or None), one per replicate; NaN values are left out."""
        above = [v for v, q in zip(values, qualifiers) if q == ">"]
        below = [v for v, q in zip(values, qualifiers) if q == "<"]
        numbers = [v for v, q in zip(values, qualifiers) if q is None and math.isfinite(v)]
        n = len(above) + len(below) + len(numbers)
        if sum(map(bool, (above, below, numbers))) > 1:
            return cls(n, False, None, True, math.nan, math.nan)
        if above:
            return cls(n, True, ">", False, min(above), math.nan)
        if below:
            return cls(n, True, "<", False, max(below), math.nan)
        return cls(n, False, None, False, mean(numbers), cv_percent(numbers))

    def to_dict(self) -> dict:
        return asdict(self)
