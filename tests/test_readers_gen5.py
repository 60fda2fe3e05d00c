"""Gen5 reader on real Gen5/Synergy text exports (values typed in from the files, not from the parser)."""

import math

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.plugins import load as load_plugins
from assayrunner.reading import read_input
from assayrunner.source import load
from assayrunner.readers.gen5 import read_gen5, sniff_gen5
from assayrunner.cells import duration as parse_duration
from assayrunner.cells import parse_datetime
from readers_common import EXPORTS, check_json, chosen, other_vendors_files

DATA = EXPORTS / "agilent-gen5"
GEN5_FILES = sorted(DATA.iterdir())


def reads_of(plate):
    return {r.label: r for r in plate.reads}


def test_endpoint_pathlength_stacked_results_and_layout():
    [plate] = read_gen5(load(DATA / "gen5_endpoint_260-280-230_pathlength.txt"))
    assert (plate.rows, plate.columns) == (8, 12)
    raw = [(r.label, r.kind, r.wavelength_nm) for r in plate.reads if r.kind != "calculated"]
    assert raw == [("260:977 [Test]", "endpoint", 977), ("260:900 [Ref]", "endpoint", 900),
                   ("260:260", "endpoint", 260), ("260:280", "endpoint", 280), ("260:230", "endpoint", 230)]
    calculated = {r.label for r in plate.reads if r.kind == "calculated"}
    assert calculated == {"260:Pathlength", "Blank 260:260", "Blank 260:280", "Blank 260:230",
                          "Corrected [Blank 260:260]", "Corrected [Blank 260:280]", "Corrected [Blank 260:230]",
                          "DNA concentration ng/uL", "Ratio 260/280", "Ratio 260/230"}
    # raw reads come first: never mixed with calculated ones
    assert [r.kind for r in plate.reads][:5] == ["endpoint"] * 5
    reads = reads_of(plate)
    a260 = reads["260:260"]
    assert a260.value("A1") == 0.626 and a260.value("A12") == 0.650 and a260.value("D1") == 0.066
    assert a260.value("H1") == 0.532 and a260.value("H12") == 0.058
    assert reads["260:977 [Test]"].value("A1") == 0.056 and reads["260:900 [Ref]"].value("H12") == 0.038
    assert reads["260:230"].value("G12") == 0.082
    assert reads["DNA concentration ng/uL"].value("A1") == 249.278
    assert reads["Blank 260:280"].value("G12") == 0.0 and reads["Ratio 260/230"].value("H12") == 0.0
    meta = plate.metadata
    assert meta["layout"]["Well ID"]["G12"] == "BLK" and meta["layout"]["Well ID"]["A1"] == "SPL1"
    assert meta["software_version"] == "3.12.08" and meta["instrument"] == "Generic Reader"
    assert meta["serial_number"] == "12345678" and meta["temperature_c"] == 26.3
    assert meta["datetime"] == "2023-09-15T12:30:00" and meta["plate_type"] == "Generic 96 UV"
    assert meta["protocol_file"] == r"C:\Users\user\Desktop\Plate123.prt" and meta["read_mode"] == "Absorbance"
    check_json([plate])


def test_kinetic_bgal_with_layout_markers_and_curve_fit():
    [plate] = read_gen5(load(DATA / "gen5_kinetic_420nm_bgal_stdcurve_sample.txt"))
    assert (plate.rows, plate.columns) == (8, 12)
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("420", "kinetic", 420), ("Mean V [420]", "calculated", 420), ("[Concentration]", "calculated", None)]
    kinetic, mean_v, conc = plate.reads
    assert kinetic.values.shape == (8, 12, 61)
    assert list(kinetic.times_s[:3]) == [0, 30, 60] and kinetic.times_s[-1] == 1800
    assert kinetic.value("A1")[0] == 0.069 and kinetic.value("A2")[0] == 0.062
    assert kinetic.value("A1")[30] == 0.542 and kinetic.value("E5")[30] == 0.506  # 0:15:00
    assert kinetic.value("H12")[30] == 0.044
    assert kinetic.value("A1")[-1] == 0.992 and kinetic.value("H12")[-1] == 0.046
    assert mean_v.value("A1") == 31.303 and conc.value("F2") == 39.775 and conc.value("A1") == 27.131
    assert conc.flags["A2"] == "saturated" and math.isnan(conc.value("A2"))  # '>40.000'
    assert conc.flags["A11"] == "below-range" and math.isnan(conc.value("A11"))  # '<0.000'
    assert kinetic.flags == {}
    meta = plate.metadata
    assert meta["layout"]["Conc/Dil"]["A1"] == "40" and meta["layout"]["Well ID"]["C1"] == "SPL1"
    assert "C1" not in meta["layout"]["Conc/Dil"]
    assert meta["curve_fits"][0]["Fit F Prob"] == "?????" and meta["curve_fits"][0]["R2"] == "0.995"
    assert meta["kinetic_interval_s"] == 30 and meta["reading_type"] == "File"
    assert "temperature_c" not in meta  # the temperature column is empty
    check_json([plate])


