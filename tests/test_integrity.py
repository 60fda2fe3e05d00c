"""Records nobody can quietly change: append-only tables, verify, signatures, supersession, migrations."""

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from assayrunner import store

from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


@pytest.fixture
def stored(cli, workdir):
    """A run computed from a copy of the plate that stays on disk; returns (db path, run JSON, plate copy)."""
    plate = workdir / "plate.csv"
    shutil.copy(PLATE, plate)
    result, data = cli.json("execute", "hemolysis", plate)
    assert result.exit_code == 0
    return workdir / "assayrun.db", data, plate


def drop_triggers(db_path):
    """What an attacker with the database file would do first."""
    with sqlite3.connect(db_path) as conn:
        for (name,) in conn.execute("select name from sqlite_master where type = 'trigger'").fetchall():
            conn.execute(f"drop trigger {name}")


@pytest.mark.parametrize("statement", [
    "update results set value = 0 where run_id = 1",
    "delete from results where run_id = 1",
    "update runs set valid = 0 where id = 1",
    "delete from runs where id = 1",
    "update audit_log set actor = 'x' where id = 1",
    "delete from audit_log",
])
def test_stored_records_refuse_update_and_delete(stored, statement):
    db_path, _, _ = stored
    with sqlite3.connect(db_path) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(statement)


