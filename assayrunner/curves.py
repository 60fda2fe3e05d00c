"""Curve fitting for standard curves: linear, quadratic, 4PL and 5PL.

``fit(x, y, model=...)`` fits one curve and returns a :class:`Fit` (parameters, standard
errors, goodness of fit, ``predict`` and ``inverse`` with LLOQ/ULOQ flags).
``fit_many(x, Y)`` fits many curves at once with the same, vectorised solver.
``fit_function(f, jac, x, y, p0)`` exposes that solver for any model with a Jacobian.

Logistic models use R drc's LL.4 / LL.5 parameterisation::

    4pl: y = bottom + (top - bottom) / (1 + (x / ec50)^hill)
    5pl: y = bottom + (top - bottom) / (1 + (x / ec50)^hill)^s

(drc: b = hill, c = bottom, d = top, e = ec50, f = s). A free 4PL is reported with
bottom <= top, so hill > 0 means a decreasing curve and hill < 0 an increasing one.
x = 0 gives the asymptote (log 0 = -inf).

Standard errors default to the Gauss-Newton convention ``s^2 inv(J'WJ)`` (R nls, NIST
StRD, scipy curve_fit); ``se="hessian"`` gives drc's observed-information form
``s^2 inv(H/2)``, H the Hessian of the weighted RSS. For linear models they coincide.

scipy is never imported: ``import assayrunner.curves`` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import least_squares

PARAM_NAMES = {
    "linear": ("slope", "intercept"),
    "quadratic": ("a", "b", "c"),
    "4pl": ("bottom", "top", "ec50", "hill"),
    "5pl": ("bottom", "top", "ec50", "hill", "s"),
}
MODELS = tuple(PARAM_NAMES)
LOGISTIC = ("4pl", "5pl")
#: logistic parameters the solver moves on the log scale (they must stay positive)
LOG_SCALE_PARAMS = ("ec50", "s")
WEIGHTS = (None, "1/x", "1/x^2", "1/y", "1/y^2")
SE_METHODS = ("gauss-newton", "hessian")

FLAG_BELOW = "below-lloq"
FLAG_ABOVE = "above-uloq"
FLAG_NOT_COMPUTABLE = "not-computable"

_RUNNING, _CONVERGED, _ITERATION_LIMIT, _STALLED, _NOT_FINITE = (
    least_squares.RUNNING, least_squares.CONVERGED, least_squares.ITERATION_LIMIT, least_squares.STALLED,
    least_squares.NOT_FINITE)
_NO_TRANSITION, _FLAT = 5, 6  # statuses the logistic models add
_STATUS_MESSAGES = {
    _CONVERGED: "converged",
    _ITERATION_LIMIT: "not converged: iteration limit reached with parameters still moving; the "
                      "best fit may lie at infinity (a step-like or incomplete curve)",
    _STALLED: "not converged: the residual sum of squares cannot be reduced further, "
              "but the gradient is not zero",
    _NOT_FINITE: "not converged: the model is not finite at the starting values",
    _NO_TRANSITION: "not converged: no standard lies on the curve's transition (flat data, or a "
                    "step between two standards), so ec50 and hill are not determined",
    _FLAT: "not converged: the responses are flat (top = bottom), so ec50 and hill are not determined",
}


# ================================================================ results

@dataclass
class Fit:
    """A fitted curve. ``rss`` is the weighted objective; ``residuals`` are raw y - predict(x)."""

    model: str
    params: dict[str, float]
    se: dict[str, float]
    r2: float
    rss: float
    n: int
    df: int
    residuals: np.ndarray
    converged: bool
    message: str
    fixed: dict[str, float] = field(default_factory=dict)
    weights: str | None = None
    se_method: str = "gauss-newton"
    x_range: tuple[float, float] = (-math.inf, math.inf)

    def predict(self, x) -> np.ndarray:
        """Response at each x."""
        return _predict(self.model, _param_vector(self), np.asarray(x, dtype=float))

    def inverse(self, y, lower=None, upper=None) -> tuple[np.ndarray, list[str | None]]:
        """x for each response y, with a flag per value.

        Flags: ``"below-lloq"`` when x < lower (lowest standard), ``"above-uloq"`` when
        x > upper, ``"not-computable"`` when y is outside the asymptotes or has no real
        solution (x is NaN then). With lower/upper None that side is not checked.
        """
        x = self.x_at(y)
        return x, [_range_flag(v, lower, upper) for v in x]

    def x_at(self, y) -> np.ndarray:
        """x for each response y, NaN where there is none (inverse without its flags)."""
        y = np.atleast_1d(np.asarray(y, dtype=float))
        return _inverse(self.model, _param_vector(self), y, branch_x=sum(self.x_range) / 2)

    def to_dict(self) -> dict:
        """JSON-able summary (non-finite numbers become None)."""
        return {
            "model": self.model,
            "parameters": {k: _json_number(v) for k, v in self.params.items()},
            "se": {k: _json_number(v) for k, v in self.se.items()},
            "r2": _json_number(self.r2),
            "converged": self.converged,
            "n": self.n,
            "rss": _json_number(self.rss),
        }


@dataclass
class FitBatch:
    """Many curves fitted at once: one array entry per curve (Gauss-Newton standard errors)."""

    model: str
    params: dict[str, np.ndarray]
    se: dict[str, np.ndarray]
    rss: np.ndarray
    r2: np.ndarray
    converged: np.ndarray
    messages: list[str]
    n: int
    df: int


@dataclass
class FunctionFit:
    """Result of :func:`fit_function`: arrays in the order of p0."""

    params: np.ndarray
    se: np.ndarray
    rss: float
    df: int
    converged: bool
    message: str
    iterations: int


# ================================================================ public functions

def fit(x, y, model: str = "4pl", weights=None, fixed: dict | None = None,
        se: str = "gauss-newton") -> Fit:
    """Fit ``model`` to (x, y) by (weighted) least squares.

    weights: None, "1/x", "1/x^2", "1/y", "1/y^2" (observed values) or an array.
    fixed: parameter values held constant, e.g. ``{"bottom": 0, "top": 100}``; their se is 0.
    se: "gauss-newton" (default; R nls, NIST, scipy) or "hessian" (observed information, drc).
    Raises ValueError for unusable input. A fit that does not converge, or whose parameters
    the data cannot determine, comes back with ``converged=False`` and a ``message``.
    """
    model = _check_model(model)
    if se not in SE_METHODS:
        raise ValueError(f"se must be one of {', '.join(SE_METHODS)}, got {se!r}")
    x, y = _check_xy(x, y, model)
    fixed = _check_fixed(model, fixed)
    _check_enough_points(model, x, fixed)
    w = weight_vector(weights, x, y)
    weights_label = weights if weights is None or isinstance(weights, str) else "custom"
    if model in LOGISTIC:
        problem = _LogisticProblem(model, x[None, :], y[None, :], w[None, :], fixed)
        theta, status = problem.solve()
        variances = _free_variances(problem, theta, se)[0]
        p = problem.natural(theta)[0]
        status = problem.diagnose(theta, status)
    else:
        p, variances = _fit_linear_in_params(model, x, y, w, fixed)
        status = np.array([_CONVERGED])
    return _make_fit(model, x, y, w, fixed, p, variances, int(status[0]), weights_label, se)


def fit_many(x, Y, model: str = "4pl", weights=None, fixed: dict | None = None) -> FitBatch:
    """Fit one model to every row of ``Y`` (shape (n_curves, n_points)) in one vectorised solve.

    x: shape (n_points,) shared by all curves, or the shape of Y. Weights and fixed values
    as in :func:`fit` (a weights array has the shape of Y). Standard errors are Gauss-Newton.
    """
    model = _check_model(model)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_curves, n_points), got shape {Y.shape}")
    X = np.broadcast_to(np.asarray(x, dtype=float), Y.shape)
    _check_values(X, Y, model)
    fixed = _check_fixed(model, fixed)
    for row in ([X[0]] if np.ndim(x) == 1 else np.unique(X, axis=0)):
        _check_enough_points(model, row, fixed)
    W = weight_vector(weights, X, Y)
    if model in LOGISTIC:
        problem = _LogisticProblem(model, X, Y, W, fixed)
        theta, status = problem.solve()
        variances = _free_variances(problem, theta, "gauss-newton")
        P = problem.natural(theta)
        status = problem.diagnose(theta, status)
    else:
        P, variances = _fit_linear_batch(model, X, Y, W, fixed)
        status = np.full(Y.shape[0], _CONVERGED)
    names = PARAM_NAMES[model]
    free = [i for i, k in enumerate(names) if k not in fixed]
    F = _predict_batch(model, P, X)
    rss = np.sum(W * (Y - F) ** 2, axis=1)
    df = Y.shape[1] - len(free)
    se = np.zeros_like(P)
    se[:, free] = least_squares.standard_errors(rss[:, None] / df, variances)
    identified = np.isfinite(se)
    converged = (status == _CONVERGED) & np.all(identified, axis=1)
    messages = [_message(int(s), [k for k, ok in zip(names, row) if not ok])
                for s, row in zip(status, identified)]
    return FitBatch(model=model, params=dict(zip(names, P.T)), se=dict(zip(names, se.T)),
                    rss=rss, r2=_r_squared(Y, W, rss), converged=converged, messages=messages,
                    n=Y.shape[1], df=df)


def fit_function(f: Callable, jac: Callable, x, y, p0, weights=None,
                 se: str = "gauss-newton", max_iter: int = 1000) -> FunctionFit:
    """Least squares for any model ``f(x, p) -> y`` with Jacobian ``jac(x, p) -> (n, k)``.

    The Levenberg-Marquardt solver behind :func:`fit`, started from ``p0``.
    """
    if se not in SE_METHODS:
        raise ValueError(f"se must be one of {', '.join(SE_METHODS)}, got {se!r}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    p0 = np.asarray(p0, dtype=float)
    sw = np.sqrt(weight_vector(weights, x, y))
    if len(y) <= len(p0):
        raise ValueError(f"need more than {len(p0)} points for {len(p0)} parameters")

    def residuals_jacobian(theta, rows):
        p = theta[0]
        return (sw * (y - f(x, p)))[None], (sw[:, None] * jac(x, p))[None]

    theta, status, iterations = least_squares.levenberg_marquardt(residuals_jacobian, p0[None],
                                                     least_squares.rss_floor(y[None], sw[None] ** 2), max_iter)
    r, J = residuals_jacobian(theta, None)
    rss = float(np.sum(r ** 2))
    df = len(y) - len(p0)
    variances = (least_squares.gauss_newton_variances(J) if se == "gauss-newton"
                 else least_squares.hessian_variances(residuals_jacobian, theta))[0]
    se_values = least_squares.standard_errors(rss / df, variances)
    unidentified = [f"p[{i}]" for i in np.flatnonzero(~np.isfinite(se_values))]
    return FunctionFit(params=theta[0], se=se_values, rss=rss, df=df,
                       converged=bool(status[0] == _CONVERGED and not unidentified),
                       message=_message(int(status[0]), unidentified),
                       iterations=int(iterations[0]))


def weight_vector(weights, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-point weights (shape of y) for a scheme name ("1/x", "1/x^2", "1/y", "1/y^2"), an array, or None."""
    if weights is None:
        return np.ones(np.shape(y))
    if not isinstance(weights, str):
        w = np.asarray(weights, dtype=float)
        if w.shape != np.shape(y) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("a weights array must match y in shape and be finite and >= 0")
        return w
    base = {"1/x": x, "1/x^2": x, "1/y": y, "1/y^2": y}
    if weights not in base:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS[1:])} or None, got {weights!r}")
    v = base[weights]
    power = 2 if weights.endswith("^2") else 1
    if np.any(v == 0) or (power == 1 and np.any(v < 0)):
        need = "non-zero" if power == 2 else "positive"
        raise ValueError(f"weights {weights} need {need} {weights[2]} values: drop those rows "
                         f"or choose another weighting")
    return 1.0 / v ** power