def test_kinetic_24well_stopped_run_has_no_bogus_time_points():
    [plate] = read_gen5(load(DATA / "gen5_kinetic_od600_24well_growth.txt"))
    assert (plate.rows, plate.columns) == (4, 6)
    reads = reads_of(plate)
    assert [r.kind for r in plate.reads] == ["kinetic"] + ["calculated"] * 4
    od = reads["600"]
    assert od.wavelength_nm == 600 and od.values.shape == (4, 6, 708)
    assert od.times_s[0] == 22 and od.times_s[-1] == 169702  # 47:08:22
    assert np.all(np.diff(od.times_s) > 0)  # the 291 '0:00:00' rows of the stopped run are gone
    assert od.value("A1")[0] == -0.066 and od.value("D6")[0] == -0.060
    assert od.value("A3")[-1] == 0.566 and od.value("A5")[-1] == 0.492 and od.value("D6")[-1] == 0.347
    assert not np.isnan(od.values).any()
    assert reads["Max V [600]"].value("A1") == 0.750 and reads["Max V [600]"].value("B1") == -3.900
    assert reads["t at Max V [600]"].value("A1") == 10 * 3600 + 10 * 60 + 22  # '10:10:22' as seconds
    lag = reads["Lagtime [600]"]
    assert lag.flags == {"B4": "missing"} and math.isnan(lag.value("B4"))  # '?????'
    assert lag.value("D6") == 25 * 3600 + 20 * 60 + 32
    meta = plate.metadata
    assert meta["plate_number"] == "Plate 2" and meta["temperature_c"] == 30.0
    assert meta["kinetic_reads_planned"] == 999 and meta["kinetic_interval_s"] == 240
    check_json([plate])


def test_simulation_ovrflw_and_missed_are_flags_not_numbers():
    [plate] = read_gen5(load(DATA / "gen5_simulation_abs450_ovrflw_missed.txt"))
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("abs450:450", "endpoint", 450)
    assert read.value("A1") == 2.100 and read.value("A12") == 2.400 and read.value("H12") == 2.500
    assert read.value("D11") == 2.420 and read.value("H2") == 2.250
    overflow = {"A8", "B7", "C6", "D5", "E4", "F3", "G2", "H1"}
    missed = {"D12", "E11", "F10", "G9", "H8"}
    assert read.flags == {**{w: "saturated" for w in overflow}, **{w: "missing" for w in missed}}
    assert all(math.isnan(read.value(w)) for w in overflow | missed)
    assert plate.metadata["reading_type"] == "Simulation" and plate.metadata["instrument"] == "Synergy H1"
    assert plate.metadata["datetime"] == "2024-04-11T17:27:15"
    check_json([plate])


def test_three_matrices_absorbance_and_fluorescence():
    [plate] = read_gen5(load(DATA / "synergy_endpoint_abs600_abs700_fluo_matrix.txt"))
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("Abs:600", "endpoint", 600), ("Abs:700", "endpoint", 700), ("Fluo:485,528", "endpoint", 528)]
    abs600, abs700, fluo = plate.reads
    assert abs600.value("A1") == 0.095 and abs600.value("H12") == 0.100 and abs600.value("D3") == 0.108
    assert abs700.value("D3") == 0.099 and abs700.value("G11") == 0.101
    assert fluo.value("D3") == 185 and fluo.value("H12") == 109 and fluo.value("A1") == 104
    assert plate.metadata["temperature_c"] == 30.1 and plate.metadata["serial_number"] == "18092726"
    assert plate.metadata["wavelengths_nm"] == [600, 700, 528]
    check_json([plate])


