"""Plasma coagulation (NCL ITA-12) end to end: a coagulometer run checked by hand, per-test invalidation,
censored times, kinetic plates synthesized with known half-maximal times, and every user-fixable error."""

import csv
import json
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from conftest import DATA, REPO, Cli

RUN = DATA / "coagulation" / "coagulometer_run.csv"
APTT_CONTROL_OUT = DATA / "coagulation" / "coagulometer_aptt_control_out.csv"
PROTOCOL = tomllib.loads((REPO / "protocols" / "ncl-ita-12.toml").read_text())
TESTS = PROTOCOL["parameters"]["tests"]
CONTROLS = ("NC", "AC", "VEH")
LOT = ("--param", f"@{DATA / 'coagulation' / 'lot-ncl-ita-12.toml'}")  # the lots the test data were made for
PLATE_LOT = ("--param", f"@{DATA / 'coagulation' / 'lot-ncl-ita-12-plate.toml'}")


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory):
    """The CLI in a working directory shared by a module's tests (runs that several tests read)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("coagulation"))
        mp.delenv("ASSAYRUN_DB", raising=False)
        yield Cli()


@pytest.fixture(scope="module")
def run(module_cli):
    result, data = module_cli.json("execute", "coagulation", *LOT, RUN)
    assert result.exit_code == 0, result.output
    return data


def results_by(data):
    return {(r["sample"], r["metric"]): r for r in data["results"]}


def hand_times(path):
    """test -> sample -> [(seconds, censored)], read with the csv module; 'no clot' is > the test's max_time_s."""
    table = {}
    for row in csv.DictReader(open(path)):
        text, test = row["seconds"], row["test"]
        value = ((float(text[1:]), True) if text.startswith(">") else
                 (TESTS[test]["max_time_s"], True) if text == "no clot" else (float(text), False))
        table.setdefault(test, {}).setdefault(row["sample"], []).append(value)
    return table


def test_coagulometer_run_matches_hand_calculation(run):
    data = run
    assert data["valid"] is True and data["protocol"]["id"] == "ncl-ita-12"
    got = results_by(data)
    checked = 0
    for test, samples in hand_times(RUN).items():
        low, high = TESTS[test]["normal_range_s"]
        vehicle = np.mean([s for s, _ in samples["VEH"]])
        for sample, replicates in samples.items():
            times = np.array([s for s, c in replicates if not c])
            if len(times) < len(replicates):
                continue  # censored ones: below, by worked numbers
            mean = times.mean()
            cv = 100 * times.std(ddof=1) / mean
            time = got[sample, f"{test}_clot_time"]
            assert time["value"] == pytest.approx(mean, rel=1e-12) and time["unit"] == "s"
            assert got[sample, f"{test}_cv_percent"]["value"] == pytest.approx(cv, rel=1e-12)
            if sample not in CONTROLS:
                assert got[sample, f"{test}_ratio_to_vehicle"]["value"] == pytest.approx(mean / vehicle, rel=1e-12)
                change = 100 * (mean - vehicle) / vehicle
                assert got[sample, f"{test}_percent_change"]["value"] == pytest.approx(change, rel=1e-12, abs=1e-12)
            if sample != "AC":
                expected = {"prolonged"} if mean > high else {"shortened"} if mean < low else set()
                assert {"prolonged", "shortened"} & set(time["flags"]) == expected, (test, sample)
            checked += 1
    assert checked == 22
    # worked: PT NP-A 100 = (14.2 + 14.6) / 2 = 14.4 s > 13.5: prolonged; / vehicle 11.7 = 1.2308, +23.08 %
    assert got["NP-A 100 ug/mL", "PT_ratio_to_vehicle"]["value"] == pytest.approx(1.230769, rel=1e-6)
    assert got["NP-A 100 ug/mL", "PT_percent_change"]["value"] == pytest.approx(23.0769, rel=1e-5)
    checks = {c["id"]: c for c in data["checks"]}
    assert all(c["passed"] for c in checks.values()) and len(checks) == 16
    assert checks["aptt-normal-control"]["value"] == 0  # (31.0 + 31.8) / 2 = 31.4 inside [26, 36]: 0 s outside
    assert checks["pt-duplicates"]["value"] == 3


