"""SoftMax Pro reader on real '##BLOCKS=' text exports (values typed in from the files, not from the parser)."""

import math

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.source import load
from assayrunner.readers.softmax import read_softmax, sniff_softmax
from assayrunner.source import decode
from readers_common import EXPORTS, check_json, chosen, markers, other_vendors_files

DATA = EXPORTS / "moldev-softmaxpro"
SOFTMAX_FILES = sorted(DATA.iterdir())


def test_bca_plateformat_latin1_with_bare_cr():
    [plate] = read_softmax(load(DATA / "smp_bca562_plateformat_latin1_cr.txt"))
    assert (plate.name, plate.rows, plate.columns) == ("Plate#1", 8, 12)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("562 nm", "endpoint", 562)
    assert read.value("A1") == 2.4431 and read.value("A12") == 0.1438 and read.value("D5") == 0.1078
    assert read.value("H1") == 0.1166 and read.value("H12") == 0.1129 and read.value("E9") == 0.1173
    assert not np.isnan(read.values).any() and read.flags == {}
    meta = plate.metadata
    assert meta["temperature_c"] == 24.0 and meta["export_format"] == "PlateFormat"
    assert meta["original_filename"] == "20211014 - uBCA - Et eta Gab.pda" and meta["datetime"] == "2021-10-14"
    assert meta["read_mode"] == "Absorbance" and meta["wavelengths_nm"] == [562]
    assert "notes" not in meta  # the Note block is empty ('Note:' CR '~End')
    check_json([plate])


def test_elisa_plateformat_utf16_with_groups():
    [plate] = read_softmax(load(DATA / "smp_elisa450_plateformat_groups_utf16.txt"))
    assert (plate.name, plate.rows, plate.columns) == ("Plate1", 8, 12)
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("450 nm", "endpoint", 450), ("Reduced", "calculated", 450)]
    raw, reduced = plate.reads
    assert raw.value("A1") == 1.785 and raw.value("A12") == -0.06 and raw.value("E4") == 1.814
    assert raw.value("H1") == 0.055 and raw.value("H12") == 0.055 and raw.value("B12") == 0.002
    assert reduced.value("A5") == 2.453 and reduced.value("H4") == 0.427
    meta = plate.metadata
    assert "temperature_c" not in meta  # the temperature cell is 'NaN'
    assert meta["notes"] == ["Standard Lot #", "Control Lot #"]
    assert meta["datetime"] == "2024-02-14T16:07:59" and meta["original_filename"] == "Plate1 (Full Data)"
    groups = meta["groups"]
    assert [g["name"] for g in groups] == ["Std", "Ctrl", "LOQ", "group_1", "group_2", "group_3"]
    std = groups[0]
    assert std["rows"][0] == {"Sample": "St1", "Conc": "320.000", "BackCalcConc": "319.992", "%Diff": "-0.0",
                              "Wells": "A1", "OD": "1.785", "AvgOD": "1.728", "SD": "0.080", "%CV": "4.6",
                              "WellPlateName": "Plate1"}
    assert std["rows"][1] == {"Sample": "St1", "Wells": "A2", "OD": "1.672", "WellPlateName": "Plate1"}
    assert std["formulas"]["BackCalcConc"] == "InterpX(Plot1@Graph1,AvgOD)"
    assert {"name": "MaxConc", "value": "320.00", "formula": "320"} in std["summaries"]
    assert groups[4]["rows"][3]["Result"] == "Range?"
    check_json([plate])


