"""Curve fitting for standard curves: linear, quadratic, 4PL and 5PL.

``fit(x, y, model=...)`` returns a :class:`Fit` with parameters, standard errors,
goodness of fit, ``predict`` and ``inverse`` (back-calculation with LLOQ/ULOQ flags).

Standard errors default to the Gauss-Newton convention ``s^2 inv(J'WJ)`` used by
R ``nls``, NIST StRD and scipy ``curve_fit``; ``se="hessian"`` gives drc's
observed-information form ``s^2 inv(H/2)`` with H the Hessian of the RSS.
For linear models both are identical.

scipy is never imported here: ``import assayrunner.curves`` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MODELS = ("linear", "quadratic")
PARAM_NAMES = {
    "linear": ("intercept", "slope"),
    "quadratic": ("a", "b", "c"),
}
WEIGHTS = (None, "1/x", "1/x^2", "1/y", "1/y^2")
SE_METHODS = ("gauss-newton", "hessian")

FLAG_BELOW = "below-lloq"
FLAG_ABOVE = "above-uloq"
FLAG_NOT_COMPUTABLE = "not-computable"


@dataclass
class Fit:
    """A fitted curve. ``rss`` is the (weighted) objective; ``residuals`` are raw y - predict(x)."""

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
        x > upper, ``"not-computable"`` when y has no real solution (x is NaN then).
        With lower/upper None that side is not checked.
        """
        y = np.atleast_1d(np.asarray(y, dtype=float))
        x = _inverse(self.model, _param_vector(self), y, branch_x=_midpoint(self.x_range))
        return x, [_range_flag(v, lower, upper) for v in x]

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


def fit(x, y, model: str = "4pl", weights=None, fixed: dict | None = None,
        se: str = "gauss-newton") -> Fit:
    """Fit ``model`` to (x, y) by (weighted) least squares.

    weights: None, "1/x", "1/x^2", "1/y", "1/y^2" (observed y) or an array of weights.
    fixed: parameter values held constant, e.g. ``{"bottom": 0, "top": 100}``; their se is 0.
    se: "gauss-newton" (default, R nls / NIST / scipy) or "hessian" (drc).
    Raises ValueError for unusable input; a fit that fails to converge is returned
    with ``converged=False`` and a ``message`` saying why.
    """
    model = _check_model(model)
    if se not in SE_METHODS:
        raise ValueError(f"se must be one of {SE_METHODS}, got {se!r}")
    x, y = _check_xy(x, y, model)
    fixed = _check_fixed(model, fixed)
    w = weight_vector(weights, x, y)
    names = PARAM_NAMES[model]
    free = [k for k in names if k not in fixed]
    if len(x) <= len(free):
        raise ValueError(
            f"{model} fit needs at least {len(free) + 1} points for {len(free)} free "
            f"parameters, got {len(x)}: add standards or fix parameters")
    params, cov = _fit_linear_in_params(model, x, y, w, fixed)
    return _make_fit(model, x, y, w, fixed, params, cov, True, "converged",
                     weights if isinstance(weights, str) or weights is None else "custom", se)