def test_censored_times_are_bounds_never_averaged(run):
    got = results_by(run)
    # TT of NP-A 100: >120 and >120: the time is > 120 s (prolonged), the ratio > 120 / 15.9 = 7.547
    tt = got["NP-A 100 ug/mL", "TT_clot_time"]
    assert tt["value"] == 120.0 and {"censored", "prolonged"} <= set(tt["flags"])
    assert got["NP-A 100 ug/mL", "TT_cv_percent"]["value"] is None
    ratio = got["NP-A 100 ug/mL", "TT_ratio_to_vehicle"]
    assert ratio["value"] == pytest.approx(120 / 15.9) and "censored" in ratio["flags"]
    # reptilase of NP-B 100: 17.0 and "no clot": no mean, no ratio, a repeat flag
    rept = got["NP-B 100 ug/mL", "REPT_clot_time"]
    assert rept["value"] is None and "mixed-censored" in rept["flags"]
    assert got["NP-B 100 ug/mL", "REPT_ratio_to_vehicle"]["value"] is None


def test_pattern_lines_from_the_protocol_table(run):
    patterns = {r["sample"]: r["interpretation"] for r in run["results"] if r["metric"] == "pattern"}
    assert set(patterns) == {"NP-A 10 ug/mL", "NP-A 100 ug/mL", "NP-B 100 ug/mL"}
    assert patterns["NP-A 10 ug/mL"].startswith("All clotting times within the normal range")
    # PT 14.4 and APTT 49.1 prolonged, TT > 120 prolonged, reptilase 19.3 normal
    assert patterns["NP-A 100 ug/mL"].startswith("TT prolonged, reptilase normal: consistent with thrombin inhibition")
    assert "common pathway" not in patterns["NP-A 100 ug/mL"]  # needs TT normal
    # PT 9.7 < 10 and APTT 22.5 < 25 shortened; TT normal; reptilase unknown (mixed)
    assert patterns["NP-B 100 ug/mL"] == ("PT shortened: procoagulant effect; "
                                          "APTT shortened: procoagulant effect (e.g. contact activation)")


def test_failed_aptt_control_invalidates_aptt_only(cli):
    result, data = cli.json("execute", "coagulation", *LOT, APTT_CONTROL_OUT)
    assert result.exit_code == 1 and data["valid"] is False
    failed = [c for c in data["checks"] if not c["passed"]]
    assert [c["id"] for c in failed] == ["aptt-normal-control"]
    assert failed[0]["value"] == pytest.approx(4.5)  # (40.0 + 41.0) / 2 = 40.5, 4.5 s above [26, 36]
    for r in data["results"]:
        invalid = "invalid: aptt-normal-control failed" in r["flags"]
        assert invalid == r["metric"].startswith("APTT_"), r
    patterns = {r["sample"]: r for r in data["results"] if r["metric"] == "pattern"}
    assert patterns["NP-B 100 ug/mL"]["interpretation"] == "PT shortened: procoagulant effect"
    assert patterns["NP-B 100 ug/mL"]["flags"] == ["APTT left out: aptt-normal-control failed"]
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    assert "Results that stand: <strong>PT, TT, REPT</strong>" in html
    assert "APTT results are invalid" in html and "INVALID: aptt-normal-control failed" in html


def test_parameters_have_no_numeric_defaults():
    from assayrun_coagulation.model import ClottingTest, KineticSettings, Parameters

    for model in (Parameters, ClottingTest, KineticSettings):
        for name, field in model.model_fields.items():
            if {float, int} & {*get_args(field.annotation), field.annotation}:
                assert field.is_required() or field.default is None, (model.__name__, name)


# --- user-fixable errors: exit 2, one line naming the file and the place ---------------------------------------

def protocol_copy(workdir, old, new, count=1):
    text = (REPO / "protocols" / "ncl-ita-12.toml").read_text()
    assert len(re.findall(old, text)) >= count
    path = workdir / "lab-ita-12.toml"
    path.write_text(re.sub(old, new, text))
    return path


