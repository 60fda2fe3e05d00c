"""Test helpers for assay plugins, loaded by pytest through the `pytest11` entry point.

Build a plate from a grid or a dict of wells, write it as an export the built-in readers read,
run an assay on it into a temporary database (the real engine, store and certificate), and
look up checks and results:

    from assayrunner.testing import check, plate_from_grid, result

    def test_blank_corrected(assay_run):
        plate = plate_from_grid('''
            0.05 0.05 0.50
            0.05 0.05 0.52
        ''', rows=8, columns=12, wavelength_nm=450)
        run = assay_run("demo-od", plate, samples={"S1": "Batch 7"})
        assert check(run, "blank-od").passed
        assert result(run, "Batch 7", "od_corrected").value == pytest.approx(0.46)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .criteria import Check
    from .engine import RunOutcome
    from .plate import Plate
    from .reading import InputFile
    from .registry import Result


def plate_from_wells(wells: Mapping[str, float], *, rows: int = 8, columns: int = 12, label: str | None = None,
                     wavelength_nm: float | None = None, name: str = "plate") -> "Plate":
    """A one-read endpoint plate from {'A1': 0.05, ...}; wells not given have no value."""
    import numpy as np

    from .plate import Plate, Read, parse_well

    values = np.full((rows, columns), np.nan)
    for well, value in wells.items():
        values[parse_well(well)] = value
    return Plate(name, rows, columns, [Read(label or _label(wavelength_nm), values, wavelength_nm=wavelength_nm)])


def plate_from_grid(grid: str | Sequence[Sequence[float | None]], **kwargs) -> "Plate":
    """A one-read endpoint plate from rows of numbers starting at A1 (text: whitespace or commas
    between numbers, '-' or an empty cell for no value); keyword arguments as plate_from_wells."""
    rows = [line.replace(",", " ").split() for line in grid.strip().splitlines()] if isinstance(grid, str) else grid
    wells = {f"{chr(65 + r)}{c + 1}": float(v) for r, line in enumerate(rows) for c, v in enumerate(line)
             if v not in (None, "", "-")}
    return plate_from_wells(wells, **kwargs)


def write_plate(plate: "Plate", path: Path) -> Path:
    """Write a plate's endpoint reads as a generic grid CSV (one titled grid per read); a flagged well
    without a number is written as the instrument's marker (its text, else e.g. OVRFLW for saturated)."""
    from .plate import row_label

    lines = [f"Plate,{plate.name}"]
    for read in plate.reads:
        if read.kind == "kinetic":
            raise ValueError("write_plate writes endpoint reads only; give a kinetic plate as an export file")
        lines += ["", read.label, "," + ",".join(str(c + 1) for c in range(plate.columns))]
        lines += [row_label(r) + "," + ",".join(_cell(read, r, c, v) for c, v in enumerate(read.values[r]))
                  for r in range(plate.rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cell(read, row: int, column: int, value: float) -> str:
    import math

    from .plate import well_name

    if not math.isnan(value):
        return repr(float(value))
    well = well_name(row, column)
    flag = read.flags.get(well)
    return read.texts.get(well, _marker(flag)) if flag else ""


@functools.cache
def _marker(flag: str) -> str:
    """The first marker an instrument writes for the flag (OVRFLW for saturated), '' when none."""
    from .cells import MARKERS

    return next((text.upper() for text, f in MARKERS.items() if f == flag), "")


def read_export(path: Path | str, format: str | None = None) -> "InputFile":
    """Read an export through every installed reader, yours included, as `assayrun read` does:
    `.format` is the reader that read it, `.plates` its plates; bad input raises the UserError the
    command would print."""
    from .plugins import load
    from .reading import read_input

    return read_input(Path(path), load().readers, format)


def check(run: "RunOutcome", check_id: str) -> "Check":
    """The run's acceptance check with this id; AssertionError naming the ids it has."""
    found = [c for c in run.checks if c.id == check_id]
    assert found, f"no check {check_id!r}; the run has {', '.join(c.id for c in run.checks)}"
    return found[0]


def result(run: "RunOutcome", sample: str, metric: str) -> "Result":
    """The run's result for one sample and metric; AssertionError naming what it has."""
    found = [r for r in run.result.results if r.sample == sample and r.metric == metric]
    have = sorted({(r.sample, r.metric) for r in run.result.results})
    assert found, f"no result for sample {sample!r}, metric {metric!r}; the run has {have}"
    return found[0]


def _label(wavelength_nm: float | None) -> str:
    return f"{wavelength_nm:g} nm" if wavelength_nm else "Read 1"


@pytest.fixture
def assay_run(tmp_path):
    """run(assay, plate_or_file, samples=None, **execute_options) -> RunOutcome, stored in a
    temporary database (run.db next to its certificates in the test's tmp_path).

    samples: a CSV path or {slot: sample name}; other options are engine.execute's (protocol,
    params, operator, pdf ...).
    """
    from .engine import execute

    def run(assay: str, plate: "Plate | Path | str", samples: Mapping[str, str] | Path | None = None, **options):
        files = [Path(plate)] if isinstance(plate, (str, Path)) else [write_plate(plate, tmp_path / "plate.csv")]
        if isinstance(samples, Mapping):
            samples = _write_samples(samples, tmp_path / "samples.csv")
        options.setdefault("operator", "pytest")
        return execute(assay, files, samples=samples, db=tmp_path / "run.db", out=tmp_path / "certificates",
                       **options)

    return run


def _write_samples(samples: Mapping[str, str], path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["slot", "sample"])
        writer.writerows(samples.items())
    return path
