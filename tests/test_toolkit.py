"""The shared assay toolkit (assayrunner/toolkit/) against independent numpy calculations and hand-worked numbers."""

import json
import math
import re

import numpy as np
import pytest

import assayrunner
from assayrunner import (ABOVE_ULOQ, BELOW_LLOQ, NOT_COMPUTABLE, REASSAY, REPLICATE_CV, AssayInput, Quantified, BackCalculated, CensoredReplicates,
                         FitRecord, Replicates, UserError, blank_mean, censored, check_reads, fit_standards,
                         matched_groups, percent_difference, range_flag, recovery_percent, reference_corrected,
                         required_controls, required_group, required_groups, well_flags)
from assayrunner.protocol import from_text
from assayrunner.result_check import check_result
from assayrunner.store import canonical_json
from assayrunner.testing import plate_from_wells
from conftest import REPO

PROTOCOL = """
id = "toolkit-test"
version = "1"
title = "toolkit test"
assay = "toolkit"
[source]
document = "none: a test layout"
[[reads]]
name = "OD"
[layout]
rows = 8
columns = 12
wells = [
  { wells = "A1:A3", role = "blank" },
  { wells = "B1:B2", role = "calibrator", name = "S1", nominal = 1 },
  { wells = "B3:B4", role = "calibrator", name = "S2", nominal = 2 },
  { wells = "B5:B6", role = "calibrator", name = "S3", nominal = 4 },
  { wells = "C1:C3", role = "sample", name = "X" },
]
[parameters]
read = "OD"
standards = { S1 = 1, S2 = 2, S3 = 4 }
"""