def test_no_clot_needs_the_instrument_limit(cli, workdir):
    path = protocol_copy(workdir, r"max_time_s = .*\n", "", count=4)
    result = cli("execute", "coagulation", *LOT, RUN, "--protocol", path)
    assert result.exit_code == 2
    assert "REPT of 'NP-B 100 ug/mL' reads 'no clot': give max_time_s" in result.stderr
    assert "parameters.tests.REPT" in result.stderr


def test_control_lot_ranges_set_per_run(cli, workdir):
    lot = workdir / "control-lot.toml"
    lot.write_text(f'''control_lot = "N-2211 / A-3107"
normal_control_ranges_s = {{ PT = [10.5, 13.5], APTT = [38.0, 44.0], TT = [14.0, 20.0], REPT = [15.0, 21.0] }}
abnormal_control_ranges_s = {{ PT = [20.0, 30.0], APTT = [45.0, 70.0], TT = [25.0, 45.0], REPT = [25.0, 45.0] }}
''')
    result, data = cli.json("execute", "coagulation", *LOT, APTT_CONTROL_OUT, "--param", f"@{lot}")
    assert result.exit_code == 0 and data["valid"] is True  # the APTT normal control 40.5 s is inside this lot's range
    assert "N-2211 / A-3107" in open(data["certificate"]["html"], encoding="utf-8").read()
    result = cli("execute", "coagulation", *LOT, APTT_CONTROL_OUT, "--param", "normal_control_ranges_s.APTT=[38.0, 44.0]")
    assert result.exit_code == 0, result.output


def test_control_ranges_cover_every_test(cli):
    result = cli("execute", "coagulation", *LOT, RUN, "--param", "abnormal_control_ranges_s={PT = [20.0, 30.0]}")
    assert result.exit_code == 2 and "--param" in result.stderr
    assert "abnormal_control_ranges_s needs a range for each test (PT, APTT, TT, REPT), not PT" in result.stderr
    result = cli("execute", "coagulation", *LOT, RUN, "--param", "normal_control_ranges_s.PT=[13.5, 10.5]")
    assert result.exit_code == 2 and "a range is [lower limit, upper limit]" in result.stderr


def test_missing_parameter_is_named(cli, workdir):
    path = protocol_copy(workdir, r"flag_cv_percent = 5.0 ", "")
    result = cli("execute", "coagulation", *LOT, RUN, "--protocol", path)
    assert result.exit_code == 2 and "parameters.flag_cv_percent: required key is missing" in result.stderr


@pytest.mark.parametrize("rows, message", [
    ("PT,NC,1,12.1\nPT,NC,1,12.3\n", "line 3: PT 'NC' replicate '1' is also on line 2"),
    ("PT,NC,1,soon\n", "line 2: seconds 'soon' is not a clotting time"),
    ("PT,,1,12.1\n", "line 2: every row needs a test and a sample"),
])
def test_bad_coagulometer_rows(cli, workdir, rows, message):
    path = workdir / "run.csv"
    path.write_text("test,sample,replicate,seconds\n" + rows)
    result = cli("execute", "coagulation", *LOT, path)
    assert result.exit_code == 2 and message in result.stderr


def test_tests_must_match_the_protocol(cli, workdir):
    text = RUN.read_text()
    extra = workdir / "extra.csv"
    extra.write_text(text + "FIB,NC,1,2.5\n")
    result = cli("execute", "coagulation", *LOT, extra)
    assert result.exit_code == 2 and "the input has FIB results" in result.stderr
    short = workdir / "short.csv"
    short.write_text("".join(line for line in text.splitlines(True) if not line.startswith("REPT")))
    result = cli("execute", "coagulation", *LOT, short)
    assert result.exit_code == 2 and "the input has no REPT results" in result.stderr


def test_kinetic_plate_with_the_coagulometer_protocol_points_to_the_plate_protocol(cli, workdir):
    path = workdir / "plate.csv"
    path.write_text("Well,Value,Time\nA1,0.1,0\nA1,0.5,10\n")
    result = cli("execute", "coagulation", *LOT, path)
    assert result.exit_code == 2 and "ncl-ita-12-plate" in result.stderr


# --- kinetic plate input ------------------------------------------------------------------------------------

