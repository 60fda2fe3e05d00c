"""Tecan i-control and Magellan reader on real xlsx exports (values typed in from openpyxl cell dumps)."""

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.source import load
from assayrunner.readers.tecan import read_tecan
from readers_common import EXPORTS, check_json, chosen, markers, other_vendors_files, sniff

DATA = EXPORTS / "tecan"
ICONTROL = DATA / "icontrol_infinite200pro_kinetic_od600_gfp.xlsx"
MAGELLAN = DATA / "magellan_od595_long_format.xlsx"


def test_icontrol_kinetic_time_across_columns():
    plates = read_tecan(load(ICONTROL))
    check_json(plates)
    [plate] = plates
    assert plate.name == ICONTROL.stem and (plate.rows, plate.columns) == (8, 12)
    od, fluo = plate.reads
    assert (od.label, od.kind, od.wavelength_nm) == ("OD", "kinetic", 600)
    assert (fluo.label, fluo.kind, fluo.wavelength_nm) == ("Fluorescence", "kinetic", 507)
    assert od.values.shape == fluo.values.shape == (8, 12, 131)  # 990 cycles configured, 131 run
    assert od.times_s[0] == 0 and od.times_s[1] == 1823.7 and od.times_s[-1] == 236948.6
    assert fluo.times_s[1] == 1822.7 and fluo.times_s[-1] == 236947.7
    assert od.value("A1")[0] == 0.0538000017404556 and od.value("A1")[130] == 0.233300000429153
    assert od.value("H2")[4] == 0.171200007200241 and od.value("H12")[0] == 0.0504000000655651
    assert od.value("H12")[130] == 0.0498999990522862 and od.flags == {}
    # OVER cells: flagged, NaN, never numbers; later cycles of the same well keep their numbers
    assert fluo.value("A1")[0] == 25382 and np.isnan(fluo.value("A1")[129]) and fluo.value("A1")[130] == 64512
    assert fluo.flags["A1"] == "saturated" and fluo.texts["A1"] == "OVER"
    assert fluo.flags["E1"] == "saturated" and np.isnan(fluo.value("E1")[127:]).all()
    assert fluo.value("G3")[130] == 68995 and fluo.value("H12")[130] == 26247 and "H12" not in fluo.flags
    meta = plate.metadata
    assert meta["instrument"] == "infinite 200Pro" and meta["serial"] == "1009001467"
    assert meta["software"] == "Tecan i-control 1.8.50.0" and meta["user"] == "WICCWEI-AYQ18RH\\ronm"
    assert meta["datetime"] == "2014-12-25T16:49:44" and meta["temperature_c"] == 37.1
    assert meta["excitation_nm"] == {"Fluorescence": 481} and meta["wavelengths_nm"] == [507, 600]
    assert meta["plate_type"].startswith("Greiner 96 Flat Bottom")


def test_magellan_long_list_column_major():
    plates = read_tecan(load(MAGELLAN))
    check_json(plates)
    [plate] = plates
    assert plate.name == "96WEL008" and (plate.rows, plate.columns) == (8, 12)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Raw data", "endpoint", 595)
    assert read.value("A1") == 0.1462 and read.value("B1") == 0.2118 and read.value("G6") == 0.1441
    assert read.value("A11") == 0.0462 and read.value("E12") == 0.0511 and read.value("H12") == 0.0461
    assert not np.isnan(read.values).any()
    meta = plate.metadata
    assert meta["datetime"] == "2021-07-06T09:43:07" and meta["serial"] == "12901000069"
    assert meta["instrument"] == "ULTRA" and meta["user"] == "Unknown user" and meta["temperature_c"] == 23.4
    assert meta["plate_type"] == "GRE96ft.pdf" and meta["mode"] == "Absorbance"


def test_icontrol_text_export_endpoint_grid(tmp_path):
    """The i-control layout written as tab-separated text: a '<>' grid with markers."""
    lines = ["Application: Tecan i-control\t\t\t\tTecan i-control , 2.0.10.0",
             "Device: infinite M200Pro\t\t\t\tSerial number: 123", "Mode\t\t\t\tAbsorbance",
             "Wavelength\t\t\t\t450\tnm", "Label: Label1", "Start Time:\t3/1/2024 10:00:00 AM",
             "\t".join(["<>", *map(str, range(1, 13))])]
    for r, row in enumerate("ABCDEFGH"):
        lines.append("\t".join([row, *[f"0.{r}{c:02d}" for c in range(12)]]))
    lines[-8] = "A\tOVER\tINVALID\t" + "\t".join(["0.5"] * 10)
    path = tmp_path / "icontrol.txt"
    path.write_text("\n".join(lines) + "\nEnd Time:\t3/1/2024 10:01:00 AM\n")
    assert chosen(path) == "tecan"
    [plate] = read_tecan(load(path))
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Label1", "endpoint", 450)
    assert read.flags == {"A1": "saturated", "A2": "invalid"} and read.value("A3") == 0.5
    assert read.value("H12") == 0.711 and plate.metadata["serial"] == "123"


def test_magellan_csv_with_decimal_commas(tmp_path):
    rows = ["Raw data;Well positions;Plate", "0,1462;A1;P1", "OVER;B1;", "0,5;H12;",
            "Date of measurement: 2021-07-06/Time of measurement: 09:43:07", "Measurement wavelength: 405 nm"]
    path = tmp_path / "magellan.csv"
    path.write_text("\r\n".join(rows))
    assert chosen(path) == "tecan"
    [plate] = read_tecan(load(path))
    [read] = plate.reads
    assert plate.name == "P1" and read.value("A1") == 0.1462 and read.value("H12") == 0.5
    assert markers(read) == {"B1": "saturated"} and read.wavelength_nm == 405


def test_sniff_picks_tecan():
    assert chosen(ICONTROL) == "tecan" and chosen(MAGELLAN) == "tecan"


def test_garbled_files_are_user_errors(tmp_path):
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(ICONTROL.read_bytes()[:5000])
    with pytest.raises(UserError, match="truncated.xlsx"):
        read_tecan(load(truncated))
    no_data = tmp_path / "no_data.csv"
    no_data.write_text("Application: Tecan i-control\nDevice: infinite 200Pro\n")
    with pytest.raises(UserError, match="no Tecan data block"):
        read_tecan(load(no_data))
    no_wells = tmp_path / "no_wells.csv"
    no_wells.write_text("Raw data,Well positions,Plate\nDate of measurement: x\n")
    with pytest.raises(UserError, match="no_wells.csv.*no wells"):
        read_tecan(load(no_wells))


def test_sniff_is_zero_on_other_vendors_files():
    others = other_vendors_files("tecan")
    assert others and [p.name for p in others if sniff("tecan", p) != 0] == []
