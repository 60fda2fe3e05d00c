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


def test_free_asymptotes_ci_matches_a_fit_parametrized_by_the_hc50_itself(assay_run):
    from scipy.optimize import curve_fit
    from scipy.stats import t

    noise = np.array([[1.5, -2.0, 0.8, -1.1, 2.2, -0.7, 1.0, -1.6, 0.4, -0.3],
                      [-1.2, 1.7, -0.6, 1.4, -2.1, 0.9, -1.3, 1.1, -0.2, 0.5]])
    truth = 5 + 85 / (1 + (30.0 / CONC) ** 1.2)
    run = assay_run("hemolysis-pc", plate({"A": truth + noise[0], "B": truth + noise[1]}), params=["fit_fixed={}"])

    # independent: the 4PL written with ln HC50 (where it crosses 50 %) as a parameter, so curve_fit's own
    # covariance gives SE(ln HC50) with no delta method; CI with Student's t on n - 4 degrees of freedom
    def crossing_4pl(c, bottom, top, ln_hc50, hill):
        return bottom + (top - bottom) / (1 + ((top - bottom) / (50 - bottom) - 1) * (c / np.exp(ln_hc50)) ** hill)

    x, y = np.concatenate([CONC, CONC]), np.concatenate([truth + noise[0], truth + noise[1]])
    p, cov = curve_fit(crossing_4pl, x, y, p0=[0, 100, np.log(30), 1.0], maxfev=20000)
    half = t.ppf(0.975, x.size - 4) * math.sqrt(cov[2, 2])
    assert result(run, "S1", "hc50").value == pytest.approx(math.exp(p[2]), rel=1e-5)
    assert result(run, "S1", "hc50_ci_lower").value == pytest.approx(math.exp(p[2] - half), rel=1e-4)
    assert result(run, "S1", "hc50_ci_upper").value == pytest.approx(math.exp(p[2] + half), rel=1e-4)


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


def test_the_plot_marks_the_hc50_with_its_ci_and_labels_a_censored_one(tmp_path):
    import re
    import sqlite3

    weak = logistic(CONC, 5000.0, 1.0)
    path = write_plate(plate({"A": logistic(CONC, 37.0, 1.4), "B": logistic(CONC, 37.0, 1.4) * 1.02,
                              "C": weak, "D": weak}), tmp_path / "plate.csv")
    code, out, err = execute_json(path, tmp_path)
    assert code == 0, err
    got = {(r["sample"], r["metric"]): r for r in out["results"]}
    hc50, lower, upper = (got[("S1", m)]["value"] for m in ("hc50", "hc50_ci_lower", "hc50_ci_upper"))
    html = open(out["certificate"]["html"], encoding="utf-8").read()
    s1, s2 = re.findall(r"<svg .*?</svg>", html, re.S)[:2]

    def at(c):  # log axis 1-1000 (ticks 10^0 ... 10^3) over the plot width 520 - 62 - 16: 62 + 442 log10(c) / 3
        return 62 + 442 * np.log10(c) / 3

    diamond = re.search(r'<path d="M([\d.]+),[\d.]+ L[\d.]+,([\d.]+) L[^"]* Z" fill="#136f2d"', s1)
    assert float(diamond.group(1)) == pytest.approx(at(hc50), abs=0.06)
    bar = re.search(r'<path d="M([\d.]+),([\d.]+) H([\d.]+) ', s1)
    assert (float(bar.group(1)), float(bar.group(3))) == pytest.approx((at(lower), at(upper)), abs=0.06)
    assert bar.group(2) == diamond.group(2)                 # the CI bar lies at the 50 % level, through the point
    assert f">HC50 {hc50:.4g} µg/mL (95 % CI {lower:.4g}–{upper:.4g})</text>" in s1
    assert ">HC50 &gt; 512 µg/mL (highest tested)</text>" in s2 and "stroke-dasharray" not in s2
    with sqlite3.connect(tmp_path / "run.db") as db:          # stored with the fit, so a reissue draws the same
        marks = [json.loads(p).get("mark") for (p,) in db.execute("select plot from fits order by rowid")]
    assert marks[0]["x"] == pytest.approx(hc50) and marks[0]["y"] == 50.0
    assert marks[1] == {"label": "HC50 > 512 µg/mL (highest tested)"}