INTERVAL = 10.0
TIMES = np.arange(0.0, 600.0 + INTERVAL, INTERVAL)
ROWS = {"PT": "AB", "APTT": "CD", "TT": "EF", "REPT": "GH"}
SLOTS = {1: "NC", 2: "AC", 3: "VEH", 4: "NP-A 1 ug/mL", 5: "NP-A 10 ug/mL", 6: "NP-A 100 ug/mL", 7: "NP-B 100 ug/mL"}
T50 = {  # test -> plate column -> half-maximal time of each duplicate (None: no clot)
    "PT": {1: (32, 33), 2: (70, 72), 3: (31, 32), 4: (33, 34), 5: (36, 37), 6: (31, 33), 7: (18, 19)},
    "APTT": {1: (70, 72), 2: (140, 136), 3: (68, 69), 4: (70, 71), 5: (120, 124), 6: (69, 70), 7: (66, 67)},
    "TT": {1: (27, 28), 2: (60, 62), 3: (26, 27), 4: (27, 28), 5: (None, None), 6: (27, 26), 7: (25, 26)},
    "REPT": {1: (32, 33), 2: (70, 71), 3: (31, 32), 4: (32, 33), 5: (32, 33), 6: (31, 32), 7: (30, 31)},
}
SATURATED = "A6"  # a turbid nanoparticle: its plateau passes the reader's limit


@pytest.fixture(scope="module")
def plate_run(module_cli, tmp_path_factory):
    """A 405 nm kinetic long table of logistic curves with noise, run through protocol ncl-ita-12-plate."""
    workdir = tmp_path_factory.mktemp("plate")
    rng = np.random.default_rng(405)
    lines = ["Well,Time,Value,Read"]
    for test, columns in T50.items():
        for column, t50s in columns.items():
            for row, t50 in zip(ROWS[test], t50s):
                well = f"{row}{column}"
                a0, rise = (1.2, 2.2) if well == SATURATED else (rng.uniform(0.07, 0.12), rng.uniform(0.5, 0.8))
                values = a0 + (0.01 * TIMES / TIMES[-1] if t50 is None else
                               rise / (1 + np.exp(-(TIMES - t50) / (0.12 * t50))))
                values = values + rng.normal(0, 0.004, TIMES.size)
                cells = ["OVRFLW" if v > 3.2 else f"{v:.4f}" for v in values]
                lines += [f"{well},{t:g},{cell},405 nm" for t, cell in zip(TIMES, cells)]
    plate = workdir / "plate.csv"
    plate.write_text("\n".join(lines) + "\n")
    samples = workdir / "samples.csv"
    samples.write_text("slot,sample,concentration,unit\nS1,NP-A,1,ug/mL\nS2,NP-A,10,ug/mL\nS3,NP-A,100,ug/mL\n"
                       "S4,NP-B,100,ug/mL\n")
    result, data = module_cli.json("execute", "coagulation", *PLATE_LOT, plate, "--protocol", "ncl-ita-12-plate",
                                   "--samples", samples)
    assert result.exit_code == 0, result.output
    return data


def test_plate_clot_times_recovered_within_one_read_interval(plate_run):
    got = results_by(plate_run)
    errors = []
    for test, columns in T50.items():
        for column, t50s in columns.items():
            if None not in t50s and not (test == "PT" and column == 6):  # A6 saturates: a bound, no mean
                errors.append(got[SLOTS[column], f"{test}_clot_time"]["value"] - np.mean(t50s))
    assert len(errors) == 26 and np.max(np.abs(errors)) < INTERVAL
    checks = {c["id"]: c for c in plate_run["checks"]}
    assert all(c["passed"] for c in checks.values()) and checks["read-interval"]["value"] == INTERVAL


def plate_run_details(data):
    """The run's details as stored (the certificate block's data)."""
    db = Path(data["certificate"]["html"]).parent.parent / "assayrun.db"
    with sqlite3.connect(db) as conn:
        return json.loads(conn.execute("select details from runs where id = ?", [data["run_id"]]).fetchone()[0])