# ================================================================ input checks

def _check_model(model: str) -> str:
    m = str(model).lower()
    if m not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    return m


def _check_xy(x, y, model: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D and of equal length, got shapes {x.shape} and {y.shape}")
    _check_values(x, y, model)
    return x, y


def _check_values(x: np.ndarray, y: np.ndarray, model: str) -> None:
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite numbers: drop or fill missing/NaN/inf values")
    if model in LOGISTIC and np.any(x < 0):
        raise ValueError(f"{model} needs concentrations x >= 0: found negative x "
                         f"(log-transformed doses? pass the doses themselves)")


def _check_fixed(model: str, fixed: dict | None) -> dict[str, float]:
    fixed = {k: float(v) for k, v in (fixed or {}).items()}
    unknown = set(fixed) - set(PARAM_NAMES[model])
    if unknown:
        raise ValueError(f"cannot fix {sorted(unknown)} for {model}: parameters are "
                         f"{', '.join(PARAM_NAMES[model])}")
    if not all(math.isfinite(v) for v in fixed.values()):
        raise ValueError("fixed parameter values must be finite numbers")
    for k in LOG_SCALE_PARAMS:
        if k in fixed and fixed[k] <= 0:
            raise ValueError(f"fixed {k} must be > 0, got {fixed[k]}")
    return fixed


def _check_enough_points(model: str, x: np.ndarray, fixed: dict) -> None:
    n_free = len(PARAM_NAMES[model]) - len(fixed)
    if len(x) <= n_free:
        raise ValueError(f"{model} fit needs at least {n_free + 1} points for {n_free} free "
                         f"parameters, got {len(x)}: add standards or fix parameters")
    levels = len(set((x[x > 0] if model in LOGISTIC else x).tolist()))  # finite: as np.unique counts them
    if levels < min(n_free, 2 if model in LOGISTIC else n_free):
        what = "distinct positive x values" if model in LOGISTIC else "distinct x values"
        raise ValueError(f"{model} fit needs at least {min(n_free, 2)} {what}, got {levels}: "
                         f"add standards at other concentrations")


# ================================================================ model functions

def _predict(model: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _predict_batch(model, p[None, :], x.reshape(1, -1))[0].reshape(x.shape)


def _predict_batch(model: str, P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Responses (m, n) for parameter rows P (m, k) in natural units at X (m, n)."""
    if model in LOGISTIC:
        with np.errstate(divide="ignore"):
            return _logistic(_to_internal(model, P), np.log(X), with_jacobian=False)[0]
    return np.einsum("mnk,mk->mn", _design(model, X), P)


def _design(model: str, X: np.ndarray) -> np.ndarray:
    """Design tensor (..., n, k) of a model linear in its parameters, PARAM_NAMES order: linear [x, 1],
    quadratic [1, x, x^2] (C-contiguous, X's dtype)."""
    columns = 2 if model == "linear" else 3
    D = np.empty(X.shape + (columns,), dtype=X.dtype)
    if model == "linear":
        D[..., 0], D[..., 1] = X, 1.0
    else:
        D[..., 0], D[..., 1], D[..., 2] = 1.0, X, X * X
    return D


def _logistic(P: np.ndarray, log_x: np.ndarray, with_jacobian: bool = True):
    """5PL (4PL when P has 4 columns) and its Jacobian in internal parameters.

    P (m, k) rows: bottom, top, log ec50, hill[, log s]. log_x (m, n), -inf at x = 0, where
    the curve takes its limit. Returns f (m, n) and J (m, n, k) (None without Jacobian).
    """
    bottom, top, log_ec50, hill = (P[:, i:i + 1] for i in range(4))
    span = top - bottom
    five = P.shape[1] == 5
    at_zero = np.isneginf(log_x)
    any_zero = at_zero.any()
    with np.errstate(over="ignore", invalid="ignore"):
        dlog = log_x - log_ec50
        t = hill * dlog                                      # hill log(x / ec50); +-inf at x = 0
        if any_zero:
            t = np.where(np.isnan(t), 0.0, t)                # hill = 0 at x = 0: (0/ec50)^0 = 1
        e = np.exp(-np.abs(t))                               # one exp, never overflows
        inv = 1.0 / (1.0 + e)
        rising = t > 0
        g = np.where(rising, e * inv, inv)                   # 1 / (1 + e^t)
        if five:
            s = np.exp(P[:, 4:5])
            softplus = np.maximum(t, 0.0) + np.log1p(e)      # log(1 + e^t)
            g = np.exp(-s * softplus)                        # (1 + e^t)^-s
        f = bottom + span * g
        if not with_jacobian:
            return f, None
        slope = span * g * np.where(rising, inv, e * inv)    # -df/dt / s
        if five:
            slope = slope * s
        columns = [1.0 - g, g, slope * hill, -slope * dlog]
        if five:
            columns.append(-span * g * softplus * s)
        J = np.stack(columns, axis=-1)
    if any_zero:                                             # limits at x = 0
        J[..., 2:] = np.where(at_zero[..., None], 0.0, J[..., 2:])
    return f, J


def _to_internal(model: str, P: np.ndarray) -> np.ndarray:
    """Natural parameter rows -> solver rows (log ec50, log s)."""
    Q = np.array(P, dtype=float)
    for k in LOG_SCALE_PARAMS:
        if k in PARAM_NAMES[model]:
            i = PARAM_NAMES[model].index(k)
            with np.errstate(divide="ignore", invalid="ignore"):
                Q[:, i] = np.log(Q[:, i])
    return Q


def _to_natural(model: str, Q: np.ndarray) -> np.ndarray:
    P = np.array(Q, dtype=float)
    for k in LOG_SCALE_PARAMS:
        if k in PARAM_NAMES[model]:
            i = PARAM_NAMES[model].index(k)
            P[:, i] = np.exp(P[:, i])
    return P


def _inverse(model: str, p: np.ndarray, y: np.ndarray, branch_x: float = math.inf) -> np.ndarray:
    """x giving response y (NaN where there is none); branch_x picks the quadratic's branch."""
    if model == "linear":
        slope, intercept = p
        return (y - intercept) / slope if slope != 0 else np.full_like(y, np.nan)
    if model == "quadratic":
        return _quadratic_inverse(p, y, branch_x)
    return _logistic_inverse(p, y)


def _quadratic_inverse(p: np.ndarray, y: np.ndarray, branch_x: float) -> np.ndarray:
    """Root of a + b x + c x^2 = y on the side of the vertex that holds ``branch_x``."""
    a, b, c = p
    if c == 0:
        return _inverse("linear", np.array([b, a]), y)
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(b * b - 4 * c * (a - y))
        q = -0.5 * (b + math.copysign(1.0, b) * sq)   # stable pair of roots: q/c, (a-y)/q
        r1, r2 = q / c, (a - y) / q
    vertex = -b / (2 * c)
    side = 1.0 if branch_x >= vertex else -1.0
    return np.where((r1 - vertex) * side >= 0, r1, r2)


def _logistic_inverse(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x = ec50 * ((1/q)^(1/s) - 1)^(1/hill), q = (y - bottom)/(top - bottom) in (0, 1)."""
    bottom, top, ec50, hill = p[:4]
    s = p[4] if len(p) == 5 else 1.0
    if top == bottom or hill == 0:
        return np.full_like(y, np.nan)
    q = (y - bottom) / (top - bottom)
    inside = (q > 0) & (q < 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = np.expm1(-np.log(np.where(inside, q, 0.5)) / s)      # e^t, t = hill log(x/ec50)
        x = ec50 * np.exp(np.log(u) / hill)
    return np.where(inside & np.isfinite(x), x, np.nan)


# ================================================================ logistic fitting

class _LogisticProblem:
    """4PL/5PL least squares for m curves: starting values, solve, canonical form."""

    HILL_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
    LOG_EC50_GRID = np.linspace(-0.3, 1.3, 11)   # fractions of the log-dose span

    def __init__(self, model, X, Y, W, fixed):
        self.model, self.X, self.Y, self.W, self.fixed = model, X, Y, W, fixed
        self.names = PARAM_NAMES[model]
        fixed_row = np.array([[fixed.get(k, np.nan) for k in self.names]])
        self.fixed_internal = _to_internal(model, fixed_row)[0]
        self.free = np.array([k not in fixed for k in self.names])
        self.sqrt_w = np.sqrt(W)
        with np.errstate(divide="ignore"):
            self.log_x = np.log(X)                               # -inf at x = 0
        self.rss_floor = least_squares.rss_floor(Y, W)

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """(free internal parameters (m, k_free), solver status (m,))."""
        if self.model == "5pl" and "s" not in self.fixed:
            return self._solve_5pl_from_4pl()
        start = self._grid_start()
        theta, status, _ = least_squares.levenberg_marquardt(self.residuals_jacobian, start[:, self.free],
                                                self.rss_floor)
        return self._canonical(theta), status

    def full(self, theta: np.ndarray) -> np.ndarray:
        """Internal rows with fixed values filled in."""
        Q = np.tile(self.fixed_internal, (theta.shape[0], 1))
        Q[:, self.free] = theta
        return Q

    def natural(self, theta: np.ndarray) -> np.ndarray:
        return _to_natural(self.model, self.full(theta))

    def diagnose(self, theta, status):
        """Mark fits whose ec50 and hill the data cannot determine although the solver stopped.

        Flat: top = bottom to rounding error. Step: ec50 within the standards but no standard
        between 0.1 % and 99.9 % of the span (noise fitted by a jump between two standards).
        """
        if "ec50" in self.fixed and "hill" in self.fixed:
            return status
        P = self.natural(theta)
        usable = status != _NOT_FINITE
        flat = np.abs(P[:, 1] - P[:, 0]) <= 1e-9 * np.max(np.abs(self.Y), axis=1)
        if not {"bottom", "top"} <= set(self.fixed):
            status = np.where(flat & usable, _FLAT, status)
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = (_predict_batch(self.model, P, self.X) - P[:, :1]) / (P[:, 1:2] - P[:, :1])
        on_transition = np.any((fraction > 1e-3) & (fraction < 1 - 1e-3), axis=1)
        lowest = np.min(np.where(self.X > 0, self.X, np.inf), axis=1)
        within = (P[:, 2] >= lowest) & (P[:, 2] <= self.X.max(axis=1))
        return np.where(within & ~on_transition & usable & ~flat, _NO_TRANSITION, status)

    def residuals_jacobian(self, theta, rows):
        """Weighted residuals and Jacobian (free columns) for curves ``rows`` (None: all)."""
        rows = slice(None) if rows is None else rows
        f, J = _logistic(self.full(theta), self.log_x[rows])
        sw = self.sqrt_w[rows]
        return sw * (self.Y[rows] - f), sw[:, :, None] * J[:, :, self.free]

    def _solve_5pl_from_4pl(self):
        """5PL from the 4PL optimum and, when it is free to flip, its mirror image; keep the better."""
        four = _LogisticProblem("5pl", self.X, self.Y, self.W, {**self.fixed, "s": 1.0})
        theta4, _ = four.solve()
        starts = [four.full(theta4)]
        if not {"bottom", "top", "hill"} & set(self.fixed):
            mirror = starts[0][:, [1, 0, 2, 3, 4]] * np.array([1, 1, 1, -1, 1])
            starts.append(mirror)
        best_theta = best_status = best_rss = None
        for q in starts:
            theta, status, _ = least_squares.levenberg_marquardt(self.residuals_jacobian, q[:, self.free],
                                                    self.rss_floor)
            rss = np.sum(self.residuals_jacobian(theta, None)[0] ** 2, axis=1)
            if best_theta is None:
                best_theta, best_status, best_rss = theta, status, rss
                continue
            better = (status == _CONVERGED) & ((best_status != _CONVERGED) | (rss < best_rss * (1 - 1e-9)))
            best_theta = np.where(better[:, None], theta, best_theta)
            best_status = np.where(better, status, best_status)
            best_rss = np.where(better, rss, best_rss)
        return best_theta, best_status

    def _canonical(self, theta):
        """A free 4PL with bottom > top is the same curve as (top, bottom, -hill): report bottom <= top."""
        if self.model != "4pl" or {"bottom", "top", "hill"} & set(self.fixed):
            return theta
        Q = self.full(theta)
        flip = Q[:, 0] > Q[:, 1]
        Q[flip] = Q[flip][:, [1, 0, 2, 3]] * np.array([1, 1, 1, -1])
        return Q[:, self.free]

    def _grid_start(self) -> np.ndarray:
        """Internal starting rows: best (log ec50, hill) on a grid, asymptotes by linear least squares."""
        m = self.Y.shape[0]
        log_x = self.log_x
        positive = np.where(self.X > 0, log_x, np.nan)
        lo, hi = np.nanmin(positive, axis=1), np.nanmax(positive, axis=1)
        span = np.where(hi > lo, hi - lo, 2.0)
        lo = np.where(hi > lo, lo, lo - 1.0)
        fixed = dict(zip(self.names, self.fixed_internal))
        if "ec50" in self.fixed:
            log_ec50 = np.full((m, 1), fixed["ec50"])
        else:
            log_ec50 = lo[:, None] + span[:, None] * self.LOG_EC50_GRID
        if "hill" in self.fixed:
            hills = [fixed["hill"]]
        elif {"bottom", "top"} & set(self.fixed):
            hills = [sign * h for h in self.HILL_GRID for sign in (1, -1)]
        else:   # (bottom, top, -hill) is (top, bottom, hill) mirrored: one sign suffices
            hills = list(self.HILL_GRID)
        s = math.exp(fixed["s"]) if "s" in self.fixed else 1.0
        W, WY = self.W, self.W * self.Y
        totals = (W.sum(axis=1)[:, None], WY.sum(axis=1)[:, None], (WY * self.Y).sum(axis=1)[:, None])
        best = np.zeros((m, len(self.names)))
        best_rss = np.full(m, np.inf)
        rows = np.arange(m)
        dlog = log_x[:, None, :] - log_ec50[:, :, None]                  # (m, grid, n)
        for hill in hills:
            with np.errstate(over="ignore", invalid="ignore"):
                g = 1.0 / (1.0 + np.exp(hill * dlog))
                if s != 1.0:
                    g **= s
            gw = g * W[:, None, :]
            sums = (gw.sum(axis=2), (gw * g).sum(axis=2), (gw * self.Y[:, None, :]).sum(axis=2))
            bottom, top, rss = _asymptotes(*sums, *totals,
                                           self.fixed.get("bottom"), self.fixed.get("top"))
            k = np.argmin(rss, axis=1)
            better = rss[rows, k] < best_rss
            best_rss = np.where(better, rss[rows, k], best_rss)
            candidate = np.column_stack([bottom[rows, k], top[rows, k], log_ec50[rows, k],
                                         np.full(m, hill)] + ([np.full(m, math.log(s))]
                                                              if self.model == "5pl" else []))
            best[better] = candidate[better]
        return best


def _asymptotes(sg, sgg, sgy, sw, swy, swyy, bottom_fixed, top_fixed):
    """Least-squares bottom, top and RSS of y = bottom (1 - g) + top g from weighted sums.

    sg = sum w g, sgg = sum w g^2, sgy = sum w g y (per curve and grid point);
    sw, swy, swyy = sum w, sum w y, sum w y^2 (per curve).
    """
    saa, sab, sbb = sw - 2 * sg + sgg, sg - sgg, sgg            # a = 1 - g, b = g
    say, sby = swy - sgy, sgy
    with np.errstate(divide="ignore", invalid="ignore"):
        if bottom_fixed is None and top_fixed is None:
            det = saa * sbb - sab * sab
            ok = det > 1e-10 * saa * sbb
            bottom = (sbb * say - sab * sby) / det
            top = (saa * sby - sab * say) / det
        elif bottom_fixed is None:
            ok = saa > 1e-12 * sw
            top = np.full_like(sg, top_fixed)
            bottom = (say - top * sab) / saa
        elif top_fixed is None:
            ok = sbb > 1e-12 * sw
            bottom = np.full_like(sg, bottom_fixed)
            top = (sby - bottom * sab) / sbb
        else:
            ok = np.ones(sg.shape, dtype=bool)
            bottom, top = np.full_like(sg, bottom_fixed), np.full_like(sg, top_fixed)
        rss = (swyy - 2 * (bottom * say + top * sby)
               + bottom * bottom * saa + 2 * bottom * top * sab + top * top * sbb)
    ok &= np.isfinite(rss)
    return np.where(ok, bottom, 0.0), np.where(ok, top, 0.0), np.where(ok, np.maximum(rss, 0.0), np.inf)


# ================================================================ the solver

# ================================================================ standard errors

def _free_variances(problem: _LogisticProblem, theta: np.ndarray, method: str) -> np.ndarray:
    """Unscaled variances (m, k_free) of the free parameters in natural units."""
    if method == "gauss-newton":
        _, J = problem.residuals_jacobian(theta, None)
        variances = least_squares.gauss_newton_variances(J)
    else:
        variances = least_squares.hessian_variances(problem.residuals_jacobian, theta)
    # ec50 = exp(theta), s = exp(theta): the delta method (exact at the optimum)
    factors = np.ones_like(theta)
    names = [k for k in problem.names if k not in problem.fixed]
    for i, k in enumerate(names):
        if k in LOG_SCALE_PARAMS:
            factors[:, i] = np.exp(theta[:, i]) ** 2
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(variances), np.inf, variances * factors)


# ================================================================ linear-in-parameters fits

def _fit_linear_in_params(model, x, y, w, fixed):
    """One weighted least-squares fit with some coefficients fixed: (params, unscaled variances)."""
    P, variances = _fit_linear_batch(model, x[None], y[None], w[None], fixed)
    return P[0], variances[0]


def _fit_linear_batch(model, X, Y, W, fixed):
    """Weighted least squares per row via SVD of the column-scaled design (fixed columns removed)."""
    names = PARAM_NAMES[model]
    D = _design(model, X)                                       # (m, n, k)
    free = [i for i, k in enumerate(names) if k not in fixed]
    P = np.empty((Y.shape[0], len(names)))
    P[:] = [fixed.get(k, 0.0) for k in names]
    sqrt_w = np.sqrt(W)
    # nothing fixed: D P is +0.0 everywhere (D has a column of ones) and Y - 0.0 is Y, bit for bit
    target = (Y - np.einsum("mnk,mk->mn", D, P) if fixed else Y) * sqrt_w
    A = (D[:, :, free] if fixed else D) * sqrt_w[:, :, None]
    norms = np.sqrt((A * A).sum(axis=1))
    safe = np.where(norms > 0, norms, 1.0)
    u, sv, vt = np.linalg.svd(A / safe[:, None, :], full_matrices=False)
    keep = sv > sv.max(axis=-1, keepdims=True) * 1e-13
    coef = np.einsum("mdk,md->mk", vt, np.where(keep, np.einsum("mnd,mn->md", u, target)
                                                 / np.where(keep, sv, 1.0), 0.0))
    P[:, free] = coef / safe
    return P, least_squares.diag_of_inverse(sv ** 2, vt, norms)


# ================================================================ assembling a Fit

def _make_fit(model, x, y, w, fixed, p, variances, status, weights, se_method) -> Fit:
    names = PARAM_NAMES[model]
    free = [k for k in names if k not in fixed]
    resid = y - _predict(model, p, x)
    rss = float((w * resid ** 2).sum())
    df = len(x) - len(free)
    se = dict.fromkeys(names, 0.0)
    se.update(zip(free, map(float, least_squares.standard_errors(rss / df, np.asarray(variances)))))
    identifiable = all(math.isfinite(v) for v in se.values())
    unidentified = [k for k in free if not math.isfinite(se[k])]
    return Fit(model=model, params=dict(zip(names, map(float, p))), se=se,
               r2=float(_r_squared(y[None], w[None], np.array([rss]))[0]), rss=rss, n=len(x),
               df=df, residuals=resid, converged=status == _CONVERGED and identifiable,
               message=_message(status, unidentified) + _extrapolation_note(model, p, x),
               fixed=fixed, weights=weights, se_method=se_method,
               x_range=(float(x.min()), float(x.max())))


def _message(status: int, unidentified=()) -> str:
    if status == _CONVERGED and unidentified:
        return (f"not converged: the data do not determine {', '.join(unidentified)}; the curve "
                f"may be flat or incomplete (no plateau, or no standards across its transition)")
    return _STATUS_MESSAGES[status]


def _extrapolation_note(model: str, p: np.ndarray, x: np.ndarray) -> str:
    """A 4PL whose ec50 lies outside the standards is an extrapolation: say so."""
    if model != "4pl" or not np.any(x > 0):
        return ""
    ec50, lo, hi = p[2], x[x > 0].min(), x.max()
    if lo <= ec50 <= hi:
        return ""
    return f"; note: ec50 {ec50:.4g} lies outside the standards ({lo:.4g} to {hi:.4g}), extrapolated"


def _r_squared(Y: np.ndarray, W: np.ndarray, rss: np.ndarray) -> np.ndarray:
    """1 - RSS/TSS per row, both weighted (the plain R^2 when unweighted)."""
    ybar = (W * Y).sum(axis=1, keepdims=True) / W.sum(axis=1, keepdims=True)
    tss = (W * (Y - ybar) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tss > 0, 1.0 - rss / tss, np.where(rss == 0, 1.0, 0.0))


def _param_vector(f: Fit) -> np.ndarray:
    return np.array([f.params[k] for k in PARAM_NAMES[f.model]])


def _range_flag(x: float, lower, upper) -> str | None:
    if not math.isfinite(x):
        return FLAG_NOT_COMPUTABLE
    if lower is not None and x < lower:
        return FLAG_BELOW
    if upper is not None and x > upper:
        return FLAG_ABOVE
    return None


def _json_number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
