"""Complement activation (NCL ITA-5.2, SC5b-9 EIA) end to end, checked against numpy/scipy calculations done here."""

import csv
import json
import sqlite3
import tomllib

import numpy as np
import scipy.stats
import pytest
from scipy.optimize import curve_fit

from conftest import DATA, REPO, count_rows

PLATE = DATA / "complement" / "valid_plate.csv"
KIT_FILE = DATA / "complement" / "kit-lot-T1.toml"
LOT = ("--param", f"@{DATA / 'complement' / 'kit-lot-default.toml'}")  # the lot the test plates were made for
EXAMPLES = REPO / "examples" / "complement"
DEFAULT_LOT = {"A": 10.0, "B": 20.0, "C": 40.0, "D": 80.0, "E": 160.0}
DEFAULT_RANGES = {"High": (60.0, 110.0), "Low": (14.0, 30.0)}
STANDARD_WELLS = {"A": ("A3", "A4"), "B": ("A5", "A6"), "C": ("A7", "A8"), "D": ("A9", "A10"), "E": ("A11", "A12")}
KIT_WELLS = {"High": ("B1", "B2"), "Low": ("B3", "B4")}
CONDITION_WELLS = {"NC": ("B5", "B6"), "PC": ("B7", "B8"), "vehicle": ("B9", "B10"), "S1": ("C1", "C2"),
                   "S2": ("C3", "C4"), "S3": ("C5", "C6"), "S4": ("C7", "C8"), "S5": ("C9", "C10")}
DILUTION = 10.0 * 3.0  # kit dilution x incubation dilution of the protocol


def plate_reads(path):
    """{'450 nm': {well: value}, '650 nm': {...}}: each labelled grid, read with the csv module."""
    reads, label = {}, None
    for row in csv.reader(open(path)):
        if len(row) == 1 and row[0].endswith(" nm"):
            label = row[0]
            reads[label] = {}
        elif label and row and row[0] in tuple("ABCDEFGH"):
            reads[label].update({f"{row[0]}{c}": float(v) for c, v in enumerate(row[1:13], start=1) if v})
    return reads


def edit_plate(src, dst, label, cells):
    """A copy of a plate file with some cells of one grid replaced by the given texts."""
    lines, current = [], None
    for row in csv.reader(open(src)):
        if len(row) == 1 and row[0].endswith(" nm"):
            current = row[0]
        elif current == label and row and row[0] in tuple("ABCDEFGH"):
            for well, text in cells.items():
                if well[0] == row[0]:
                    row[int(well[1:])] = text
        lines.append(",".join(row))
    dst.write_text("\n".join(lines) + "\n")
    return dst


def linear_curve(x, y):
    m, b = np.polyfit(x, y, 1)
    return (lambda od: (od - b) / m), m * x + b


def four_pl_curve(x, y):
    def f(x, bottom, top, ec50, hill):
        return bottom + (top - bottom) / (1 + (x / ec50) ** hill)

    p, _ = curve_fit(f, x, y, p0=[y.min(), y.max() * 2, np.median(x) * 2, -1.0], maxfev=20000)
    bottom, top, ec50, hill = p
    return (lambda od: ec50 * ((top - bottom) / (od - bottom) - 1) ** (1 / hill)), f(x, *p)