def test_kinetic_columnwise_latin1_without_plate_header():
    [plate] = read_gen5(load(DATA / "synergy_kinetic_od600_columnwise_latin1.txt"))
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("OD:600", "kinetic", 600)
    assert read.values.shape == (8, 12, 145)
    assert read.times_s[0] == 575 and read.times_s[72] == 12 * 3600 + 575 and read.times_s[-1] == 86975  # 24:09:35
    assert read.value("A1")[0] == 0.093 and read.value("A1")[72] == 1.637 and read.value("E5")[72] == 1.580
    assert read.value("H12")[72] == 1.676 and read.value("A1")[-1] == 1.547 and read.value("H12")[-1] == 1.565
    meta = plate.metadata
    assert meta["software_version"] == "3.04.17" and meta["set_temperature"] == "Setpoint 30°C, Gradient 0 °C"
    assert meta["temperature_c"] == 30.3 and meta["temperature_max_c"] == 32.6
    assert "plate_number" not in meta and meta["procedure"][0].startswith("Plate Type Nunc 96")
    check_json([plate])


def test_kinetic_matrix_per_time_point_drops_unread_points():
    [plate] = read_gen5(load(DATA / "synergy_kinetic_od600_matrix_per_timepoint.txt"))
    reads = reads_of(plate)
    assert [(r.label, r.kind) for r in plate.reads] == [
        ("OD:600", "kinetic"), ("Max V [OD:600]", "calculated"), ("R-Squared [OD:600]", "calculated"),
        ("t at Max V [OD:600]", "calculated"), ("Lagtime [OD:600]", "calculated")]
    od = reads["OD:600"]
    assert od.values.shape == (8, 12, 105)  # reads 106..145 are '(0:00:00)' with empty matrices
    assert od.times_s[0] == 550 and od.times_s[49] == 8 * 3600 + 19 * 60 + 10 and od.times_s[-1] == 62950
    assert od.value("A1")[0] == 0.093 and od.value("H12")[0] == 0.100 and od.value("C11")[2] == 0.094
    assert od.value("E5")[49] == 0.100 and od.value("E6")[-1] == 0.104 and od.value("H12")[-1] == 0.099
    assert reads["Max V [OD:600]"].value("A1") == 0.150 and reads["Max V [OD:600]"].value("H7") == 0.900
    assert reads["Lagtime [OD:600]"].value("H12") == 20 * 60 + 25
    assert plate.metadata["temperature_max_c"] == 30.1
    check_json([plate])


def test_two_concatenated_exports_are_two_partial_plates():
    plates = read_gen5(load(DATA / "synergy_two_exports_concatenated_partial_plate.txt"))
    check_json(plates)
    assert len(plates) == 2 and all((p.rows, p.columns) == (8, 12) for p in plates)
    first, second = (reads_of(p) for p in plates)
    assert [(r.label, r.wavelength_nm) for r in plates[0].reads] == [("YFP:485,530", 530), ("CFP:360/40,460/40", 460)]
    assert [(r.label, r.wavelength_nm) for r in plates[1].reads] == [("YFP:485,530", 530), ("CFP:425,475", 475)]
    assert first["YFP:485,530"].value("A1") == 3200 and first["CFP:360/40,460/40"].value("A1") == 45582
    assert first["YFP:485,530"].value("H6") == 456 and first["CFP:360/40,460/40"].value("H6") == 3080
    assert second["YFP:485,530"].value("A1") == 30902 and second["CFP:425,475"].value("H1") == 1344
    assert math.isnan(first["YFP:485,530"].value("A7")) and math.isnan(second["CFP:425,475"].value("H12"))
    assert np.count_nonzero(~np.isnan(first["YFP:485,530"].values)) == 48
    assert plates[0].metadata["time"] == "16:22:44" and plates[1].metadata["time"] == "16:31:10"
    assert plates[1].metadata["gain"] == {"YFP:485,530": "134", "CFP:425,475": "74"}
    assert plates[1].metadata["software_version"] == "3.03.14"


@pytest.mark.parametrize("path", GEN5_FILES, ids=lambda p: p.name)
def test_sniffing_chooses_gen5(path):
    assert chosen(path) == "gen5"


def test_gen5_sniff_is_zero_on_other_vendors():
    others = other_vendors_files("agilent-gen5")
    assert others
    for path in others:
        assert sniff_gen5(load(path)) == 0.0, path.name


def test_truncated_file_is_a_user_error(tmp_path):
    data = (DATA / "gen5_simulation_abs450_ovrflw_missed.txt").read_bytes()
    cut = tmp_path / "cut.txt"
    cut.write_bytes(data[:1000])  # ends inside row F of the Results matrix
    with pytest.raises(UserError, match="cut.txt: line 36: .*truncated"):
        read_input(cut, load_plugins().readers)
    cut.write_bytes(data[:300])  # header only
    with pytest.raises(UserError, match="no data block"):
        read_gen5(load(cut))
    with pytest.raises(UserError, match="closest: gen5: .*no data block"):
        read_input(cut, load_plugins().readers)