class Params:
    """A stand-in for an assay's validated parameters model (pydantic-like model_dump)."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def model_dump(self, mode="json"):
        return dict(vars(self))


def make_input(wells: dict, flags: dict | None = None, **params) -> AssayInput:
    proto = from_text(PROTOCOL)
    plate = plate_from_wells(wells)
    read = plate.reads[0]
    read.flags.update(flags or {})
    parameters = Params(**{"read": "OD", "standards": {"S1": 1, "S2": 2, "S3": 4}, **params})
    return AssayInput(proto, parameters, plate, {"OD": read}, proto.layout, {})


# y = 0.05 (blank) + 0.2 C + noise: the standard wells and the blank
WELLS = {"A1": 0.05, "A2": 0.06, "A3": 0.04, "B1": 0.26, "B2": 0.24, "B3": 0.44, "B4": 0.46, "B5": 0.86, "B6": 0.83,
         "C1": 0.65, "C2": 0.66, "C3": 0.63}


def test_replicates_match_numpy():
    values = [1.0, 1.5, np.nan, 2.25]
    r = Replicates.of(values)
    finite = np.array([1.0, 1.5, 2.25])
    assert r.n == 3
    assert r.mean == pytest.approx(finite.mean())
    assert r.sd == pytest.approx(finite.std(ddof=1))
    assert r.cv_percent == pytest.approx(100 * finite.std(ddof=1) / finite.mean())
    one = Replicates.of([3.0, np.nan])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.sd) and math.isnan(one.cv_percent)


def test_back_calculated_and_percentages():
    level = BackCalculated.of(2.0, [1.9, 2.3, np.nan])
    assert level.mean == pytest.approx(2.1)
    assert level.pdft == pytest.approx(5.0)  # 100 (2.1 - 2) / 2
    assert percent_difference(0.45, 0.5) == pytest.approx(-10.0)
    assert recovery_percent(0.45, 0.5) == pytest.approx(90.0)
    assert math.isnan(percent_difference(1.0, 0.0)) and math.isnan(recovery_percent(1.0, 0))


def test_censored_replicates():
    numbers = CensoredReplicates.of([30.0, 33.0, math.nan], [None, None, None])
    assert (numbers.n, numbers.censored, numbers.mixed) == (2, False, False)
    assert numbers.mean == pytest.approx(31.5)
    assert numbers.cv == pytest.approx(100 * np.std([30, 33], ddof=1) / 31.5)
    above = CensoredReplicates.of([300.0, 250.0], [">", ">"])
    assert (above.qualifier, above.mean, above.censored) == (">", 250.0, True)  # the lowest bound is certain
    below = CensoredReplicates.of([5.0, 8.0], ["<", "<"])
    assert (below.qualifier, below.mean) == ("<", 8.0)
    mixed = CensoredReplicates.of([300.0, 40.0], [">", None])
    assert mixed.mixed and math.isnan(mixed.mean) and mixed.qualifier is None
    assert list(mixed.to_dict()) == ["n", "censored", "qualifier", "mixed", "mean", "cv"]


def test_range_flags_and_censored_values():
    assert range_flag(0.5, 1, 4) == BELOW_LLOQ == "below-lloq"
    assert range_flag(5, 1, 4) == ABOVE_ULOQ == "above-uloq"
    assert range_flag(math.nan, 1, 4) == NOT_COMPUTABLE
    assert range_flag(1, 1, 4) is None and range_flag(4, 1, 4) is None
    assert censored(0.5, 1, 4, factor=10) == ("<", 10)
    assert censored(5, 1, 4, factor=10) == (">", 40)
    assert censored(2.5, 1, 4, factor=10) == (None, 25.0)


def test_blank_mean():
    assert blank_mean([0.05, np.nan, 0.07]) == pytest.approx(0.06)
    assert math.isnan(blank_mean([np.nan, np.nan]))
    with pytest.raises(UserError, match="every blank well is flagged") as err:
        blank_mean([np.nan, np.nan], wells=["A1", "A2"])
    assert err.value.where == "blank wells A1, A2"


def test_standard_curve_against_polyfit():
    inp = make_input(WELLS)
    blank = blank_mean(inp.values(required_group(inp, "blank")))
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    curve = fit_standards(standards, inp.values, blank, "linear")
    x = np.array([1, 1, 2, 2, 4, 4.0])
    y = np.array([0.26, 0.24, 0.44, 0.46, 0.86, 0.83]) - 0.05
    slope, intercept = np.polyfit(x, y, 1)
    assert curve.fit.params["slope"] == pytest.approx(slope)
    assert curve.fit.params["intercept"] == pytest.approx(intercept)
    assert np.allclose(curve.x, x) and np.allclose(curve.y, y)
    assert (curve.lloq, curve.uloq) == (1.0, 4.0)
    sample = inp.values(required_group(inp, "sample")) - blank
    assert np.allclose(curve.back_calculate(sample), (sample - intercept) / slope)
    assert curve.range_flag(0.5) == BELOW_LLOQ and curve.censored(5.0, 2) == (">", 8.0)
    with_zero = fit_standards(standards + [(required_group(inp, "blank"), 0.0)], inp.values, blank, "linear")
    assert (with_zero.lloq, with_zero.uloq) == (1.0, 4.0)   # the zero standard anchors the curve only


def test_standard_curve_refusals():
    inp = make_input(WELLS)
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    with pytest.raises(UserError, match="at least two standard"):
        fit_standards(standards[:1], inp.values, 0.05, "linear")
    flat = make_input({**WELLS, "B3": 0.25, "B4": 0.25, "B5": 0.25, "B6": 0.25, "B1": 0.25, "B2": 0.25})
    with pytest.raises(UserError, match="reads the same value"):
        fit_standards(standards, flat.values, 0.05, "linear")
    falling = make_input({**WELLS, "B1": 0.86, "B2": 0.83, "B5": 0.26, "B6": 0.24})
    with pytest.raises(UserError, match="does not rise") as err:
        fit_standards(standards, falling.values, 0.05, "linear")
    assert err.value.where == "standard curve"


def test_required_groups_and_controls():
    inp = make_input(WELLS)
    assert list(required_group(inp, "calibrator", "S2").wells) == ["B3", "B4"]
    assert [g.name for g in required_groups(inp, "calibrator")] == ["S1", "S2", "S3"]
    with pytest.raises(UserError, match="no qc wells; the demo assay needs them") as err:
        required_groups(inp, "qc", needed_by="the demo assay")
    assert err.value.where == "layout.wells"
    with pytest.raises(UserError, match="no control wells named 'NC'"):
        required_group(inp, "control", "NC")
    required_controls(inp, {"NC", "PC"}, ["NC"])
    with pytest.raises(UserError, match="no control named 'PC'"):
        required_controls(inp, {"NC"}, ["NC", "PC"])


def test_matched_groups_name_both_sides():
    inp = make_input(WELLS, standards={"S1": 1, "S2": 2, "S9": 9})
    with pytest.raises(UserError, match="no value for S3; S9 not in the layout") as err:
        matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    assert err.value.where == "parameters.standards" and err.value.file == "--param"  # not the protocol's value


def test_check_reads():
    check_reads(make_input(WELLS), "read")
    with pytest.raises(UserError, match="names 'A450', not one of the protocol's reads") as err:
        check_reads(make_input(WELLS, read="A450", reference=None), "reference", "read")
    assert err.value.where == "parameters.read"


def test_well_flags():
    inp = make_input(WELLS, flags={"C2": "saturated", "A1": "masked"})
    groups = [required_group(inp, "sample"), None, required_group(inp, "blank")]
    assert well_flags(inp, groups, ["OD", "not-on-plate"]) == ["saturated well C2", "masked well A1"]
    assert np.isnan(inp.values(groups[0])[1])


def test_fit_record_reads_like_the_dict_it_replaces():
    inp = make_input(WELLS)
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    curve = fit_standards(standards, inp.values, 0.05, "linear")
    line = assayrunner.line_through(curve.fit.predict, 0.0, 4.0)
    record = FitRecord.of("calibration", curve.fit, curve.x, curve.y, line, x_unit="mg/mL", y_label="OD − blank")
    as_dict = {"name": "calibration", **curve.fit.to_dict(), "x": curve.x.tolist(), "y": curve.y.tolist(),
               "line": line, "x_unit": "mg/mL", "y_label": "OD − blank"}
    assert dict(record) == as_dict and list(record) == list(as_dict)  # the same keys in the same order
    assert canonical_json(dict(record)) == canonical_json(as_dict)
    assert record.get("log_x") is None and "log_x" not in record and "mark" not in record  # unset: not stored
    logged = FitRecord("curve", "4pl", {}, {}, None, False, 3, x=[1, 2, 3], y=[1, 2, 3], log_x=True)
    assert logged["log_x"] is True and "rss" not in logged
    with pytest.raises(KeyError):
        logged["rss"]
    assert json.loads(canonical_json(dict(logged)))["n"] == 3


def test_reference_corrected():
    inp = make_input(WELLS)
    plate = plate_from_wells({w: 0.01 * (i + 1) for i, w in enumerate(WELLS)})
    inp.reads["REF"] = plate.reads[0]
    sample = required_group(inp, "sample")
    values, used = reference_corrected(inp, "OD", "REF")
    assert used == "REF"
    assert np.allclose(values(sample), np.array([0.65, 0.66, 0.63]) - np.array([0.10, 0.11, 0.12]))
    for reference in ("OD", None, "not-on-plate"):  # the read itself, none, or a read the plate lacks
        values, used = reference_corrected(inp, "OD", reference)
        assert used is None and np.array_equal(values(sample), inp.values(sample, "OD"))


def test_fit_record_passes_the_result_check():
    inp = make_input(WELLS)
    curve = fit_standards(matched_groups(inp, "calibrator", inp.parameters.standards, "standards"), inp.values, 0.05,
                          "linear")
    record = FitRecord.of("calibration", curve.fit, curve.x, curve.y, [])
    check_result(assayrunner.AssayResult({}, [], [record]), "test")
    short = FitRecord("calibration", "linear", {}, {}, None, True, 2, x=[1.0, 2.0], y=[1.0])
    with pytest.raises(assayrunner.PluginError, match="'x' and 'y' differ in length"):
        check_result(assayrunner.AssayResult({}, [], [short]), "test")


def test_the_guide_example_runs():
    """The toolkit example in docs/plugins.md, run on the test plate, against polyfit by hand."""
    guide = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n# toolkit example\n(.*?)```", guide, re.S).group(1)
    namespace = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    inp = make_input(WELLS, reference_read=None, calibration_model="linear", dilution=10.0, unit="ng/mL")
    result = namespace["analyze"](inp)
    slope, intercept = np.polyfit([1, 1, 2, 2, 4, 4], np.array([0.26, 0.24, 0.44, 0.46, 0.86, 0.83]) - 0.05, 1)
    in_well = (np.array([0.65, 0.66, 0.63]) - 0.05 - intercept) / slope
    (row,) = result.results
    assert (row.sample, row.qualifier, row.flags) == ("X", None, [])
    assert row.value == pytest.approx(10 * in_well.mean())
    low = make_input({**WELLS, "C1": 0.06, "C2": 0.07, "C3": 0.08}, reference_read=None, calibration_model="linear",
                     dilution=10.0, unit="ng/mL")
    (row,) = namespace["analyze"](low).results
    assert (row.qualifier, row.value, row.flags) == ("<", 10.0, [BELOW_LLOQ])


def test_log_log_standard_curve_against_polyfit():
    """log10 A' = b + m log10 C (LAL): the fit, back-calculation, and wells at or below the blank left out."""
    wells = {**WELLS, "B1": 0.05, "B2": 0.24}  # B1 reads the blank: no log, not a point
    inp = make_input(wells)
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    curve = fit_standards(standards, inp.values, 0.05, "linear", log_log=True)
    x = np.array([1, 2, 2, 4, 4.0])
    y = np.array([0.24, 0.44, 0.46, 0.86, 0.83]) - 0.05
    m, b = np.polyfit(np.log10(x), np.log10(y), 1)
    assert curve.fit.params["slope"] == pytest.approx(m) and curve.fit.params["intercept"] == pytest.approx(b)
    assert np.allclose(curve.x, x) and np.allclose(curve.y, y) and curve.log_log
    net = np.array([0.6, 0.0, -0.1])
    back = curve.back_calculate(net)
    assert back[0] == pytest.approx(10 ** ((np.log10(0.6) - b) / m)) and np.isnan(back[1:]).all()
    with pytest.raises(UserError, match="cannot be fit"):  # every standard at the blank: nothing to fit
        fit_standards(standards, lambda g: np.full(len(g.wells), 0.05), 0.05, "linear", log_log=True)


