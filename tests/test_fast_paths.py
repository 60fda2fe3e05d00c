"""The fast paths keep the records whole: protocol text once per hash (and old databases still verify),
protocols found by id from an index, one Jinja environment per template set."""

import sqlite3
import tomllib
from pathlib import Path

import pytest

from assayrunner import UserError, store
from assayrunner.protocol import find, protocol_index
from conftest import DATA, REPO

PLATE = DATA / "hemolysis" / "valid_plate.csv"
ITA1 = REPO / "protocols" / "ncl-ita-1.toml"


def test_protocol_text_is_stored_once_per_hash(cli, workdir):
    edited = workdir / "edited.toml"
    edited.write_text(ITA1.read_text().replace("version = \"4.0-ar1\"", "version = \"4.0-ar1-lab\""))
    for args in ([], [], ["--protocol", edited]):
        assert cli("execute", "hemolysis", PLATE, *args).exit_code == 0
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select count(*) from protocol_texts").fetchone() == (2,)
        assert conn.execute("select count(*) from runs where protocol_toml is not null").fetchone() == (0,)
    _, run = cli.json("runs", "show", "1")
    assert run["protocol_toml"] == ITA1.read_text()
    _, run = cli.json("runs", "show", "3")
    assert run["protocol_toml"] == edited.read_text()
    assert cli("verify").exit_code == 0


def _as_before_m004(new, old):
    """A copy of a database as the release before m004 wrote it: the text in every run row, no text table."""
    with sqlite3.connect(new) as source, sqlite3.connect(old) as target:
        source.backup(target)  # the WAL's pages too
    with sqlite3.connect(old) as conn:
        conn.execute("drop trigger runs_no_update")
        conn.execute("update runs set protocol_toml = (select text from protocol_texts t where t.sha256 = protocol_sha256)")
        conn.execute("drop table protocol_texts")
        conn.execute("delete from _migrations where name = 'm004_protocol_texts'")
        conn.execute("CREATE TRIGGER runs_no_update BEFORE UPDATE ON runs "
                     "BEGIN SELECT RAISE(ABORT, 'runs is append-only: records are never changed'); END")


def test_old_database_keeps_its_texts_and_still_verifies(cli, workdir):
    for _ in range(2):
        assert cli("execute", "hemolysis", PLATE).exit_code == 0
    _as_before_m004(workdir / "assayrun.db", workdir / "old.db")
    assert "m004_protocol_texts" in store.migrate(store.Database(workdir / "old.db"))
    result = cli("verify", "--db", workdir / "old.db")
    assert result.exit_code == 0 and "run 2: protocol text" in result.stdout
    _, run = cli.json("runs", "show", "1", "--db", workdir / "old.db")
    assert run["protocol_toml"] == ITA1.read_text()
    with sqlite3.connect(workdir / "old.db") as conn:
        assert conn.execute("select count(*) from protocol_texts").fetchone() == (1,)
        assert conn.execute("select count(*) from runs where protocol_toml is not null").fetchone() == (2,)
    assert cli("execute", "hemolysis", PLATE, "--db", workdir / "old.db").exit_code == 0
    assert cli("verify", "--db", workdir / "old.db").exit_code == 0


def test_a_changed_old_text_is_not_copied_and_verify_says_so(cli, workdir):
    assert cli("execute", "hemolysis", PLATE).exit_code == 0
    _as_before_m004(workdir / "assayrun.db", workdir / "old.db")
    with sqlite3.connect(workdir / "old.db") as conn:
        conn.execute("drop trigger runs_no_update")
        conn.execute("update runs set protocol_toml = replace(protocol_toml, 'limit = 50', 'limit = 5')")
    result = cli("verify", "--db", workdir / "old.db")
    assert result.exit_code == 1 and "DIFFERS  run 1: protocol text" in result.stdout
    with sqlite3.connect(workdir / "old.db") as conn:
        assert conn.execute("select count(*) from protocol_texts").fetchone() == (0,)


def test_protocol_texts_are_append_only(cli, workdir):
    assert cli("execute", "hemolysis", PLATE).exit_code == 0
    with sqlite3.connect(workdir / "assayrun.db") as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("update protocol_texts set text = 'x'")