def hand_calculation(path, standards=DEFAULT_LOT, ranges=DEFAULT_RANGES, model=linear_curve):
    """ITA-5.2 as the issue states it, written out independently of the plugin."""
    reads = plate_reads(path)
    ref = reads.get("650 nm", {})
    od = {w: v - ref.get(w, 0.0) for w, v in reads["450 nm"].items()}
    blank = (od["A1"] + od["A2"]) / 2
    x = np.array([standards[n] for n, wells in STANDARD_WELLS.items() for _ in wells])
    y = np.array([od[w] - blank for wells in STANDARD_WELLS.values() for w in wells])
    back, fitted = model(x, y)
    r2 = 1 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)

    def cv(wells):
        values = np.array([od[w] for w in wells])
        return 100 * values.std(ddof=1) / values.mean()

    out = {"r2": r2, "kit": {}, "cv": {}, "in_well": {}, "qualifier": {}, "plasma": {}}
    lloq, uloq = min(standards.values()), max(standards.values())
    for name, wells in KIT_WELLS.items():
        out["kit"][name] = np.mean([back(od[w] - blank) for w in wells])
        out["cv"][f"kit {name}"] = cv(wells)
    for name, wells in STANDARD_WELLS.items():
        out["cv"][f"standard {name}"] = cv(wells)
    for name, wells in CONDITION_WELLS.items():
        in_well = np.array([back(od[w] - blank) for w in wells])
        plasma = in_well * DILUTION
        out["in_well"][name] = in_well.mean()
        out["plasma"][name] = plasma
        bound = lloq if in_well.mean() < lloq else uloq if in_well.mean() > uloq else None  # never extrapolated
        out["qualifier"][name] = None if bound is None else "<" if bound == lloq else ">"
        out[name] = {"concentration": plasma.mean() if bound is None else bound * DILUTION,
                     "concentration_sd": plasma.std(ddof=1) if bound is None else None}
        if name in ("NC", "PC", "vehicle"):
            out["cv"][name] = cv(wells)
    nc = out["NC"]
    tested = [n for n in CONDITION_WELLS if n != "NC" and out["qualifier"][n] is None]
    p = scipy.stats.dunnett(*[out["plasma"][n] for n in tested], control=out["plasma"]["NC"], rng=1).pvalue
    for name in CONDITION_WELLS:
        if name != "NC":
            s = out[name]
            s["fold_change"] = s["concentration"] / nc["concentration"]
            s["difference"] = s["concentration"] - nc["concentration"]
            censored = out["qualifier"][name] is not None
            s["difference_sd"] = None if censored else np.sqrt(s["concentration_sd"] ** 2 + nc["concentration_sd"] ** 2)
            s["p_value"] = None if censored else p[tested.index(name)]
    return out


def results_by(data):
    return {(r["sample"], r["metric"]): r for r in data["results"]}


def checks_by(data):
    return {c["id"]: c for c in data["checks"]}


def assert_matches(data, hand, rel):
    results = results_by(data)
    for name in CONDITION_WELLS:
        for metric, expected in hand[name].items():
            got = results[(name, metric)]
            if metric == "p_value":  # a quasi-Monte-Carlo integral: scipy's own error, not ours
                assert (got["value"] is None) == (expected is None)
                assert expected is None or got["value"] == pytest.approx(expected, abs=1e-3), name
                continue
            assert got["value"] == (None if expected is None else pytest.approx(expected, rel=rel)), (name, metric)
            if metric in ("concentration", "fold_change", "difference"):
                assert got["qualifier"] == hand["qualifier"][name], (name, metric)
    for name, expected in hand["kit"].items():
        assert results[(f"kit {name} control", "concentration")]["value"] == pytest.approx(expected, rel=rel)
    assert checks_by(data)["standard-curve-r2"]["value"] == pytest.approx(hand["r2"], rel=rel)
    assert checks_by(data)["positive-control"]["value"] == pytest.approx(hand["PC"]["fold_change"], rel=rel)


@pytest.fixture
def run(cli):
    result, data = cli.json("execute", "complement", *LOT, PLATE)
    assert result.exit_code == 0, result.output
    return data