def test_group_carries_its_layout_entry():
    layout = assayrunner.Layout(wells=[{"wells": "A1:A2", "role": "calibrator", "name": "STD1", "nominal": 0.5, "unit": "EU/mL"},
                              {"wells": "B1", "role": "sample", "name": "S1", "interference": True}])
    std, spiked = layout.groups()
    assert (std.wells, std.nominal, std.unit, std.interference) == (("A1", "A2"), 0.5, "EU/mL", False)
    assert (spiked.nominal, spiked.unit, spiked.interference) == (None, None, True)


def _linear_curve():
    inp = make_input(WELLS)
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    x = np.array([1, 1, 2, 2, 4, 4.0])
    slope, intercept = np.polyfit(x, np.array([0.26, 0.24, 0.44, 0.46, 0.86, 0.83]) - 0.05, 1)
    return inp, fit_standards(standards, inp.values, 0.05, "linear"), slope, intercept


def test_quantified_against_numpy():
    """C = mean((y - b) / m) x d, SD and %CV of the diluted wells (n - 1), worked with numpy here."""
    inp, curve, slope, intercept = _linear_curve()
    group = required_group(inp, "sample")
    y = np.array([0.65, 0.66, 0.63]) - 0.05
    c = (y - intercept) / slope
    q = Quantified.of(group, y, curve, 10.0, flag_cv_percent=20)
    assert np.allclose(q.in_well, c) and q.in_well_mean == pytest.approx(c.mean())
    assert q.concentration == pytest.approx(10 * c.mean()) and q.qualifier is None and q.flags == []
    assert q.sd == pytest.approx(np.std(10 * c, ddof=1))
    assert q.diluted.cv_percent == pytest.approx(100 * np.std(c, ddof=1) / c.mean())
    steps = Quantified.of(group, y, curve, (10.0, 3.0), flag_cv_percent=20)  # kit x incubation dilution
    assert steps.dilution == 30.0 and np.allclose(steps.diluted_wells, c * 30)
    noisy = Quantified.of(group, y, curve, flag_cv_percent=20, cv_values=[1.0, 2.0, 3.0])  # %CV 50 of the ODs
    assert noisy.replicate_cv == pytest.approx(50.0) and noisy.flags == [REPLICATE_CV]


