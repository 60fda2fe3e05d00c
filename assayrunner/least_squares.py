"""Batched Levenberg-Marquardt least squares and the standard errors of its solutions.

Generic over the model: the caller passes residuals_jacobian(theta, rows) for a stack of curves.
Used by assayrunner.curves for 4PL/5PL, many curves at once, and for any fit_function model.
"""

from __future__ import annotations

import math

import numpy as np

#: solver tolerances: relative RSS change, relative scaled step, gradient cosine
FTOL, XTOL, GTOL = 1e-12, 1e-10, 1e-10
MAX_ITER = 100

RUNNING, CONVERGED, ITERATION_LIMIT, STALLED, NOT_FINITE = range(5)


def levenberg_marquardt(residuals_jacobian, theta0, rss_floor, max_iter=MAX_ITER,
                         ftol=FTOL, xtol=XTOL, gtol=GTOL):
    """Minimise each row's sum of squared residuals independently (batched Levenberg-Marquardt).

    residuals_jacobian(theta (a, k), rows) -> r (a, n), J (a, n, k), with r = sqrt(w)(y - f)
    and J = sqrt(w) df/dtheta for the curves ``rows``. A curve whose RSS falls to rss_floor (m,)
    fits its data to rounding error and stops. Damping is per curve (Nielsen's update)
    on a Marquardt scaling by the largest column norms seen so far (as MINPACK).
    Returns (theta, status, iterations); curves leave the batch as soon as they stop.
    """
    theta = np.array(theta0, dtype=float)
    m, k = theta.shape
    r, J = residuals_jacobian(theta, np.arange(m))
    rss = np.sum(r * r, axis=1)
    status = np.where(np.isfinite(rss) & np.all(np.isfinite(J), axis=(1, 2)), RUNNING, NOT_FINITE)
    damping, growth = np.full(m, 1e-3), np.full(m, 2.0)
    scale = np.zeros((m, k))
    iterations = np.zeros(m, dtype=int)
    eye = np.eye(k)
    active = np.flatnonzero(status == RUNNING)
    while active.size:
        Ja, ra, rss_a = J[active], r[active], rss[active]
        JtJ = Ja.transpose(0, 2, 1) @ Ja
        grad = np.einsum("ank,an->ak", Ja, ra)
        diag = np.diagonal(JtJ, axis1=1, axis2=2)
        scale[active] = np.maximum(scale[active], diag)
        d = scale[active]
        d = np.where(d > 1e-12 * d.max(axis=1, keepdims=True), d, 1.0)
        inv_sqrt_d = 1.0 / np.sqrt(d)

        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.abs(grad) / np.sqrt(diag * rss_a[:, None])
        worst_cosine = np.max(np.where(diag > 0, cosine, 0.0), axis=1)
        small_gradient = (rss_a <= rss_floor[active]) | (worst_cosine <= gtol)
        status[active[small_gradient]] = CONVERGED

        A = JtJ * inv_sqrt_d[:, :, None] * inv_sqrt_d[:, None, :] + damping[active, None, None] * eye
        step_scaled = solve_spd(A, grad * inv_sqrt_d)
        step = step_scaled * inv_sqrt_d
        # RSS reduction the damped linear model promises: step.grad + damping |scaled step|^2
        predicted = (np.einsum("ak,ak->a", step, grad)
                     + damping[active] * np.sum(step_scaled ** 2, axis=1))
        trial = theta[active] + step
        r_new, J_new = residuals_jacobian(trial, active)
        rss_new = np.sum(r_new * r_new, axis=1)
        finite = np.isfinite(rss_new) & np.all(np.isfinite(J_new), axis=(1, 2))
        accept = finite & (rss_new < rss_a) & ~small_gradient
        iterations[active] += 1

        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (rss_a - rss_new) / predicted
        idx = active[accept]
        theta[idx], r[idx], J[idx], rss[idx] = trial[accept], r_new[accept], J_new[accept], rss_new[accept]
        damping[idx] *= np.maximum(1 / 3, 1 - (2 * gain[accept] - 1) ** 3)
        np.maximum(damping, 1e-15, out=damping)
        growth[idx] = 2.0
        rejected = active[~accept & ~small_gradient]
        damping[rejected] *= growth[rejected]
        growth[rejected] *= 2.0

        step_norm = np.sqrt(np.sum(d * step ** 2, axis=1))
        size = np.sqrt(np.sum(d * theta[active] ** 2, axis=1))
        tiny_step = step_norm <= xtol * (size + xtol)
        tiny_change = (rss_a - rss_new <= ftol * rss_a) & (predicted <= ftol * rss_a)
        status[idx[(tiny_step | tiny_change)[accept]]] = CONVERGED
        # no descent even along a vanishing steepest-descent step: at the floor of rounding error
        stuck = ~accept & ~small_gradient & (damping[active] > 1e16)
        at_optimum = (worst_cosine[stuck] <= 1e-6) | nothing_left(Ja[stuck], ra[stuck], rss_a[stuck],
                                                                   rss_floor[active][stuck], ftol)
        status[active[stuck]] = np.where(at_optimum, CONVERGED, STALLED)
        out_of_time = (iterations[active] >= max_iter) & (status[active] == RUNNING)
        status[active[out_of_time]] = ITERATION_LIMIT
        active = active[status[active] == RUNNING]
    return theta, status, iterations