def test_a_failed_fit_speaks_of_doses_and_calibration_keeps_its_standards(assay_run):
    from assayrunner import curves, doseresponse as dr

    step = [100.0] * 5 + [0.0] * 5          # 100 % down to 32 µg/mL, 0 % from 16: a jump between two doses
    run = assay_run("hemolysis-pc", plate({"A": step, "B": step}))
    reason = run.result.details["samples"][0]["hc50"]["reason"]
    assert "no dose lies on the curve's transition (flat data, or a step between two doses)" in reason
    assert "standard" not in reason and reason.startswith("no HC50: 4PL not converged")
    x, y = np.repeat(CONC, 2), np.repeat(step, 2)   # the same points as a calibration: its wording is unchanged
    assert "no standard lies on the curve's transition" in curves.fit(x, y, "4pl", fixed={"bottom": 0, "top": 100}).message
    _, why = dr.fit_curve(np.array([1.0, 2.0]), np.array([5.0, 9.0]), {})
    assert why == "no IC50: no 4PL fit: 4pl fit needs at least 5 points for 4 free parameters, got 2: add doses or fix parameters"
    with pytest.raises(ValueError, match="add standards or fix parameters"):
        curves.fit([1.0, 2.0], [5.0, 9.0], "4pl")


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
    code, out, err = execute_json(path, tmp_path)
    assert code == 1, err
    saturated = next(c for c in out["checks"] if c["id"] == "pc-not-saturated")
    assert not saturated["passed"] and saturated["value"] == pytest.approx(3.5 - 3.625)
    assert "positive control saturated: dilute or read at a lower-sensitivity wavelength" in saturated["detail"]
    assert out["valid"] is False


def execute_json(path, tmp_path, *args):
    """`assayrun execute hemolysis-pc` on one file as a user runs it: (exit code, JSON report, stderr)."""
    done = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis-pc", str(path), "--json",
                           "--db", str(tmp_path / "run.db"), "--out", str(tmp_path / "certs"), *args],
                          capture_output=True, text=True, cwd=tmp_path)
    return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr


def test_pc_with_some_wells_over_range_fails_unless_the_protocol_allows_it(tmp_path):
    path = write_plate(plate(dict.fromkeys("AB", logistic(CONC, 37.0, 1.4))), tmp_path / "plate.csv")
    lines = path.read_text(encoding="utf-8").splitlines()   # PC wells E1 and F1 read over the reader's range
    lines = [f"{line[0]},OVRFLW,{line.split(',', 2)[2]}" if line[:2] in ("E,", "F,") else line for line in lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = execute_json(path, tmp_path)
    assert code == 1, err
    checks = {c["id"]: c for c in out["checks"]}
    assert checks["pc-not-saturated"]["passed"]            # the mean of the 2 readable wells is in range
    wells = checks["pc-wells-not-saturated"]
    assert not wells["passed"] and wells["value"] == 2     # 2 saturated wells, 0 allowed
    assert "positive control saturated in 2 of 4 wells: dilute or read at a lower-sensitivity wavelength" \
        in wells["detail"]
    assert out["valid"] is False and out["run_id"]          # stored, invalid
    import sqlite3

    with sqlite3.connect(tmp_path / "run.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1
    code, out, err = execute_json(path, tmp_path, "--param", "pc_max_saturated_wells=2")
    assert code == 0, err
    assert next(c for c in out["checks"] if c["id"] == "pc-wells-not-saturated")["value"] == 0
    assert out["valid"] is True


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


# --- a series across plates: one concentration per plate, NC and PC on every plate -------------------------

SERIES_CONC = 128 / 2.0 ** np.arange(8)


def series_plate(k: int, percent: float, nc: float, pc: float, path):
    """Plate k of a series (protocol hemolysis-percent-pc-plates): NC A1:D1, PC E1:H1, blank A12:D12, sample S1
    in A2:D2 at the given % of this plate's own controls."""
    wells = {f"{r}12": BLANK for r in "ABCD"} | {f"{r}1": nc for r in "ABCD"} | {f"{r}1": pc for r in "EFGH"}
    wells |= {f"{r}2": nc + percent / 100 * (pc - nc) + d for r, d in zip("ABCD", (0.004, -0.004, 0.002, -0.002))}
    return write_plate(plate_from_wells(wells, wavelength_nm=540, name=f"plate{k}"), path)


def run_series(cli, workdir, sheet_rows, *params):
    (workdir / "series.csv").write_text("file,concentration,unit,replicate,run\n" + "\n".join(sheet_rows) + "\n",
                                        encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "--protocol", "hemolysis-percent-pc-plates", "--sheet", "series.csv",
              "-j", "1", "--json", *sum((["--param", p] for p in params), []))
    assert out.exit_code in (0, 1), out.output
    run_id = json.loads(out.stdout)["runs"][0]["run_id"]
    return cli.json("runs", "show", run_id)[1]


@pytest.mark.parametrize("controls", ["per-plate", "pooled"])
def test_series_across_8_plates_with_controls_on_each(cli, workdir, controls):
    truth = logistic(SERIES_CONC, 20.0, 1.5)
    nc = 0.10 + 0.01 * np.arange(8)   # every plate's controls differ, so per plate and pooled differ
    pc = 1.40 + 0.02 * np.arange(8)
    for k in range(8):
        series_plate(k + 1, truth[k], nc[k], pc[k], workdir / f"plate{k + 1}.csv")
    run = run_series(cli, workdir, [f"plate{k + 1}.csv,{c:g},µM,,A" for k, c in enumerate(SERIES_CONC)],
                     f"plate_controls={controls}")
    # independent: A - blank against this plate's controls (per plate) or the mean of all plates' (pooled)
    a = nc + truth / 100 * (pc - nc) - BLANK                      # mean sample A - blank per plate
    ncs, pcs = (nc - BLANK, pc - BLANK) if controls == "per-plate" else (np.mean(nc) - BLANK, np.mean(pc) - BLANK)
    expected = 100 * (a - ncs) / (pcs - ncs)
    got = {r["concentration"]: r["value"] for r in run["results"] if r["metric"] == "percent_hemolysis"}
    assert [got[c] for c in SERIES_CONC] == pytest.approx(expected, abs=1e-9)
    hc50 = next(r for r in run["results"] if r["metric"] == "hc50")
    if controls == "per-plate":
        assert hc50["value"] == pytest.approx(20.0, rel=2e-3) and hc50["unit"] == "µM"
    plates = {w["plate"] for w in run_wells(workdir)}
    assert plates == set(range(1, 9))             # the stored run keeps every plate's wells
    assert len(run["details"]["plates"]) == 8


def test_series_judges_the_worst_plates_saturated_pc_wells_and_names_it(cli, workdir):
    truth = logistic(SERIES_CONC, 20.0, 1.5)
    for k in range(4):
        series_plate(k + 1, truth[k], 0.1, 3.6 if k == 2 else 1.4, workdir / f"plate{k + 1}.csv")
    run = run_series(cli, workdir, [f"plate{k + 1}.csv,{c:g},µM,,A" for k, c in enumerate(SERIES_CONC[:4])])
    wells = next(c for c in run["checks"] if c["check_id"] == "pc-wells-not-saturated")
    assert not wells["passed"] and wells["value"] == 4
    assert wells["detail"].startswith("positive control saturated in 4 of 4 wells") and "(plate plate3)" in wells["detail"]


def test_series_certificate_names_every_plate_its_file_and_concentration_unit(cli, workdir):
    truth = logistic(SERIES_CONC, 20.0, 1.5)
    for k in range(8):
        series_plate(k + 1, truth[k], 0.1, 1.4, workdir / f"plate{k + 1}.csv")
    run_series(cli, workdir, [f"plate{k + 1}.csv,{c:g},µM,,A" for k, c in enumerate(SERIES_CONC)])
    html = next((workdir / "certificates").glob("*.html")).read_text(encoding="utf-8")
    assert "the first of 8 plates" in html                  # the header's plate is not the whole run
    for k, c in enumerate(SERIES_CONC, start=1):            # each plate map says which plate and file it is
        assert f"Plate map — plate {k} (plate{k}, file plate{k}.csv): 540 nm" in html
    assert "16.00 µM</td>" in html and "Blank (OD)" in html  # the plates table gives the concentration's unit
    assert "its plate's blank mean" in html                 # not plate 1's blank as if it were every plate's
    next((workdir / "certificates").glob("*.html")).unlink()
    run_series(cli, workdir, ["plate1.csv,,,,B", "plate2.csv,,,,B"])   # no concentrations: dilution steps
    html = next((workdir / "certificates").glob("*.html")).read_text(encoding="utf-8")
    assert "step 2 of each sample's dose series" in html and "the first of 2 plates" in html


def run_wells(workdir):
    import sqlite3

    with sqlite3.connect(workdir / "assayrun.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select plate, well, value from wells")]


def test_replicate_plate_sets_are_reported_each_and_combined(cli, workdir):
    rows = []
    for s, hc50 in ((1, 18.0), (2, 24.0)):
        truth = logistic(SERIES_CONC, hc50, 1.5)
        for k in range(8):
            name = f"set{s}-{k + 1}.csv"
            series_plate(k + 1, truth[k], 0.1, 1.4, workdir / name)
            rows.append(f"{name},,,{s},A")   # no concentration: plate k of each set is dilution step k
    run = run_series(cli, workdir, rows, "dose_series={unit = 'µM', top = 128.0, dilution_factor = 2.0}")
    hc50 = {r["sample"]: r["value"] for r in run["results"] if r["metric"] == "hc50"}
    assert hc50["S1 series 1"] == pytest.approx(18.0, rel=5e-3)
    assert hc50["S1 series 2"] == pytest.approx(24.0, rel=5e-3)
    assert 18.0 < hc50["S1"] < 24.0
    top = next(r for r in run["results"] if r["metric"] == "percent_hemolysis" and r["concentration"] == 128)
    assert top["value"] == pytest.approx(np.mean([logistic(128.0, 18.0, 1.5), logistic(128.0, 24.0, 1.5)]), abs=1e-9)


def test_stacked_blocks_of_one_file_are_the_plates_of_a_series(cli, workdir):
    truth = logistic(SERIES_CONC, 20.0, 1.5)
    blocks = [series_plate(k + 1, truth[k], 0.1, 1.4, workdir / f"p{k}.csv").read_text(encoding="utf-8")
              for k in range(8)]
    (workdir / "stacked.csv").write_text("\n".join(b.split("\n", 1)[1] for b in blocks), encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "stacked.csv", "--protocol", "hemolysis-percent-pc-plates", "--json",
              "--param", "dose_series={unit = 'µM', top = 128.0, dilution_factor = 2.0}")
    assert out.exit_code == 0, out.output
    hc50 = next(r for r in json.loads(out.stdout)["results"] if r["metric"] == "hc50")
    assert hc50["value"] == pytest.approx(20.0, rel=2e-3)
    assert {w["plate"] for w in run_wells(workdir)} == set(range(1, 9))


def test_run_sheet_concentrations_must_match_the_plates(cli, workdir):
    series_plate(1, 40.0, 0.1, 1.4, workdir / "plate1.csv")
    (workdir / "series.csv").write_text("file,concentration,run\nplate1.csv,64;32,A\n", encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "--protocol", "hemolysis-percent-pc-plates", "--sheet", "series.csv",
              "-j", "1")
    assert out.exit_code == 2 and "gives 2 concentration(s) for this file but it holds 1 plate(s)" in out.output
    (workdir / "series.csv").write_text("file,concentration,run\nplate1.csv,-4,A\n", encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "--protocol", "hemolysis-percent-pc-plates", "--sheet", "series.csv")
    assert out.exit_code == 2 and "line 2" in out.output and "not a positive number" in out.output
    (workdir / "series.csv").write_text("file,concentration\nplate1.csv,64\n", encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "--sheet", "series.csv")  # the layout-series protocol
    assert out.exit_code == 2 and "reads its series from the layout" in out.output


def hand_made_blocks(titles: list[str], values: list[float], gap: bool = True) -> list[list]:
    """Rows of a hand-made sheet: per block an optional title line, a header 1..3, rows A and B (and an empty
    line after each block when gap)."""
    rows = []
    for title, v in zip(titles, values):
        rows += ([[title]] if title else []) + [["", 1, 2, 3], ["A", v, v, v], ["B", v, v, v]] + ([[]] if gap else [])
    return rows


@pytest.mark.parametrize("gap", [True, False])   # without a gap the next block's header follows row B at once
@pytest.mark.parametrize("titles", [["Plate 1", "Plate 2", "Plate 3"], ["", "", ""], ["540 nm"] * 3])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_stacked_blocks_read_as_one_plate_per_block_in_file_order(cli, workdir, titles, kind, gap):
    rows = hand_made_blocks(titles, [0.1, 0.2, 0.3], gap)
    path = workdir / f"blocks.{kind}"
    if kind == "csv":
        path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n", encoding="utf-8")
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for r in rows:
            book.active.append(r)
        book.save(path)
    out, read = cli.json("read", path)
    assert out.exit_code == 0, out.output
    assert [p["reads"][0]["values"]["A1"] for p in read["plates"]] == [0.1, 0.2, 0.3]
    assert all(len(p["reads"]) == 1 for p in read["plates"])


def test_a_hand_made_series_file_without_wavelengths_runs(cli, workdir):
    truth = logistic(SERIES_CONC, 20.0, 1.5)
    lines = []
    for k, pct in enumerate(truth):
        lines += [f"Plate {k + 1}", "," + ",".join(map(str, range(1, 13)))]
        for r in "ABCDEFGH":
            control = NC if r in "ABCD" else PC
            sample = f"{control + pct / 100 * (PC - NC):.6f}" if r in "ABCD" else ""
            blank = BLANK if r in "ABCD" else ""
            lines.append(f"{r},{control},{sample}," + "," * 9 + f"{blank}")
        lines.append("")
    (workdir / "handmade.csv").write_text("\n".join(lines), encoding="utf-8")
    out = cli("execute", "hemolysis-pc", "handmade.csv", "--protocol", "hemolysis-percent-pc-plates", "--json",
              "--param", "dose_series={unit = 'µM', top = 128.0, dilution_factor = 2.0}")
    assert out.exit_code == 0, out.output
    got = {r["concentration"]: r["value"] for r in json.loads(out.stdout)["results"]
           if r["metric"] == "percent_hemolysis"}
    assert [got[c] for c in SERIES_CONC] == pytest.approx(truth, abs=1e-3)   # 6 decimals written


def test_no_pc_nc_separation_is_reported_not_divided_by(assay_run):
    series = logistic(CONC, 37.0, 1.4)
    run = assay_run("hemolysis-pc", plate({"A": series, "B": series}, nc=(0.5,) * 4, pc=(0.5,) * 4))
    assert not run.valid and not check(run, "pc-nc-separation").passed
    top = result(run, "S1 512 µg/mL", "percent_hemolysis")
    assert math.isnan(top.value) and "no-pc-nc-separation" in top.flags and "not-computable" in top.flags
    assert result(run, "S1", "hc50").flags == ["not-estimated"]


def test_the_readme_examples_run_as_a_user_runs_them(tmp_path):
    from conftest import REPO

    examples = REPO / "examples" / "hemolysis-pc"

    def execute(*args):
        done = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis-pc", *map(str, args),
                               "--json", "--no-certificate", "--db", str(tmp_path / "run.db")],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0 and not done.stderr, done.stderr
        return json.loads(done.stdout)

    plate = execute(examples / "plate.csv", "--samples", examples / "samples.csv")
    hc50 = {r["sample"]: r for r in plate["results"] if r["metric"] == "hc50"}
    # the plate was generated from 4PLs with HC50 2.5, 80 and 260 µg/mL (and no hemolysis for PEG-Au), noise SD 1.2 %
    assert hc50["Melittin"]["value"] == pytest.approx(2.5, rel=0.05)
    assert hc50["LL-37 analogue"]["value"] == pytest.approx(80.0, rel=0.05)
    assert hc50["PAMAM-G5 dendrimer (amine)"]["value"] == pytest.approx(260.0, rel=0.08)
    assert (hc50["PEG-Au 30 nm"]["qualifier"], hc50["PEG-Au 30 nm"]["value"]) == (">", 512.0)
    series = execute("--protocol", "hemolysis-percent-pc-plates", "--sheet", examples / "series" / "series.csv")
    assert series["runs"][0]["status"] == "valid" and len(series["runs"][0]["files"]) == 8