def test_plate_no_clot_saturated_well_and_patterns(plate_run):
    got = results_by(plate_run)
    no_clot = got["NP-A 10 ug/mL", "TT_clot_time"]
    assert no_clot["value"] == TIMES[-1] == 600.0 and {"censored", "prolonged"} <= set(no_clot["flags"])
    vehicle = got["VEH", "TT_clot_time"]["value"]
    assert got["NP-A 10 ug/mL", "TT_ratio_to_vehicle"]["value"] == pytest.approx(600.0 / vehicle, rel=1e-12)
    saturated = got["NP-A 100 ug/mL", "PT_clot_time"]  # never a time from a clipped rise: a bound, so no mean
    assert f"clot-time-unreliable (saturated: a lower bound) well {SATURATED}" in saturated["flags"]
    assert saturated["value"] is None and "mixed-censored" in saturated["flags"]
    well = next(w for t in plate_run_details(plate_run)["tests"] if t["test"] == "PT" for w in t["wells"]
                if w["well"] == SATURATED)
    assert well["reported"].startswith("> ") and float(well["reported"][2:]) < 31  # below the true 31 s
    assert "prolonged" in got["NP-A 10 ug/mL", "APTT_clot_time"]["flags"]      # 122 s > 85
    assert "shortened" in got["NP-B 100 ug/mL", "PT_clot_time"]["flags"]       # 18.5 s < 25
    patterns = {r["sample"]: r["interpretation"] for r in plate_run["results"] if r["metric"] == "pattern"}
    assert patterns["NP-A 10 ug/mL"] == (
        "APTT prolonged, PT normal: intrinsic pathway (factors VIII, IX, XI, XII or contact activation) affected; "
        "TT prolonged, reptilase normal: consistent with thrombin inhibition (heparin-like or polyanionic material)")
    assert patterns["NP-B 100 ug/mL"] == "PT shortened: procoagulant effect"
    assert patterns["NP-A 100 ug/mL"] is None  # its PT is unknown: "all normal" cannot be said


def test_plate_certificate_shows_clot_curves(plate_run):
    html = open(plate_run["certificate"]["html"], encoding="utf-8").read()
    assert html.count("<svg") == 4 and html.count(">clot time</text>") == 4
    assert html.count("<circle") >= 4 * 12  # a clot-time mark per clotted well
    assert "&gt; 600.0" in html and "clot-time-unreliable (saturated: a lower bound)" in html


def test_gen5_kinetic_export_feeds_the_plate_path(cli, workdir):
    """A real Gen5 kinetic export (420 nm, every 30 s) through a lab copy of the plate protocol read at 420 nm."""
    gen5 = DATA / "plate-exports" / "agilent-gen5" / "gen5_kinetic_420nm_bgal_stdcurve_sample.txt"
    protocol = workdir / "plate-420.toml"
    protocol.write_text(re.sub(r"wavelength_nm = 405 .*", "wavelength_nm = 420",
                               (REPO / "protocols" / "ncl-ita-12-plate.toml").read_text()))
    _, read = cli.json("read", gen5)
    kinetic = read["plates"][0]["reads"][0]
    times = np.array(kinetic["times_s"])

    def half_max_time(values):  # NCL.md 2.5 written out: median of 3, baseline of 3 reads, linear interpolation
        a = np.array(values, dtype=float)
        smooth = np.array([np.median(a[max(0, i - 1):i + 2]) for i in range(a.size)])
        level = np.median(a[:3]) + 0.5 * (smooth.max() - np.median(a[:3]))
        i = int(np.argmax(smooth >= level))
        return times[i - 1] + (level - smooth[i - 1]) * (times[i] - times[i - 1]) / (smooth[i] - smooth[i - 1])

    result, data = cli.json("execute", "coagulation", *PLATE_LOT, gen5, "--protocol", protocol)
    assert result.exit_code == 1  # beta-galactosidase curves are no clotting controls
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["read-interval"]["value"] == 30.0
    expected = np.mean([half_max_time(kinetic["values"][well]) for well in ("A1", "B1")])
    high = tomllib.loads(protocol.read_text())["parameters"]["normal_control_ranges_s"]["PT"][1]
    assert expected > high and checks["pt-normal-control"]["value"] == pytest.approx(expected - high, rel=1e-12)
