"""BMG LABTECH MARS CSV reader on real PHERAstar exports (values typed in from the files)."""

import re

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.source import load
from assayrunner.readers.bmg import read_bmg
from readers_common import EXPORTS, check_json, chosen, markers, other_vendors_files, sniff

DATA = EXPORTS / "bmg-labtech"
QC384 = DATA / "pherastar_abs484_384well_qc.csv"
ELISA = DATA / "pherastar_dsrna_elisa450.csv"


def test_pherastar_384_partial_plate():
    plates = read_bmg(load(QC384))
    check_json(plates)
    [plate] = plates
    assert plate.name == "472-0016" and (plate.rows, plate.columns) == (16, 24)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Raw Data (484)", "endpoint", 484)
    assert read.value("A1") == 0.031 and read.value("A20") == 0.033 and read.value("C1") == 2.368
    assert read.value("C6") == 2.412 and read.value("I7") == 0.07 and read.value("O18") == 0.03
    assert read.value("P24") == 0.032
    assert np.isnan(read.value("A8")) and np.isnan(read.value("C7")) and np.isnan(read.value("J1"))
    assert np.count_nonzero(~np.isnan(read.values)) == 99 and read.flags == {}
    meta = plate.metadata
    assert meta["instrument"] == "PHERAstar" and meta["user"] == "USER" and meta["test_name"] == "472 ABS 384 QC"
    assert (meta["date"], meta["time"], meta["test_run"]) == ("03/03/2016", "16:54:03", "3")
    assert meta["wavelengths_nm"] == [484.0] and meta["mode"] == "Absorbance"


def test_pherastar_elisa_96():
    [plate] = read_bmg(load(ELISA))
    assert plate.name == "20260618 dsRNA _PLATE_01_18Jun26" and (plate.rows, plate.columns) == (8, 12)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Raw Data (450)", "endpoint", 450)
    assert read.value("A1") == 1.691 and read.value("A12") == 1.641 and read.value("D6") == 0.165
    assert read.value("G12") == 1.4 and read.value("H1") == 0.069 and read.value("H12") == 0.884
    assert not np.isnan(read.values).any()
    assert plate.metadata["datetime"] == "2026-06-18T15:56:48" and plate.metadata["test_name"] == "dsRNA ELISA"


def _semicolon_decimal_comma(text: str) -> str:
    return re.sub(r"(\d)\.(\d)", r"\1,\2", text.replace(",", ";"))


def test_decimal_comma_markers_and_two_reads(tmp_path):
    """A semicolon export (German locale) with markers and a second, calculated grid."""
    text = _semicolon_decimal_comma(ELISA.read_bytes().decode())
    text = text.replace("A;1,691;1,557;1,583;0,596;0,336;0,221;0,162",
                        "A;OVRFLW;>4,000;<0,000;?????;*0,336*;MISSED;overflow")
    grid = text[text.index(";1;2;3"):]
    text += "Blank corrected based on Raw Data (450)\r\n\r\n" + grid
    path = tmp_path / "semicolon.csv"
    path.write_text(text)
    assert chosen(path) == "bmg"
    [plate] = read_bmg(load(path))
    raw, blank = plate.reads
    assert raw.value("B1") == 1.016 and raw.value("H12") == 0.884 and blank.value("H12") == 0.884
    assert (blank.kind, blank.wavelength_nm) == ("calculated", 450)
    assert raw.flags == {"A1": "saturated", "A2": "saturated", "A3": "below-range", "A4": "missing",
                         "A5": "masked", "A6": "missing", "A7": "saturated"}
    assert np.isnan(raw.values[0, :7]).all() and raw.texts["A5"] == "*0,336*"


def test_sniff_picks_bmg():
    assert chosen(QC384) == "bmg" and chosen(ELISA) == "bmg"


@pytest.mark.parametrize("text", [
    "User: USER,Path: C:\\BMG\\CLARIOstar\\User\\Data\r\nTest name: x\r\nRaw Data (450)\r\nnot a grid\r\n",
    "",
])
def test_garbled_file_is_a_user_error(tmp_path, text):
    path = tmp_path / "garbled.csv"
    path.write_text(text)
    with pytest.raises(UserError, match="garbled.csv"):
        read_bmg(load(path))


def test_sniff_is_zero_on_other_vendors_files():
    others = other_vendors_files("bmg-labtech")
    assert others and [p.name for p in others if sniff("bmg", p) != 0] == []


