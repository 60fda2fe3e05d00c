"""Bad data is refused or, where the protocol allows, left out and said: the rules behind tests/data/bad."""

import json

import numpy as np
import pytest

from conftest import DATA, REPO, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
PROTOCOL = REPO / "protocols" / "ncl-ita-1.toml"
CAL1 = '{ wells = "A3:A4", role = "calibrator", name = "CAL1", nominal = 0.8, unit = "mg/mL" }'


def grid(path):
    """Well -> number of the hemolysis plate, read with plain Python."""
    rows = [line.split(",") for line in path.read_text().splitlines() if line[:2] in [f"{r}," for r in "ABCDEFGH"]]
    return {f"{r[0]}{c}": float(v) for r in rows for c, v in enumerate(r[1:], start=1) if v}


@pytest.mark.parametrize("text, flag", [("1e400", "overflow"), ("-inf", "overflow"), ("1e308", "overflow"),
                                        ("NaN", "missing"), ("#NUM!", "overflow")])
def test_a_value_that_is_no_finite_number_is_a_flagged_well(cli, workdir, text, flag):
    path = workdir / "odd.csv"
    path.write_text(PLATE.read_text().replace("A,0.0441,0.0456,0.3497", f"A,0.0441,0.0456,{text}", 1))
    result, data = cli.json("read", path)
    assert result.exit_code == 0
    read = data["plates"][0]["reads"][0]
    assert read["flags"]["A3"] == flag and "A3" not in read["values"] and read["texts"]["A3"]
    assert read["values"]["A4"] == 0.3495


def test_leave_out_in_the_protocol_drops_the_well_and_every_result_says_so(cli, workdir):
    plate = workdir / "nan_a3.csv"
    plate.write_text(PLATE.read_text().replace("A,0.0441,0.0456,0.3497", "A,0.0441,0.0456,NaN", 1))
    protocol = workdir / "leave-out.toml"
    text = PROTOCOL.read_text()
    assert CAL1 in text
    protocol.write_text(text.replace(CAL1, CAL1[:-2] + ", leave_out = true }"))
    refused = cli("execute", "hemolysis", plate)
    assert refused.exit_code == 2 and "well A3" in refused.stderr and "leave_out = true" in refused.stderr
    result, data = cli.json("execute", "hemolysis", plate, "--protocol", protocol)
    assert result.exit_code == 0, result.output
    for row in data["results"]:
        assert "missing well A3 (CAL1) left out" in row["flags"]
    fit = json.loads(cli("runs", "show", str(data["run_id"]), "--json").stdout)["fits"][0]
    v = grid(PLATE)
    blank = (v["A1"] + v["A2"]) / 2
    levels = {"A4": .8, "A5": .4, "A6": .4, "A7": .2, "A8": .2, "A9": .1, "A10": .1, "A11": .05, "A12": .05,
              "B1": .025, "B2": .025}  # A3 left out
    slope, intercept = np.polyfit(list(levels.values()), [v[w] - blank for w in levels], 1)
    assert fit["parameters"]["slope"] == pytest.approx(slope, rel=1e-12)
    assert fit["parameters"]["intercept"] == pytest.approx(intercept, rel=1e-9)


def test_a_384_well_export_of_the_96_well_area_is_accepted(cli, workdir):
    """The rule for 'more': data outside the layout's rows x columns is refused, empty extra wells are not."""
    v = grid(PLATE)
    lines = ["Wavelength,540 nm", "," + ",".join(str(c) for c in range(1, 25))]
    for r in "ABCDEFGHIJKLMNOP":
        lines.append(r + "," + ",".join(str(v.get(f"{r}{c}", "")) for c in range(1, 25)))
    wide = workdir / "plate384.csv"
    wide.write_text("\n".join(lines) + "\n")
    _, small = cli.json("execute", "hemolysis", PLATE)
    result, large = cli.json("execute", "hemolysis", wide)
    assert result.exit_code == 0, result.output
    assert [r["value"] for r in large["results"]] == [r["value"] for r in small["results"]]
    wide.write_text(wide.read_text().replace("\nP,", "\nP,0.5", 1))
    refused = cli("execute", "hemolysis", wide)
    assert refused.exit_code == 2 and "P1" in refused.stderr and count_rows(workdir / "assayrun.db") == 2


def test_a_second_plate_is_chosen_with_plate(cli, workdir):
    twice = workdir / "twice.csv"
    other = PLATE.read_text().replace("A,0.0441,0.0456,0.3497", "A,0.0441,0.0456,0.3600", 1)
    twice.write_text(PLATE.read_text() + "\n" + other)
    assert cli("execute", "hemolysis", twice).exit_code == 2
    _, first = cli.json("execute", "hemolysis", twice, "--plate", "1")
    _, second = cli.json("execute", "hemolysis", twice, "--plate", "2")
    _, alone = cli.json("execute", "hemolysis", PLATE)
    assert [r["value"] for r in first["results"]] == [r["value"] for r in alone["results"]]
    assert [r["value"] for r in second["results"]] != [r["value"] for r in alone["results"]]


def test_an_evenly_repeated_well_list_is_still_a_kinetic_read(cli, workdir):
    """Duplicate wells are refused, but a list naming every well the same number of times is a series."""
    path = workdir / "series.csv"
    path.write_text("Well,OD\n" + "".join(f"{w},{t / 10}\n" for t in range(3) for w in ("A1", "A2", "B1")))
    result, data = cli.json("read", path)
    assert result.exit_code == 0 and data["plates"][0]["reads"][0]["kind"] == "kinetic"
    path.write_text(path.read_text() + "A1,0.9\n")
    refused = cli("read", path)
    assert refused.exit_code == 2 and "A1 is listed more than once" in refused.stderr
