"""PerkinElmer EnVision and Revvity Kaleido CSV reader on real exports (values typed in from the files)."""

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.source import load
from assayrunner.readers.perkinelmer import read_perkinelmer
from readers_common import EXPORTS, check_json, chosen, other_vendors_files, sniff

DATA = EXPORTS / "perkinelmer-revvity"
ENVISION = DATA / "envision_bca562_384well_multiplate.csv"
KALEIDO = DATA / "kaleido_abs_endpoint_96well.csv"


def test_envision_two_plates_with_a_calculated_read():
    plates = read_perkinelmer(load(ENVISION))
    check_json(plates)
    assert [p.name for p in plates] == ["Plate 1", "Plate 2"]
    assert all((p.rows, p.columns) == (16, 24) for p in plates)
    [bca] = plates[0].reads
    assert (bca.label, bca.kind, bca.wavelength_nm) == ("BCA Absorbance @ 562", "endpoint", 562)
    assert bca.value("A1") == 2.63 and bca.value("A24") == 2.727 and bca.value("N1") == 3.3
    assert bca.value("P1") == 2.921 and bca.value("P24") == 2.639
    assert not np.isnan(bca.values).any()
    calc, lum = plates[1].reads
    assert (calc.label, calc.kind, calc.wavelength_nm) == ("Calc 1: Crosstalk", "calculated", None)
    assert calc.value("A1") == 8 and calc.value("A15") == 0 and calc.value("B8") == 12 and calc.value("C24") == 0
    assert (lum.label, lum.kind, lum.wavelength_nm) == ("Screen 384 OptiPlate", "endpoint", None)
    assert lum.value("A1") == 8 and lum.value("P24") == 4 and lum.value("P6") == 12
    meta1, meta2 = plates[0].metadata, plates[1].metadata
    assert meta1["barcode"] == "8/22/2023 10:50:28 AM" and meta2["barcode"] == "8/22/2023 10:57:39 AM"
    assert meta1["temperature_c"] == 24.53 and meta2["temperature_c"] == 24.24
    assert meta1["serial"] == "1051017" and meta1["plate_type"] == "384 OptiPlate"
    assert meta1["software"] == "EnVision Workstation 1.14.3049.1193" and meta1["protocol"] == "DL Test Alpha"
    assert meta1["datetime"] == "2023-08-22T10:54:07"


def test_kaleido_non_breaking_spaces_and_full_precision():
    plates = read_perkinelmer(load(KALEIDO))
    check_json(plates)
    [plate] = plates
    assert plate.name == "V-2020-10-26 16:16:17" and (plate.rows, plate.columns) == (8, 12)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("ABS mono 1", "endpoint", 450)
    assert read.value("A1") == 2.2075694995298862 and read.value("A12") == 2.4485544663521188
    assert read.value("A11") == 0.049993264081777893 and read.value("D4") == 0.38152591374402339
    assert read.value("H1") == 0.0422600902144679 and read.value("H12") == 0.043160960819347817
    assert not np.isnan(read.values).any() and read.flags == {}
    meta = plate.metadata
    assert meta["software"] == "Kaleido 2.0.3058.126" and meta["serial"] == "1234567"
    assert meta["plate_type"] == "96 General" and meta["datetime"] == "2020-10-26T16:16:18.2284559-04:00"


def test_unlabelled_grid_with_markers_and_decimal_commas(tmp_path):
    """An EnVision-style semicolon export (decimal commas) of a 96-well plate with markers."""
    rows = [";".join(["0,5"] * 12) + ";"] * 8
    rows[0] = "OVRFLW;>4,000;<0,000;*1,2*;" + ";".join(["0,25"] * 8) + ";"
    text = "\r\n".join(["Plate information", "Plate;Repeat;Barcode;Label;", "1;1;ABC;Abs @ 450(1);", "",
                        *rows, "", "Exported with EnVision Workstation version 1.14", ""])
    path = tmp_path / "semicolon.csv"
    path.write_text(text)
    assert chosen(path) == "perkinelmer"
    [plate] = read_perkinelmer(load(path))
    [read] = plate.reads
    assert (plate.rows, plate.columns) == (8, 12) and read.wavelength_nm == 450
    assert read.flags == {"A1": "saturated", "A2": "saturated", "A3": "below-range", "A4": "masked"}
    assert np.isnan(read.values[0, :4]).all() and read.value("A5") == 0.25 and read.value("H12") == 0.5


def test_sniff_picks_perkinelmer():
    assert chosen(ENVISION) == "perkinelmer" and chosen(KALEIDO) == "perkinelmer"


@pytest.mark.parametrize("text", [
    "Plate information\r\nfoo,bar\r\n1,2\r\n",
    "Plate information\r\nPlate,Repeat,Barcode\r\n1,1,X\r\n\r\nPlate information\r\n",
    "\r\nResults for ABS\r\nBarcode: 1, PlateRepeat: 1\r\nno grid here\r\n",
])
def test_garbled_file_is_a_user_error(tmp_path, text):
    path = tmp_path / "garbled.csv"
    path.write_text(text)
    with pytest.raises(UserError, match="garbled.csv"):
        read_perkinelmer(load(path))


def test_sniff_is_zero_on_other_vendors_files():
    others = other_vendors_files("perkinelmer-revvity")
    assert others and [p.name for p in others if sniff("perkinelmer", p) != 0] == []
