"""The allotropy fallback reader: real conversions when allotropy is installed, clear errors when not."""

import subprocess
import sys

import numpy as np
import pytest

from assayrunner.plugins import load
from assayrunner.source import load as source
from readers_common import EXPORTS, check_json, chosen

ELISA = EXPORTS / "bmg-labtech" / "pherastar_dsrna_elisa450.csv"
KALEIDO = EXPORTS / "perkinelmer-revvity" / "kaleido_abs_endpoint_96well.csv"


def test_native_readers_win_over_the_fallback():
    pytest.importorskip("allotropy")
    allotropy = load().readers["allotropy"]
    for path in (ELISA, KALEIDO, EXPORTS / "thermo-skanit" / "skanit_varioskan_elisa450_report.xlsx"):
        assert allotropy.sniff(source(path)) == 0.2
        assert chosen(path) != "allotropy"


def test_fallback_leaves_unrelated_files_alone(tmp_path):
    pytest.importorskip("allotropy")
    notes = tmp_path / "notes.csv"
    notes.write_text("name,comment\nbuffer,made on Monday\n")
    assert load().readers["allotropy"].sniff(source(notes)) == 0.0


def test_forced_allotropy_reads_bmg_and_kaleido():
    pytest.importorskip("allotropy")
    reader = load().readers["allotropy"]
    [plate] = reader.read(source(ELISA))
    check_json([plate])
    assert plate.name == "20260618 dsRNA _PLATE_01_18Jun26" and (plate.rows, plate.columns) == (8, 12)
    [read] = plate.reads
    assert (read.label, read.kind, read.wavelength_nm) == ("Absorbance 450 nm", "endpoint", 450)
    assert read.value("A1") == 1.691 and read.value("G12") == 1.4 and read.value("H12") == 0.884
    assert plate.metadata["converter"].startswith("allotropy") and "BMG_MARS" in plate.metadata["converter"]
    [plate] = reader.read(source(KALEIDO))
    [read] = plate.reads
    assert read.value("A1") == 2.2075694995298862 and read.value("H12") == 0.043160960819347817
    assert not np.isnan(read.values).any() and plate.metadata["serial"] == "1234567"


def test_forced_allotropy_on_a_file_it_cannot_convert(tmp_path):
    pytest.importorskip("allotropy")
    from assayrunner.errors import UserError

    path = tmp_path / "notes.csv"
    path.write_text("just,some\nnotes,here\n")
    with pytest.raises(UserError, match="notes.csv: allotropy could not convert"):
        load().readers["allotropy"].read(source(path))


def test_without_allotropy_sniff_is_zero_and_reading_names_the_extra():
    """In a fresh interpreter where importing allotropy fails, as when it is not installed."""
    code = (
        "import sys; sys.modules['allotropy'] = None\n"
        "from pathlib import Path\n"
        "from assayrunner.errors import UserError\n"
        "from assayrunner.readers import allotropy_fallback as a\n"
        "from assayrunner.source import load\n"
        f"path = Path({str(ELISA)!r})\n"
        "print(a.sniff_allotropy(load(path)))\n"
        "try:\n    a.read_allotropy(load(path))\nexcept UserError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    score, message = out.strip().splitlines()
    assert float(score) == 0.0
    assert "pip install 'assayrunner[allotropy]'" in message and "pherastar_dsrna_elisa450.csv" in message
