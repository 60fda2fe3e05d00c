"""The generic grid and long-table readers, through `assayrun read --json` as users call them."""

import pytest

from assayrunner.plate import PLATE_SHAPES, parse_well, row_label, well_name


@pytest.mark.parametrize("wells", sorted(PLATE_SHAPES))
def test_every_standard_plate_size(cli, workdir, wells):
    rows, columns = PLATE_SHAPES[wells]
    lines = ["Instrument;Reader X", "Wavelength;450 nm", ";" + ";".join(str(c) for c in range(1, columns + 1))]
    for r in range(rows):
        lines.append(row_label(r) + ";" + ";".join(f"{r},{c:03d}" for c in range(columns)))  # decimal comma
    path = workdir / f"plate{wells}.csv"
    path.write_text("\n".join(lines))
    result, data = cli.json("read", path)
    assert result.exit_code == 0, result.output
    plate = data["plates"][0]
    assert (plate["rows"], plate["columns"]) == (rows, columns)
    read = plate["reads"][0]
    assert read["wavelength_nm"] == 450 and read["kind"] == "endpoint"
    last = well_name(rows - 1, columns - 1)
    assert read["values"]["A1"] == 0.0
    assert read["values"][last] == pytest.approx(float(f"{rows - 1}.{columns - 1:03d}"))
    assert len(read["values"]) == wells
    assert plate["metadata"]["Instrument"] == "Reader X"


def test_tab_separated_with_markers_and_two_reads(cli, workdir):
    header = "\t" + "\t".join(str(c) for c in range(1, 13))
    body = ["A\t0.1\tOVRFLW\t\t" + "\t".join(["0.2"] * 9), *[f"{r}\t" + "\t".join(["0.3"] * 12) for r in "BCDEFGH"]]
    text = "\n".join(["540 nm", header, *body, "", "Read 2: 405 nm", header, *body]) + "\n"
    path = workdir / "two.tsv"
    path.write_text(text)
    _, data = cli.json("read", path)
    reads = data["plates"][0]["reads"]
    assert [r["wavelength_nm"] for r in reads] == [540, 405]
    assert reads[0]["flags"] == {"A2": "saturated"}
    assert "A2" not in reads[0]["values"] and "A3" not in reads[0]["values"]  # flagged and empty wells
    assert reads[1]["values"]["H12"] == 0.3
    assert data["format"] == "grid" and len(data["sha256"]) == 64


def test_long_table(cli, workdir):
    path = workdir / "long.csv"
    path.write_text("Well,Value,Read\nA1,0.5,540 nm\nH12,1.25,540 nm\nA01,0.7,405 nm\nB3,OVER,405 nm\n")
    result, data = cli.json("read", path)
    assert data["format"] == "long"
    reads = {r["label"]: r for r in data["plates"][0]["reads"]}
    assert reads["540 nm"]["values"] == {"A1": 0.5, "H12": 1.25}
    assert reads["405 nm"]["values"] == {"A1": 0.7} and reads["405 nm"]["flags"]["B3"] == "saturated"
    # wells the list does not name were never read: flagged missing, the plate keeps its full shape
    assert reads["405 nm"]["flags"]["H12"] == "missing" and "A1" not in reads["405 nm"]["flags"]
    assert data["plates"][0]["rows"] == 8


def test_format_forced_and_unknown(cli, workdir):
    path = workdir / "long.csv"
    path.write_text("Well,Value\nA1,0.5\n")
    assert cli("read", path, "--format", "long").exit_code == 0
    forced = cli("read", path, "--format", "grid")
    assert forced.exit_code == 2 and "no plate grid" in forced.stderr
    unknown = cli("read", path, "--format", "nope")
    assert unknown.exit_code == 2 and "unknown format 'nope'" in unknown.stderr


def test_unrecognized_file_names_candidates(cli, workdir):
    path = workdir / "notes.txt"
    path.write_text("just some notes\nnothing plate-like\n")
    result = cli("read", path)
    assert result.exit_code == 2
    assert "no reader recognizes this file" in result.stderr and "closest:" in result.stderr