def nothing_left(J: np.ndarray, r: np.ndarray, rss: np.ndarray, floor: np.ndarray, ftol: float) -> np.ndarray:
    """True where even an undamped Gauss-Newton step would lower the RSS by less than ftol of it plus
    the rounding error of computing it (2 sqrt(rss * floor)): data fitted to the digits it was written with."""
    if not len(J):
        return np.zeros(0, dtype=bool)
    step = np.stack([np.linalg.lstsq(j, res, rcond=None)[0] for j, res in zip(J, r)])
    reduction = np.sum(np.einsum("ank,ak->an", J, step) ** 2, axis=1)
    return reduction <= ftol * rss + 2 * np.sqrt(rss * floor)


def rss_floor(Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """RSS at which a curve fits its data to rounding error (relative 1e-13 per point)."""
    return np.sum(W * (1e-13 * np.abs(Y)) ** 2, axis=1)


def solve_spd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve stacked symmetric positive-definite systems, falling back to least squares."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(A) @ b[..., None])[..., 0]


def gauss_newton_variances(J: np.ndarray) -> np.ndarray:
    """diag(inv(J'J)) per curve (J stacked (m, n, k)); inf for parameters the data cannot see.

    Eigen-decomposition of the column-normalised J'J (far cheaper than an SVD of J for large
    batches of small problems); directions with singular-value ratio below 1e-6 count as
    undetermined.
    """
    norms = np.sqrt(np.sum(J * J, axis=1))                       # (m, k)
    safe = np.where(norms > 0, norms, 1.0)
    Jn = J / safe[:, None, :]
    eigenvalues, vectors = np.linalg.eigh(Jn.transpose(0, 2, 1) @ Jn)
    return diag_of_inverse(eigenvalues, vectors.transpose(0, 2, 1), norms)


def hessian_variances(residuals_jacobian, theta: np.ndarray) -> np.ndarray:
    """diag(inv(H/2)) for one curve, H/2 = -d(J'r)/dtheta by central differences of the gradient."""
    def gradient(t):
        r, J = residuals_jacobian(t[None, :], None)
        return J[0].T @ r[0]

    t0 = theta[0]
    _, J = residuals_jacobian(theta, None)
    gn = gauss_newton_variances(J)[0]
    k = t0.size
    half_hessian = np.empty((k, k))
    for j in range(k):
        h = 1e-4 * math.sqrt(gn[j]) if math.isfinite(gn[j]) and gn[j] > 0 else 1e-6 * max(abs(t0[j]), 1.0)
        e = np.zeros(k)
        e[j] = h
        half_hessian[:, j] = -(gradient(t0 + e) - gradient(t0 - e)) / (2 * h)
    half_hessian = 0.5 * (half_hessian + half_hessian.T)
    norms = np.sqrt(np.abs(np.diag(half_hessian)))
    safe = np.where(norms > 0, norms, 1.0)
    eigenvalues, vectors = np.linalg.eigh(half_hessian / np.outer(safe, safe))
    return diag_of_inverse(eigenvalues[None], vectors.T[None], norms[None])


def standard_errors(s2, variances: np.ndarray) -> np.ndarray:
    """sqrt(s^2 * variance); inf (never NaN) where the variance is infinite."""
    finite = np.isfinite(variances)
    return np.where(finite, np.sqrt(s2 * np.where(finite, variances, 0.0)), np.inf)


def diag_of_inverse(eigenvalues, vt, norms, rtol=1e-12):
    """diag of (V diag(1/eig) V') rescaled by 1/norms^2; inf where a near-null direction touches."""
    tiny = eigenvalues <= rtol * eigenvalues.max(axis=-1, keepdims=True)
    inverse = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, eigenvalues))
    weights = vt ** 2                                         # (m, direction, param)
    diag = np.einsum("md,mdk->mk", inverse, weights)
    infinite = norms == 0
    if tiny.any():  # a parameter a near-null direction touches
        infinite = infinite | (tiny[:, :, None] & (weights > 1e-12)).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(infinite, np.inf, diag / norms ** 2)