def test_valid_run_matches_hand_calculation(run, workdir):
    hand = hand_calculation(PLATE)
    assert_matches(run, hand, rel=1e-10)
    assert run["valid"] is True and run["protocol"]["id"] == "ncl-ita-5.2-sc5b9"
    assert [(c["id"], c["passed"]) for c in run["checks"]] == [
        ("standard-curve-r2", True), ("kit-controls", True), ("duplicate-cv", True), ("positive-control", True)]
    assert checks_by(run)["duplicate-cv"]["value"] == 10 and max(hand["cv"].values()) <= 20
    for low, high, name in [(*DEFAULT_RANGES[n], n) for n in KIT_WELLS]:
        assert low <= hand["kit"][name] <= high
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        metrics = json.loads(conn.execute("select metrics from runs").fetchone()[0])
    for item, expected in hand["cv"].items():
        assert metrics["replicates"][item]["cv_percent"] == pytest.approx(expected, rel=1e-10)
    assert count_rows(workdir / "assayrun.db", "fits") == 1


def test_calls_and_range_flags(run):
    hand = hand_calculation(PLATE)
    results = results_by(run)
    for name in CONDITION_WELLS:
        if name == "NC":
            assert (name, "fold_change") not in results
            continue
        h = hand[name]
        expected = ("activated" if h["fold_change"] >= 2 and h["p_value"] < 0.05 else "not activated") \
            if hand["qualifier"][name] is None else \
            f"no call: {'< LLOQ' if hand['qualifier'][name] == '<' else '> ULOQ'}, re-assay at another dilution"
        assert results[(name, "fold_change")]["interpretation"] == expected, name
        flags = results[(name, "concentration")]["flags"]
        in_well = hand["in_well"][name]
        if in_well > 160:
            assert flags == ["above-uloq", "re-assay at another dilution"]
        elif in_well < 10:
            assert flags == ["below-lloq", "re-assay at another dilution"]
        else:
            assert flags == []
    # the plate holds one of each: activated (S2), not activated (S3), above the top standard (S4), below (S5)
    assert [results[(s, "fold_change")]["interpretation"] for s in ("S2", "S3")] == ["activated", "not activated"]
    assert results[("S4", "concentration")]["qualifier"] == ">" and results[("S5", "concentration")]["qualifier"] == "<"
    assert hand["in_well"]["S4"] > 160 and hand["in_well"]["S5"] < 10
    assert "S6" not in {r["sample"] for r in run["results"]}  # empty slots skipped