def test_well_names():
    assert parse_well("A1") == (0, 0) and parse_well("h12") == (7, 11) and parse_well("B03") == (1, 2)
    assert parse_well("AF48") == (31, 47) and well_name(31, 47) == "AF48" and well_name(26, 0) == "AA1"
    for bad in ("", "1A", "A0", "ZZ1"):
        with pytest.raises(ValueError):
            parse_well(bad)


def test_read_prints_each_read_as_a_grid(cli, workdir):
    """Without --json, `read` shows the values where they sit on the plate, markers and unread wells marked."""
    path = workdir / "short.csv"
    path.write_text("Wavelength,540 nm\n,1,2,3,4\nA,0.051,OVRFLW,0.5,2\nB,0.049,,1.25,3\n")
    result = cli("read", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(k for k, line in enumerate(lines) if line.split() == ["1", "2", "3", "4"])
    assert lines[header + 1].split() == ["A", "0.051", "OVRFLW", "0.5", "2"]
    assert lines[header + 2].split() == ["B", "0.049", "1.25", "3"]  # an empty cell stays empty
    assert lines[header + 3].split() == ["C", "·", "·", "·", "·"]  # a 12-well plate: row C was never read
    assert "A2 saturated ('OVRFLW')" in result.stdout
    assert "read_area: A1:B4" in result.stdout and "3 x 4" in result.stdout


def test_victor_style_long_table_with_plates_repeats_and_a_time_per_label(cli, workdir):
    """'Plate, Repeat, Well, Type, Time, <label>, Time, <label>' (a PerkinElmer Wallac/VICTOR list, synthetic):
    a plate per Plate number, each label a kinetic read over the repeats with its own time column."""
    path = workdir / "victor.txt"
    lines = ["Plate\tRepeat\tWell\tType\tTime\tAbs 600 (A)\tTime\tFluorescein (counts)"]
    for plate, repeat, start in ((1, 1, 0), (1, 2, 600), (2, 1, 1200)):
        for k, well in enumerate(("A01", "A02")):
            t = start + 1 + k * 0.2
            lines.append(f"{plate}\t{repeat}\t{well}\tM\t00:{int(t // 60):02d}:{t % 60:05.2f}\t0.{plate}{repeat}{k}"
                         f"\t00:{int((t + 1.5) // 60):02d}:{(t + 1.5) % 60:05.2f}\t{plate}{repeat}{k}00")
    path.write_text("\n".join(lines) + "\n\nProtocol name\tX3 test\n")
    _, data = cli.json("read", path)
    assert [p["name"] for p in data["plates"]] == ["Plate 1", "Plate 2"]
    absorbance, fluorescence = data["plates"][0]["reads"]
    assert (absorbance["kind"], absorbance["wavelength_nm"], absorbance["times_s"]) == ("kinetic", 600, [1.0, 601.0])
    assert absorbance["values"]["A2"] == [0.111, 0.121] and absorbance["well_times_s"]["A2"] == [1.2, 601.2]
    assert fluorescence["times_s"] == [2.5, 602.5] and fluorescence["values"]["A1"] == [11000, 12000]


def test_plate_type_names_the_shape_only_when_the_data_fit():
    """A free-text plate type decides the shape when it names a size the data fit on; else the data do."""
    from assayrunner.reads import plate_type_shape

    assert plate_type_shape("96 WELL PLATE", (4, 6)) == (8, 12)  # a partial read of a named 96-well plate
    assert plate_type_shape("Corning 384 well flat", (8, 12)) == (16, 24)
    assert plate_type_shape("Corning 384 flat", (8, 12)) == (8, 12)  # a number without 'well' names no plate
    assert plate_type_shape("Generic 24-well", (8, 12)) == (8, 12)  # the name contradicts the data
    assert plate_type_shape("Generic_Plate_123", (4, 6)) == (4, 6)  # no size named: the smallest plate that holds
    assert plate_type_shape(None, (3, 5)) == (4, 6)
