"""Cytotoxicity (NCL GTA-1 / GTA-2, MTT and LDH) end to end, checked against calculations done here with numpy/scipy."""

import csv
import sqlite3

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.stats import dunnett
from scipy.stats import t as student

from conftest import DATA, REPO

MTT_PLATE = DATA / "cytotoxicity" / "mtt_llc-pk1.csv"     # NCL GTA-1, LLC-PK1
LDH_PLATE = DATA / "cytotoxicity" / "ldh_hep-g2.csv"      # NCL GTA-2, Hep G2
SAMPLES = DATA / "cytotoxicity" / "samples.csv"
STEPS = 1000 / 3.0 ** np.arange(8)                         # protocol default: top 1000 µg/mL, 3-fold, 8 steps
ROWS = "ABCDEFGH"


def read_grids(path):
    """{wavelength: {well: value}} read with the csv module (not our reader): a 'NNN nm' line above each grid."""
    grids, current = {}, None
    for row in csv.reader(open(path, encoding="utf-8")):
        if len(row) == 1 and row[0].endswith(" nm"):
            current = grids.setdefault(int(row[0].split()[0]), {})
        elif current is not None and row and row[0] in ROWS:
            current.update({f"{row[0]}{c}": float(v) for c, v in enumerate(row[1:], start=1) if v})
    return grids


def well_range(rows, columns):
    return [f"{r}{c}" for r in rows for c in columns]


def fit_ic50(x, y, rising=False, level=0.95):
    """4PL with bottom 0 / top 100 by scipy curve_fit on (ln IC50, hill); IC50 and its CI on the log scale."""
    def model(c, ln_ic50, hill):
        falling = 100 / (1 + (c / np.exp(ln_ic50)) ** hill)
        return 100 - falling if rising else falling

    (ln_ic50, _), cov = curve_fit(model, x, y, p0=[np.log(np.median(x)), 1.0])
    half = student.ppf((1 + level) / 2, len(x) - 2) * np.sqrt(cov[0, 0])
    return np.exp(ln_ic50), np.exp(ln_ic50 - half), np.exp(ln_ic50 + half)


def hand_mtt(path, s1_conc=STEPS):
    """GTA-1 MTT as the issue states it: A = A570 - A690; 100 x (A - A cell-free) / (untreated - blank)."""
    g = read_grids(path)
    a = {w: g[570][w] - g[690][w] for w in g[570]}
    mean = lambda wells: np.mean([a[w] for w in wells])
    cv = lambda wells: 100 * np.std([a[w] for w in wells], ddof=1) / mean(wells)
    blank, untreated = mean(["A9", "A10", "A11"]), mean(["B9", "B10", "B11"])
    vehicle = ["C9", "C10", "C11"]
    out = {"blank": blank, "untreated": untreated, "vehicle": 100 * (mean(vehicle) - blank) / (untreated - blank),
           "cv": {"untreated": cv(["B9", "B10", "B11"]), "vehicle": cv(vehicle)}}
    out["apap"] = {conc: 100 * (mean(well_range(row, (9, 10, 11))) - blank) / (untreated - blank)
                   for conc, row in zip((40, 20, 10, 5, 2.5), "DEFGH")}
    for slot, rows, free, conc in (("S1", "ABC", "D", s1_conc), ("S2", "EFG", "H", STEPS)):
        wells = {col: [100 * (a[f"{r}{col}"] - a[f"{free}{col}"]) / (untreated - blank) for r in rows]
                 for col in range(1, 9)}
        x = np.repeat(conc, 3)
        y = np.concatenate([wells[col] for col in range(1, 9)])
        means = np.array([np.mean(wells[col]) for col in range(1, 9)])
        interference = [100 * (a[f"{free}{col}"] - blank) / (untreated - blank) for col in range(1, 9)]
        control = [100 * (a[w] - blank) / (untreated - blank) for w in ("B9", "B10", "B11")]
        p = dunnett(*[wells[col] for col in range(1, 9)], control=control, rng=1).pvalue
        effect = (p < 0.05) & (means < 100)  # Dunnett vs untreated, toxic direction
        fitted = np.repeat(np.array(interference) <= 20, 3)  # interference-flagged steps are left out of the fit
        out[slot] = {"means": means, "conc": conc, "x": x[fitted], "y": y[fitted], "x_all": x, "y_all": y,
                     "interference": interference,
                     "p": p, "lowest": conc[effect].min() if effect.any() else None}
    return out