def test_kit_control_out_of_range_is_stored_invalid_with_exit_1(cli, workdir):
    # kit High wells read like ~40 ng/mL, far under the lot's 60-110 ng/mL
    reads = plate_reads(PLATE)
    low_high = {w: f"{reads['450 nm']['A7'] + d:.4f}" for w, d in (("B1", 0.002), ("B2", -0.002))}
    bad = edit_plate(PLATE, workdir / "low_high_control.csv", "450 nm", low_high)
    result, data = cli.json("execute", "complement", *LOT, bad)
    assert result.exit_code == 1
    assert data["valid"] is False
    assert [c["id"] for c in data["checks"] if not c["passed"]] == ["kit-controls"]
    hand = hand_calculation(bad)
    high = results_by(data)[("kit High control", "concentration")]
    assert high["value"] == pytest.approx(hand["kit"]["High"], rel=1e-10) and hand["kit"]["High"] < 60
    assert high["flags"] == ["outside the lot range 60-110 ng/mL"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select valid from runs where id = ?", [data["run_id"]]).fetchone() == (0,)
        detail = conn.execute("select detail from checks where check_id = 'kit-controls'").fetchone()[0]
    assert detail == "failing: High"
    html = open(data["certificate"]["html"]).read()
    assert "OUT OF RANGE" in html and "INVALID" in html


def test_4pl_selectable_per_run_matches_scipy(cli, workdir):
    result, data = cli.json("execute", "complement", *LOT, PLATE, "--param", "calibration_model=4pl")
    assert result.exit_code == 0, result.output
    hand = hand_calculation(PLATE, model=four_pl_curve)
    assert_matches(data, hand, rel=1e-6)  # two different solvers: agreement to 6 digits
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        model, = conn.execute("select model from fits").fetchone()
        parameters = json.loads(conn.execute("select parameters from runs").fetchone()[0])
    assert model == "4pl" and parameters["calibration_model"] == "4pl"
    assert "set for this run (--param)" in open(data["certificate"]["html"]).read()


def test_4pl_selectable_by_protocol_copy(cli, workdir):
    text = (REPO / "protocols" / "ncl-ita-5.2-sc5b9.toml").read_text()
    assert text.count('calibration_model = "linear"') == 1
    copy = workdir / "sc5b9-4pl.toml"
    copy.write_text(text.replace('calibration_model = "linear"', 'calibration_model = "4pl"'))
    result, data = cli.json("execute", "complement", *LOT, PLATE, "--protocol", copy)
    assert result.exit_code == 0, result.output
    assert_matches(data, hand_calculation(PLATE, model=four_pl_curve), rel=1e-6)


def broken_plate(case, workdir):
    """The valid plate with its standards spoiled in one of three ways."""
    path = workdir / f"{case}.csv"
    if case == "saturated":  # every standard but A over range: one concentration left, no line through it
        return edit_plate(PLATE, path, "450 nm", {w: "OVRFLW" for n in "BCDE" for w in STANDARD_WELLS[n]})
    if case in ("flat", "flat-noisy", "step"):  # flat: one OD everywhere (over-developed); step: A, B low, C-E high
        od = {n: "1.5000" if case == "step" and n in "CDE" else "0.5000" for n in STANDARD_WELLS}
        edit_plate(PLATE, path, "450 nm", {w: od[n] for n, ws in STANDARD_WELLS.items() for w in ws})
        if case != "flat-noisy":  # the reference read adds its own noise unless it is flat too
            edit_plate(path, path, "650 nm", {w: "0.0450" for ws in STANDARD_WELLS.values() for w in ws})
        return path
    reads = plate_reads(PLATE)  # "reversed": standards pipetted E to A, so the line falls
    for label in ("450 nm", "650 nm"):
        swapped = {w: f"{reads[label][v]:.4f}" for n, m in zip("ABCDE", "EDCBA")
                   for w, v in zip(STANDARD_WELLS[n], STANDARD_WELLS[m])}
        path = edit_plate(PLATE if label == "450 nm" else path, path, label, swapped)
    return path


@pytest.mark.parametrize("case, params, message", [
    ("saturated", [], "standard curve: cannot be fit: linear fit needs at least 3 points for 2 free parameters, "
                      "got 2: add standards or fix parameters (2 of 10 standard wells usable"),
    ("flat", [], "standard curve: cannot be fit: every usable standard well reads the same OD (0.455)"),
    ("step", ["--param", "calibration_model=4pl"], "standard curve: the 4pl fit failed (not converged: no standard "
                                                   "lies on the curve's transition"),
    ("reversed", [], "standard curve: the curve does not rise with concentration"),
])
def test_curve_that_cannot_be_fit_is_one_clear_line(cli, workdir, case, params, message):
    result = cli("execute", "complement", *LOT, broken_plate(case, workdir), *params)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message), result.stderr
    assert "Traceback" not in result.output
    assert count_rows(workdir / "assayrun.db") == 0


def test_curve_that_fits_badly_is_stored_invalid(cli, workdir):
    """Flat standards with reader noise still give a 4PL, a useless one: the R² check fails, the run is kept."""
    result, data = cli.json("execute", "complement", *LOT, broken_plate("flat-noisy", workdir),
                            "--param", "calibration_model=4pl")
    assert result.exit_code == 1
    assert not checks_by(data)["standard-curve-r2"]["passed"] and checks_by(data)["standard-curve-r2"]["value"] < 0.5
    assert count_rows(workdir / "assayrun.db") == 1


