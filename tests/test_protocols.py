"""Protocol files: listing, showing with the layout per well, and criteria evaluation."""

import pytest

from assayrunner.criteria import Criterion, MissingMetric, evaluate
from assayrunner.interpretation import Interpretation
from assayrunner.layout import expand_wells

from conftest import REPO


def test_list_and_show(cli):
    result, listed = cli.json("protocols")
    ita1 = next(p for p in listed if p["id"] == "ncl-ita-1")
    assert {"id": "ncl-ita-1", "version": "4.0-ar1", "assay": "hemolysis"}.items() <= ita1.items()
    result, shown = cli.json("protocols", "show", "ncl-ita-1")
    wells = shown["layout"]["wells"]
    assert len(wells) == 96
    assert wells["A3"] == {"role": "calibrator", "name": "CAL1", "nominal": 0.8, "unit": "mg/mL", "interference": False,
                           "leave_out": False}
    assert wells["B2"]["name"] == "CAL6" and wells["B2"]["nominal"] == 0.025
    assert wells["F12"] == {"role": "sample", "name": "S10", "nominal": None, "unit": None, "interference": True,
                             "leave_out": False}
    assert shown["parameters"]["tbhd_dilution"] == 40.0
    assert shown["sha256"] and shown["source"]["document"] == "NCL ITA-1"
    text = cli("protocols", "show", str(REPO / "protocols" / "ncl-ita-1.toml"))
    assert text.exit_code == 0 and "B9    blood" in text.stdout


def test_overlapping_wells_are_refused(cli, workdir):
    text = (REPO / "protocols" / "ncl-ita-1.toml").read_text()
    path = workdir / "overlap.toml"
    path.write_text(text.replace('{ wells = "A1:A2", role = "blank" }', '{ wells = "A1:A3", role = "blank" }'))
    result = cli("protocols", "show", path)
    assert result.exit_code == 2
    assert "layout.wells[1]: well A3 is also in layout.wells[0]" in result.stderr


def test_well_ranges():
    assert expand_wells("A1:B2") == ["A1", "A2", "B1", "B2"]
    assert expand_wells("B2:A1,H12") == ["A1", "A2", "B1", "B2", "H12"]
    with pytest.raises(ValueError):
        expand_wells("A1:Q")


METRICS = {"calibration": {"r2": 0.97}, "tbhd": {"mg": 11.2}, "nc": {"pct": float("nan")},
           "levels": {"L1": {"pdft": 10.0, "cv": 5.0}, "L2": {"pdft": 22.0, "cv": 5.0}, "L3": {"pdft": 24.0, "cv": 25.0}}}


def check(**kw):
    return evaluate(Criterion(id="c", description="d", **kw), METRICS)


def test_scalar_criteria():
    assert not check(metric="calibration.r2", op=">=", limit=0.98).passed
    assert check(metric="calibration.r2", op=">", limit=0.96).passed
    within = check(metric="tbhd.mg", op="within", limit=[9, 11])
    assert not within.passed and within.limit == "within [9, 11]" and within.value == 11.2
    nan = check(metric="nc.pct", op="<", limit=2)
    assert not nan.passed and nan.value is None  # not computable never passes


def test_counted_criteria_with_overrides():
    rule = dict(items="levels", require=[{"metric": "pdft", "op": "<=", "limit": 20, "overrides": {"L2": 25}}])
    two = check(**rule, at_least=2)  # L1 (10 <= 20) and L2 (22 <= 25) pass, L3 (24 > 20) fails
    assert two.passed and two.value == 2 and two.detail == "failing: L3"
    assert not check(**rule, at_least=3).passed
    both = check(items="levels", at_least=1, require=[{"metric": "pdft", "op": "<=", "limit": 23},
                                                      {"metric": "cv", "op": "<=", "limit": 20}])
    assert both.value == 2  # L3 fails on cv


def test_criterion_forms_are_validated():
    with pytest.raises(ValueError):
        Criterion(id="c", description="d", metric="a", op=">=")
    with pytest.raises(ValueError):
        Criterion(id="c", description="d", metric="a", op="within", limit=3)
    with pytest.raises(MissingMetric):
        check(metric="calibration.slope", op=">", limit=0)


def test_interpretation_boundaries():
    table = Interpretation(metric="m", classes=[{"label": "non", "below": 2}, {"label": "slight", "at_most": 5},
                                                {"label": "hemolytic"}])
    assert [table.classify(v) for v in (1.999, 2.0, 5.0, 5.0001, -3)] == ["non", "slight", "slight", "hemolytic", "non"]
    assert table.classify(float("nan")) is None


def test_a_duplicate_id_fails_only_that_id_naming_both_files(tmp_path):
    """Two files declaring one id: finding that id is a PluginError naming both (and who ships each); other ids,
    and either file by its path, are found as before. A file whose id cannot be read keeps no other id from
    being found."""
    from assayrunner.errors import PluginError
    from assayrunner.protocol import duplicate_ids, find

    shipped = REPO / "protocols" / "ncl-ita-1.toml"
    copy, twin, unreadable = tmp_path / "copy.toml", tmp_path / "twin.toml", tmp_path / "unreadable.toml"
    copy.write_text(shipped.read_text())
    twin.write_text(shipped.read_text().replace('id = "ncl-ita-1"', 'id = "ncl-gta-1-mtt"'))
    unreadable.write_bytes(b"\xff\xfe not text")
    extra = [copy, twin, unreadable]
    assert set(duplicate_ids([*extra, shipped])) == {"ncl-ita-1"}
    with pytest.raises(PluginError) as raised:
        find("ncl-ita-1", extra, {copy: "lab-copies"})
    assert str(raised.value).startswith(f"protocol id 'ncl-ita-1' is declared by {shipped} (built in) and by {copy} "
                                        "(plugin 'lab-copies'); ")
    assert find("ncl-ita-12", extra).id == "ncl-ita-12"
    assert find(str(copy), extra).path == copy
    with pytest.raises(PluginError, match=f"declared by .*ncl-gta-1-mtt.toml \\(built in\\) and by {twin}; "):
        find("ncl-gta-1-mtt", extra)