def test_quantified_censoring_and_flags():
    """Outside the standards (1-4): the bound x dilution with its qualifier, never the extrapolated mean."""
    inp, curve, slope, intercept = _linear_curve()
    group = required_group(inp, "sample")
    high = Quantified.of(group, np.full(3, 2.0), curve, 10.0, flag_cv_percent=20)
    assert (high.qualifier, high.concentration, math.isnan(high.sd)) == (">", 40.0, True)
    assert high.flags == [ABOVE_ULOQ, REASSAY]
    assert high.diluted.mean == pytest.approx(10 * (2.0 - intercept) / slope)  # the number, kept beside the bound
    low = Quantified.of(group, np.full(3, 0.01), curve, 10.0, flag_cv_percent=20, censored_only=True)
    assert (low.qualifier, low.concentration, low.flags) == ("<", 10.0, [BELOW_LLOQ, REASSAY])
    saturated = ["saturated well C1"]
    none = Quantified.of(group, np.full(3, np.nan), curve, flag_cv_percent=20, flags=saturated)
    assert math.isnan(none.concentration) and none.flags == saturated + [NOT_COMPUTABLE, REASSAY]
    quiet = Quantified.of(group, np.full(3, np.nan), curve, flag_cv_percent=20, flags=saturated, censored_only=True)
    # quant's rule: no range flag for a numeric mean, but a group with no value at all is still not computable
    assert quiet.flags == saturated + [NOT_COMPUTABLE, REASSAY] and quiet.qualifier is None