def test_verify_ok_then_each_kind_of_tampering_is_found(cli, stored):
    db_path, data, plate = stored
    ok = cli("verify")
    assert ok.exit_code == 0, ok.stdout
    assert "DIFFERS" not in ok.stdout and "OK       run 1: digest" in ok.stdout

    plate.write_text(plate.read_text().replace("0.3497", "0.3597"))  # the input file edited on disk
    edited = cli("verify", "1")
    assert edited.exit_code == 1
    assert "DIFFERS  run 1 input plate.csv: file on disk" in edited.stdout
    shutil.copy(PLATE, plate)

    drop_triggers(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("update results set value = value * 0.5 where run_id = 1 and metric = 'percent_hemolysis'")
    tampered = cli("verify", "1")
    assert tampered.exit_code == 1
    assert "DIFFERS  run 1: digest" in tampered.stdout and "differ from what was certified" in tampered.stdout


def test_verify_finds_changed_run_parameters(cli, stored):
    db_path, _, _ = stored
    drop_triggers(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("update runs set parameters = replace(parameters, '\"tube_volume_ul\": 900.0', "
                     "'\"tube_volume_ul\": 450.0') where id = 1")
        assert conn.total_changes == 1
    result = cli("verify", "1")
    assert result.exit_code == 1 and "DIFFERS  run 1: digest" in result.stdout


def test_verify_finds_a_rewritten_audit_log(cli, stored):
    db_path, _, _ = stored
    drop_triggers(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("update audit_log set actor = 'someone else' where id = 1")
    result = cli("verify")
    assert result.exit_code == 1
    assert "row 1 (run stored) was changed after it was written" in result.stdout


def test_verify_a_certificate_file(cli, stored, workdir):
    _, data, _ = stored
    html = data["certificate"]["html"]
    assert cli("verify", html).exit_code == 0
    with open(html, "a") as f:
        f.write("<!-- edited -->")
    result = cli("verify", html)
    assert result.exit_code == 1 and "not a certificate this database issued, or changed since" in result.stdout


def test_verify_with_given_input_files(cli, stored, workdir):
    other = workdir / "other.csv"
    other.write_text(PLATE.read_text().replace("0.0441", "0.0442"))
    assert cli("verify", "1", "--file", PLATE).exit_code == 0
    result = cli("verify", "1", "--file", other)
    assert result.exit_code == 1 and "is not one of the run's inputs" in result.stdout


def test_signature_workflow_in_demo_mode(cli, stored, workdir):
    """The unauthenticated mode keeps the order of roles and the second person; the certificate says so."""
    early = cli("sign", "1", "--unauthenticated", "--role", "approved", "--by", "Q. Lead", "--meaning", "Approved for release")
    assert early.exit_code == 2 and "must be reviewed before it is approved" in early.stderr
    review = cli("sign", "1", "--unauthenticated", "--role", "reviewed", "--by", "R. Jones", "--meaning", "Data reviewed")
    assert review.exit_code == 0, review.output
    again = cli("sign", "1", "--unauthenticated", "--role", "reviewed", "--by", "X. Other", "--meaning", "again")
    assert again.exit_code == 2 and "already reviewed by R. Jones" in again.stderr
    same = cli("sign", "1", "--unauthenticated", "--role", "approved", "--by", "R. Jones", "--meaning", "Approved")
    assert same.exit_code == 2 and "approval needs a second person" in same.stderr
    approve = cli("sign", "1", "--unauthenticated", "--role", "approved", "--by", "Q. Lead", "--meaning", "Approved for release")
    assert approve.exit_code == 0
    latest = approve.stdout.strip().splitlines()[-1].removeprefix("Certificate: ")
    html = open(latest).read()
    assert "R. Jones" in html and "Data reviewed" in html and "Q. Lead" in html and "Approved for release" in html
    assert html.count("unauthenticated signature") == 2
    events = [r["event"] for r in Database(workdir / "assayrun.db").query("select event from audit_log order by id")]
    assert events.count("signature") == 2 and events.count("status changed") == 2
    assert cli("verify").exit_code == 0


def test_reanalysis_supersedes_and_both_certificates_say_so(cli, stored, workdir):
    _, first, plate = stored
    result, second = cli.json("execute", "hemolysis", plate, "--supersedes", "1")
    assert result.exit_code == 0 and second["run_id"] == 2
    assert "This run supersedes run 1" in open(second["certificate"]["html"]).read()
    old = Path(first["certificate"]["html"]).with_name(Path(first["certificate"]["html"]).stem + "-r2.html")
    assert "SUPERSEDED by run 2" in old.read_text()
    assert "SUPERSEDED" not in open(first["certificate"]["html"]).read()  # the first issue is never rewritten
    twice = cli("execute", "hemolysis", plate, "--supersedes", "1")
    assert twice.exit_code == 2 and "already superseded by run 2" in twice.stderr
    assert store.list_runs(Database(workdir / "assayrun.db"))[0]["id"] == 2  # the refused run was not stored


def test_migration_from_the_first_schema(tmp_path, workdir):
    """A database made by m001 alone (the first release) gains every later migration with its data intact."""
    path = tmp_path / "old.db"
    db = Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    store.m001_initial(db)
    db["_migrations"].insert({"name": "m001_initial", "applied_at": "2026-01-01T00:00:00+00:00"})
    db["runs"].insert({"id": 7, "assay": "hemolysis", "digest": "abc", "valid": 1})
    assert store.migrate(db) == [m.__name__ for m in store.MIGRATIONS[1:]]
    assert db["runs"].get(7)["supersedes"] is None and "signatures" in db.table_names()
    assert "qualifier" in db["results"].columns_dict and db["runs"].get(7)["protocol_modified"] is None
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("delete from runs where id = 7")
    assert [(fk.column, fk.other_table) for fk in db["runs"].foreign_keys] == [("supersedes", "runs")]
    assert [(fk.column, fk.other_table) for fk in db["audit_log"].foreign_keys] == [("run_id", "runs")]
    assert any(index.columns == ["supersedes"] for index in db["runs"].indexes)
    store.audit(db, "test", 7, "someone", {})
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("update audit_log set actor = 'x'")


def test_a_run_with_negative_zeros_verifies(cli, workdir):
    """SQLite stores a REAL -0.0 as 0: a well read as "-0.0000" (and any result that comes out as -0.0) is digested
    as 0.0, so the stored run verifies. Before, its digest kept the sign and verify called the run tampered with."""
    text = PLATE.read_text().replace("D,0.0486,", "D,-0.0000,", 1)
    assert text != PLATE.read_text()
    (workdir / "plate.csv").write_text(text)
    result, data = cli.json("execute", "hemolysis", workdir / "plate.csv")
    assert result.exit_code in (0, 1), result.stdout
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        assert conn.execute("select value from wells where well = 'D1'").fetchone() == (0.0,)
    verified = cli("verify")
    assert verified.exit_code == 0, verified.stdout


def test_the_digest_writes_zero_without_its_sign():
    from assayrunner import integrity

    rows = [{"v": -0.0, "w": 1}, {"v": 2.5, "w": -0.0}] * 6  # more than 8 rows: the column-at-a-time path too
    table = store.Table(("v", "w"), [tuple(r.values()) for r in rows])
    unsigned = [{k: v + 0.0 for k, v in r.items()} for r in rows]
    assert integrity.record_digest({"t": table}) == integrity.record_digest({"t": rows}) \
        == integrity.record_digest({"t": unsigned})
    assert integrity._row_text({"v": -0.0}) == '{"v": 0.0}' and integrity._row_text({"v": 0.5}) == '{"v": 0.5}'
