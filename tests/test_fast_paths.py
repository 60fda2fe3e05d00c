"""The fast paths keep the records whole: protocol text once per hash (and old databases still verify),
protocols found by id from an index, one Jinja environment per template set."""

import sqlite3

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
