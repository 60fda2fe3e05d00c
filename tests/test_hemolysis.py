"""Hemolysis (NCL ITA-1) end to end, checked against a calculation done here with plain numpy."""

import csv
import json
import sqlite3

import numpy as np
import pytest

from conftest import DATA, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
GEN5 = DATA / "hemolysis" / "gen5_plate_540.txt"  # the same layout exported by Gen5 3.12 (tab-separated, CRLF)
SAMPLES = DATA / "hemolysis" / "samples.csv"


def plate_values(path):
    """The 8 x 12 grid read with the csv module (not our readers)."""
    delimiter = "\t" if path.suffix == ".txt" else ","
    rows = [r for r in csv.reader(open(path, newline=""), delimiter=delimiter) if r and len(r[0]) == 1 and r[0] in "ABCDEFGH"]
    return {f"{r[0]}{c}": float(v) for r in rows for c, v in enumerate(r[1:13], start=1) if v}


def hand_calculation(v):
    """ITA-1 as the issue states it, written out independently of the plugin."""
    blank = (v["A1"] + v["A2"]) / 2
    cal = {"A3": .8, "A4": .8, "A5": .4, "A6": .4, "A7": .2, "A8": .2, "A9": .1, "A10": .1,
           "A11": .05, "A12": .05, "B1": .025, "B2": .025}
    x = np.array(list(cal.values()))
    y = np.array([v[w] for w in cal]) - blank
    m, b = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (m * x + b)) ** 2) / np.sum((y - y.mean()) ** 2)
    conc = {w: (a - blank - b) / m for w, a in v.items()}

    def mean(*wells):
        return np.mean([conc[w] for w in wells])

    tbhd = mean("B9", "B10") * 40
    pfh = mean("B11", "B12") * 2
    pct, in_well = {}, {}
    pairs = {"NC": ("C1", "C2", "D1", "D2"), "PC": ("C3", "C4", "D3", "D4"), "S1": ("C5", "C6", "D5", "D6"),
             "S4": ("C11", "C12", "D11", "D12"), "S6": ("E3", "E4", "F3", "F4"), "S8": ("E7", "E8", "F7", "F8")}
    for name, (w1, w2, n1, n2) in pairs.items():
        net = mean(w1, w2) * 2 - mean(n1, n2) * 2
        pct[name] = 100 * net * 9 / tbhd
        in_well[name] = mean(w1, w2)
    qc_high = mean("B3", "B4")
    return {"m": m, "b": b, "r2": r2, "tbhd": tbhd, "pfh": pfh, "pct": pct, "in_well": in_well,
            "lloq_pct": 100 * 0.025 * 2 * 9 / tbhd, "qc_high_pdft": 100 * (qc_high - .625) / .625}


@pytest.fixture
def run(cli):
    result, data = cli.json("execute", "hemolysis", PLATE)
    assert result.exit_code == 0, result.output
    return data


def result_value(data, sample, metric):
    return next(r for r in data["results"] if r["sample"] == sample and r["metric"] == metric)


@pytest.mark.parametrize("plate", [PLATE, GEN5], ids=["grid-csv", "gen5"])
def test_percent_hemolysis_matches_hand_calculation(cli, plate):
    result, run = cli.json("execute", "hemolysis", plate)
    assert result.exit_code == 0, result.output
    hand = hand_calculation(plate_values(plate))
    for name, expected in hand["pct"].items():
        below = hand["in_well"][name] < 0.025  # with-blood wells under CAL6: "< LLOQ", the LLOQ in % of this run
        reported = hand["lloq_pct"] if below else expected
        percent = result_value(run, name, "percent_hemolysis")
        assert percent["value"] == pytest.approx(reported, rel=1e-12)
        assert percent["qualifier"] == ("<" if below else None)
        adjusted = result_value(run, name, "adjusted_percent_hemolysis")
        assert adjusted["value"] == pytest.approx(reported - hand["pct"]["NC"], rel=1e-12, abs=1e-12)
        assert adjusted["qualifier"] == percent["qualifier"]
    assert result_value(run, "TBHd", "hemoglobin")["value"] == pytest.approx(hand["tbhd"], rel=1e-12)
    assert result_value(run, "PFH", "hemoglobin")["value"] == pytest.approx(hand["pfh"], rel=1e-12)
    checks = {c["id"]: c for c in run["checks"]}
    assert checks["calibration-r2"]["value"] == pytest.approx(hand["r2"], rel=1e-12)
    assert checks["tbhd"]["value"] == pytest.approx(hand["tbhd"], rel=1e-12)
    assert checks["positive-control"]["value"] == pytest.approx(hand["pct"]["PC"], rel=1e-12)


