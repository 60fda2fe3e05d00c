"""assayrunner.testing, the pytest plugin for plugin authors: plates built in code give the same run as the export."""

import math

import numpy as np
import pytest

from assayrunner.plate import well_name
from assayrunner.plugins import load
from assayrunner.reading import read_input
from assayrunner import UserError
from assayrunner.testing import check, plate_from_grid, plate_from_wells, read_export, result, write_plate
from conftest import REPO

EXAMPLE = REPO / "examples" / "hemolysis" / "plate.csv"


def example_wells() -> dict[str, float]:
    read = read_input(EXAMPLE, load().readers).plates[0].reads[0]
    return {well_name(r, c): float(v) for (r, c), v in np.ndenumerate(read.values) if not math.isnan(v)}


def test_plate_from_wells_runs_like_the_export(assay_run):
    from_file = assay_run("hemolysis", EXAMPLE)
    built = assay_run("hemolysis", plate_from_wells(example_wells(), wavelength_nm=540))
    assert built.valid == from_file.valid
    assert [(c.id, c.value, c.passed) for c in built.checks] == [(c.id, c.value, c.passed) for c in from_file.checks]
    assert [(r.sample, r.metric, r.value) for r in built.result.results] == \
        [(r.sample, r.metric, r.value) for r in from_file.result.results]
    assert built.run_id == 2 and built.certificate_html.is_file()  # one temporary database per test


def test_plate_from_grid_reads_rows_from_a1(tmp_path):
    plate = plate_from_grid("""
        0.1, 0.2, -
        0.3  0.4  0.5
    """, rows=8, columns=12, wavelength_nm=405)
    values = plate.reads[0].values
    assert values[0, 0] == 0.1 and values[1, 2] == 0.5 and math.isnan(values[0, 2]) and math.isnan(values[7, 11])
    back = read_input(write_plate(plate, tmp_path / "p.csv"), load().readers).plates[0].reads[0]
    assert back.wavelength_nm == 405 and np.array_equal(np.isnan(back.values), np.isnan(values))
    assert np.nanmax(np.abs(back.values - values)) == 0


def test_lookups_name_what_the_run_has(assay_run):
    run = assay_run("hemolysis", EXAMPLE, samples={"S1": "PAMAM-G4"})
    assert check(run, check(run, run.checks[0].id).id) is run.checks[0]
    assert result(run, "PAMAM-G4", "percent_hemolysis").unit == "%"
    with pytest.raises(AssertionError, match="the run has"):
        check(run, "no-such-check")
    with pytest.raises(AssertionError, match="PAMAM-G4"):
        result(run, "no-such-sample", "percent_hemolysis")


def test_read_export_reads_through_the_installed_readers(tmp_path):
    hemolysis = read_export(EXAMPLE)
    assert hemolysis.format == read_input(EXAMPLE, load().readers).format
    assert len(hemolysis.plates) == 1 and hemolysis.plates[0].reads[0].wavelength_nm == 540
    table = tmp_path / "table.csv"
    table.write_text("Well,Value\nA1,0.5\nB2,0.25\n", encoding="utf-8")
    plate = read_export(table, format="long").plates[0]
    assert plate.reads[0].values[0, 0] == 0.5 and plate.reads[0].values[1, 1] == 0.25
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_export(empty)
    assert "empty.csv" in str(caught.value) or caught.value.file == empty