def test_table_layout_gives_a_read_per_value_column(tmp_path):
    """MARS 'table' export (synthetic: no real one in the corpus): Well Row, Well Col, Content, values."""
    lines = ["User: USER,Path: C:\\Program Files (x86)\\BMG\\CLARIOstar\\User\\Data,Test run no.: 7",
             "Test name: FI,Date: 01.02.2024,Time: 10:00:00", "ID1: P7", "Fluorescence (FI)", "",
             "Well Row,Well Col,Content,Raw Data (485/520),Blank corrected based on Raw Data (485/520)",
             "A,1,Sample X1,1200,1100", "A,2,Sample X2,overflow,", "H,12,Blank B,100,0"]
    path = tmp_path / "table.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    assert chosen(path) == "bmg"
    [plate] = read_bmg(load(path))
    raw, blank = plate.reads
    assert (plate.name, plate.rows, plate.columns, plate.metadata["instrument"]) == ("P7", 8, 12, "CLARIOstar")
    assert (raw.kind, raw.wavelength_nm, blank.kind) == ("endpoint", 520, "calculated")
    assert raw.value("A1") == 1200 and raw.value("H12") == 100 and blank.value("A1") == 1100
    assert markers(raw) == {"A2": "saturated"} and np.isnan(blank.value("A2"))


def test_microplate_view_of_a_kinetic_run_is_one_kinetic_read(tmp_path):
    """MARS writes a kinetic run's microplate view as a grid per cycle, 'Raw Data (600) 1', '... 2' (synthetic)."""
    lines = ["User: USER,Path: C:\\Program Files (x86)\\BMG\\CLARIOstar\\User\\Data,Test run no.: 12",
             "Test name: kinetic,Date: 01/02/2024,Time: 10:00:00", "ID1: K1", "Absorbance", ""]
    for cycle, (seconds, values) in enumerate([(0, "0.1,0.2,0.3"), (30, "0.11,0.21,OVRFLW")], start=1):
        lines += [f"Raw Data (600) {cycle}", f"Time [s]: {seconds}", ",1,2,3", f"A,{values}", "B,0.4,0.5,0.6", ""]
    path = tmp_path / "cycles.csv"
    path.write_text("\r\n".join(lines))
    [plate] = read_bmg(load(path))
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Raw Data (600)", "kinetic", 600)
    assert list(read.times_s) == [0, 30] and list(read.value("A2")) == [0.2, 0.21]
    assert read.point_flags == {"A3": {1: "saturated"}} and read.value("A3")[0] == 0.3


def test_table_view_with_cycle_times_in_the_column_headers(tmp_path):
    """'Raw Data (600) 2 - 0 h 10 min' headers give each cycle's time whatever unit the Time line is in (synthetic)."""
    lines = ["User: USER,Path: C:\\Program Files (x86)\\BMG\\SPECTROstar Nano\\User\\Data,Test run no.: 5",
             "Test name: growth,Date: 01/02/2024,Time: 10:00:00", "Absorbance", "",
             "Well,Content,Raw Data (600) 1 - 0 h ,Raw Data (600) 2 - 0 h 10 min ,Raw Data (600) 3 - 0 h 20 min ",
             ",Time,0,0.167,0.333", "A01,Sample X1,0.1,0.2,0.3", "A02,Sample X2,0.11,0.21,0.31"]
    path = tmp_path / "stamped.csv"
    path.write_text("\n".join(lines) + "\n")
    [plate] = read_bmg(load(path))
    [read] = plate.reads
    assert (read.label, read.kind, list(read.times_s)) == ("Raw Data (600)", "kinetic", [0, 600, 1200])
    assert list(read.value("A2")) == [0.11, 0.21, 0.31]


def test_workbook_plates_with_one_id_are_named_by_their_own_sheets(tmp_path):
    """Two sheets with plates of the same ID1 after a sheet without a plate: each plate takes its own sheet's name."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Notes"
    book.active.append(["exported by MARS, see the plate sheets"])
    for title, value in (("Run A", 0.1), ("Run B", 0.2)):
        sheet = book.create_sheet(title)
        for row in (["User: USER", "Path: C:\\BMG\\PHERAstar\\User\\Data"], ["ID1: P9"], ["Absorbance"],
                    ["Raw Data (450)"], [None, 1, 2], ["A", value, value]):
            sheet.append(row)
    path = tmp_path / "two.xlsx"
    book.save(path)
    plates = read_bmg(load(path))
    assert [(p.name, p.reads[0].value("A1")) for p in plates] == [("P9 (Run A)", 0.1), ("P9 (Run B)", 0.2)]