def test_contract_and_interpretation(run):
    assert {"run_id", "assay", "protocol", "valid", "checks", "results", "certificate", "digest"} <= set(run)
    assert run["valid"] is True and run["assay"] == "hemolysis"
    assert run["protocol"]["id"] == "ncl-ita-1" and len(run["protocol"]["sha256"]) == 64
    assert [c["id"] for c in run["checks"]] == ["calibration-r2", "calibrator-accuracy", "qc", "tbhd",
                                                 "positive-control", "negative-control"]
    for c in run["checks"]:
        assert set(c) == {"id", "description", "value", "limit", "passed", "unit", "detail"}
    for r in run["results"]:
        assert {"sample", "metric", "value", "unit", "flags", "interpretation", "qualifier", "slot", "sample_id", "lot",
                "concentration", "concentration_unit"} <= set(r)
    classes = {r["sample"]: r["interpretation"] for r in run["results"] if r["metric"] == "adjusted_percent_hemolysis"}
    assert classes["PC"] == "hemolytic"           # ~95 % above NC
    assert classes["S4"] == "hemolytic"           # ~11 %
    assert classes["S5"] == "< LLOQ (4.42 %), no class"   # ~2.6 %, but under CAL6: 0-4.4 % spans two classes
    assert classes["S1"] == "< LLOQ (4.42 %), no class"   # ~0.9 %, under CAL6 too
    assert run["certificate"]["pdf"] is None
    assert "S9" not in classes  # empty slots are skipped


def test_flags(run):
    flags = {r["sample"]: r["flags"] for r in run["results"] if r["metric"] == "percent_hemolysis"}
    # S6 (Au): no-blood wells E3/E4 -> F3/F4 hold ~0.09 mg/mL of the ~0.1 mg/mL with blood
    assert "interference" in flags["S6"]
    # NC: in-well Hb ~0.004 mg/mL, under CAL6 = 0.025 mg/mL
    assert "below-lloq" in flags["NC"]
    assert flags["PC"] == [] and flags["S8"] == []


def test_samples_file_names_results(cli):
    result, data = cli.json("execute", "hemolysis", PLATE, "--samples", SAMPLES)
    assert result.exit_code == 0
    samples = {r["sample"] for r in data["results"]}
    assert "PAMAM-G4 1 mg/mL" in samples and "Au 15 nm citrate 0.5 mg/mL" in samples
    assert "S1" not in samples