def hand_ldh(path):
    """GTA-2 LDH: A = A490 - A680; A* = A - (cell-free - blank); 100 x (A* - spontaneous) / (max - spontaneous)."""
    g = read_grids(path)
    a = {w: g[490][w] - g[680][w] for w in g[490]}
    mean = lambda wells: np.mean([a[w] for w in wells])
    blank, spontaneous, maximum = (mean(well_range(r, (9, 10, 11))) for r in "ABD")
    out = {"fold": (maximum - blank) / (spontaneous - blank),
           "apap": {c: 100 * (mean(well_range(r, (9, 10, 11))) - spontaneous) / (maximum - spontaneous)
                    for c, r in zip((40, 20, 10, 5), "EFGH")}}
    for slot, rows, free in (("S1", "ABC", "D"), ("S2", "EFG", "H")):
        wells = {col: [100 * (a[f"{r}{col}"] - (a[f"{free}{col}"] - blank) - spontaneous) / (maximum - spontaneous)
                       for r in rows] for col in range(1, 9)}
        out[slot] = {"x": np.repeat(STEPS, 3), "y": np.concatenate([wells[c] for c in range(1, 9)]),
                     "means": np.array([np.mean(wells[c]) for c in range(1, 9)])}
    return out


def results(data, metric=None):
    return {r["sample"]: r for r in data["results"] if metric is None or r["metric"] == metric}


def label(name, conc, unit="µg/mL"):
    return f"{name} {conc:.4g} {unit}"


@pytest.fixture
def mtt(cli):
    result, data = cli.json("execute", "cytotoxicity", MTT_PLATE, "--protocol", "ncl-gta-1-mtt")
    assert result.exit_code == 0, result.output
    return data


def test_mtt_llc_pk1_matches_hand_calculation(mtt):
    hand = hand_mtt(MTT_PLATE)
    viability = results(mtt, "percent_viability")
    for slot in ("S1", "S2"):
        for conc, expected in zip(STEPS, hand[slot]["means"]):
            assert viability[label(slot, conc)]["value"] == pytest.approx(expected, rel=1e-12)
    for conc, expected in hand["apap"].items():
        assert viability[label("APAP", conc, "mM")]["value"] == pytest.approx(expected, rel=1e-12)
    assert viability["vehicle"]["value"] == pytest.approx(hand["vehicle"], rel=1e-12)
    checks = {c["id"]: c for c in mtt["checks"]}
    assert all(c["passed"] for c in mtt["checks"]) and mtt["valid"]
    assert checks["control-cv"]["value"] == 2 and max(hand["cv"].values()) < 20
    assert checks["untreated-range"]["value"] == pytest.approx(hand["untreated"], rel=1e-12)
    assert checks["vehicle"]["value"] == pytest.approx(hand["vehicle"], rel=1e-12)
    assert checks["positive-control"]["value"] == pytest.approx(hand["apap"][40], rel=1e-12)
    ic50, lower, upper = fit_ic50(hand["S1"]["x"], hand["S1"]["y"])
    s1 = {r["metric"]: r for r in mtt["results"] if r["sample"] == "S1"}
    assert s1["ic50"]["value"] == pytest.approx(ic50, rel=1e-5)
    assert s1["ic50"]["flags"] == ["fit without 1000 µg/mL (interference)"]  # its cell-free wells: ~24 % of untreated
    assert s1["ic50_ci_lower"]["value"] == pytest.approx(lower, rel=1e-4)
    assert s1["ic50_ci_upper"]["value"] == pytest.approx(upper, rel=1e-4)
    assert s1["ic50"]["interpretation"].startswith("IC50 ") and "95 % CI" in s1["ic50"]["interpretation"]
    assert s1["lowest_effect_concentration"]["value"] == pytest.approx(hand["S1"]["lowest"], rel=1e-12)


def test_mtt_flags_interference_and_highest_tested(mtt):
    hand = hand_mtt(MTT_PLATE)
    viability = results(mtt, "percent_viability")
    for slot in ("S1", "S2"):
        for conc, interference in zip(STEPS, hand[slot]["interference"]):
            assert ("interference" in viability[label(slot, conc)]["flags"]) == (interference > 20)
    assert "interference" in viability[label("S1", 1000)]["flags"]  # the NP absorbs at 570 nm: ~24 % of untreated
    s2 = {r["metric"]: r for r in mtt["results"] if r["sample"] == "S2"}
    assert hand["S2"]["means"].min() > 50                           # never crosses 50 %
    assert s2["ic50"]["value"] == 1000 and s2["ic50"]["qualifier"] == ">"
    assert s2["ic50"]["flags"] == ["above-highest-tested"]
    assert s2["ic50"]["interpretation"] == "IC50 > 1000 µg/mL (highest tested)"
    assert "ic50_ci_lower" not in s2
    lowest = s2["lowest_effect_concentration"]
    assert hand["S2"]["lowest"] is None and (lowest["value"], lowest["qualifier"]) == (1000, ">")
    p_values = {r["sample"]: r["value"] for r in mtt["results"] if r["metric"] == "p_value"}
    for slot in ("S1", "S2"):
        for conc, expected in zip(STEPS, hand[slot]["p"]):
            assert p_values[label(slot, conc)] == pytest.approx(expected, abs=1e-3)  # scipy QMC error