def test_hcp_timeformat_two_wavelengths_utf16():
    [plate] = read_softmax(load(DATA / "smp_hcp_elisa_450_650_timeformat_utf16.txt"))
    assert (plate.name, plate.rows, plate.columns) == ("Plate 1", 8, 12)
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("450 nm", "endpoint", 450), ("650 nm", "endpoint", 650), ("Reduced", "calculated", None)]
    a450, a650, reduced = plate.reads
    assert a450.value("A1") == 0.1003 and a450.value("A3") == 3.5028 and a450.value("H12") == 0.1686
    assert a650.value("A1") == 0.0338 and a650.value("H12") == 0.0344 and a650.value("B2") == 0.0449
    assert reduced.value("A1") == 0.0665 and reduced.value("A3") == pytest.approx(3.4631)
    assert not np.isnan(a450.values).any() and not np.isnan(a650.values).any()
    meta = plate.metadata
    assert meta["export_format"] == "TimeFormat" and meta["wavelengths_nm"] == [450, 650]
    assert "Method name: Residual HEK293-HCP" in meta["notes"]
    assert meta["datetime"] == "2024-11-05T10:45:59"
    assert [g["name"] for g in meta["groups"]] == ["Standards 1", "Positive control 1", "Unknowns"]
    unknowns = meta["groups"][2]["rows"]
    assert unknowns[0]["Dilution Name"] == "Sample 1 100x" and unknowns[1]["Dilution Name"] == "Sample 1 100x"
    assert unknowns[1]["Well"] == "B4" and unknowns[1]["Values"] == "0.595"
    check_json([plate])


def test_partial_plate_timeformat_three_wavelengths():
    [plate] = read_softmax(load(DATA / "smp_partial_plate_260-280-230_utf16.txt"))
    assert (plate.name, plate.rows, plate.columns) == ("Quantitation", 8, 12)
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("260 nm", "endpoint", 260), ("280 nm", "endpoint", 280), ("230 nm", "endpoint", 230),
        ("Reduced", "calculated", None)]
    a260, a280, a230, reduced = plate.reads
    assert a260.value("D4") == 0.000733333333333336 and a260.value("F4") == -0.000966666666666664
    assert a280.value("E5") == 0.149733333333333 and a230.value("F11") == 0.0380333333333334
    assert a260.value("D11") == 0.0505333333333333 and reduced.value("E7") == 0.25553333333333333
    for read in plate.reads:
        filled = {f"{chr(65 + r)}{c + 1}" for r, c in zip(*np.nonzero(~np.isnan(read.values)))}
        assert filled == {f"{row}{col}" for row in "DEF" for col in range(4, 12)}
        assert markers(read) == {}
    # the header says rows D-F, columns 4-11 were read: every other well is marked unread, not empty
    assert a260.flags["A1"] == "missing" and not a260.is_covered("A1") and a260.is_covered("D4")
    assert math.isnan(a260.value("A1")) and math.isnan(a260.value("D3")) and math.isnan(a260.value("D12"))
    meta = plate.metadata
    assert meta["temperature_c"] == 37 and meta["datetime"] == "2024-01-25T17:23:30"
    assert meta["date_saved"] == "25/01/2024 17:23:30"
    [group] = meta["groups"]
    assert group["name"] == "0.5mm_2uL" and group["rows"][0]["A260"] == "1.475"
    assert group["rows"][2] == {"Sample": "MPCTDN186", "Well": "F5", "A260": "1.759", "A280": "1.439",
                                "A230": "1.473", "260:280": "1.222", "260:230": "1.194",
                                "Concentration (ng/uL)": "87.933"}
    check_json([plate])


KINETIC_PLATEFORMAT = (
    "##BLOCKS= 1\r\n"
    "Plate:\tKin\t1.3\tPlateFormat\tKinetic\tAbsorbance\tRaw\tFALSE\t2\t60\t30\t\t\t\t2\t405 650\t1\t2\t96\t1\t2\r\n"
    "\tTemperature(\u00a1C)\t1\t2\t\t1\t2\r\n"
    "00:00:00\t25.0\t0.1\t0.2\t\t0.01\t0.02\r\n"
    "\t\t0.3\t#SAT\t\t0.03\t0.04\r\n\r\n"
    "00:00:30\t25.1\t0.5\t0.6\t\t0.05\t0.06\r\n"
    "\t\t0.7\t0.8\t\t0.07\t0.08\r\n\r\n"
    "~End\r\n"
)


def test_kinetic_plateformat_with_wavelengths_side_by_side(tmp_path):
    """No kinetic SoftMax file is in the corpus: this one is written to the documented layout."""
    path = tmp_path / "kinetic.txt"
    path.write_bytes(KINETIC_PLATEFORMAT.encode("latin-1"))
    [plate] = read_softmax(load(path))
    assert [(r.label, r.kind, r.wavelength_nm) for r in plate.reads] == [
        ("405 nm", "kinetic", 405), ("650 nm", "kinetic", 650)]
    a405, a650 = plate.reads
    assert list(a405.times_s) == [0, 30] and a405.values.shape == (8, 12, 2)
    assert list(a405.value("A1")) == [0.1, 0.5] and list(a650.value("B2")) == [0.04, 0.08]
    assert markers(a405) == {"B2": "saturated"} and math.isnan(a405.value("B2")[0])
    assert plate.metadata["temperature_c"] == 25.0


