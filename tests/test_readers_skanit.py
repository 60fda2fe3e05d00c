"""Thermo SkanIt xlsx report reader on a real Varioskan LUX report (values typed in from openpyxl dumps)."""

import numpy as np
import pytest

from assayrunner.errors import UserError
from assayrunner.source import load
from assayrunner.readers.skanit import read_skanit
from readers_common import EXPORTS, check_json, chosen, other_vendors_files, sniff

REPORT = EXPORTS / "thermo-skanit" / "skanit_varioskan_elisa450_report.xlsx"


def test_varioskan_report_raw_and_calculated_reads():
    plates = read_skanit(load(REPORT))
    check_json(plates)
    [plate] = plates
    assert plate.name == "Plate 1" and (plate.rows, plate.columns) == (8, 12)
    labels = [(r.label, r.kind) for r in plate.reads]
    assert labels == [("Absorbance 1", "endpoint"), ("Blank Subtraction 1", "calculated"),
                      ("Standard Curve 1: Signal", "calculated"),
                      ("Standard Curve 1: Conc. [microg/ml]", "calculated"),
                      ("Dilution Factor 1: Value", "calculated"),
                      ("Dilution Factor 1: Dilution factor", "calculated")]
    assert all(r.wavelength_nm == 450 for r in plate.reads)
    raw, blank, signal, conc, value, _ = plate.reads
    assert raw.value("A1") == 1.7455 and raw.value("A12") == 0.1768 and raw.value("D3") == 0.9125
    assert raw.value("H1") == 0.0905 and raw.value("H12") == 0.1032 and raw.flags == {}
    assert blank.value("A3") == -0.01048 and blank.value("H1") == -0.000555
    assert np.isnan(signal.value("H1")) and signal.value("H3") == 0.3343
    # '> Max' / '< Min' concentrations and the NaN a user typed are flags, not numbers
    assert conc.flags["A1"] == "saturated" and conc.texts["A1"] == "> Max" and np.isnan(conc.value("A1"))
    assert conc.flags["A3"] == "below-range" and conc.value("B1") == 0.5857 and conc.value("A2") == 0.9022
    assert value.flags["A1"] == "missing" and value.value("D4") == 67.8 and value.value("H4") == 0.7171
    meta = plate.metadata
    assert meta["instrument"] == "Varioskan LUX" and meta["serial"] == "3020-81776"
    assert meta["software"].startswith("SkanIt Software 7.0") and meta["datetime"] == "2023-06-05T18:09:56"
    assert meta["temperature_c"] == 23.8 and meta["plate_type"] == "ANSI/SBS Standard, 96-well"
    assert meta["wavelengths_nm"] == [450]


def test_sniff_picks_skanit():
    assert chosen(REPORT) == "skanit"


def test_garbled_workbooks_are_user_errors(tmp_path):
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(REPORT.read_bytes()[:4000])
    with pytest.raises(UserError, match="truncated.xlsx"):
        read_skanit(load(truncated))
    other = EXPORTS / "tecan" / "magellan_od595_long_format.xlsx"
    with pytest.raises(UserError, match="no SkanIt results sheet"):
        read_skanit(load(other))


def test_sniff_is_zero_on_other_vendors_files():
    others = other_vendors_files("thermo-skanit")
    assert others and [p.name for p in others if sniff("skanit", p) != 0] == []
