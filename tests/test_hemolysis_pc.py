"""Hemolysis as % of the positive control over a dose series (protocol hemolysis-percent-pc): % per well and
concentration, HC50 with its CI, censored HC50s, the lowest concentration reaching 50 %, the control checks."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from assayrunner.testing import check, plate_from_wells, result, write_plate

TOP, STEPS = 512.0, 10
CONC = TOP / 2.0 ** np.arange(STEPS)  # the protocol's default series, step 1 = column 2
BLANK, NC, PC = 0.05, 0.11, 1.50      # raw A540 of the blank, negative and positive control wells


def plate(percent_rows: dict[str, list[float]], *, nc=(NC,) * 4, pc=(PC,) * 4, blank=BLANK, **wells):
    """A plate in the protocol's layout: controls in column 1, blank in column 12, each row's series of
    % hemolysis in columns 2-11 written as the absorbance that gives it (plus any wells given)."""
    values = {f"{r}12": blank for r in "ABCD"}
    values |= {f"{r}1": v for r, v in zip("ABCD", nc)} | {f"{r}1": v for r, v in zip("EFGH", pc)}
    nc_c, pc_c = np.mean(nc) - blank, np.mean(pc) - blank
    for row, percents in percent_rows.items():
        for k, pct in enumerate(percents):
            values[f"{row}{k + 2}"] = blank + nc_c + pct / 100 * (pc_c - nc_c)
    return plate_from_wells(values | wells, wavelength_nm=540)


def logistic(conc, hc50, hill):
    return 100 / (1 + (hc50 / conc) ** hill)


def test_percent_per_well_and_concentration_by_hand(assay_run):
    wells = {"A2": 0.80, "B2": 0.70, "A3": 0.02, "B3": 0.04}
    series = logistic(CONC, 37.0, 1.4)  # the other steps; steps 1 and 2 (512, 256) are the wells above
    run = assay_run("hemolysis-pc", plate({"A": series, "B": series}, nc=(0.10, 0.12, 0.11, 0.09),
                                          pc=(1.50, 1.55, 1.45, 1.50), **wells),
                    samples={"S1": "AMP-7"})
    # blank 0.05; NC mean 0.105 - 0.05 = 0.055; PC mean 1.50 - 0.05 = 1.45; PC - NC = 1.395
    # A2: 100 x (0.80 - 0.05 - 0.055) / 1.395 = 49.8208 %; B2: 100 x 0.595 / 1.395 = 42.6523 %
    # A3: 100 x (0.02 - 0.105) / 1.395 = -6.0932 %; B3: 100 x (0.04 - 0.105) / 1.395 = -4.6595 %
    by_hand = {512.0: [49.8208, 42.6523], 256.0: [-6.0932, -4.6595]}
    details = run.result.details["samples"][0]
    for c in details["conditions"][:2]:
        assert c["percent"] == pytest.approx(by_hand[c["concentration"]], abs=1e-4)
        assert c["mean"] == pytest.approx(np.mean(by_hand[c["concentration"]]), abs=1e-4)
        assert c["sd"] == pytest.approx(np.std(by_hand[c["concentration"]], ddof=1), abs=1e-4)
    top = result(run, "AMP-7 512 µg/mL", "percent_hemolysis")
    assert top.value == pytest.approx(46.2366, abs=1e-4) and top.interpretation == "hemolytic"
    assert top.concentration == 512.0 and top.concentration_unit == "µg/mL" and top.slot == "S1"
    below = result(run, "AMP-7 256 µg/mL", "percent_hemolysis")  # kept as computed, flagged, not clipped to 0
    assert below.value == pytest.approx(-5.37635, abs=1e-4) and "below-0-percent" in below.flags
    assert check(run, "pc-nc-separation").value == pytest.approx(1.395)
    # PC %CV of (1.45, 1.50, 1.40, 1.45): SD 0.040825 / mean 1.45
    assert check(run, "pc-cv").value == pytest.approx(100 * np.std([1.45, 1.5, 1.4, 1.45], ddof=1) / 1.45)
    assert run.valid


def test_known_hc50_recovered_with_the_ci_of_an_independent_fit(assay_run):
    from scipy.optimize import curve_fit
    from scipy.stats import t

    noise = np.array([[1.5, -2.0, 0.8, -1.1, 2.2, -0.7, 1.0, -1.6, 0.4, -0.3],
                      [-1.2, 1.7, -0.6, 1.4, -2.1, 0.9, -1.3, 1.1, -0.2, 0.5]])
    truth = logistic(CONC, 37.0, 1.4)
    run = assay_run("hemolysis-pc", plate({"A": truth + noise[0], "B": truth + noise[1]}))
    # independent: scipy's curve_fit of the 4PL (bottom 0, top 100 fixed) on ln concentration, every well;
    # SE of ln HC50 from its covariance, CI with Student's t on n - 2 degrees of freedom
    x = np.concatenate([CONC, CONC])
    y = np.concatenate([truth + noise[0], truth + noise[1]])
    (ln_hc50, hill), cov = curve_fit(lambda c, a, h: 100 / (1 + np.exp(h * (a - np.log(c)))), x, y, p0=[3.0, 1.0])
    half = t.ppf(0.975, x.size - 2) * math.sqrt(cov[0, 0])
    hc50 = result(run, "S1", "hc50")
    assert hc50.value == pytest.approx(math.exp(ln_hc50), rel=1e-5)
    assert abs(hc50.value - 37.0) / 37.0 < 0.05
    assert result(run, "S1", "hc50_ci_lower").value == pytest.approx(math.exp(ln_hc50 - half), rel=1e-4)
    assert result(run, "S1", "hc50_ci_upper").value == pytest.approx(math.exp(ln_hc50 + half), rel=1e-4)
    # each replicate series is reported on its own too
    for k in (0, 1):
        (ln_k, _), _ = curve_fit(lambda c, a, h: 100 / (1 + np.exp(h * (a - np.log(c)))), CONC, truth + noise[k],
                                 p0=[3.0, 1.0])
        assert result(run, f"S1 series {k + 1}", "hc50").value == pytest.approx(math.exp(ln_k), rel=1e-5)
    fit = next(f for f in run.result.fits if f["name"] == "S1")
    assert fit["log_x"] and fit["parameters"]["bottom"] == 0 and fit["parameters"]["top"] == 100


def test_free_asymptotes_as_an_option(assay_run):
    truth = 5 + 85 / (1 + (30.0 / CONC) ** 1.2)   # plateaus at 5 % and 90 %: HC50 where the curve is 50 %
    run = assay_run("hemolysis-pc", plate({"A": truth, "B": truth}), params=["fit_fixed={}"])
    expected = 30.0 * (45 / 40) ** (1 / 1.2)  # 5 + 85 / (1 + (30 / c)^1.2) = 50  <=>  (30 / c)^1.2 = 40 / 45
    assert result(run, "S1", "hc50").value == pytest.approx(expected, rel=1e-4)


def test_hc50_above_highest_and_below_lowest_tested(assay_run):
    weak = logistic(CONC, 5000.0, 1.0)    # 9 % at 512: never reaches 50 %
    strong = logistic(CONC, 0.2, 2.0)     # 96 % already at 1
    run = assay_run("hemolysis-pc", plate({"A": weak, "B": weak, "C": strong, "D": strong}))
    above = result(run, "S1", "hc50")
    assert (above.qualifier, above.value) == (">", 512.0) and "above-highest-tested" in above.flags
    not_reached = result(run, "S1", "lowest_concentration_reaching_level")
    assert (not_reached.qualifier, not_reached.value, not_reached.flags) == (">", 512.0, ["not-reached"])
    below = result(run, "S2", "hc50")
    assert (below.qualifier, below.value) == ("<", 1.0) and "below-lowest-tested" in below.flags
    assert result(run, "S2", "lowest_concentration_reaching_level").value == 1.0
    assert not [r for r in run.result.results if r.metric == "hc50_ci_lower"]


def test_lowest_concentration_reaching_50_on_a_noisy_crossing(assay_run):
    # means by concentration (1 ... 512): the series crosses 50 % at 16, dips back to 46 at 32, then rises;
    # the rule simpler tools report takes the lowest whose mean reaches 50 %: 16 µg/mL
    rising = [98, 95, 90, 80, 46, 52, 30, 12, 5, 2]   # top concentration first
    run = assay_run("hemolysis-pc", plate({"A": [v + 1 for v in rising], "B": [v - 1 for v in rising]}))
    assert result(run, "S1", "lowest_concentration_reaching_level").value == 16.0
    hc50 = result(run, "S1", "hc50")
    assert hc50.qualifier is None and 16 < hc50.value < 64   # the fit crosses between the noisy steps


def test_saturated_positive_control_fails_its_check_via_the_cli(tmp_path):
    path = write_plate(plate(dict.fromkeys("AB", logistic(CONC, 37.0, 1.4)), pc=(3.6, 3.7, 3.55, 3.65)), tmp_path / "plate.csv")
    done = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis-pc", str(path), "--json",
                           "--db", str(tmp_path / "run.db"), "--out", str(tmp_path / "certs")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    saturated = next(c for c in out["checks"] if c["id"] == "pc-not-saturated")
    assert not saturated["passed"] and saturated["value"] == pytest.approx(3.5 - 3.625)
    assert "positive control saturated: dilute or read at a lower-sensitivity wavelength" in saturated["detail"]
    assert out["valid"] is False


def test_saturated_control_well_is_flagged(assay_run):
    run = assay_run("hemolysis-pc", plate(dict.fromkeys("AB", logistic(CONC, 37.0, 1.4)), pc=(1.5, 3.8, 1.5, 1.5)))
    pc = next(c for c in run.result.details["controls"] if c["name"] == "PC")
    assert pc["flags"] == ["saturated well F1"] and pc["saturated_wells"] == 1
    assert check(run, "pc-not-saturated").passed    # the mean (2.075) is below 3.5
    assert not check(run, "pc-cv").passed           # but the wells disagree


def test_blood_free_wells_are_subtracted(assay_run, tmp_path):
    protocol = (tmp_path / "with-free.toml")
    from conftest import REPO

    text = (REPO / "protocols" / "hemolysis-percent-pc.toml").read_text(encoding="utf-8")
    protocol.write_text(text.replace('  { wells = "A12:D12", role = "blank" },',
                                     '  { wells = "A12:D12", role = "blank" },\n'
                                     '  { wells = "E12", role = "sample", name = "S1", nominal = 1, interference = true },'),
                        encoding="utf-8")
    # S1 top step reads 0.80 in both wells; its blood-free well reads 0.25 (0.20 above the blank)
    series = logistic(CONC, 37.0, 1.4)
    run = assay_run("hemolysis-pc", plate({"A": series, "B": series}, A2=0.80, B2=0.80, E12=0.25), protocol=protocol)
    # 100 x (0.80 - 0.05 - 0.20 - 0.06) / (1.45 - 0.06) = 35.2518 %
    assert result(run, "S1 512 µg/mL", "percent_hemolysis").value == pytest.approx(35.2518, abs=1e-4)
