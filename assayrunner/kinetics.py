"""Kinetic absorbance curves: baseline, plateau, threshold-crossing times, maximum slope, censoring.

Generic on purpose: plate coagulation (time to half-maximal turbidity) and kinetic-turbidimetric
LAL (onset at a fixed absorbance rise) are the same computation with different thresholds.
Every threshold is an argument; the numbers live in the protocol file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Status = Literal["ok", "no-rise", "saturated", "no-data"]


@dataclass(frozen=True)
class CurveSummary:
    """What one well's curve says.

    fraction_time_s: when the smoothed curve first reaches baseline + fraction x amplitude (the
    clot time for fraction 0.5). status 'no-rise': the amplitude stayed under the minimum (no
    clot, "> censored_after_s", the last read; or a curve already at its plateau, see
    plateau_from_start). 'saturated': some reads were at or above the reader's linear limit, so
    the plateau and the fraction level are clipped: fraction_time_s is then a lower bound, never a
    value. reads_before_onset: reads the baseline could use before the onset.
    """

    baseline: float
    plateau: float
    amplitude: float
    fraction_time_s: float | None
    onset_time_s: float | None
    max_slope_per_min: float | None
    status: Status
    censored_after_s: float | None
    saturated: bool
    reads_before_onset: int | None = None


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over an odd window; the ends use the part of the window inside the series."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the smoothing window must be an odd number of reads, not {window}")
    half = window // 2
    padded = np.pad(np.asarray(values, dtype=float), half, constant_values=np.nan)
    return np.nanmedian(sliding_window_view(padded, window), axis=1)


def crossing_time(times: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First time the series reaches level, interpolated linearly between the bracketing reads; None if never."""
    above = np.flatnonzero(values >= level)
    if above.size == 0:
        return None
    i = above[0]
    if i == 0:
        return float(times[0])
    t0, t1, a0, a1 = times[i - 1], times[i], values[i - 1], values[i]
    return float(t0 + (level - a0) * (t1 - t0) / (a1 - a0))


def max_slope_per_min(times: np.ndarray, values: np.ndarray, window: int) -> float | None:
    """Largest least-squares slope over `window` consecutive reads, in absorbance per minute."""
    if window < 2 or len(values) < window:
        return None
    tw, aw = sliding_window_view(times, window), sliding_window_view(values, window)
    tc = tw - tw.mean(axis=1, keepdims=True)
    slopes = (tc * (aw - aw.mean(axis=1, keepdims=True))).sum(axis=1) / (tc ** 2).sum(axis=1)
    return float(slopes.max() * 60.0)


def summarize_curve(times_s: np.ndarray, values: np.ndarray, *, smoothing_window: int, baseline_reads: int,
                    fraction: float, onset_fraction: float, onset_min_au: float, min_amplitude_au: float,
                    slope_window: int, saturation_au: float, overflow: bool = False) -> CurveSummary:
    """Baseline, plateau, amplitude, fraction and onset times, maximum slope and censoring of one curve.

    baseline = median of the first baseline_reads reads; plateau = maximum of the running median;
    fraction time at baseline + fraction x amplitude; onset at baseline + max(onset_min_au,
    onset_fraction x amplitude); fraction in (0, 1]. Reads at or above saturation_au count as
    saturation_au, and so do NaN reads when overflow is set (the export flagged the well
    saturated: its empty cells are OVRFLW); other NaN reads are left out.
    """
    t = np.asarray(times_s, dtype=float)
    a = np.asarray(values, dtype=float).copy()
    saturated = (a >= saturation_au) | (np.isnan(a) & overflow)
    a[saturated] = saturation_au
    keep = np.isfinite(a) & np.isfinite(t)
    t, a, saturated = t[keep], a[keep], saturated[keep]
    if len(a) < max(baseline_reads, slope_window, 2):
        return CurveSummary(np.nan, np.nan, np.nan, None, None, None, "no-data", None, bool(saturated.any()))
    smooth = running_median(a, smoothing_window)
    baseline = float(np.median(a[:baseline_reads]))
    plateau = float(smooth.max())
    amplitude = plateau - baseline
    slope = max_slope_per_min(t, a, slope_window)
    if amplitude < min_amplitude_au:
        return CurveSummary(baseline, plateau, amplitude, None, None, slope, "no-rise", float(t[-1]),
                            bool(saturated.any()))
    fraction_time = crossing_time(t, smooth, baseline + fraction * amplitude)
    onset = crossing_time(t, smooth, baseline + max(onset_min_au, onset_fraction * amplitude))
    status: Status = "saturated" if saturated.any() else "ok"
    return CurveSummary(baseline, plateau, amplitude, fraction_time, onset, slope, status, None,
                        bool(saturated.any()), int(np.sum(t < onset)))


def plateau_from_start(times_s: np.ndarray, values: np.ndarray, reference: float, amplitude: float,
                       fraction: float) -> tuple[float, int] | None:
    """A flat curve whose level (median read) reaches reference + fraction x amplitude (the fraction level of
    a typical rise from the unclotted reference level) reached its plateau before or at its first reads:
    (the first read time at or above reference + fraction x (level - reference), a bound the fraction
    time is below; the reads before it). None for a curve below that level (no clot; a turbid sample)."""
    t = np.asarray(times_s, dtype=float)
    a = np.asarray(values, dtype=float)
    keep = np.isfinite(a) & np.isfinite(t)
    t, a = t[keep], a[keep]
    if not len(a):
        return None
    level = float(np.median(a))
    if level < reference + fraction * amplitude:
        return None
    i = int(np.argmax(a >= reference + fraction * (level - reference)))
    return float(t[i]), i
