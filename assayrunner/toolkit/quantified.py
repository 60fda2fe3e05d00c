"""One group's wells quantified through a standard curve at a dilution: in-well and diluted concentrations,
censoring outside the standards, and the flags a sample's concentration carries.

    c_well = curve^-1(y) per well;  m = mean(c_well)
    diluted = c_well x d (mean, SD, %CV);  concentration = m x d, or "<" LLOQ x d / ">" ULOQ x d outside
    flags: 'not-computable well W' (a response without a concentration), REPLICATE_CV (the %CV of c_well,
           or of the values given, above flag_cv_percent), the range flag, REASSAY
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass
from ..stats import cv_percent, mean
from .flags import ABOVE_ULOQ, BELOW_LLOQ, NOT_COMPUTABLE, REASSAY, REPLICATE_CV, SATURATED
from .levels import Replicates
from .standards import range_flag

OUT_OF_RANGE = (BELOW_LLOQ, ABOVE_ULOQ, NOT_COMPUTABLE, SATURATED)  # flags that call for REASSAY


@dataclass(frozen=True)
class Quantified:
    """A group's concentration: in_well (per well, numpy), in_well_mean, dilution (the total), diluted_wells
    (c_well x d per well), diluted (their Replicates),
    replicate_cv (the %CV judged against flag_cv_percent), qualifier ('<', '>' or None), concentration
    (m x d, or the bound x d), sd (NaN when censored), flags."""

    in_well: object
    in_well_mean: float
    dilution: float
    diluted_wells: object
    diluted: Replicates
    replicate_cv: float
    qualifier: str | None
    concentration: float
    sd: float
    flags: list[str]

    @classmethod
    def of(cls, group, response, curve, dilution: float | tuple[float, ...] = 1.0, *, flag_cv_percent: float, flags=(),
           cv_values=None, censored_only: bool = False,
           beyond_curve: bool = False) -> "Quantified":
        """Quantify the group's responses (blank-corrected, one per well) through the StandardCurve.

        dilution: one factor, or the factors of successive dilution steps (c_well is multiplied by each in
        turn, the bounds by their product).
        flags: the group's own flags first (well_flags). cv_values: the values whose %CV is judged against
        flag_cv_percent (e.g. the raw ODs), by default c_well. censored_only: the range flag and REASSAY only
        for a censored mean, NOT_COMPUTABLE and REASSAY for no value at all; else the range flag of the mean
        (NOT_COMPUTABLE for none) and REASSAY for any of OUT_OF_RANGE. beyond_curve: when no well has a concentration but some have a response, the mean is
        censored on the side of the curve the mean response lies (below or above it)."""
        import numpy as np

        steps = dilution if isinstance(dilution, tuple) else (dilution,)
        dilution = math.prod(steps)
        c = curve.back_calculate(response)
        m = mean(c)
        with np.errstate(over="ignore"):
            diluted_wells = functools.reduce(operator.mul, steps, c)
        diluted = Replicates.of(diluted_wells)
        out = list(flags) + [f"{NOT_COMPUTABLE} well {w}" for w, y, cc in zip(group.wells, response, c)
                             if np.isfinite(y) and np.isnan(cc)]
        replicate_cv = cv_percent(c if cv_values is None else cv_values)
        if replicate_cv > flag_cv_percent:
            out.append(REPLICATE_CV)
        qualifier, value = curve.censored(m, dilution)
        if beyond_curve and not math.isfinite(m) and np.isfinite(response).any():
            qualifier = "<" if curve.below(mean(response)) else ">"
            value = (curve.lloq if qualifier == "<" else curve.uloq) * dilution
        if censored_only:
            out += [BELOW_LLOQ if qualifier == "<" else ABOVE_ULOQ, REASSAY] if qualifier else \
                [NOT_COMPUTABLE, REASSAY] if not math.isfinite(value) else []
        else:
            flag = range_flag(m, curve.lloq, curve.uloq)
            out += [flag] if flag else []
            out += [REASSAY] if any(f.split()[0] in OUT_OF_RANGE for f in out) else []
        return cls(c, m, dilution, diluted_wells, diluted, replicate_cv, qualifier, value,
                   math.nan if qualifier else diluted.sd, out)