KINETIC_TIMEFORMAT = (
    "##BLOCKS= 1\n"
    "Plate:\tK\t1.3\tTimeFormat\tKinetic\tAbsorbance\tRaw\tFALSE\t3\t60\t30\t\t\t\t2\t405 650 \t1\t12\t96\t1\t8\n"
    "\tTemperature(\u00a1C)\tA1\tA2\tH12\n"
    "00:00:00\t25.0\t0.1\t0.2\t0.3\n"
    "00:00:30\t25.2\t0.4\tOVER\t0.6\n"
    "00:00:00\t\t\t\t\n\n"  # the run was stopped before the third read
    "00:00:00\t25.0\t0.01\t0.02\t0.03\n"
    "00:00:30\t25.2\t0.04\t0.05\t0.06\n"
    "00:00:00\t\t\t\t\n\n"
    "~End\n"
)


def test_kinetic_timeformat_stopped_run(tmp_path):
    """Written to the documented TimeFormat layout: one paragraph per wavelength, one line per read."""
    path = tmp_path / "kinetic.txt"
    path.write_text(KINETIC_TIMEFORMAT, encoding="utf-8")
    [plate] = read_softmax(load(path))
    a405, a650 = plate.reads
    assert [(r.label, r.kind) for r in plate.reads] == [("405 nm", "kinetic"), ("650 nm", "kinetic")]
    assert list(a405.times_s) == [0, 30] and list(a650.times_s) == [0, 30]
    assert list(a405.value("H12")) == [0.3, 0.6] and list(a650.value("A1")) == [0.01, 0.04]
    assert markers(a405) == {"A2": "saturated"} and np.isnan(a405.value("B1")).all()


@pytest.mark.parametrize("path", SOFTMAX_FILES, ids=lambda p: p.name)
def test_sniffing_chooses_softmax(path):
    assert chosen(path) == "softmax"


def test_softmax_sniff_is_zero_on_other_vendors():
    others = other_vendors_files("moldev-softmaxpro")
    assert others
    for path in others:
        assert sniff_softmax(load(path)) == 0.0, path.name


def test_truncated_file_is_a_user_error(tmp_path):
    data = (DATA / "smp_elisa450_plateformat_groups_utf16.txt").read_bytes()
    cut = tmp_path / "cut.txt"
    cut.write_bytes(data[:1500])  # inside the Plate block: no '~End'
    with pytest.raises(UserError, match="truncated"):
        read_softmax(load(cut))
    data = (DATA / "smp_bca562_plateformat_latin1_cr.txt").read_bytes()
    cut.write_bytes(data[:35])  # the Note block and nothing more
    with pytest.raises(UserError, match="1 of 2 blocks"):
        read_softmax(load(cut))


def test_garbled_plate_header_and_table_are_user_errors(tmp_path):
    path = tmp_path / "garbled.txt"
    path.write_text("##BLOCKS= 1\nPlate:\tP\t1.3\tPlateFormat\n~End\n")
    with pytest.raises(UserError, match="'Plate:' line is incomplete"):
        read_softmax(load(path))
    path.write_text(KINETIC_PLATEFORMAT.replace("\t\t0.7\t0.8\t\t0.07\t0.08\r\n", ""))
    with pytest.raises(UserError, match="plate rows, not"):
        read_softmax(load(path))
    path.write_text("Plate:\tP\n")
    with pytest.raises(UserError, match="##BLOCKS="):
        read_softmax(load(path))


def test_mac_roman_is_detected_for_classic_mac_text():
    assert decode(b"Temperature(\xa1C)\rR\x8esum\x8e\r") == ("Temperature(°C)\rRésumé\r", "mac_roman")
    assert decode(b"Temperature(\xa1C)\r\n")[0] == "Temperature(¡C)\r\n"  # Windows line ends: Latin-1 as before