def test_kit_lot_file_and_single_entries_per_run(cli, workdir):
    kit = tomllib.loads(KIT_FILE.read_text())
    result, data = cli.json("execute", "complement", *LOT, PLATE, "--param", f"@{KIT_FILE}", "--param", "standards.E=170")
    assert result.exit_code == 0, result.output
    standards = {**kit["standards"], "E": 170.0}
    ranges = {k: tuple(v) for k, v in kit["kit_control_ranges"].items()}
    assert_matches(data, hand_calculation(PLATE, standards, ranges), rel=1e-10)
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        stored = json.loads(conn.execute("select parameters from runs").fetchone()[0])
    assert stored["standards"] == standards and stored["kit_lot"] == kit["kit_lot"]
    assert stored["kit_control_ranges"] == {k: list(v) for k, v in ranges.items()}
    html = open(data["certificate"]["html"]).read()
    assert f"Kit controls — lot {kit['kit_lot']}" in html
    assert html.count("lot (--param)") == 3  # kit_lot, standards, kit_control_ranges


def test_activation_threshold_is_a_parameter(cli):
    hand = hand_calculation(PLATE)
    assert 2 <= hand["S2"]["fold_change"] < 3
    result, data = cli.json("execute", "complement", *LOT, PLATE, "--param", "activation_fold_change=3",
                            "--param", "kit_lot=123456")
    assert result.exit_code == 0
    assert results_by(data)[("S2", "fold_change")]["interpretation"] == "not activated"
    assert "lot 123456" in open(data["certificate"]["html"]).read()  # a numeric lot stays text


@pytest.mark.parametrize("param, message", [
    ("activation_fold_changes=3", "error: --param activation_fold_changes=3: unknown parameter"),
    ("activation_fold_change=-1", "error: --param: parameters.activation_fold_change: Input should be greater than 0"),
    ("calibration_model=5pl", "error: --param: parameters.calibration_model: Input should be 'linear' or '4pl'"),
    ("kit_control_ranges.High=[110, 60]",
     "error: --param: parameters.kit_control_ranges: Value error, the range of High"),
    ("kit_lot.x=1", "error: --param kit_lot.x=1: kit_lot is not a table of parameters"),
    ("standards", "error: --param standards: give KEY=VALUE"),
    ("standards={A = 10, B = 20}",
     "error: --param: parameters.standards: no value for C, D, E: give one entry per calibrator group"),
    ("kit_control_ranges={High = [60, 110], Medium = [30, 50]}", "error: --param: parameters.kit_control_ranges: "
                                                                 "no value for Low; Medium not in the layout"),
    ("@missing.toml", "error: missing.toml: cannot read the parameters file"),
])
def test_bad_param_is_one_clear_line(cli, workdir, param, message):
    result = cli("execute", "complement", *LOT, PLATE, "--param", param)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert count_rows(workdir / "assayrun.db") == 0


def test_without_reference_read(cli, workdir):
    text = PLATE.read_text()
    only_450 = workdir / "only_450.csv"
    only_450.write_text(text[:text.index("650 nm")])
    result, data = cli.json("execute", "complement", *LOT, only_450)
    assert result.exit_code == 0, result.output
    assert_matches(data, hand_calculation(only_450), rel=1e-10)
    assert "the export has no\n  reference read" in open(data["certificate"]["html"]).read()


def test_example_runs_with_its_kit_file_and_samples(cli):
    result, data = cli.json("execute", "complement", EXAMPLES / "plate.csv", "--param",
                            f"@{EXAMPLES / 'kit-lot-XYZ.toml'}", "--samples", EXAMPLES / "samples.csv")
    assert result.exit_code == 0, result.output
    calls = {r["sample"]: r["interpretation"] for r in data["results"] if r["metric"] == "fold_change"}
    assert calls["PC"] == "activated" and calls["PAMAM-G4 1 mg/mL"] == "not activated"
    flagged = [r["sample"] for r in data["results"] if r["metric"] == "concentration"
               and "re-assay at another dilution" in r["flags"]]
    assert flagged == ["Polystyrene amine 50 nm 1 mg/mL"]
