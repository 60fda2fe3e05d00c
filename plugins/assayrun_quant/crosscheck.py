"""The vendor cross-check: our in-well concentrations against the reader software's, well by well.

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
    J = _param_jacobian(curve, x_std)                                   # (n_std, k)
    free = [k for k, name in enumerate(curve.params) if name not in curve.fixed]
    J = J[:, free]
    JW = J.T * weights                                                   # (k, n_std)
    dtheta = np.linalg.pinv(JW @ J) @ JW                                 # (k, n_std)
    G = _param_jacobian(curve, np.where(np.isfinite(c), c, 0.0))[:, free]  # (n_wells, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = 1.0 / slope
        through = -(G @ dtheta) / slope[:, None]
    return own, through


def tolerances(curve, x_std, y_std_half, weights, y, y_half, blank_half: np.ndarray, dilution: np.ndarray,
               vendor_half: np.ndarray) -> np.ndarray:
    """Each well's tolerance (see the module docstring), in the units compared (x dilution)."""
    own, through = sensitivities(curve, x_std, y, weights)
    raw = np.abs(own) * y_half + np.abs(through) @ y_std_half
    if blank_half.size:  # the blank mean moves every response: well and standards alike
        shift = own + through.sum(axis=1)
        raw = raw + np.abs(shift) * blank_half.sum() / blank_half.size
    return raw * dilution + np.nan_to_num(vendor_half)


def compare(ours: float, side: str, vendor, tolerance: float) -> tuple[bool, float]:
    """(agrees, |difference|) of one well; side is 'below' or 'above' the curve when ours is NaN."""
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