def test_quantified_beyond_the_curve():
    """A log-log curve has no concentration for a response at or below the blank: beyond_curve says '<'."""
    inp = make_input(WELLS)
    standards = matched_groups(inp, "calibrator", inp.parameters.standards, "standards")
    curve = fit_standards(standards, inp.values, 0.05, "linear", log_log=True)
    group = required_group(inp, "sample")
    y = np.array([-0.01, 0.0, np.nan])
    plain = Quantified.of(group, y, curve, 5.0, flag_cv_percent=20)
    assert plain.qualifier is None and plain.flags[:2] == [f"{NOT_COMPUTABLE} well C1", f"{NOT_COMPUTABLE} well C2"]
    below = Quantified.of(group, y, curve, 5.0, flag_cv_percent=20, censored_only=True, beyond_curve=True)
    assert (below.qualifier, below.concentration) == ("<", 5.0) and below.flags[-2:] == [BELOW_LLOQ, REASSAY]
    _, linear, slope, intercept = _linear_curve()
    # the curve at the standards: intercept + slope x 1 and x 4 (about 0.19 and 0.79)
    assert linear.below(intercept + slope * 1 - 0.01) and not linear.below(intercept + slope * 4 + 0.01)
    assert curve.below(0.0) and not curve.below(10.0)
