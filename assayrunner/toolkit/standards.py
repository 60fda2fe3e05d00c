"""Blank correction and the standard curve: its points, the fit (UserError when none can be fit),
back-calculation, range flags against the lowest and highest standard, censored values.

    y' = y - mean(blank)                  every well
    curve: y' = f(C) over every usable standard well (C = the standard's nominal)
    C_well = f^-1(y')                     back-calculated, NaN where f has no inverse
    log-log: log10 y' = f(log10 C) over the wells with y' > 0 (LAL, many EIAs); C_well = 10^f^-1(log10 y')
    LLOQ, ULOQ = the lowest non-zero and the highest standard; a mean outside them is reported as "<"/">" the bound
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError
from ..stats import mean
from .flags import ABOVE_ULOQ, BELOW_LLOQ, NOT_COMPUTABLE


def blank_mean(values, wells=None) -> float:
    """Mean of the blank wells' finite values; with wells given, UserError naming them when none is usable."""
    m = mean(values)
    if wells is not None and not math.isfinite(m):
        raise UserError("no usable reading (every blank well is flagged)", where=f"blank wells {', '.join(wells)}")
    return m


@dataclass(frozen=True)
class StandardCurve:
    """A fitted standard curve (an assayrunner.Fit) with the points it was fit on and its quantitation range."""

    fit: object
    x: object  # the nominal of each usable standard well (numpy array)
    y: object  # its blank-corrected response
    lloq: float
    uloq: float
    log_log: bool = False  # the fit is of log10 response on log10 concentration

    def back_calculate(self, corrected):
        """Concentration of each blank-corrected response (NaN where the curve has none; log-log: at or below 0)."""
        import numpy as np

        if not self.log_log:
            return self.fit.x_at(corrected)
        corrected = np.atleast_1d(np.asarray(corrected, dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(corrected > 0, 10 ** self.fit.x_at(np.log10(corrected)), np.nan)

    def below(self, response: float) -> bool:
        """Whether a response (one without a concentration) lies on the low side of the curve (log-log: a
        response at or below 0 is below it)."""
        ends = [self.lloq, self.uloq]
        if self.log_log:
            if not response > 0:
                return True
            ends, response = [math.log10(v) for v in ends], math.log10(response)
        low, high = (float(v) for v in self.fit.predict(ends))
        return (response < low) == (high > low)

    def range_flag(self, concentration: float) -> str | None:
        """BELOW_LLOQ / ABOVE_ULOQ outside the standards, NOT_COMPUTABLE for NaN, None inside."""
        return range_flag(concentration, self.lloq, self.uloq)

    def censored(self, concentration: float, factor: float = 1.0) -> tuple[str | None, float]:
        """(qualifier, value x factor): the bound times factor with '<' or '>' outside the standards."""
        return censored(concentration, self.lloq, self.uloq, factor)


def standard_points(standards, values, blank: float):
    """(x, y) over every well of the standards [(group, nominal)]: x the nominal, y = values(group) - blank."""
    import numpy as np

    x = np.array([nominal for g, nominal in standards for _ in g.wells])
    y = np.concatenate([values(g) for g, _ in standards]) - blank
    return x, y


def fit_standards(standards, values, blank: float, model: str, weights: str | None = None, *,
                  where: str = "standard curve", file=None, response: str = "value",
                  log_log: bool = False) -> StandardCurve:
    """Fit the model to the usable standard wells (log_log: of log10 response on log10 concentration, over the
    wells above the blank). UserError when fewer than two standards (naming file, the protocol, at
    layout.wells when given), and at `where` for flat responses, no fit, no convergence or a curve that
    does not rise with concentration; response names the measured quantity ("OD")."""
    import numpy as np

    from ..curves import fit

    if len(standards) < 2:
        raise UserError("the layout needs at least two standard (calibrator) groups", file=file,
                        where="layout.wells" if file else where)
    x, y = standard_points(standards, values, blank)
    usable = np.isfinite(y) & (y > 0) if log_log else np.isfinite(y)
    if usable.any() and y[usable].max() == y[usable].min():  # np.ptp is max - min
        raise UserError(f"cannot be fit: every usable standard well reads the same {response} "
                        f"({y[usable][0] + blank:.4g}); check the plate and the export", where=where)
    with np.errstate(divide="ignore"):  # a zero standard in log-log: refused by the fit as not finite
        fit_x, fit_y = (np.log10(x[usable]), np.log10(y[usable])) if log_log else (x[usable], y[usable])
    try:
        curve = fit(fit_x, fit_y, model=model, weights=weights)
    except ValueError as exc:
        above = " (above the blank)" if log_log else ""
        raise UserError(f"cannot be fit: {exc} ({usable.sum()} of {usable.size} standard wells usable{above}; check "
                        "the standards' wells in the export)", where=where) from None
    if not curve.converged:
        hint = "; check the standards, or fit a simpler model (linear)" if model != "linear" else \
            "; check the standards' wells in the export"
        raise UserError(f"the {model} fit failed ({curve.message}){hint}", where=where)
    low, high = curve.predict(curve.x_range)  # at the lowest and highest standard fitted
    if log_log:
        low, high = 10 ** low, 10 ** high
    if not high > low:
        raise UserError(f"the curve does not rise with concentration ({response} {low:.4g} at the lowest standard, "
                        f"{high:.4g} at the highest); check that the standards sit in the layout's wells", where=where)
    nominals = [nominal for _, nominal in standards]
    quantified = [n for n in nominals if n > 0] or nominals  # a zero standard anchors the curve, quantifies nothing
    return StandardCurve(curve, x[usable], y[usable], float(min(quantified)), float(max(nominals)), log_log)


def range_flag(concentration: float, lloq: float, uloq: float) -> str | None:
    """BELOW_LLOQ below lloq, ABOVE_ULOQ above uloq, NOT_COMPUTABLE for NaN, None inside [lloq, uloq]."""
    if not math.isfinite(concentration):
        return NOT_COMPUTABLE
    return BELOW_LLOQ if concentration < lloq else ABOVE_ULOQ if concentration > uloq else None


def censored(concentration: float, lloq: float, uloq: float, factor: float = 1.0) -> tuple[str | None, float]:
    """('<', lloq x factor) below the range, ('>', uloq x factor) above, (None, concentration x factor) inside
    (and for NaN, which stays NaN)."""
    flag = range_flag(concentration, lloq, uloq)
    if flag == BELOW_LLOQ:
        return "<", lloq * factor
    if flag == ABOVE_ULOQ:
        return ">", uloq * factor
    return None, concentration * factor