def weight_vector(weights, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-point weights for a weighting scheme name, an array, or None (all ones)."""
    if weights is None:
        return np.ones_like(x)
    if not isinstance(weights, str):
        w = np.asarray(weights, dtype=float)
        if w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights array must match x in length and be finite and >= 0")
        return w
    base = {"1/x": x, "1/x^2": x, "1/y": y, "1/y^2": y}
    if weights not in base:
        raise ValueError(f"weights must be one of {WEIGHTS[1:]} or None, got {weights!r}")
    v = base[weights]
    power = 2 if weights.endswith("^2") else 1
    bad = (v == 0) if power == 2 else (v <= 0)
    if np.any(bad):
        var = weights[2]
        need = "non-zero" if power == 2 else "positive"
        raise ValueError(f"weights {weights} need {need} {var} values: drop those rows "
                         f"or choose another weighting")
    return 1.0 / v ** power


# ---------------------------------------------------------------- input checks

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
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite numbers: drop or fill missing/NaN/inf values")
    return x, y


def _check_fixed(model: str, fixed: dict | None) -> dict[str, float]:
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(PARAM_NAMES[model])
    if unknown:
        raise ValueError(f"cannot fix {sorted(unknown)} for {model}: parameters are "
                         f"{', '.join(PARAM_NAMES[model])}")
    out = {k: float(v) for k, v in fixed.items()}
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError("fixed parameter values must be finite numbers")
    return out


# ---------------------------------------------------------------- models

def _predict(model: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _design(model, x) @ p


def _design(model: str, x: np.ndarray) -> np.ndarray:
    """Design matrix of a model linear in its parameters (columns in PARAM_NAMES order)."""
    powers = {"linear": 2, "quadratic": 3}[model]
    return np.vander(x, powers, increasing=True)


def _fit_linear_in_params(model, x, y, w, fixed):
    """Weighted least squares with some coefficients held fixed: (params, unscaled cov of free)."""
    names = PARAM_NAMES[model]
    X = _design(model, x)
    free = [i for i, k in enumerate(names) if k not in fixed]
    p = np.array([fixed.get(k, 0.0) for k in names])
    target = y - X @ p
    sw = np.sqrt(w)
    Xf = X[:, free] * sw[:, None]
    coef, *_ = np.linalg.lstsq(Xf, target * sw, rcond=None)
    p[free] = coef
    return p, _unscaled_cov(Xf)


def _unscaled_cov(J: np.ndarray) -> np.ndarray:
    """inv(J'J) via SVD; infinite variance along directions J cannot see."""
    _, s, vt = np.linalg.svd(J, full_matrices=False)
    tol = s.max(initial=0.0) * max(J.shape) * np.finfo(float).eps
    inv_s2 = np.where(s > tol, 1.0 / np.where(s > tol, s, 1.0) ** 2, np.inf)
    with np.errstate(invalid="ignore"):
        cov = (vt.T * inv_s2) @ vt
    return np.where(np.isnan(cov), np.inf, cov)


def _inverse(model: str, p: np.ndarray, y: np.ndarray, branch_x: float = math.inf) -> np.ndarray:
    """x giving response y (NaN where there is none); branch_x picks the quadratic's branch."""
    if model == "linear":
        intercept, slope = p
        if slope == 0:
            return np.full_like(y, np.nan)
        return (y - intercept) / slope
    return _quadratic_inverse(p, y, branch_x)


def _quadratic_inverse(p: np.ndarray, y: np.ndarray, branch_x: float) -> np.ndarray:
    """Root of a + b x + c x^2 = y on the side of the vertex that holds ``branch_x``."""
    a, b, c = p
    if c == 0:
        return _inverse("linear", np.array([a, b]), y)
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(b * b - 4 * c * (a - y))
        q = -0.5 * (b + math.copysign(1.0, b) * sq)   # stable pair of roots: q/c, (a-y)/q
        r1, r2 = q / c, (a - y) / q
    vertex = -b / (2 * c)
    side = 1.0 if branch_x >= vertex else -1.0
    return np.where((r1 - vertex) * side >= 0, r1, r2)


# ---------------------------------------------------------------- assembling the result

def _make_fit(model, x, y, w, fixed, p, unscaled_cov, converged, message, weights, se_method):
    names = PARAM_NAMES[model]
    free = [k for k in names if k not in fixed]
    fitted = _predict(model, p, x)
    resid = y - fitted
    rss = float(np.sum(w * resid ** 2))
    df = len(x) - len(free)
    s2 = rss / df
    se = dict.fromkeys(names, 0.0)
    for i, k in enumerate(free):
        se[k] = float(math.sqrt(s2 * unscaled_cov[i, i])) if math.isfinite(unscaled_cov[i, i]) else math.inf
    return Fit(model=model, params=dict(zip(names, map(float, p))), se=se,
               r2=_r_squared(y, w, rss), rss=rss, n=len(x), df=df, residuals=resid,
               converged=converged, message=message, fixed=fixed, weights=weights,
               se_method=se_method, x_range=(float(x.min()), float(x.max())))


def _r_squared(y: np.ndarray, w: np.ndarray, rss: float) -> float:
    """1 - RSS/TSS, both weighted (the plain R^2 when unweighted)."""
    ybar = np.sum(w * y) / np.sum(w)
    tss = float(np.sum(w * (y - ybar) ** 2))
    return 1.0 - rss / tss if tss > 0 else (1.0 if rss == 0 else 0.0)


def _param_vector(f: Fit) -> np.ndarray:
    return np.array([f.params[k] for k in PARAM_NAMES[f.model]])


def _midpoint(x_range: tuple[float, float]) -> float:
    return 0.5 * (x_range[0] + x_range[1])


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