def test_invalid_run_is_stored_and_exits_1(cli, workdir):
    # Triton control wells replaced by near-blank absorbance: PC ~0 % hemolysis -> positive-control fails
    text = PLATE.read_text().replace("C,0.0492,0.0498,0.2526,0.2530", "C,0.0492,0.0498,0.0501,0.0499")
    bad = workdir / "weak_pc.csv"
    bad.write_text(text)
    result, data = cli.json("execute", "hemolysis", bad)
    assert result.exit_code == 1
    assert data["valid"] is False
    failed = [c["id"] for c in data["checks"] if not c["passed"]]
    assert failed == ["positive-control"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select valid from runs where id = ?", [data["run_id"]]).fetchone() == (0,)


def test_edited_protocol_number_changes_the_result(cli, workdir):
    """A lab copies the protocol, edits one number and runs with it: nothing is hard-coded."""
    from conftest import REPO

    text = (REPO / "protocols" / "ncl-ita-1.toml").read_text()
    edited = workdir / "my-ita-1.toml"
    edited.write_text(text.replace("tube_volume_ul = 900.0", "tube_volume_ul = 1800.0")
                      .replace('op = "<"\nlimit = 2.0', 'op = "<"\nlimit = 1.0'))
    _, base = cli.json("execute", "hemolysis", PLATE)
    result, data = cli.json("execute", "hemolysis", PLATE, "--protocol", edited)
    # twice the tube volume doubles every % (NC 0.68 -> 1.36 %), which now fails the edited NC limit of 1 %
    assert result.exit_code == 1
    assert [c["id"] for c in data["checks"] if not c["passed"]] == ["negative-control"]
    pc = lambda d: result_value(d, "PC", "percent_hemolysis")["value"]
    assert pc(data) == pytest.approx(2 * pc(base), rel=1e-12)
    assert data["protocol"]["sha256"] != base["protocol"]["sha256"]


def test_run_is_stored_in_one_piece(cli, workdir, run):
    db = workdir / "assayrun.db"
    assert count_rows(db, "runs") == 1
    assert count_rows(db, "results") == len(run["results"])
    assert count_rows(db, "checks") == 6
    with sqlite3.connect(db) as conn:
        content, sha = conn.execute("select content, sha256 from input_files").fetchone()
        assert content == PLATE.read_bytes()
        import hashlib
        assert sha == hashlib.sha256(PLATE.read_bytes()).hexdigest()
        assert conn.execute("select count(*) from wells where run_id = 1").fetchone()[0] == 64  # rows A-D full, E-F 8 wells each, G-H empty
    shown, data = cli.json("runs", "show", str(run["run_id"]))
    assert shown.exit_code == 0 and data["digest"] and data["valid"] is True
    listed, runs = cli.json("runs")
    assert [r["id"] for r in runs] == [run["run_id"]]


def test_text_summary_for_people(cli):
    result = cli("execute", "hemolysis", PLATE)
    assert result.exit_code == 0
    assert "VALID" in result.stdout and "PASS  calibration-r2" in result.stdout
    assert "Certificate:" in result.stdout
    assert "Traceback" not in result.output


def test_saturated_well_is_left_out_and_flagged(cli, workdir):
    # C5 (first S1 well) read as OVRFLW: S1 uses C6 alone and says why
    text = PLATE.read_text().replace("C,0.0492,0.0498,0.2526,0.2530,0.0504", "C,0.0492,0.0498,0.2526,0.2530,OVRFLW")
    plate = workdir / "saturated.csv"
    plate.write_text(text)
    result, data = cli.json("execute", "hemolysis", plate)
    assert result.exit_code == 0
    v = plate_values(PLATE)
    hand = hand_calculation(v)
    conc = lambda w: (v[w] - (v["A1"] + v["A2"]) / 2 - hand["b"]) / hand["m"]
    net = conc("C6") * 2 - (conc("D5") + conc("D6"))
    s1 = result_value(data, "S1", "percent_hemolysis")
    with sqlite3.connect("assayrun.db") as conn:
        details = json.loads(conn.execute("select details from runs").fetchone()[0])
    computed = next(c for c in details["conditions"] if c["name"] == "S1")
    assert computed["percent"] == pytest.approx(100 * net * 9 / hand["tbhd"], rel=1e-12)
    assert computed["usable_wells"] == 1 and "saturated well C5" in s1["flags"]
    assert s1["qualifier"] == "<" and conc("C6") < 0.025  # C6 alone is under CAL6
    html = open(data["certificate"]["html"]).read()
    assert 'class="flagged"' in html and "saturated" in html


@pytest.mark.parametrize("tbhd", ["OVRFLW,OVRFLW", "0.0400,0.0400"], ids=["saturated", "below-the-blank"])
def test_blood_without_usable_hemoglobin_fails_the_run_without_a_percent(cli, workdir, tbhd):
    """TBHd (B9:B10) saturated, or read below the blank (hemoglobin not a positive number): the run is stored,
    invalid by its TBHd check, and no % hemolysis is computed from it (None, flagged, not classed); before, a
    saturated TBHd stopped the run as a malformed plugin result (exit 3)."""
    line = next(line for line in PLATE.read_text().splitlines() if line.startswith("B,"))
    cells = line.split(",")
    plate = workdir / "tbhd.csv"
    plate.write_text(PLATE.read_text().replace(line, ",".join(cells[:9] + tbhd.split(",") + cells[11:])))
    result, data = cli.json("execute", "hemolysis", plate)
    assert result.exit_code == 1, result.output
    assert data["valid"] is False and "tbhd" in [c["id"] for c in data["checks"] if not c["passed"]]
    for sample in ("NC", "PC", "S1", "S8"):
        for metric in ("percent_hemolysis", "adjusted_percent_hemolysis"):
            row = result_value(data, sample, metric)
            assert row["value"] is None and "tbhd-unusable" in row["flags"] and row["qualifier"] is None
        assert result_value(data, sample, "adjusted_percent_hemolysis")["interpretation"].startswith(
            "not interpretable (no usable TBHd")
        assert result_value(data, sample, "supernatant_hemoglobin")["flags"].count("tbhd-unusable") == 0
    blood = result_value(data, "TBHd", "hemoglobin")
    if tbhd.startswith("OVRFLW"):
        assert blood["value"] is None and blood["flags"] == ["saturated well B9", "saturated well B10",
                                                             "not-computable"]
    else:
        assert blood["value"] < 0 and blood["flags"] == []
    assert cli("verify").exit_code == 0


def test_same_inputs_same_results_to_the_bit(cli):
    _, first = cli.json("execute", "hemolysis", PLATE, "--operator", "A. Operator")
    _, second = cli.json("execute", "hemolysis", PLATE, "--operator", "A. Operator")
    assert first["results"] == second["results"] and first["checks"] == second["checks"]
    assert cli("verify").exit_code == 0  # each digest (which covers operator and times) recomputes