def test_a_series_down_a_column_with_explicit_concentrations_from_the_samples_file(assay_run, tmp_path):
    from conftest import REPO

    text = (REPO / "protocols" / "hemolysis-percent-pc.toml").read_text(encoding="utf-8")
    head, rest = text.split("  # Four samples", 1)
    tail = rest[rest.index("]\n\n[parameters]"):]
    column = "\n".join(f'  {{ wells = "{r}2:{r}3", role = "sample", name = "S1", nominal = {k + 1} }},'
                       for k, r in enumerate("ABCDEFGH"))
    protocol = tmp_path / "column.toml"
    protocol.write_text(head + column + "\n" + tail, encoding="utf-8")
    conc = [100, 50, 30, 12.5, 6, 3, 1.5, 0.8]   # explicit, not a dilution series
    samples = tmp_path / "samples.csv"
    samples.write_text("slot,sample,unit,concentrations\nS1,AMP-9,µM," + ";".join(map(str, conc)) + "\n",
                       encoding="utf-8")
    truth = logistic(np.array(conc, dtype=float), 9.0, 1.3)
    wells = {f"{r}{c}": BLANK + (NC - BLANK) + pct / 100 * (PC - NC) for r, pct in zip("ABCDEFGH", truth)
             for c in (2, 3)}
    run = assay_run("hemolysis-pc", plate({}, **wells), samples=samples, protocol=protocol)
    got = {r.concentration: r.value for r in run.result.results if r.metric == "percent_hemolysis"}
    assert [got[c] for c in conc] == pytest.approx(truth, abs=1e-9)
    assert result(run, "AMP-9", "hc50").value == pytest.approx(9.0, rel=1e-6)
    assert result(run, "AMP-9", "hc50").unit == "µM"
