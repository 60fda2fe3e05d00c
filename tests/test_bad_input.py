"""Bad input is a normal day: exit 2, one line naming the file and the place, nothing stored."""

import pytest

from conftest import DATA, REPO, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
PROTOCOL = REPO / "protocols" / "ncl-ita-1.toml"


def plate_with(workdir, name, old, new):
    path = workdir / name
    text = PLATE.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def protocol_with(workdir, old, new):
    path = workdir / "edited.toml"
    text = PROTOCOL.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def forty_eight_well(workdir):
    lines = ["Wavelength,540 nm", "," + ",".join(str(c) for c in range(1, 9))]
    lines += [f"{r}," + ",".join(["0.1"] * 8) for r in "ABCDEF"]
    path = workdir / "plate48.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def rows_a_to_d(workdir):
    """The valid plate with rows E-H cut off: a grid that simply stops early, no plate size declared."""
    lines = [line for line in PLATE.read_text().splitlines() if line[:2] not in ("E,", "F,", "G,", "H,")]
    path = workdir / "short.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def well_list_without_a3(workdir):
    """The valid plate as a well list that does not name A3 (a calibrator): the list declares what was read."""
    import csv

    lines = [row for row in csv.reader(PLATE.read_text().splitlines()) if row and len(row[0]) == 1 and row[0].isalpha()]
    body = [f"{row[0]}{c},{v}" for row in lines for c, v in enumerate(row[1:], start=1) if v and f"{row[0]}{c}" != "A3"]
    path = workdir / "list.csv"
    path.write_text("Well,Value,Read\n" + "\n".join(f"{line},540 nm" for line in body) + "\n")
    return path


CASES = {
    "well list without a calibrator well": (lambda w: [well_list_without_a3(w)],
                                           ["list.csv", "does not cover 1 well", "A3"]),
    "grid that stops after row D": (lambda w: [rows_a_to_d(w)], ["short.csv", "does not cover", "E1", "whole plate"]),
    "empty file": (lambda w: (w / "empty.csv").write_text("") or [w / "empty.csv"],
                   ["empty.csv", "empty"]),
    "binary file": (lambda w: (w / "image.png").write_bytes(bytes(range(256)) * 40) and [w / "image.png"],
                    ["image.png", "binary"]),
    "plate smaller than the layout": (lambda w: [forty_eight_well(w)], ["plate48.csv", "6 x 8", "8 x 12"]),
    "non-numeric cell in a layout well": (
        lambda w: [plate_with(w, "text.csv", "A,0.0441,0.0456,0.3497", "A,0.0441,0.0456,abc")],
        ["text.csv", "well A3", "CAL1", "'abc'"]),
    "layout well with no value": (
        lambda w: [plate_with(w, "hole.csv", "B,0.0573,0.0569,0.2822", "B,0.0573,0.0569,")],
        ["hole.csv", "well B3", "QC high", "no value"]),
    "protocol with an unknown key": (
        lambda w: [PLATE, "--protocol", protocol_with(w, "flag_cv_percent = 20.0", "flag_cv_pecrent = 20.0")],
        ["edited.toml", "parameters.flag_cv_pecrent", "unknown key; did you mean 'flag_cv_percent'?"]),
    "protocol with a wrong type": (
        lambda w: [PLATE, "--protocol", protocol_with(w, 'nominal = 0.4, unit', 'nominal = "zero point four", unit')],
        ["edited.toml", "layout.wells[2].nominal", "number"]),
    "protocol TOML syntax": (
        lambda w: [PLATE, "--protocol", protocol_with(w, 'id = "ncl-ita-1"', 'id = "ncl-ita-1')],
        ["edited.toml", "not valid TOML", "line"]),
    "samples file naming an unknown slot": (
        lambda w: [PLATE, "--samples", _samples(w, "slot,sample\nS1,NP-1\nS17,NP-2\n")],
        ["samples.csv", "line 3", "'S17'"]),
    "missing file": (lambda w: [w / "nope.csv"], ["nope.csv", "not found"]),
    "unknown protocol id": (lambda w: [PLATE, "--protocol", "ncl-ita-99"], ["ncl-ita-99", "ncl-ita-1"]),
}


def _samples(workdir, text):
    path = workdir / "samples.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_stores_nothing(cli, workdir, case):
    make, expected = CASES[case]
    args = make(workdir)
    result = cli("execute", "hemolysis", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0]
    assert "Traceback" not in result.output
    assert count_rows(workdir / "assayrun.db") == 0


def test_unknown_assay(cli):
    result = cli("execute", "hemolisys", PLATE)
    assert result.exit_code == 2
    assert "unknown assay 'hemolisys'" in result.stderr and "hemolysis" in result.stderr


def test_missing_db_for_runs(cli):
    result = cli("runs")
    assert result.exit_code == 2 and "assayrun.db" in result.stderr


def test_unknown_run(cli):
    assert cli("execute", "hemolysis", PLATE).exit_code == 0
    result = cli("runs", "show", "42")
    assert result.exit_code == 2 and "no run 42" in result.stderr