def test_a_complete_last_line_without_a_line_end_is_not_truncated(tmp_path):
    data = (DATA / "gen5_simulation_abs450_ovrflw_missed.txt").read_bytes()
    whole = tmp_path / "whole.txt"
    whole.write_bytes(data.rstrip(b"\r\n"))  # many exports end without a final line end
    [plate] = read_input(whole, load_plugins().readers).plates
    assert plate.reads[0].value("H12") == 2.5


def test_garbled_file_is_a_user_error(tmp_path):
    garbled = tmp_path / "garbled.txt"
    garbled.write_bytes(b"Software Version\t3.12\r\nProcedure Details\r\n\r\n\x00\x01 garbage \xff\xfe\r\n" * 3)
    with pytest.raises(UserError):
        read_gen5(load(garbled))
    garbled.write_bytes(b"Software Version\t3.12\nResults\n\t1\t2\nA\tfoo\t*0.5*\tabs:450\nYC\t1\t2\tx:450\n\n")
    [plate] = read_gen5(load(garbled))  # an odd row label ends the matrix; odd cells are flags
    assert [r.label for r in plate.reads] == ["abs:450"]
    flags = plate.reads[0].flags
    assert {w: flags[w] for w in ("A1", "A2")} == {"A1": "invalid", "A2": "masked"}
    # the 2-column grid fits a 6-well plate (2 x 3); the wells it never reached are marked unread
    assert (plate.rows, plate.columns) == (2, 3) and {flags[w] for w in ("A3", "B1", "B3")} == {"missing"}
    assert not plate.reads[0].is_covered("A3") and plate.reads[0].is_covered("A2")
    assert plate.reads[0].texts == {"A1": "foo", "A2": "*0.5*"}  # the text of every flagged cell is kept


def test_time_and_date_helpers():
    assert parse_duration("47:08:22") == 169702 and parse_duration("0:20") == 20 and parse_duration("x") is None
    assert parse_datetime("4/11/2024", "5:27:15 PM") == "2024-04-11T17:27:15"
    assert parse_datetime("2019-12-08", "16:22:44") == "2019-12-08T16:22:44"
    assert parse_datetime("25/01/2024 17:23:30") == "2024-01-25T17:23:30"
    assert parse_datetime("someday") is None


def test_well_per_row_results_table(tmp_path):
    """Gen5's row-wise export: a line per well under 'Well, Well ID, Conc/Dil, 450' (synthetic: none in the corpus)."""
    text = ("Software Version\t3.11.19\n\nPlate Number\tPlate 1\nReader Type:\tSynergy H1\n\nProcedure Details\n\n"
            "Plate Type\t96 WELL PLATE\nRead\tAbsorbance Endpoint\n\tFull Plate\n\tWavelengths:  450\n\nResults\n\n"
            "Well\tWell ID\tConc/Dil\t450\tBlank 450\nA1\tBLK\t\t0.051\t0.000\nA2\tSTD1\t100\t1.205\t1.154\n"
            "H12\tSPL1\t\tOVRFLW\t?????\n")
    path = tmp_path / "rows.txt"
    path.write_text(text)
    [plate] = read_gen5(load(path))
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("450", "endpoint", 450), ("Conc/Dil", "calculated", None), ("Blank 450", "calculated", 450)]
    od, conc, blank = plate.reads
    assert od.value("A2") == 1.205 and od.flags["H12"] == "saturated" and conc.value("A2") == 100
    assert blank.value("A2") == 1.154 and od.flags["B1"] == "missing" and not od.is_covered("B1")


def test_clock_column_in_one_pass_equals_cell_by_cell():
    """The time axis of a kinetic table is parsed in one regex pass; it must agree with duration() cell by
    cell, and fall back to it when any cell is not a clock text (a blank, a number, a line break)."""
    from assayrunner.cells import duration, durations

    clocks = ["0:00:22", "1:02:03", "12:00", "1.02:03:04", "0:04:22.5", "0:04:22,5", " 3:04 ", "100:00:00"]
    assert durations(clocks) == [22.0, 3723.0, 720.0, 93784.0, 262.5, 262.5, 184.0, 360000.0]
    huge = "9" * 400  # 9.99e399 hours is no float: no time, not an OverflowError
    assert durations([f"{huge}:00:00", f"1.{huge}:00", "0:01"]) == [None, None, 1.0]  # 0:01 is m:ss
    assert duration(f"{huge}.0:00:00") is None
    for column in (clocks + [""], clocks + ["5"], ["0:01\n0:02", "0:03"], [1.5, "0:02"]):
        assert durations(column, 60.0) == [duration(c, 60.0) for c in column]