def test_index_finds_ids_however_written_and_skips_files_it_does_not_need(tmp_path):
    quoted = tmp_path / "quoted.toml"
    quoted.write_text(ITA1.read_text().replace('id = "ncl-ita-1"', '"id" = "lab-ita-1"'))
    commented = tmp_path / "commented.toml"
    commented.write_text(ITA1.read_text().replace('id = "ncl-ita-1"', "id = 'lab-ita-1b'   # our copy"))
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "half-written"\n[layout\n')
    extra = [quoted, commented, broken]
    assert find("lab-ita-1", extra).id == "lab-ita-1"
    assert find("lab-ita-1b", extra).path == commented
    assert find("ncl-ita-1", extra).path == ITA1  # the broken file is never parsed for it
    index = protocol_index([ITA1, *extra])
    assert index == {"ncl-ita-1": ITA1, "lab-ita-1": quoted, "lab-ita-1b": commented, "half-written": broken}
    with pytest.raises(UserError, match="not valid TOML"):
        find("half-written", extra)
    with pytest.raises(UserError, match="unknown protocol 'nope'; shipped protocols: .*lab-ita-1b.*ncl-ita-1"):
        find("nope", extra)


def _title_first(text, hidden_id):
    """The protocol with a multi-line title before its id, holding a line that reads like an id line."""
    title = next(line for line in text.splitlines() if line.startswith("title = "))
    return text.replace(title + "\n", "").replace("\nid = ", f'\ntitle = """\nid = "{hidden_id}"\n"""\nid = ', 1)


def test_index_parses_a_file_whose_id_line_may_be_inside_a_multiline_string(tmp_path):
    hidden = tmp_path / "hidden.toml"
    hidden.write_text(_title_first(ITA1.read_text().replace('id = "ncl-ita-1"', 'id = "real-id"'), "not-this-one"))
    assert protocol_index([hidden]) == {"real-id": hidden}


def _modified_from_parsing_all(protocol, extra):
    """modified_from as it was: every shipped file parsed in order until the protocol's own file."""
    from assayrunner.protocol import changed_keys, load_file, shipped_files

    for file in shipped_files(extra):
        if protocol.path is not None and file.resolve() == Path(protocol.path).resolve():
            return None
        shipped = load_file(file)
        if (shipped.id, shipped.version) == (protocol.id, protocol.version) and shipped.sha256 != protocol.sha256:
            changed = changed_keys(tomllib.loads(shipped.text), tomllib.loads(protocol.text))
            return {"id": shipped.id, "version": shipped.version, "sha256": shipped.sha256,
                    "changed": changed or ["comments or formatting only"]}
    return None


def test_modified_from_skips_only_files_declaring_another_id(tmp_path):
    """The same answer as parsing every shipped file, for shipped, edited, renamed and hidden-id protocols."""
    from assayrunner.protocol import load_file, modified_from, shipped_files

    text = ITA1.read_text()
    variants = {"edited": text.replace("flag_cv_percent", "flag_cv_percent ", 1) + "\n# ours\n",
                "renamed": text.replace('id = "ncl-ita-1"', 'id = "lab-ita-1"'),
                "hidden": _title_first(text, "ncl-ita-1") + "# ours\n",
                "hidden-other": _title_first(text.replace('id = "ncl-ita-1"', 'id = "lab-ita-2"'), "other"),
                "copy-other": text.replace('id = "ncl-ita-1"', 'id = "lab-ita-2"') + "# ours\n",
                "quoted": text.replace('id = "ncl-ita-1"', '"id" = "ncl-ita-1"')}
    extra = []
    for name, body in variants.items():
        extra.append(tmp_path / f"{name}.toml")
        extra[-1].write_text(body)
    for extra_files in ([], extra[1:], extra):
        for file in [*shipped_files(), *extra]:
            protocol = load_file(file)
            assert modified_from(protocol, extra_files) == _modified_from_parsing_all(protocol, extra_files), file


def test_index_follows_an_edited_file(tmp_path):
    copy = tmp_path / "copy.toml"
    copy.write_text(ITA1.read_text().replace('id = "ncl-ita-1"', 'id = "first-name"'))
    assert find("first-name", [copy]).id == "first-name"
    copy.write_text(ITA1.read_text().replace('id = "ncl-ita-1"', 'id = "second-name-longer"'))
    assert find("second-name-longer", [copy]).id == "second-name-longer"
    with pytest.raises(UserError, match="unknown protocol 'first-name'"):
        find("first-name", [copy])


def test_one_environment_per_template_set(tmp_path):
    from assayrunner.certificate import environment
    from assayrunner.plugins import load

    dirs = load().template_dirs
    assert environment(dirs) is environment(dirs)
    (tmp_path / "certificate.css").write_text("body { color: black; }")
    assert environment(dirs, tmp_path) is environment(dirs, tmp_path) and environment(dirs, tmp_path) is not environment(dirs)


# --- the engine's per-plate fast paths against its general paths --------------------------------------------

def _hemolysis_reads():
    from assayrunner import engine, plugins
    from assayrunner.reading import read_input, select_plate

    setup = engine.prepare("hemolysis")
    source = read_input(PLATE, plugins.load().readers)
    reads, _, _ = engine._lay_out(setup.protocol, select_plate([source], None), source)
    return setup, reads


def _variants(layout, reads):
    """The plate's reads with one well changed in each way a layout check looks at (and some it does not)."""
    import dataclasses

    import numpy as np

    name, read = next(iter(reads.items()))
    layout_wells = [w for g in layout.groups() for w in g.wells]
    first_slot, *_ = layout.sample_slots().values()
    slot_wells = [w for wells in layout.sample_slots().values() for w in wells]
    out = [reads]
    for well in (layout_wells[0], layout_wells[len(layout_wells) // 2], slot_wells[0], "H12"):
        r, c = int("ABCDEFGH".index(well[0])), int(well[1:]) - 1
        nan = read.values.copy()
        nan[r, c] = np.nan
        for flags in ({}, {well: "no_value"}, {well: "missing"}, {well: "overflow"}, {well: "saturated"}):
            out.append({name: dataclasses.replace(read, values=nan, flags=flags)})
        for flag in ("invalid", "missing", "overflow", "saturated", "masked"):
            out.append({name: dataclasses.replace(read, flags={well: flag}, texts={well: "x"})})
        kinetic = np.repeat(read.values[:, :, None], 3, axis=2)
        some = kinetic.copy()
        some[r, c, 1] = np.nan
        every = kinetic.copy()
        every[r, c, :] = np.nan
        for values, points in ((kinetic, {}), (some, {}), (every, {}), (kinetic, {well: {1: "overflow"}}),
                               (some, {well: {1: "missing"}})):
            out.append({name: dataclasses.replace(read, kind="kinetic", values=values, point_flags=points)})
    empty = read.values.copy()  # a whole sample slot left empty: the layout without it
    for well in first_slot:
        empty["ABCDEFGH".index(well[0]), int(well[1:]) - 1] = np.nan
    out.append({name: dataclasses.replace(read, values=empty)})
    kinetic = np.repeat(read.values[:, :, None], 3, axis=2)
    for points in (slice(1, 2), slice(0, 3)):  # the slot's wells NaN at one time point, and at every one
        values = kinetic.copy()
        for well in first_slot:
            values["ABCDEFGH".index(well[0]), int(well[1:]) - 1, points] = np.nan
        out.append({name: dataclasses.replace(read, kind="kinetic", values=values)})
    return out


def _outcome(call):
    try:
        layout, skipped = call()
    except UserError as exc:
        return str(exc)
    return [g.spec for g in layout.groups()], skipped


def test_used_layout_fast_path_matches_the_general_path(monkeypatch):
    """Wells with NaN, flags and point flags (and clean plates): the same layout, skipped slots or error
    whether or not the well checks are skipped for a plate with numbers everywhere, and whether empty wells
    are found from the read's NaN mask or well by well."""
    from assayrunner import engine

    setup, reads = _hemolysis_reads()
    variants = _variants(setup.protocol.layout, reads)
    fast = [_outcome(lambda: engine._used_layout(setup.protocol, v, PLATE)) for v in variants]
    monkeypatch.setattr(engine, "_all_numbers", lambda *args: False)
    monkeypatch.setattr(engine, "_no_number", lambda read: None)  # each well's value looked up on its own
    general = [_outcome(lambda: engine._used_layout(setup.protocol, v, PLATE)) for v in variants]
    assert fast == general
    assert sum(isinstance(f, str) for f in fast) > 10 and sum(not isinstance(f, str) for f in fast) > 3
    assert any(f[1] for f in fast if not isinstance(f, str))  # a skipped slot among them


def test_layout_sample_slots_and_without_match_their_definitions():
    from assayrunner.plugins import load
    from assayrunner.protocol import load_file

    for path in load().protocol_files:
        layout = load_file(path).layout
        names = {g.name for g in layout.groups("sample")}
        slots: dict[str, list[str]] = {}
        for group in layout.groups():
            if group.name in names:
                slots.setdefault(group.name, []).extend(group.wells)
        assert {k: list(v) for k, v in layout.sample_slots().items()} == slots
        assert list(layout.sample_slots()) == list(slots)
        for drop in (frozenset(), frozenset(list(slots)[:1]), frozenset(slots)):
            copied = layout.model_copy(update={"wells": [g.spec for g in layout.groups() if g.name not in drop]})
            assert layout.without(drop) == copied
            assert layout.without(drop) is layout.without(drop)


def test_layout_group_selections_match_a_filter_of_every_group():
    """groups(role, interference) is worked out once per layout: the same groups, in order, as filtering the
    layout's list; each group's role and name are its spec's; a caller changing the list it got changes nothing."""
    from assayrunner.layout import Layout, WellGroup
    from assayrunner.plugins import load
    from assayrunner.protocol import load_file

    mixed = Layout(wells=[WellGroup(wells="A1:A3", role="sample", name="S1"),
                          WellGroup(wells="B1:B3", role="sample", name="S1", interference=True),
                          WellGroup(wells="C1", role="blank"), WellGroup(wells="C2", role="blank", interference=True),
                          WellGroup(wells="D1:D2", role="calibrator", name="cal 1", nominal=1.0),
                          WellGroup(wells="D3", role="spike", name="S1")])
    layouts = [mixed] + [load_file(path).layout for path in load().protocol_files]
    for layout in layouts:
        specs = list(layout.wells)
        for group in layout.groups():
            assert (group.role, group.name) == (group.spec.role, group.spec.name or group.spec.role)
        roles = {spec.role for spec in specs} | {None, "no such role"}
        for role in sorted(roles, key=str):
            for interference in (None, False, True):
                expected = [k for k, spec in enumerate(specs) if (role is None or spec.role == role)
                            and (interference is None or spec.interference == interference)]
                got = layout.groups(role, interference)
                assert [g.index for g in got] == expected
                assert [g.spec for g in got] == [specs[k] for k in expected]
                got.clear()
                assert [g.index for g in layout.groups(role, interference)] == expected
    assert len(mixed.groups("sample", True)) == 1 and len(mixed.groups("sample")) == 2


def _evaluate_as_before(criterion, metrics):
    """criteria.evaluate as it was, working everything out per call."""
    from assayrunner.criteria import Check, Condition, TooFewItems, _number, lookup

    description = criterion.rendered_description()
    unit = f" {criterion.unit}" if criterion.unit else ""
    if criterion.items is None:
        condition = Condition(metric=criterion.metric, op=criterion.op, limit=criterion.limit)
        value = lookup(metrics, criterion.metric)
        parent = lookup(metrics, criterion.metric.rpartition(".")[0]) if "." in criterion.metric else metrics
        note = parent.get("note") if isinstance(parent, dict) and isinstance(parent.get("note"), str) else ""
        return Check(criterion.id, description, _number(value), condition.describe() + unit,
                     condition.passes(value), note, scope=criterion.scope, unit=criterion.unit)
    items = lookup(metrics, criterion.items)
    if not isinstance(items, dict) or criterion.at_least > len(items):
        raise TooFewItems(criterion.items, len(items) if isinstance(items, dict) else 0)
    passing, failing = [], []
    for item, item_metrics in items.items():
        ok = all(c.passes(lookup(item_metrics, c.metric), item) for c in criterion.require)
        (passing if ok else failing).append(item)
    each = "; ".join(f"{c.metric} {c.describe()}" for c in criterion.require)
    detail = f"failing: {', '.join(failing)}" if failing else ""
    return Check(criterion.id, description, len(passing), f"≥ {criterion.at_least} of {len(items)}{unit}, each {each}",
                 len(passing) >= criterion.at_least, detail, criterion.scope, is_count=True, unit=criterion.unit,
                 total=len(items))


def _scaled(metrics, factor):
    """The metrics with every number multiplied (some checks then fail), notes kept."""
    if isinstance(metrics, dict):
        return {k: _scaled(v, factor) for k, v in metrics.items()}
    return metrics * factor if isinstance(metrics, float) else metrics


def test_prepared_criteria_judge_as_before():
    """The Setup's prepared criteria (description, condition and limits worked out once) give the checks
    evaluate gave working them out per run, for runs that pass and runs that fail."""
    from assayrunner import engine
    from assayrunner.criteria import Condition, Prepared, evaluate
    from assayrunner.plugins import load
    from assayrunner.protocol import load_file

    setup, _ = _hemolysis_reads()
    metrics = engine.compute(setup, [PLATE]).result.metrics
    verdicts = set()
    for factor in (1.0, 0.5, 3.0, float("nan")):
        scaled = _scaled(metrics, factor)
        for criterion, prepared in zip(setup.protocol.acceptance, setup.criteria, strict=True):
            check = evaluate(criterion, scaled, prepared)
            assert check == _evaluate_as_before(criterion, scaled) == evaluate(criterion, scaled)
            verdicts.add(check.passed)
    assert verdicts == {True, False}
    for path in load().protocol_files:
        for criterion in load_file(path).acceptance:
            assert Prepared.of(criterion).description == criterion.rendered_description()
            if criterion.items is None:
                built = Condition(metric=criterion.metric, op=criterion.op, limit=criterion.limit)
                assert criterion.condition() == built and type(criterion.condition().limit) is type(built.limit)


def test_lab_settings_are_read_once_per_setup_and_again_by_the_next(workdir):
    """A batch (one Setup) stores the settings its first run read; the next command reads the edited file."""
    from assayrunner import engine

    (workdir / "assayrun.toml").write_text('[lab]\nname = "First"\n')
    setup = engine.prepare("hemolysis")
    assert engine.compute(setup, [PLATE]).settings["lab"]["name"] == "First"
    (workdir / "assayrun.toml").write_text('[lab]\nname = "Second lab"\n')
    assert engine.compute(setup, [PLATE]).settings["lab"]["name"] == "First"
    assert engine.compute(engine.prepare("hemolysis"), [PLATE]).settings["lab"]["name"] == "Second lab"


def test_bad_lab_settings_fail_every_run_of_a_setup(workdir):
    from assayrunner import engine

    (workdir / "assayrun.toml").write_text("[lab\n")
    setup = engine.prepare("hemolysis")
    for _ in range(2):
        with pytest.raises(UserError, match="not valid TOML"):
            engine.compute(setup, [PLATE])


def _data_outside_everywhere(plate, rows, columns):
    """engine._data_outside as it was: every read's values looked at, whatever their shape."""
    import numpy as np

    from assayrunner.plate import parse_well, well_name

    wells = set()
    for read in plate.reads:
        finite = np.isfinite(read.values)
        filled = (finite.any(axis=2) if finite.ndim == 3 else finite).copy()
        filled[:rows, :columns] = False
        wells |= {(int(r), int(c)) for r, c in np.argwhere(filled)}
        wells |= {parse_well(w) for w, f in read.flags.items() if f not in ("missing", "no_value")
                  and (parse_well(w)[0] >= rows or parse_well(w)[1] >= columns)}
    return [well_name(r, c) for r, c in sorted(wells)]


def test_data_outside_skips_only_reads_that_fit_the_layout():
    import numpy as np

    from assayrunner import engine
    from assayrunner.plate import Plate, Read

    rng = np.random.default_rng(3)
    cases = []
    for shape in ((8, 12), (16, 24), (8, 24), (16, 12), (8, 12, 3), (16, 24, 3), (4, 6)):
        for fill in ("inside", "outside", "nan outside", "flag outside"):
            values = np.full(shape, np.nan)
            values[:min(8, shape[0]), :min(12, shape[1])] = rng.random((min(8, shape[0]), min(12, shape[1]))
                                                                        + shape[2:])
            flags = {}
            if fill == "outside" and (shape[0] > 8 or shape[1] > 12):
                values[shape[0] - 1, shape[1] - 1] = 1.0
            if fill == "flag outside":
                flags = {"P24": "saturated", "A13": "missing", "I1": "overflow"}
            kind = "kinetic" if len(shape) == 3 else "endpoint"
            cases.append(Plate("p", max(shape[0], 8), max(shape[1], 12), [Read("r", values, kind, flags=flags)]))
    found = [engine._data_outside(plate, 8, 12) for plate in cases]
    assert found == [_data_outside_everywhere(plate, 8, 12) for plate in cases]
    assert sum(bool(f) for f in found) >= 8 and sum(not f for f in found) >= 8
