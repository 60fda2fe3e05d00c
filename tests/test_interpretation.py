"""Issue 17: what a certificate says about a number follows the protocol's rules and never goes past the data.

Each rule gets a plate built here whose outcome is worked out by hand (numpy), run through the CLI as a
user would, and read back from the JSON, the database and the certificate.
"""

import csv
import json
import re
import sqlite3

import numpy as np
import pytest
from scipy.stats import multivariate_t, ttest_ind

from assayrunner import stats
from conftest import DATA, REPO, count_rows

HEMOLYSIS = DATA / "hemolysis" / "valid_plate.csv"
CAL = {"A3": .8, "A4": .8, "A5": .4, "A6": .4, "A7": .2, "A8": .2, "A9": .1, "A10": .1,
       "A11": .05, "A12": .05, "B1": .025, "B2": .025}
#: slot -> (with-blood wells, blood-free wells, in-well Hb with blood, in-well Hb blood-free), mg/mL
SLOTS = {"S9": (("E9", "E10"), ("F9", "F10"), 0.10, 0.088),    # 88 % of the signal from the blood-free wells
         "S10": (("E11", "E12"), ("F11", "F12"), 0.05, 0.06),  # negative net
         "S11": (("G1", "G2"), ("H1", "H2"), 0.90, 0.0),       # above CAL1
         "S12": (("G3", "G4"), ("H3", "H4"), 0.015, 0.0),      # below CAL6
         "S13": (("G5", "G6"), ("H5", "H6"), 0.30, 0.0),       # plainly hemolytic
         "S14": (("G7", "G8"), ("H7", "H8"), 0.70, 0.0)}       # above 100 %: impossible, no class


def grid(path):
    rows = [r for r in csv.reader(open(path, newline="")) if r and len(r[0]) == 1 and r[0] in "ABCDEFGH"]
    return {f"{r[0]}{c}": v for r in rows for c, v in enumerate(r[1:13], start=1)}


