"""The quant assay: hand-computed linear, quadratic and 4PL plates; layout and vendor values from real exports."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from assayrunner.testing import check, plate_from_wells, result
from conftest import DATA

EXPORTS = DATA / "plate-exports"
SMP_ELISA = EXPORTS / "moldev-softmaxpro" / "smp_elisa450_plateformat_groups_utf16.txt"
SMP_HCP = EXPORTS / "moldev-softmaxpro" / "smp_hcp_elisa_450_650_timeformat_utf16.txt"
GEN5_BGAL = EXPORTS / "agilent-gen5" / "gen5_kinetic_420nm_bgal_stdcurve_sample.txt"
GEN5_MEANV = DATA / "quant" / "gen5-meanv.toml"

PICOGREEN = {"STD1": 1000, "STD2": 500, "STD3": 100, "STD4": 50, "STD5": 10, "STD6": 5, "STD7": 1}


def _standards(response, levels: dict, rows="ABCDEFG") -> dict:
    """Duplicate standard wells in columns 1-2, one level per row, each reading response(nominal)."""
    return {f"{r}{c}": response(nominal) for r, nominal in zip(rows, levels.values()) for c in (1, 2)}


def _samples_csv(path, rows):
    path.write_text("slot,sample,dilution\n" + "".join(f"{s},{n},{d}\n" for s, n, d in rows), encoding="utf-8")
    return path


def test_linear_picogreen_plate_by_hand(assay_run, tmp_path):
    # F = 10 (blank) + 2 C: a straight line the fit recovers exactly.
    wells = _standards(lambda c: 10 + 2 * c, PICOGREEN) | {"H1": 10, "H2": 10}
    wells |= {"A3": 210, "A4": 230,      # (210-10)/2 = 100, (230-10)/2 = 110: mean 105 x 10 = 1050
              "A5": 11, "A6": 11,        # (11-10)/2 = 0.5 < 1 (LLOQ): "< 1 x 4"
              "A7": 2200, "A8": 2220}    # 1095, 1105 > 1000 (ULOQ): "> 1000"
    samples = _samples_csv(tmp_path / "s.csv", [("S1", "DNA-1", 10), ("S2", "DNA-2", 4), ("S3", "DNA-3", 1)])
    run = assay_run("quant", plate_from_wells(wells, wavelength_nm=520), samples, protocol="quant-picogreen-1")
    s1 = result(run, "DNA-1 (1:10)", "concentration")
    assert s1.value == pytest.approx(1050) and s1.qualifier is None and s1.slot == "S1"
    # SD of (1000, 1100) = 70.7107; %CV of (100, 110) = 100 x 7.0711 / 105 = 6.7344
    assert result(run, "DNA-1 (1:10)", "concentration_sd").value == pytest.approx(70.7107, rel=1e-5)
    assert result(run, "DNA-1 (1:10)", "cv_percent").value == pytest.approx(6.7344, rel=1e-4)
    below = result(run, "DNA-2 (1:4)", "concentration")
    assert (below.qualifier, below.value) == ("<", 4.0) and "below-lloq" in below.flags
    above = result(run, "DNA-3", "concentration")
    assert (above.qualifier, above.value) == (">", 1000.0) and "above-uloq" in above.flags
    assert run.valid and check(run, "linearity").value == pytest.approx(1.0)
    assert check(run, "standards").value == 7
    assert check(run, "vendor-agreement").detail.startswith("the export carries no concentrations")


def test_quadratic_bca_plate_by_hand(assay_run, tmp_path):
    # A562 = 0.100 (blank) + 0.001 C - 1e-7 C^2; a sample at 0.5 C read: root of the quadratic by numpy.
    bca = {"A": 2000, "B": 1500, "C": 1000, "D": 750, "E": 500, "F": 250, "G": 125, "H": 25}

    def f(c):
        return 0.1 + 1e-3 * c - 1e-7 * c * c

    wells = _standards(f, bca, rows="ABCDEFGH") | {"A3": 0.1, "A4": 0.1, "B3": 0.55, "B4": 0.57}
    roots = [min(r.real for r in np.roots([-1e-7, 1e-3, -(y - 0.1)]) if r.real >= 0) for y in (0.55, 0.57)]
    samples = _samples_csv(tmp_path / "s.csv", [("S1", "lysate", 2)])
    run = assay_run("quant", plate_from_wells(wells, wavelength_nm=562), samples, protocol="quant-bca-1")
    assert result(run, "lysate (1:2)", "concentration").value == pytest.approx(2 * np.mean(roots), rel=1e-9)
    assert run.valid and check(run, "standard-curve-r2").value == pytest.approx(1.0)
    fit = run.result.fits[0]
    assert fit["model"] == "quadratic" and fit["parameters"]["c"] == pytest.approx(-1e-7, rel=1e-6)


@pytest.mark.parametrize("weights", ["none", "1/y^2"])
def test_4pl_elisa_plate_by_hand(assay_run, weights):
    # OD = d + (a - d) / (1 + (C / c)^b), a = 0.05, d = 3.0, c = 200, b = 1.2: exact data, either weighting.
    def od(conc):
        return 3.0 + (0.05 - 3.0) / (1 + (conc / 200) ** 1.2)

    elisa = {"STD1": 1000, "STD2": 500, "STD3": 250, "STD4": 125, "STD5": 62.5, "STD6": 31.25, "STD7": 15.625,
             "STD0": 0}
    wells = _standards(od, elisa, rows="ABCDEFGH") | {"A3": od(80), "A4": od(80), "A5": od(5), "A6": od(5)}
    run = assay_run("quant", plate_from_wells(wells, wavelength_nm=450), {"S1": "serum", "S2": "low serum"},
                    params=[f'calibration_weights="{weights}"'])
    assert result(run, "serum", "concentration").value == pytest.approx(80, rel=1e-6)
    low = result(run, "low serum", "concentration")        # 5 < 15.625, the lowest non-zero standard
    assert (low.qualifier, low.value) == ("<", 15.625)
    assert run.valid and check(run, "standards").value == 7


def test_acceptance_fails_on_a_bad_standard_and_few_levels(assay_run):
    wells = _standards(lambda c: 10 + 2 * c, PICOGREEN) | {"H1": 10, "H2": 10, "A3": 210, "A4": 230}
    wells |= {"C1": 10 + 2 * 100 * 1.6, "C2": 10 + 2 * 100 * 1.6, "D1": 10 + 2 * 50 * 1.6, "D2": 10 + 2 * 50 * 1.6,
              "E1": 10 + 2 * 10 * 1.6, "E2": 10 + 2 * 10 * 1.6}     # three levels read 60 % high
    run = assay_run("quant", plate_from_wells(wells, wavelength_nm=520), protocol="quant-picogreen-1")
    levels = check(run, "standards")
    assert not run.valid and not levels.passed and levels.value < 5


def test_layout_and_vendor_agreement_from_a_softmax_export(assay_run):
    run = assay_run("quant", SMP_ELISA, layout_from_export=True)
    agreement = check(run, "vendor-agreement")
    assert run.valid and agreement.passed and agreement.value == 0
    details = run.result.details
    assert details["layout_source"].startswith("the export: SoftMax Pro group tables")
    assert {r["name"] for r in details["layout_rows"] if r["role"] == "calibrator"} == {f"St{k}" for k in range(1, 9)}
    vendor = details["vendor"]
    assert vendor["software"] == "SoftMax Pro" and len(vendor["rows"]) == 88
    # the standards' BackCalcConc interpolates their mean OD (SoftMax: InterpX(Plot1@Graph1, AvgOD))
    st1 = next(r for r in vendor["rows"] if r["well"].startswith("A1"))
    assert st1["well"] == "A1 (mean of A1, A2)" and st1["vendor"] == "319.992"
    assert abs(st1["ours"] - 319.992) <= st1["tolerance"]
    # sample 62195 (A4, OD 0.380): SoftMax prints 42.305; ours the same to its printed precision
    assert result(run, "62195", "concentration").value == pytest.approx(42.305, abs=5e-4)


def test_softmax_dilutions_from_the_group_table(assay_run):
    run = assay_run("quant", SMP_HCP, layout_from_export=True)
    assert check(run, "vendor-agreement").passed
    # Sample 1 at 100x (B3, B4): SoftMax's MeanResult of Result*Dilution is 4150.690
    r = result(run, "Sample 1 (1:100)", "concentration")
    assert r.value == pytest.approx(4150.690, abs=0.5)
    assert run.result.details["reference"] == "reference"   # 450 - 650 per well, as SoftMax's Value


def test_layout_and_vendor_agreement_from_a_gen5_export(assay_run):
    run = assay_run("quant", GEN5_BGAL, protocol=GEN5_MEANV)
    assert check(run, "vendor-agreement").passed
    details = run.result.details
    assert details["layout_source"] == "the export: Gen5 'Layout' block (Well ID, Conc/Dil)"
    roles = {r["name"]: r["role"] for r in details["layout_rows"]}
    assert roles["STD12"] == "calibrator" and roles["SPL36"] == "sample" and len(roles) == 12 + 36
    vendor = details["vendor"]
    assert (vendor["software"], vendor["version"]) == ("Gen5", "3.12.08")
    assert vendor["curve"]["Curve Formula"] == "Y = (A-D)/(1+(X/C)^B) + D"
    by_well = {r["well"]: r for r in vendor["rows"]}
    assert by_well["A2"]["vendor"] == ">40.000" and by_well["A2"]["agrees"]
    assert by_well["C1"]["ours"] == pytest.approx(29.907, abs=by_well["C1"]["tolerance"])
    # Gen5 prints A 1.23, B 3.52, C 14.8, D 34.9: its response at 0, slope, ec50, response at infinity
    params = {r["parameter"]: r for r in vendor["curve_rows"]}
    assert all(r["agrees"] for r in params.values()) and sorted(params) == ["A", "B", "C", "D"]
    assert params["A"]["ours"] == pytest.approx(1.23, abs=0.005) and params["D"]["ours"] == pytest.approx(34.9, abs=0.05)


def _edit_utf16(src, dst, old: str, new: str):
    text = src.read_bytes().decode("utf-16")
    assert text.count(old) == 1
    dst.write_bytes(text.replace(old, new).encode("utf-16"))
    return dst


def test_vendor_agreement_fails_for_an_edited_value(tmp_path, workdir):
    edited = _edit_utf16(SMP_ELISA, tmp_path / "edited.txt", "62195\tA4\t0.380\t42.305\t42.305",
                         "62195\tA4\t0.380\t42.805\t42.305")
    done = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "quant", str(edited),
                           "--layout-from-export", "--json"], capture_output=True, text=True, cwd=workdir)
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    agreement = next(c for c in out["checks"] if c["id"] == "vendor-agreement")
    assert agreement["value"] == 1 and not agreement["passed"]
    html = (workdir / out["certificate"]["html"]).read_text(encoding="utf-8")
    assert "outside the tolerance (A4)" in html and "SoftMax Pro" in html and "OUTSIDE" in html
    verify = subprocess.run([sys.executable, "-m", "assayrunner", "verify"], capture_output=True, text=True,
                            cwd=workdir)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_layout_from_export_without_a_layout_is_exit_2(cli, workdir):
    plate = workdir / "plate.csv"
    plate.write_text(",1,2\nA,0.1,0.2\nB,0.3,0.4\n", encoding="utf-8")
    out = cli("execute", "quant", plate, "--layout-from-export")
    assert out.exit_code == 2 and "carries no plate layout" in out.stderr
    assert not (workdir / "assayrun.db").exists() or "runs" not in out.stdout


def test_tolerance_propagation_against_refits():
    # dc/dy_j by refitting the curve with one standard nudged (numpy's polyfit and an explicit inverse),
    # against crosscheck's first-order (J'WJ)^-1 J'W formula.
    from assayrun_quant import crosscheck

    from assayrunner.curves import fit

    x = np.array([0, 0, 10, 10, 50, 50, 100, 100.0])
    y = np.array([0.051, 0.049, 0.212, 0.208, 0.905, 0.897, 1.802, 1.795])
    curve = fit(x, y, "linear")
    probe = np.array([0.5, 1.2])
    own, through = crosscheck.sensitivities(curve, x, probe, np.ones(x.size))
    h = 1e-6
    slope, intercept = np.polyfit(x, y, 1)
    assert own == pytest.approx(1 / slope)
    for j in range(x.size):
        bumped = y.copy()
        bumped[j] += h
        m, b = np.polyfit(x, bumped, 1)
        numeric = ((probe - b) / m - (probe - intercept) / slope) / h
        assert through[:, j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    # tolerance = (|own| d + sum |through| d) x dilution + vendor half unit
    tol = crosscheck.tolerances(curve, x, np.full(x.size, 5e-4), np.ones(x.size), probe, np.full(2, 5e-4),
                                np.array([]), np.array([10.0, 1.0]), np.array([5e-4, 5e-3]))
    expected = (np.abs(own) * 5e-4 + np.abs(through).sum(axis=1) * 5e-4) * [10, 1] + [5e-4, 5e-3]
    assert tol == pytest.approx(expected)


def test_printed_precision():
    from assayrunner.vendor import half_unit, printed_half_unit

    assert half_unit("42.305") == pytest.approx(5e-4) and half_unit("<0.000") == pytest.approx(5e-4)
    assert half_unit("12") == 0.5 and math.isnan(half_unit("Range?"))
    assert printed_half_unit([1.32, 1.785, 0.1]) == pytest.approx(5e-4)             # trailing zeros dropped
    assert printed_half_unit([3.4631000000000003, 0.0665]) == pytest.approx(5e-5)   # binary noise of 3.4631
    assert printed_half_unit(np.float32([0.0538, 0.1])) == pytest.approx(5e-5)      # float32 cells of a workbook
    assert math.isnan(printed_half_unit([2.2075694995298862]))                       # full precision: unknown


def _edited_bgal(path, blank_offset: dict | None = None):
    """The BioTek sample export with its layout edited as a lab would set it in Gen5: SPL1 at 1:10 (C1) and
    1:100 (D1, written 0.01) as SPL1:1 / SPL1:2 with their Conc/Dil, a blank in C12/D12 and a control in E1/F1.
    With blank_offset ({well: offset}), a 'Blank Mean V [420]' line under each plate row of the results: Mean V
    minus the mean of the blank wells, printed to 3 decimals (plus the offset at those wells)."""
    lines = GEN5_BGAL.read_text(encoding="utf-8").split("\n")
    at = {line.split("\t")[0]: k for k, line in enumerate(lines[:60]) if line[:2] in ("C\t", "D\t", "E\t", "F\t")}
    for row, dilution in (("C", "10"), ("D", "0.01")):   # Gen5 may write a dilution as the fraction: 0.01 = 1:100
        cells = lines[at[row]].split("\t")
        cells[1], cells[12] = f"SPL1:{1 if row == 'C' else 2}", "BLK"
        lines[at[row]] = "\t".join(cells)
        conc = lines[at[row] + 1].split("\t")
        conc[1] = dilution
        lines[at[row] + 1] = "\t".join(conc)
    for row in ("E", "F"):
        cells = lines[at[row]].split("\t")
        cells[1] = "CTL1"
        lines[at[row]] = "\t".join(cells)
    if blank_offset is not None:
        mean_v = {line[0]: [float(x) for x in line.split("\t")[1:13]] for line in lines
                  if line.endswith("\tMean V [420]") and line[:1].isalpha()}
        blank = np.mean([mean_v["C"][11], mean_v["D"][11]])
        out = []
        for line in lines:
            out.append(line)
            if line.endswith("\tMean V [420]") and line[:1].isalpha():
                row = line[0]
                values = [v - blank + blank_offset.get(f"{row}{c}", 0.0) for c, v in enumerate(mean_v[row], start=1)]
                out.append("\t" + "\t".join(f"{v:.3f}" for v in values) + "\tBlank Mean V [420]")
        lines = out
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_gen5_dilution_series_blank_and_controls_in_the_layout(assay_run, tmp_path):
    edited = _edited_bgal(tmp_path / "gen5_layout_edited.txt")
    run = assay_run("quant", edited, protocol=GEN5_MEANV)
    rows = {(r["name"], r["role"], r["nominal"]): r["wells"] for r in run.result.details["layout_rows"]}
    assert rows[("SPL1", "sample", 10.0)] == ["C1"] and rows[("SPL1", "sample", 100.0)] == ["D1"]
    assert rows[("BLK", "blank", None)] == ["C12", "D12"] and rows[("CTL1", "control", None)] == ["E1", "F1"]
    # C1's Mean V 32.259 gives Gen5's 29.907 in the well: x 10
    assert result(run, "SPL1 (1:10)", "concentration").value == pytest.approx(299.07, abs=0.05)
    assert check(run, "vendor-agreement").passed


@pytest.mark.parametrize("old, new, message", [
    ("62195\tA4\t0.380", "62195\tP4\t0.380", "well P4 of 62195 lies outside the 8 x 12 plate"),
    ("St2\t160.000", "St2\t-160.000", "St2: the concentration must be 0 or more, not -160"),
    ("St3\t80.000", "St3\tabc", "standard St3 has no concentration in the export's layout"),
])
def test_a_bad_export_layout_is_one_line_exit_2(tmp_path, cli, old, new, message):
    edited = _edit_utf16(SMP_ELISA, tmp_path / "bad.txt", old, new)
    out = cli("execute", "quant", edited, "--layout-from-export")
    assert out.exit_code == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.output


def test_spike_and_qc_recovery_by_hand(assay_run, tmp_path):
    # A lab's copy of the PicoGreen protocol with a spike (S1 + 100 ng/mL in the well) and a QC of 50 ng/mL.
    from conftest import REPO

    text = (REPO / "plugins" / "assayrun_quant" / "protocols" / "quant-picogreen-1.toml").read_text(encoding="utf-8")
    text = text.replace('id = "quant-picogreen-1"', 'id = "lab-picogreen-spiked"').replace(
        "wells = [\n", 'wells = [\n  { wells = "H11:H12", role = "spike", name = "S1", nominal = 100.0 },\n'
                      '  { wells = "G11:G12", role = "qc", name = "QC1", nominal = 50.0 },\n', 1)
    text = text.replace('  { wells = "G11:G12", role = "sample", name = "S35" },\n', "").replace(
        '  { wells = "H11:H12", role = "sample", name = "S40" },\n', "")
    protocol = tmp_path / "spiked.toml"
    protocol.write_text(text, encoding="utf-8")
    wells = _standards(lambda c: 10 + 2 * c, PICOGREEN) | {"H1": 10, "H2": 10, "A3": 210, "A4": 230}
    wells |= {"H11": 410, "H12": 410,    # (410 - 10) / 2 = 200 in the well: (200 - 105) / 100 = 95 %
              "G11": 100, "G12": 100}    # 45 of 50: 90 %
    run = assay_run("quant", plate_from_wells(wells, wavelength_nm=520), {"S1": "serum"}, protocol=protocol)
    assert result(run, "serum", "spike_recovery_percent").value == pytest.approx(95.0)
    assert result(run, "QC1", "recovery_percent").value == pytest.approx(90.0)
    assert result(run, "serum", "spike_recovery_percent").flags == []


def test_the_exports_unit_wins(assay_run):
    run = assay_run("quant", SMP_HCP, layout_from_export=True)     # 'Concentration ng/mL'; the protocol says pg/mL
    assert result(run, "Sample 1 (1:100)", "concentration").unit == "ng/mL"
    assert run.result.details["unit"] == "ng/mL"


def test_a_batch_keeps_each_exports_own_layout(cli, workdir):
    out, data = cli.json("execute", "quant", SMP_ELISA, SMP_HCP, "--layout-from-export", "-j", "1", "--no-certificate")
    assert out.exit_code == 0 and [r["status"] for r in data["runs"]] == ["valid", "valid"]
    _, hcp = cli.json("runs", "show", str(data["runs"][1]["run_id"]))
    assert hcp["details"]["layout_source"].startswith("the export: SoftMax Pro group tables (Standards 1")
    assert cli("verify").exit_code == 0


def test_the_protocols_layout_on_an_export_with_its_own_is_caught(assay_run):
    run = assay_run("quant", SMP_ELISA)     # the shipped ELISA layout, not the one SoftMax Pro was given
    agreement = check(run, "vendor-agreement")
    assert not run.valid and not agreement.passed and agreement.value > 50
    assert "with --layout-from-export the run takes it" in agreement.detail


def test_a_protocol_with_from_export_and_wells_is_refused(cli, tmp_path):
    text = GEN5_MEANV.read_text(encoding="utf-8").replace(
        "from_export = true", 'from_export = true\nwells = [{ wells = "A1", role = "blank" }]')
    protocol = tmp_path / "both.toml"
    protocol.write_text(text, encoding="utf-8")
    out = cli("execute", "quant", GEN5_BGAL, "--protocol", protocol)
    assert out.exit_code == 2 and "layout.from_export" in out.stderr and "give no wells" in out.stderr


def test_vendor_agreement_with_a_skanit_report(assay_run):
    # Thermo SkanIt prints its concentrations to 4 significant digits and '< Min' / '> Max' beyond the standards
    skanit = EXPORTS / "thermo-skanit" / "skanit_varioskan_elisa450_report.xlsx"
    run = assay_run("quant", skanit, protocol=DATA / "quant" / "skanit-apoe.toml")
    vendor = run.result.details["vendor"]
    assert (vendor["software"], vendor["version"]) == ("SkanIt", "7.0.0.50") and len(vendor["rows"]) == 94
    assert check(run, "vendor-agreement").passed
    rows = {r["well"]: r for r in vendor["rows"]}
    assert rows["A1"]["vendor"] == "> Max" and rows["A1"]["ours"] > 1.0          # above the top standard
    assert rows["B2"]["vendor"] == "0.3910" and rows["B2"]["difference"] <= rows["B2"]["tolerance"]


def test_read_shows_what_the_software_added(cli):
    out, data = cli.json("read", SMP_HCP)
    plate = data["plates"][0]
    assert plate["export_layout"]["software"] == "SoftMax Pro" and len(plate["export_layout"]["entries"]) == 92
    a1 = plate["vendor_results"]["values"]["A1"]
    assert (a1["text"], a1["value"], a1["half_unit"]) == ("Range?", None, None)
    assert "layout in the export: 92 wells" in cli("read", SMP_HCP).stdout


def test_printed_linear_curve_beside_ours():
    # Gen5 prints "Y=A*X+B" to 3 significant digits; numpy's polyfit gives the same line to that precision.
    from assayrun_quant import crosscheck

    from assayrunner import fit

    x = np.repeat([1000, 333.33, 111.11, 37.037, 12.346], 2)
    y = np.array([3.41, 3.329, 1.136, 1.109, 0.378, 0.369, 0.126, 0.123, 0.041, 0.040])
    slope, intercept = np.polyfit(x, y, 1)
    printed = {"Curve Formula": "Y=A*X+B", "A": f"{slope:.3g}", "B": f"{intercept:.3g}"}
    rows = crosscheck.curve_rows(fit(x, y, "linear"), x, np.ones(x.size), 5e-4, printed)
    assert [r["parameter"] for r in rows] == ["A", "B"] and all(r["agrees"] for r in rows)
    printed["B"] = f"{intercept + 0.01:.3g}"     # an intercept 0.01 off: beyond the standards' rounding
    assert not crosscheck.curve_rows(fit(x, y, "linear"), x, np.ones(x.size), 5e-4, printed)[1]["agrees"]


def test_gen5_concentrations_under_another_name(assay_run, tmp_path):
    # Gen5 lets a lab rename the curve's output ('Conc'); the values are the same interpolations
    edited = tmp_path / "renamed.txt"
    edited.write_text(GEN5_BGAL.read_text(encoding="utf-8").replace("\t[Concentration]\n", "\tConc\n"),
                      encoding="utf-8")
    run = assay_run("quant", edited, protocol=GEN5_MEANV)
    assert run.result.details["vendor"]["source"].startswith("Gen5 'Conc' results")
    assert check(run, "vendor-agreement").passed and run.result.details["vendor"]["rows"]


def test_gen5_blank_subtracted_reads_are_raw_minus_the_blank_wells():
    # Gen5's 'Blank 260:260' of the pathlength export: 260 read minus the mean of its BLK wells (G12, H12),
    # to the printed precision (3 decimals: half a unit for the well, the blank mean and the printed value)
    from assayrunner.reading import read_input
    from assayrunner.plugins import load

    plate = read_input(EXPORTS / "agilent-gen5" / "gen5_endpoint_260-280-230_pathlength.txt", load().readers,
                       None).plates[0]
    blanks = [e.well for e in plate.export_layout().entries if e.role == "blank"]
    raw = next(r for r in plate.reads if r.label == "260:260")
    blanked = plate.vendor_results().blank_subtracted["260:260"]
    blank = np.mean([raw.value(w) for w in blanks])
    assert blanks == ["G12", "H12"] and len(blanked) == 96
    assert all(abs(raw.value(w) - blank - v.value) <= 1.5e-3 + 1e-12 for w, v in blanked.items())


def test_gen5_blank_subtracted_values_are_checked(assay_run, tmp_path):
    agreeing = assay_run("quant", _edited_bgal(tmp_path / "blanked.txt", {}), protocol=GEN5_MEANV)
    vendor = agreeing.result.details["vendor"]
    assert len(vendor["blank_rows"]) == 94 and check(agreeing, "vendor-agreement").passed
    edited = _edited_bgal(tmp_path / "blanked_off.txt", {"A5": 0.01})   # one value 0.010 off: beyond 0.0015
    run = assay_run("quant", edited, protocol=GEN5_MEANV)
    agreement = check(run, "vendor-agreement")
    assert not agreement.passed and agreement.value == 1 and "A5 (blank-subtracted)" in agreement.detail


def test_fuzz_findings_are_exit_2_or_stored(cli, tmp_path):
    # found by mutating exports: a kinetic line without its time (stored with a NULL time, verify holds) ...
    lines = GEN5_BGAL.read_text(encoding="utf-8").split("\n")
    k = next(i for i, line in enumerate(lines) if line.startswith("0:04:00\t"))
    lines[k] = lines[k].replace("0:04:00", "", 1)
    untimed = tmp_path / "untimed.txt"
    untimed.write_text("\n".join(lines), encoding="utf-8")
    out = cli("execute", "quant", untimed, "--protocol", GEN5_MEANV, "--no-certificate")
    assert out.exit_code in (0, 1), out.output
    assert cli("verify").exit_code == 0
    # ... and a dilution so large the concentration overflows: one line, exit 2, nothing stored
    huge = tmp_path / "huge.txt"
    huge.write_text(GEN5_BGAL.read_text(encoding="utf-8").replace(
        "C\tSPL1\tSPL4", "C\tSPL1:1\tSPL4").replace("\t\t\t\t\t\t\t\t\t\t\t\t\tConc/Dil", "\t1e308\t\t\t\t\t\t\t\t\t\t\t\tConc/Dil", 1),
        encoding="utf-8")
    out = cli("execute", "quant", huge, "--protocol", GEN5_MEANV, "--db", tmp_path / "huge.db")
    assert out.exit_code == 2 and "makes its concentration overflow" in out.stderr
    assert not (tmp_path / "huge.db").exists() or "Traceback" not in out.output


def test_a_sample_with_every_well_saturated_is_not_computable_and_reassayed(assay_run, tmp_path):
    # Both wells of S1 read above the reader's range: no number, no bound; the result must say so.
    wells = _standards(lambda c: 10 + 2 * c, PICOGREEN) | {"H1": 10, "H2": 10, "A3": 210, "A4": 230}
    plate = plate_from_wells(wells | {"A5": math.nan, "A6": math.nan}, wavelength_nm=520)
    plate.reads[0].flags.update({"A5": "saturated", "A6": "saturated"})
    samples = _samples_csv(tmp_path / "s.csv", [("S1", "DNA-1", 10), ("S2", "DNA-2", 4)])
    run = assay_run("quant", plate, samples, protocol="quant-picogreen-1")
    lost = result(run, "DNA-2 (1:4)", "concentration")
    assert math.isnan(lost.value) and lost.qualifier is None
    assert {"saturated well A5", "saturated well A6", "not-computable", "re-assay at another dilution"} <= set(lost.flags)
    assert result(run, "DNA-1 (1:10)", "concentration").flags == []
