"""Curve fitting checked against published reference fits and independent closed forms."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assayrunner.curves import fit

REFERENCES = Path("/work/shared/data/fit-references")


def load_reference(name: str):
    """(columns as float arrays keyed by header, reference.json dict) of one dataset."""
    folder = REFERENCES / name
    if not folder.is_dir():
        pytest.skip(f"reference data {folder} not available")
    with open(folder / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = {}
    for key in rows[0]:
        try:
            cols[key] = np.array([float(r[key]) for r in rows])
        except ValueError:
            cols[key] = np.array([r[key] for r in rows])
    return cols, json.loads((folder / "reference.json").read_text())


def reference_fit(ref: dict, fit_id: str) -> dict:
    return next(f for f in ref["fits"] if f["id"] == fit_id)


def assert_rel(actual: float, expected: float, rtol: float, what: str = ""):
    assert abs(actual - expected) <= rtol * abs(expected), f"{what}: {actual} vs {expected}"


# ---------------------------------------------------------------- linear

def test_formaldehyde_matches_r_lm():
    cols, ref = load_reference("Formaldehyde")
    pub = reference_fit(ref, "Formaldehyde-lm")
    f = fit(cols["carb"], cols["optden"], model="linear")
    names = {"a": "intercept", "b": "slope"}
    for r_name, ours in names.items():
        # printed with 4 significant digits (a) / 6 (b): half a unit in the last place
        assert_rel(f.params[ours], pub["parameters"][r_name]["estimate"], 1e-4, r_name)
        assert_rel(f.se[ours], pub["parameters"][r_name]["se"], 1e-4, r_name)
    assert f.df == pub["df"]
    assert_rel(np.sqrt(f.rss / f.df), pub["residual_se"], 1e-4, "residual se")
    assert round(f.r2, 3) == pub["r_squared"]
    assert f.converged


@pytest.mark.parametrize("scheme", ["1/x", "1/x^2", "1/y", "1/y^2"])
def test_weighted_linear_matches_normal_equations(scheme):
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    y = np.array([2.1, 3.9, 8.3, 15.8, 32.5, 63.0])
    base = x if "x" in scheme else y
    w = 1 / base ** (2 if scheme.endswith("^2") else 1)
    X = np.column_stack([np.ones_like(x), x])
    XtWX = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(XtWX, X.T @ (w * y))
    rss = np.sum(w * (y - X @ beta) ** 2)
    se = np.sqrt(rss / (len(x) - 2) * np.diag(np.linalg.inv(XtWX)))

    f = fit(x, y, model="linear", weights=scheme)
    np.testing.assert_allclose([f.params["intercept"], f.params["slope"]], beta, rtol=1e-12)
    np.testing.assert_allclose([f.se["intercept"], f.se["slope"]], se, rtol=1e-10)
    assert f.rss == pytest.approx(rss, rel=1e-12)
    np.testing.assert_allclose(f.residuals, y - X @ beta, rtol=1e-10, atol=1e-12)


def test_linear_fixed_intercept_is_regression_through_origin():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.2, 3.9, 6.1, 8.0])
    f = fit(x, y, model="linear", fixed={"intercept": 0})
    slope = np.sum(x * y) / np.sum(x * x)
    se = np.sqrt(np.sum((y - slope * x) ** 2) / 3 / np.sum(x * x))
    assert f.params == {"intercept": 0.0, "slope": pytest.approx(slope, rel=1e-13)}
    assert f.se["intercept"] == 0.0
    assert f.se["slope"] == pytest.approx(se, rel=1e-12)
    assert f.df == 3


def test_quadratic_matches_polyfit_and_inverts_on_the_data_branch():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([0.05, 1.1, 2.4, 3.3, 4.1, 4.7])
    c, b, a = np.polyfit(x, y, 2)
    f = fit(x, y, model="quadratic")
    np.testing.assert_allclose([f.params[k] for k in "abc"], [a, b, c], rtol=1e-10)
    xs, flags = f.inverse([2.4, 100.0])
    assert c < 0 and -b / (2 * c) > 5  # data lie on the rising branch: the smaller root
    roots = (-b + np.array([1, -1]) * np.sqrt(b * b - 4 * c * (a - 2.4))) / (2 * c)
    assert xs[0] == pytest.approx(roots.min(), rel=1e-12)
    assert flags == [None, "not-computable"] and np.isnan(xs[1])


def test_linear_inverse_flags():
    f = fit([1, 2, 3, 4, 5], [10, 20, 30, 40, 50.001], model="linear")
    xs, flags = f.inverse([5, 30, 60], lower=1, upper=5)
    assert flags == ["below-lloq", None, "above-uloq"]
    np.testing.assert_allclose(xs, [0.5, 3.0, 6.0], rtol=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=[1, 2], y=[1, 2]), "at least 3 points"),
    (dict(x=[1, 2, np.nan], y=[1, 2, 3]), "finite"),
    (dict(x=[0, 1, 2], y=[1, 2, 3], weights="1/x"), "positive x"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], fixed={"ec50": 1}), "cannot fix"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], model="cubic"), "unknown model"),
])
def test_unusable_input_raises_value_error_saying_what_to_do(kwargs, match):
    kwargs.setdefault("model", "linear")
    with pytest.raises(ValueError, match=match):
        fit(**kwargs)


def test_import_does_not_load_scipy():
    code = "import sys, assayrunner.curves; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
