"""Throughput and accuracy of fit_many against scipy.optimize.curve_fit on 8-point 4PL curves.

Synthetic ELISA-like standard curves: a 3-fold dilution series (0.46 to 1000), random
asymptotes, ec50 inside the series, |hill| 0.7-2.5 in both directions, Gaussian noise of
2 % of the span. Each curve's reference optimum is the better of the two answers polished
by scipy least_squares (method "lm", tolerances 1e-15). Errors are relative: ec50 and hill
to their value, bottom and top to the span |top - bottom|. Rates are given per wall-clock
and per CPU second (the latter is steadier on a busy machine). Prints a table; no assertions.

    python bench/bench_fit.py [n_curves]
"""

import os
import sys
import time
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares

from assayrunner.curves import fit_many

X = 1000.0 / 3.0 ** np.arange(8)[::-1]
NAMES = ("bottom", "top", "ec50", "hill")


def four_pl(x, bottom, top, ec50, hill):
    return bottom + (top - bottom) / (1.0 + (x / ec50) ** hill)


def four_pl_jacobian(x, bottom, top, ec50, hill):
    u = (x / ec50) ** hill
    g = 1.0 / (1.0 + u)
    dg = -(top - bottom) * g * g * u                  # d f / d log u
    return np.column_stack([1 - g, g, dg * (-hill / ec50), dg * np.log(x / ec50)])


def synthetic_curves(n: int, seed: int = 20240601):
    rng = np.random.default_rng(seed)
    bottom = rng.uniform(0.0, 0.3, n)
    top = rng.uniform(1.0, 3.5, n)
    ec50 = np.exp(rng.uniform(np.log(X[1]), np.log(X[6]), n))
    hill = rng.uniform(0.7, 2.5, n) * rng.choice([-1.0, 1.0], n)
    truth = np.column_stack([bottom, top, ec50, hill])
    clean = four_pl(X, *(truth.T[:, :, None]))
    noise = rng.normal(0.0, 0.02, clean.shape) * np.abs(top - bottom)[:, None]
    return truth, clean + noise


def scipy_start(y):
    """The usual hand-made p0: plateaus from the extremes, ec50 at mid-response, hill +-1."""
    lo, hi = y.min(), y.max()
    mid = np.argmin(np.abs(y - (lo + hi) / 2))
    increasing = np.corrcoef(np.log(X), y)[0, 1] > 0
    return [lo, hi, X[mid], -1.0 if increasing else 1.0]


def timed(function, *args, **kwargs):
    """(result, (wall seconds, CPU seconds))."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def fit_scipy(Y):
    P = np.full((len(Y), 4), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (OptimizeWarning, RuntimeWarning))
        for i, y in enumerate(Y):
            try:
                P[i] = curve_fit(four_pl, X, y, p0=scipy_start(y), maxfev=2000)[0]
            except (RuntimeError, ValueError):
                pass
    return P


def canonical(P):
    """(bottom, top, ec50, hill) with bottom <= top (the mirrored 4PL is the same curve)."""
    P = P.copy()
    flip = P[:, 0] > P[:, 1]
    P[flip] = P[flip][:, [1, 0, 2, 3]] * [1, 1, 1, -1]
    return P


def rss(P, Y):
    with np.errstate(all="ignore"):
        r = np.sum((Y - four_pl(X, *(P.T[:, :, None]))) ** 2, axis=1)
    return np.where(np.isfinite(r), r, np.inf)


def reference_optimum(candidates, Y):
    """Polish the best candidate per curve with least_squares at tolerance 1e-15."""
    best = np.where((rss(candidates[0], Y) <= rss(candidates[1], Y))[:, None], *candidates)
    out = best.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, (p, y) in enumerate(zip(best, Y)):
            if np.all(np.isfinite(p)) and p[2] > 0:
                res = least_squares(lambda q: four_pl(X, *q) - y, p,
                                    jac=lambda q: four_pl_jacobian(X, *q),
                                    method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
                out[i] = res.x
    return canonical(out)


def relative_errors(P, ref):
    span = np.abs(ref[:, 1] - ref[:, 0])
    scale = np.column_stack([span, span, np.abs(ref[:, 2]), np.abs(ref[:, 3])])
    err = np.abs(canonical(P) - ref) / scale
    return np.where(np.isfinite(err), err, np.inf).max(axis=1)


def main(n: int = 10_000):
    truth, Y = synthetic_curves(n)
    fit_many(X, Y[:100])                                       # warm-up

    batch, t_ours = timed(fit_many, X, Y, model="4pl")
    ours = np.column_stack([batch.params[k] for k in NAMES])
    theirs, t_scipy = timed(fit_scipy, Y)

    ref = reference_optimum([ours, theirs], Y)
    ref_rss = rss(ref, Y)
    rows = []
    for label, P, (wall, cpu), ok in [("assayrunner fit_many", ours, t_ours, batch.converged),
                                  ("scipy curve_fit", theirs, t_scipy, np.all(np.isfinite(theirs), axis=1))]:
        err = relative_errors(P, ref)
        excess = (rss(P, Y) - ref_rss) / ref_rss
        rows.append((label, n / wall, n / cpu, wall, int((~ok).sum()), np.median(err), np.max(err),
                     int(np.sum(excess > 1e-6))))

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{n} synthetic 8-point 4PL curves; errors vs the polished least-squares optimum "
          f"(load average {load})\n")
    print(f"{'solver':22s} {'curves/s':>9s} {'per CPU s':>10s} {'wall s':>7s} {'failed':>7s} "
          f"{'median rel err':>15s} {'worst rel err':>14s} {'RSS>opt(1e-6)':>14s}")
    for label, rate, cpu_rate, wall, failed, med, worst, worse in rows:
        print(f"{label:22s} {rate:9.0f} {cpu_rate:10.0f} {wall:7.2f} {failed:7d} {med:15.2e} "
              f"{worst:14.2e} {worse:14d}")
    print(f"\nspeed-up fit_many / curve_fit: {rows[0][1] / rows[1][1]:.1f}x wall-clock, "
          f"{rows[0][2] / rows[1][2]:.1f}x CPU time")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
