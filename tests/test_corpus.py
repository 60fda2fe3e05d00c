"""Every corpus export with hand-checked expectations (data/plate-exports/expected/*.json) is read right.

Adding an export and its expectations file adds a test. An expectations file names the plate count
and a list of checks; each check picks a plate (index in file order) and either its shape
(`rows`, `columns`) or one read and a value in it, as `assayrun read --json` prints it:

* the read: `read` is a wavelength (a number: the read's wavelength_nm, the emission for
  fluorescence) or a name (a string the read's label equals or contains); `label`, `kind`,
  `excitation_nm`, `emission_nm` must then match; `table` names a status table ('Saturated')
  the label must contain; the first read in file order that fits is the one;
* the value: `well`, and for kinetic reads `time_index`, `n_times` (number of time points) and
  `time_s` (the well's own read time when the export gives one, else the read's; null when the
  export gives none); `value` (null: the cell is empty), or `flag` and `raw_text` for a marker;
  `statistic: Mean` is the value itself, `position` one read position of a multi-read well.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from assayrunner.plugins import load
from assayrunner.reading import read_input

CORPUS = Path(__file__).parent / "data" / "plate-exports"
EXPECTED = sorted((CORPUS / "expected").glob("*.json"))


def _fits(read: dict, check: dict) -> bool:
    want = check["read"]
    if isinstance(want, (int, float)):
        if want not in (read["wavelength_nm"], read.get("emission_nm")):
            return False
    elif want != read["label"] and want.lower() not in read["label"].lower():
        return False
    if "table" in check:
        return check["table"].lower() in read["label"].lower()
    if "saturated" in read["label"].lower():
        return False  # a status table is only picked by name
    return all(check[key] == read.get(key) for key in ("label", "kind", "excitation_nm", "emission_nm")
               if key in check)


def _pick(plate: dict, check: dict) -> dict:
    found = [read for read in plate["reads"] if _fits(read, check)]
    assert found, f"no read fits {check}; reads: {[(r['label'], r['kind'], r['wavelength_nm']) for r in plate['reads']]}"
    return found[0]


def _close(got, want) -> bool:
    return got is not None and math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9)


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.stem)
def test_corpus_file_reads_as_expected(expected):
    spec = json.loads(expected.read_text())
    result = read_input(CORPUS / spec["file"], load().readers).to_json()
    plates = json.loads(json.dumps(result, allow_nan=False))["plates"]  # what `read --json` prints
    assert len(plates) == spec["plates"]
    for check in spec["checks"]:
        plate = plates[check["plate"]]
        if "rows" in check:
            assert (plate["rows"], plate["columns"]) == (check["rows"], check["columns"]), check
            continue
        read = _pick(plate, check)
        well = check["well"]
        layer = read["layers"][check["position"]] if "position" in check else read["values"]
        value = layer.get(well)
        if read["kind"] == "kinetic":
            k = check.get("time_index", 0)
            if "n_times" in check:
                assert len(read["times_s"]) == check["n_times"], check
            value = value[k] if value is not None else None
            if "time_s" in check:
                own = read.get("well_times_s", {}).get(well)
                time = own[k] if own is not None else read["times_s"][k]
                assert (time is None) if check["time_s"] is None else _close(time, check["time_s"]), (time, check)
        if "value" in check:
            assert (value is None) if check["value"] is None else _close(value, check["value"]), (value, check)
        if "flag" in check:
            points = read.get("point_flags", {}).get(well, {})
            flag = points.get(str(check.get("time_index", 0)), read["flags"].get(well))
            assert flag == check["flag"] and value is None, (flag, check)
            if "raw_text" in check:
                assert read.get("texts", {}).get(well) == check["raw_text"], check


def test_every_corpus_file_is_read():
    """The older corpus files have no expectations file: each still gives plates with values."""
    files = [p for p in CORPUS.glob("*/*") if p.parent.name != "expected" and p.suffix != ".md"]
    assert len(files) == 33
    readers = load().readers
    for path in files:
        result = read_input(path, readers)
        assert result.plates and all(any(np.isfinite(r.values).any() for r in p.reads) for p in result.plates), path