def write_grid(values, path, header=HEMOLYSIS):
    lines = [line for line in header.read_text().splitlines() if not re.match(r"^[A-H],", line)]
    lines += [row + "," + ",".join(values.get(f"{row}{c}", "") for c in range(1, 13)) for row in "ABCDEFGH"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def hemolysis_plate(workdir):
    """The valid plate with slots S9-S13 filled to the absorbance each in-well concentration gives."""
    values = grid(HEMOLYSIS)
    for wells, free, c_with, c_free in SLOTS.values():
        for group, c in ((wells, c_with), (free, c_free)):
            for w in group:
                values[w] = f"{0.04755 + 0.3768 * c:.4f}"
    return write_grid(values, workdir / "plate.csv")


def by_hand(path, tube_ul=900.0):
    """ITA-1 with the issue's rules, written out here: per slot the computed %, what is reported, the qualifier."""
    v = {w: float(x) for w, x in grid(path).items() if x and x != "OVRFLW"}
    blank = (v["A1"] + v["A2"]) / 2
    m, b = np.polyfit(list(CAL.values()), [v[w] - blank for w in CAL], 1)
    conc = {w: (a - blank - b) / m for w, a in v.items()}
    tbhd = np.mean([conc["B9"], conc["B10"]]) * 40
    factor = 100 * (tube_ul / 100) / tbhd

    def one(wells, free):
        c_with, c_free = np.mean([conc[w] for w in wells]), np.mean([conc[w] for w in free])
        net = 2 * (c_with - c_free)
        out = {"net": net, "percent": factor * net, "in_well": c_with, "free": 2 * c_free, "qualifier": None}
        if c_with > 0.8:
            out.update(qualifier=">", reported=factor * (0.8 * 2 - max(2 * c_free, 0)))
        elif c_with < 0.025:
            out.update(qualifier="<", reported=factor * 0.025 * 2)
        else:
            out["reported"] = max(out["percent"], 0.0)
        return out

    out = {name: one(w, f) for name, (w, f, *_) in SLOTS.items()}
    out["NC"] = one(("C1", "C2"), ("D1", "D2"))
    out["lloq_percent"] = factor * 0.025 * 2
    return out


def results_by(data):
    return {(r["sample"], r["metric"]): r for r in data["results"]}


def test_hemolysis_reports_only_what_the_data_allow(cli, hemolysis_plate, workdir):
    result, data = cli.json("execute", "hemolysis", hemolysis_plate)
    assert result.exit_code == 0, result.output
    hand, got = by_hand(hemolysis_plate), results_by(data)
    nc = max(hand["NC"]["percent"], 0)
    for slot in SLOTS:
        percent, adjusted = got[slot, "percent_hemolysis"], got[slot, "adjusted_percent_hemolysis"]
        assert percent["value"] == pytest.approx(hand[slot]["reported"], rel=1e-12, abs=1e-12), slot
        assert percent["qualifier"] == adjusted["qualifier"] == hand[slot]["qualifier"], slot
        assert adjusted["value"] == pytest.approx(hand[slot]["reported"] - nc, rel=1e-12, abs=1e-12), slot
    # interference: 88 % of the signal blood-free; its computed ~1.4 % above NC would read "non-hemolytic"
    assert 0 < hand["S9"]["percent"] - nc < 2 and hand["S9"]["free"] > 0.5 * 2 * hand["S9"]["in_well"]
    assert got["S9", "adjusted_percent_hemolysis"]["interpretation"] == "not interpretable (interference)"
    assert "interference" in got["S9", "percent_hemolysis"]["flags"]
    # negative net: reported 0 with its flag, the signed value kept in the record
    assert hand["S10"]["net"] < 0 and got["S10", "percent_hemolysis"]["value"] == 0.0
    assert "negative-net" in got["S10", "percent_hemolysis"]["flags"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        details = json.loads(conn.execute("select details from runs").fetchone()[0])
        stored = dict(conn.execute("select sample || '/' || metric, qualifier from results"))
    s10 = next(c for c in details["conditions"] if c["name"] == "S10")
    assert s10["net"] == pytest.approx(hand["S10"]["net"], rel=1e-12)
    assert s10["percent"] == pytest.approx(hand["S10"]["percent"], rel=1e-12) and s10["percent"] < 0
    # above CAL1: "> ULOQ, re-test diluted", no class; below CAL6: "< LLOQ" as % of this run, no class
    # (0 .. 4.4 % spans non-hemolytic and slightly hemolytic)
    assert got["S11", "adjusted_percent_hemolysis"]["interpretation"] == "> ULOQ, re-test diluted"
    assert got["S12", "adjusted_percent_hemolysis"]["interpretation"] == f"< LLOQ ({hand['lloq_percent']:.3g} %), no class"
    assert details["lloq_percent"] == pytest.approx(hand["lloq_percent"], rel=1e-12)
    assert got["S13", "adjusted_percent_hemolysis"]["interpretation"] == "hemolytic"
    assert hand["S14"]["percent"] > 100 and "above-100-percent" in got["S14", "percent_hemolysis"]["flags"]
    assert got["S14", "adjusted_percent_hemolysis"]["interpretation"].startswith("not interpretable (above")
    assert stored["S12/percent_hemolysis"] == "<" and stored["S11/percent_hemolysis"] == ">"
    assert stored["S13/percent_hemolysis"] is None
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    lloq = f"{hand['lloq_percent']:.3g}"
    assert f"&lt; {lloq}" in html and f"{lloq} % hemolysis in this run" in html
    assert "Hb blood-free" in html and f"{s10['net']:.4g}"[:6] in html     # the signed net on the certificate
    legend = html[html.index("<h2>Flags</h2>"):]
    for flag in ("interference", "negative-net", "above-uloq", "below-lloq"):
        assert f'<td class="flagtext">{flag}</td>' in legend
    assert html.count(" interference\">") == 4 + 2 * 14  # every blood-free well marked on the plate map
    _, shown = cli.json("runs", "show", str(data["run_id"]))
    assert {r["qualifier"] for r in shown["results"] if r["sample"] == "S12"} >= {"<"}


def test_below_lloq_is_classed_when_its_whole_range_lies_in_one_class(cli, hemolysis_plate):
    # with 400 µL tubes the LLOQ is ~2.0 % of this run: 0 .. LLOQ minus NC lies wholly under 2 %
    result, data = cli.json("execute", "hemolysis", hemolysis_plate, "--param", "tube_volume_ul=400")
    hand = by_hand(hemolysis_plate, tube_ul=400.0)
    nc = max(hand["NC"]["percent"], 0)
    assert hand["lloq_percent"] - nc < 2.0
    s12 = results_by(data)["S12", "adjusted_percent_hemolysis"]
    assert s12["qualifier"] == "<" and s12["interpretation"] == "non-hemolytic"


def test_a_positive_control_on_one_well_of_two_fails_its_check(cli, workdir):
    values = grid(HEMOLYSIS)
    values["C4"] = "OVRFLW"
    plate = write_grid(values, workdir / "pc.csv")
    result, data = cli.json("execute", "hemolysis", plate)
    assert result.exit_code == 1 and data["valid"] is False
    check = next(c for c in data["checks"] if c["id"] == "positive-control")
    assert check["passed"] is False and check["value"] is None
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        detail = conn.execute("select detail from checks where check_id = 'positive-control'").fetchone()[0]
    assert "PC judged on 1 of 2 wells (C4 saturated)" in detail and "control_min_wells" in detail
    assert "PC judged on 1 of 2 wells" in open(data["certificate"]["html"], encoding="utf-8").read()
    result, data = cli.json("execute", "hemolysis", plate, "--param", "control_min_wells=1")  # the protocol allows it
    check = next(c for c in data["checks"] if c["id"] == "positive-control")
    assert result.exit_code == 0 and check["passed"] is True


def test_a_sample_with_every_with_blood_well_saturated_is_above_uloq(cli, workdir):
    values = grid(HEMOLYSIS)
    values["C5"] = values["C6"] = "OVRFLW"  # S1 with blood
    result, data = cli.json("execute", "hemolysis", write_grid(values, workdir / "sat.csv"))
    got = results_by(data)
    s1 = got["S1", "adjusted_percent_hemolysis"]
    assert (s1["qualifier"], s1["interpretation"]) == (">", "> ULOQ, re-test diluted")
    assert "saturated well C5" in s1["flags"] and "above-uloq" in s1["flags"]


# --- coagulation ---------------------------------------------------------------------------------------------

PLATE_LOT = ("--param", f"@{DATA / 'coagulation' / 'lot-ncl-ita-12-plate.toml'}")


def logistic(times, t50):
    return 0.08 + 0.6 / (1 + np.exp(-(times - t50) / (0.12 * t50)))


def kinetic_plate(path, t50):
    """A plate read every 30 s from 0 to 600 s: test -> half-maximal time per layout column (NC, AC, VEH, S1)."""
    times = np.arange(0.0, 601.0, 30.0)
    rows = {"PT": "AB", "APTT": "CD", "TT": "EF", "REPT": "GH"}
    lines = ["Well,Time,Value,Read"]
    for test, columns in t50.items():
        for column, t in enumerate(columns, start=1):
            for row in rows[test]:
                lines += [f"{row}{column},{s:g},{a:.4f},405 nm" for s, a in zip(times, logistic(times, t))]
    path.write_text("\n".join(lines) + "\n")
    return path


SLOW = {"PT": (100, 200, 100, 100), "APTT": (150, 300, 150, 150), "TT": (110, 220, 110, 110),
        "REPT": (100, 200, 100, 100)}


def test_a_clot_before_the_first_read_is_reported_below_it(cli, workdir):
    """Read every 30 s; S1's PT clots at 20 s: '< 30 s', never '> 600 s, no clot, prolonged'."""
    plate = kinetic_plate(workdir / "plate30.csv", {**SLOW, "PT": (100, 200, 100, 20)})
    result, data = cli.json("execute", "coagulation", *PLATE_LOT, plate, "--protocol", "ncl-ita-12-plate")
    got = results_by(data)
    pt = got["S1", "PT_clot_time"]
    assert (pt["value"], pt["qualifier"]) == (30.0, "<")
    assert "clotted-before-first-read well A4" in pt["flags"] and "prolonged" not in pt["flags"]
    assert got["S1", "PT_ratio_to_vehicle"]["qualifier"] == "<"
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["pt-baseline-reads"]["passed"] is False and checks["pt-baseline-reads"]["value"] == 1
    assert checks["aptt-baseline-reads"]["passed"] is True
    assert result.exit_code == 1
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    assert "&lt; 30.0" in html and "no clot" not in html.split("<h3")[1].split("</table>")[0]


def test_a_flat_curve_with_no_clotting_well_to_compare_has_no_clot_time(cli, workdir):
    """Every PT well clots before the first read: no unclotted level to tell a plateau from 'no clot'."""
    plate = kinetic_plate(workdir / "fast.csv", {**SLOW, "PT": (20, 20, 20, 20)})
    result, data = cli.json("execute", "coagulation", *PLATE_LOT, plate, "--protocol", "ncl-ita-12-plate")
    pt = results_by(data)["S1", "PT_clot_time"]
    assert pt["value"] is None and pt["qualifier"] is None and "no clot time well A4" in pt["flags"]
    assert not {"censored", "prolonged"} & set(pt["flags"])
    assert next(c for c in data["checks"] if c["id"] == "pt-baseline-reads")["passed"] is False


def test_coagulometer_time_above_the_instrument_limit_is_censored(cli, workdir):
    run = workdir / "run.csv"
    run.write_text((DATA / "coagulation" / "coagulometer_run.csv").read_text()
                   .replace("PT,NP-A 100 ug/mL,1,14.2", "PT,NP-A 100 ug/mL,1,131.5")
                   .replace("PT,NP-A 100 ug/mL,2,14.6", "PT,NP-A 100 ug/mL,2,140.2"))
    result, data = cli.json("execute", "coagulation", "--param", f"@{DATA / 'coagulation' / 'lot-ncl-ita-12.toml'}",
                            run)
    pt = results_by(data)["NP-A 100 ug/mL", "PT_clot_time"]
    assert (pt["value"], pt["qualifier"]) == (120.0, ">")  # parameters.tests.PT.max_time_s
    assert "above-instrument-limit" in pt["flags"] and "prolonged" in pt["flags"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select qualifier from results where metric = 'PT_clot_time' and sample = ?",
                            ["NP-A 100 ug/mL"]).fetchone() == (">",)


# --- lot values, modified protocols, descriptions ---------------------------------------------------------

@pytest.mark.parametrize("args, missing", [
    (("complement", DATA / "complement" / "valid_plate.csv"), "kit_lot, standards, kit_control_ranges"),
    (("complement", DATA / "complement" / "valid_plate.csv", "--param", "standards.E=170"),  # one entry is no lot
     "kit_lot, standards, kit_control_ranges"),
    (("coagulation", DATA / "coagulation" / "coagulometer_run.csv"),
     "control_lot, normal_control_ranges_s, abnormal_control_ranges_s"),
])
def test_a_run_without_its_lot_values_exits_2(cli, workdir, args, missing):
    result = cli("execute", *args)
    assert result.exit_code == 2 and count_rows(workdir / "assayrun.db") == 0
    assert result.stderr.count("\n") == 1 and "--param @lot.toml" in result.stderr
    assert f"lot_parameters: {missing} must come from the kit or control lot" in result.stderr


def test_an_edited_protocol_runs_as_modified(cli, workdir):
    text = (REPO / "protocols" / "ncl-ita-1.toml").read_text()
    edited = workdir / "ita-1.toml"
    edited.write_text(text.replace("flag_cv_percent = 20.0 ", "flag_cv_percent = 15.0 ")
                      .replace("limit = 50.0                         # I", "limit = 60.0"))
    result, data = cli.json("execute", "hemolysis", HEMOLYSIS, "--protocol", edited)
    modified = data["protocol"]["modified_from"]
    assert (modified["id"], modified["version"]) == ("ncl-ita-1", "4.0-ar1")
    assert modified["changed"] == ["parameters.flag_cv_percent", "acceptance[4].limit"]
    check = next(c for c in data["checks"] if c["id"] == "positive-control")
    assert check["description"] == "Positive control (Triton X-100) ≥ 60 % hemolysis" and check["limit"] == "≥ 60 %"
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    assert "modified from ncl-ita-1 4.0-ar1" in html and "parameters.flag_cv_percent, acceptance[4].limit" in html
    assert "Protocol modified from ncl-ita-1 4.0-ar1" in cli("execute", "hemolysis", HEMOLYSIS, "--protocol",
                                                             edited).stdout
    comments = workdir / "comments.toml"
    comments.write_text("# our copy\n" + text)
    _, data = cli.json("execute", "hemolysis", HEMOLYSIS, "--protocol", comments)
    assert data["protocol"]["modified_from"]["changed"] == ["comments or formatting only"]
    _, data = cli.json("execute", "hemolysis", HEMOLYSIS)
    assert data["protocol"]["modified_from"] is None


def test_a_description_that_contradicts_its_limit_is_refused(cli, workdir):
    text = (REPO / "protocols" / "ncl-ita-1.toml").read_text()
    stale = workdir / "stale.toml"
    stale.write_text(text.replace('"Calibration line R² ≥ {limit}"', '"Calibration line R² ≥ 0.99"'))
    result = cli("execute", "hemolysis", HEMOLYSIS, "--protocol", stale)
    assert result.exit_code == 2 and "acceptance[0]" in result.stderr
    assert "description says 0.99 but the criterion's numbers are 0.98" in result.stderr


def test_check_values_carry_units_and_counts_read_as_counts(cli):
    _, data = cli.json("execute", "hemolysis", HEMOLYSIS)
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["tbhd"]["unit"] == "mg/mL" and checks["tbhd"]["limit"] == "within [9, 11] mg/mL"
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    assert re.search(r">6 of 6 levels</td>", html) and re.search(r">10\.\d+ mg/mL</td>", html)
    assert "≥ 4 of 6 levels, each abs_pdft ≤ 20 (25 at CAL6)" in html


# --- Dunnett's test -------------------------------------------------------------------------------------------

def dunnett_by_hand(groups, control):
    """Many-to-one comparisons: pooled-variance t per group, p from the multivariate t of their correlation."""
    groups, control = [np.asarray(g, float) for g in groups], np.asarray(control, float)
    n0, k = control.size, len(groups)
    df = n0 + sum(g.size for g in groups) - k - 1
    pooled = (sum(((g - g.mean()) ** 2).sum() for g in groups) + ((control - control.mean()) ** 2).sum()) / df
    t = [(g.mean() - control.mean()) / np.sqrt(pooled * (1 / g.size + 1 / n0)) for g in groups]
    lam = np.array([np.sqrt(g.size / (g.size + n0)) for g in groups])
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    mvt = multivariate_t(shape=corr, df=df, seed=5)
    return [1 - mvt.cdf(np.full(k, abs(x)), lower_limit=np.full(k, -abs(x))) for x in t]


def test_dunnett_p_values_on_a_hand_built_design():
    control = [10.0, 11.0, 12.0, 13.0]
    groups = [[14.0, 15.0, 16.0, 15.0], [10.0, 12.0, 11.0, 13.0], [12.0, 13.5, 14.0]]
    p, anova = stats.dunnett(groups, control)
    assert p == pytest.approx(dunnett_by_hand(groups, control), abs=2e-3)
    assert p[0] < 0.05 < p[1]
    assert stats.dunnett(groups, control) == (p, anova)  # a fixed seed: the same p to the bit
    one, _ = stats.dunnett(groups[:1], control)  # one comparison: the pooled two-sample t-test
    assert one[0] == pytest.approx(ttest_ind(groups[0], control).pvalue, abs=1e-4)
    assert stats.dunnett([[1.0]], control)[0] == [pytest.approx(float("nan"), nan_ok=True)]


# --- README ---------------------------------------------------------------------------------------------------

def readme_commands():
    text = (REPO / "README.md").read_text()
    spans = re.findall(r"`([^`]*assayrun\s+execute\s[^`]*)`", text) + re.findall(r"^ {4}.*?(assayrun execute .*)$",
                                                                                    text, re.M)
    commands = [" ".join(s.split()).split("assayrun execute ", 1)[1] for s in spans]
    return sorted({c for c in commands if "examples/" in c})


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_gives_a_valid_run(cli, workdir, command, monkeypatch):
    monkeypatch.chdir(REPO)  # the README's paths are relative to the repository; the records go to workdir
    result = cli("execute", *command.split(), "--db", workdir / "readme.db", "--out", workdir / "certificates")
    assert result.exit_code == 0, result.output


def test_the_readme_runs_every_example():
    commands = " ".join(readme_commands())
    for example in ("hemolysis/plate.csv", "complement/plate.csv", "cytotoxicity/mtt_plate.csv",
                    "cytotoxicity/ldh_plate.csv", "coagulation/coagulometer.csv", "coagulation/plate_kinetic.csv",
                    "quant/picogreen_plate.csv", "quant/elisa_softmax.txt"):
        assert example in commands
    assert "ldh_plate.csv --protocol ncl-gta-2-ldh" in commands  # the Hep G2 plate, the Hep G2 protocol