def test_protocol_switch_keeps_interference_in_the_fit(cli):
    result, data = cli.json("execute", "cytotoxicity", MTT_PLATE, "--protocol", "ncl-gta-1-mtt",
                            "--param", "fit_interference=true")
    hand = hand_mtt(MTT_PLATE)
    ic50, _, _ = fit_ic50(hand["S1"]["x_all"], hand["S1"]["y_all"])
    s1 = {r["metric"]: r for r in data["results"] if r["sample"] == "S1"}
    assert s1["ic50"]["value"] == pytest.approx(ic50, rel=1e-5) and s1["ic50"]["flags"] == []
    assert "kept in" in open(data["certificate"]["html"], encoding="utf-8").read()


def test_ldh_hep_g2_matches_hand_calculation(cli):
    result, data = cli.json("execute", "cytotoxicity", LDH_PLATE, "--protocol", "ncl-gta-2-ldh")
    assert result.exit_code == 0, result.output
    hand = hand_ldh(LDH_PLATE)
    cytotoxicity = results(data, "percent_cytotoxicity")
    for slot in ("S1", "S2"):
        for conc, expected in zip(STEPS, hand[slot]["means"]):
            assert cytotoxicity[label(slot, conc)]["value"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    for conc, expected in hand["apap"].items():
        assert cytotoxicity[label("APAP", conc, "mM")]["value"] == pytest.approx(expected, rel=1e-12)
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["max-release"]["value"] == pytest.approx(hand["fold"], rel=1e-12)
    assert checks["positive-control"]["value"] == pytest.approx(hand["apap"][40], rel=1e-12)
    assert checks["control-cv"]["value"] == 3
    ic50, lower, upper = fit_ic50(hand["S1"]["x"], hand["S1"]["y"], rising=True)
    s1 = {r["metric"]: r for r in data["results"] if r["sample"] == "S1"}
    assert s1["ic50"]["value"] == pytest.approx(ic50, rel=1e-5)
    assert (s1["ic50_ci_lower"]["value"], s1["ic50_ci_upper"]["value"]) == pytest.approx((lower, upper), rel=1e-4)
    # S2 rises to ~65 % at 37 µg/mL and falls back to ~5 % at 1000 µg/mL (LDH adsorbed by the particles)
    s2 = {r["metric"]: r for r in data["results"] if r["sample"] == "S2"}
    assert s2["ic50"]["value"] is None and s2["ic50"]["flags"] == ["not-estimated"]
    assert s2["ic50"]["interpretation"].startswith("no IC50, non-monotonic")


def write_plate(path, s1_viability, untreated=1.0, blank=0.05, apap=(8, 25, 55, 85, 97)):
    """An MTT plate (570 nm only: the 690 nm reference is optional) with S1 = the given viabilities per step,
    written with 4 decimals like a reader export."""
    a = np.full((8, 12), blank)
    net = untreated - blank
    for col, v in enumerate(s1_viability):
        a[0:3, col] = blank + v / 100 * net
    a[4:7, :8] = untreated                                       # S2: no effect
    a[1, 8:11], a[2, 8:11] = untreated, untreated * 0.99        # untreated, vehicle
    for row, v in zip(range(3, 8), apap):
        a[row, 8:11] = blank + v / 100 * net
    lines = ["570 nm", "," + ",".join(map(str, range(1, 13)))]
    lines += [ROWS[r] + "," + ",".join(f"{v:.4f}" for v in a[r]) for r in range(8)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("true_ic50, hill", [(42.0, 1.3), (7.5, 0.8)])
def test_ic50_of_a_known_curve_is_recovered(cli, workdir, true_ic50, hill):
    plate = workdir / "known.csv"
    write_plate(plate, 100 / (1 + (STEPS / true_ic50) ** hill))
    result, data = cli.json("execute", "cytotoxicity", plate, "--protocol", "ncl-gta-2-mtt")
    assert result.exit_code == 0, result.output
    s1 = {r["metric"]: r for r in data["results"] if r["sample"] == "S1"}
    assert s1["ic50"]["value"] == pytest.approx(true_ic50, rel=2e-4)          # 0.0001 AU rounding only
    assert s1["ic50_ci_lower"]["value"] <= true_ic50 <= s1["ic50_ci_upper"]["value"]
    assert s1["ic50_ci_upper"]["value"] / s1["ic50_ci_lower"]["value"] < 1.001


def test_ic50_of_a_noisy_known_curve_lies_in_its_interval(cli, workdir):
    rng = np.random.default_rng(3)
    plate = workdir / "noisy.csv"
    write_plate(plate, 100 / (1 + (STEPS / 42.0) ** 1.3) + rng.normal(0, 2, 8))
    result, data = cli.json("execute", "cytotoxicity", plate, "--protocol", "ncl-gta-1-mtt")
    s1 = {r["metric"]: r["value"] for r in data["results"] if r["sample"] == "S1"}
    assert s1["ic50_ci_lower"] < 42.0 < s1["ic50_ci_upper"]
    assert s1["ic50"] == pytest.approx(42.0, rel=0.1)


def test_ic50_below_lowest_tested(cli, workdir):
    plate = workdir / "toxic.csv"
    write_plate(plate, 100 / (1 + (STEPS / 0.05) ** 1.5))
    result, data = cli.json("execute", "cytotoxicity", plate, "--protocol", "ncl-gta-1-mtt")
    ic50 = results(data, "ic50")["S1"]
    assert ic50["value"] == pytest.approx(STEPS.min(), rel=1e-12) and ic50["qualifier"] == "<"
    assert ic50["flags"] == ["below-lowest-tested"]
    assert ic50["interpretation"] == "IC50 < 0.4572 µg/mL (lowest tested)"


def test_free_asymptotes_give_the_50_percent_crossing(cli, workdir):
    protocol = workdir / "free.toml"
    text = (REPO / "protocols" / "ncl-gta-1-mtt.toml").read_text()
    protocol.write_text(text.replace("fit_fixed = { bottom = 0.0, top = 100.0 }", "fit_fixed = {}"))
    result, data = cli.json("execute", "cytotoxicity", MTT_PLATE, "--protocol", protocol)
    assert result.exit_code == 0, result.output
    hand = hand_mtt(MTT_PLATE)
    x, y = hand["S1"]["x"], hand["S1"]["y"]

    def model(c, bottom, top, ln_ec50, hill):
        return bottom + (top - bottom) / (1 + (c / np.exp(ln_ec50)) ** hill)

    def ln_crossing(p):
        bottom, top, ln_ec50, hill = p
        return ln_ec50 + np.log((top - bottom) / (50 - bottom) - 1) / hill

    p, cov = curve_fit(model, x, y, p0=[0, 100, np.log(60), 1])
    gradient = np.array([(ln_crossing(p + h) - ln_crossing(p - h)) / 2e-6 for h in np.eye(4) * 1e-6])
    half = student.ppf(0.975, len(x) - 4) * np.sqrt(gradient @ cov @ gradient)
    s1 = {r["metric"]: r["value"] for r in data["results"] if r["sample"] == "S1"}
    assert s1["ic50"] == pytest.approx(np.exp(ln_crossing(p)), rel=1e-5)
    assert s1["ic50_ci_lower"] == pytest.approx(np.exp(ln_crossing(p) - half), rel=1e-4)
    assert s1["ic50_ci_upper"] == pytest.approx(np.exp(ln_crossing(p) + half), rel=1e-4)


def test_samples_file_sets_dose_series(cli):
    result, data = cli.json("execute", "cytotoxicity", MTT_PLATE, "--protocol", "ncl-gta-1-mtt", "--samples", SAMPLES)
    assert result.exit_code == 0, result.output
    s1_conc = 500 / 2.0 ** np.arange(8)                 # samples.csv: concentration 500, dilution_factor 2
    s2_conc = [800, 400, 200, 100, 50, 25, 12.5, 6.25]  # samples.csv: explicit concentrations
    viability = results(data, "percent_viability")
    hand = hand_mtt(MTT_PLATE, s1_conc)
    for conc, expected in zip(s1_conc, hand["S1"]["means"]):
        assert viability[label("PAMAM-G5", conc)]["value"] == pytest.approx(expected, rel=1e-12)
    assert all(label("PEG-Au 30 nm", c) in viability for c in s2_conc)
    ic50 = results(data, "ic50")
    assert ic50["PAMAM-G5"]["value"] == pytest.approx(fit_ic50(hand["S1"]["x"], hand["S1"]["y"])[0], rel=1e-5)
    assert ic50["PEG-Au 30 nm"]["interpretation"] == "IC50 > 800 µg/mL (highest tested)"


@pytest.mark.parametrize("row, message", [
    ("S1,X,500,µg/mL,L1,abc,", "samples file: slot S1: 'abc' is not a number"),
    ("S1,X,500,µg/mL,L1,2,100;50", "give top and dilution_factor, or concentrations"),
    ("S1,X,,µg/mL,L1,1,", "dilution_factor: Input should be greater than 1"),
    ("S1,X,,,L1,,100;50", "slot S1 has dilution step 3 but its dose series (samples file) lists 2 concentrations"),
])
def test_bad_dose_series_is_a_user_error(cli, workdir, row, message):
    samples = workdir / "samples.csv"
    samples.write_text(f"slot,sample,concentration,unit,lot,dilution_factor,concentrations\n{row}\n")
    result = cli("execute", "cytotoxicity", MTT_PLATE, "--samples", samples)
    assert result.exit_code == 2 and message in result.stderr
    assert not (workdir / "assayrun.db").exists()


def test_apap_without_effect_invalidates_the_run(cli, workdir):
    lines = MTT_PLATE.read_text().splitlines()
    untreated = next(line for line in lines if line.startswith("B,")).split(",")[9:12]  # B9:B11 at 570 nm
    bad, at_570 = [], False
    for line in lines:   # APAP wells D9:H11 at 570 nm get the untreated cells' absorbances
        at_570 = (line == "570 nm") if line.endswith(" nm") else at_570
        cells = line.split(",")
        if at_570 and cells[0] in ("D", "E", "F", "G", "H"):
            cells[9:12] = untreated
        bad.append(",".join(cells))
    plate = workdir / "apap_no_effect.csv"
    plate.write_text("\n".join(bad) + "\n")
    result, data = cli.json("execute", "cytotoxicity", plate, "--protocol", "ncl-gta-1-mtt")
    assert result.exit_code == 1 and data["valid"] is False
    assert [c["id"] for c in data["checks"] if not c["passed"]] == ["positive-control"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select valid from runs where id = ?", [data["run_id"]]).fetchone() == (0,)


@pytest.mark.parametrize("protocol, plate, cell_line, readout", [
    ("ncl-gta-1-ldh", LDH_PLATE, "LLC-PK1", "LDH"), ("ncl-gta-2-mtt", MTT_PLATE, "Hep G2", "MTT")])
def test_certificate_shows_protocol_fields_and_dose_response(cli, protocol, plate, cell_line, readout):
    result, data = cli.json("execute", "cytotoxicity", plate, "--protocol", protocol)
    assert result.exit_code == 0, result.output
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    assert f"Cytotoxicity — {readout} in {cell_line} cells" in html and "<td>24 h</td>" in html
    assert html.count('class="plot"') == 2 and "S1 — dose-response" in html
    assert "IC50 " in html and "95 % CI" in html and "Interf. %" in html


def test_every_shipped_protocol_names_its_cell_line_and_readout(cli):
    for pid, cell_line, readout in (("ncl-gta-1-mtt", "LLC-PK1", "MTT"), ("ncl-gta-1-ldh", "LLC-PK1", "LDH"),
                                    ("ncl-gta-2-mtt", "Hep G2", "MTT"), ("ncl-gta-2-ldh", "Hep G2", "LDH")):
        _, shown = cli.json("protocols", "show", pid)
        assert shown["assay"] == "cytotoxicity"
        assert (shown["parameters"]["cell_line"], shown["parameters"]["readout"]) == (cell_line, readout)
        assert len(shown["layout"]["wells"]) == 88


def test_dose_response_rules_follow_the_direction_of_the_readout():
    from assayrunner import doseresponse as dr

    conc = np.array([1.0, 10.0, 100.0])
    # MTT (untreated 100 %): a falling viability is monotonic, a rebound of > 20 points is not
    assert dr.monotonic_problem(conc, np.array([95.0, 60.0, 10.0]), 100.0, 20, "% viability", "µg/mL") == ""
    rebound = dr.monotonic_problem(conc, np.array([95.0, 20.0, 70.0]), 100.0, 20, "% viability", "µg/mL")
    assert rebound.startswith("no IC50, non-monotonic") and "at 10 µg/mL but 70 at the higher 100 µg/mL" in rebound
    # LDH (untreated 0 %): the same numbers rising are monotonic
    assert dr.monotonic_problem(conc, np.array([10.0, 60.0, 95.0]), 0.0, 20, "% cytotoxicity", "µg/mL") == ""
    assert dr.lowest_effect(conc, np.array([95.0, 60.0, 10.0]), 100.0, 20) == 10.0
    assert dr.lowest_effect(conc, np.array([5.0, 15.0, 19.0]), 0.0, 20) is None
