"""The typed run record: its rows and digest are what gets stored, worked out once and never out of step; a
batch stores its runs in groups, each run whole or not at all."""

import dataclasses
import sqlite3

import pytest

from assayrunner import batch, engine, integrity, store
from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


@pytest.fixture(scope="module")
def record():
    return engine.compute(engine.prepare("hemolysis"), [PLATE], operator="A. Analyst")


def test_the_rows_and_digest_are_the_stored_ones(record, tmp_path):
    db = store.open_db(tmp_path / "runs.db")
    with store.transaction(db):
        run_id = store.save_run(db, record.stored)
    stored = store.stored_rows(db, run_id)
    assert record.digest == integrity.stored_digest(db, run_id) == store.get_run(db, run_id)["digest"]
    assert integrity.record_digest(stored) == integrity.record_digest(store.run_rows(record))
    assert [w["well"] for w in stored["wells"]] == [w["well"] for w in record.stored.rows["wells"]]
    assert len(stored["results"]) == len(record.result.results) and record.stored.operator == "A. Analyst"


def test_the_record_is_frozen_and_superseding_makes_a_new_one(record):
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.valid = False
    later = record.superseding(7)
    assert record.supersedes is None and later.supersedes == 7
    assert later.stored.rows["runs"][0]["supersedes"] == 7 and later.digest != record.digest
    assert later.digest == integrity.record_digest(store.run_rows(later))  # derived again, not copied


def test_a_run_that_cannot_be_stored_leaves_its_group_whole(record, tmp_path):
    """A failing insert rolls back its own savepoint only: the group's other runs are committed and verify."""
    db = store.open_db(tmp_path / "runs.db")
    wells = record.stored.rows["wells"]
    bad_rows = {**record.stored.rows, "wells": store.Table((*wells.columns, "bogus"), [(*wells.values[0], 1)])}
    runs = [record.stored, store.StoredRun(bad_rows, record.digest), record.stored]
    reported = []
    group = batch._Group(db, reported.append)
    setup = engine.prepare("hemolysis")
    entries = [batch.Entry((PLATE,)) for _ in runs]
    for entry, run in zip(entries, runs):
        batch._commit(entry, run, setup, group, out=tmp_path, templates=None, pdf=False, certificate=False)
        group.add(entry)
    assert reported == []  # nothing is reported before its group committed
    group.commit()
    assert reported == entries and [e.status for e in entries] == ["valid", "failed", "valid"]
    assert "bogus" in entries[1].error and entries[1].run_id is None
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("select id from runs").fetchall() == [(1,), (2,)]  # the bad run's row was rolled back
        assert conn.execute("select count(distinct run_id) from input_files").fetchone() == (2,)
    assert [e.run_id for e in entries] == [1, None, 2]
    report = integrity.verify(db, [1, 2], integrity.Report())
    assert not report.differs


def test_a_group_whose_commit_fails_stores_none_and_says_so(record, tmp_path):
    """The commit itself refused (a foreign key checked at commit): every run of the group is reported failed."""
    db = store.open_db(tmp_path / "runs.db")
    run = {**record.stored.rows["runs"][0], "supersedes": 99}
    dangling = store.StoredRun({**record.stored.rows, "runs": store.Table(tuple(run), [tuple(run.values())])},
                               record.digest)
    reported = []
    group = batch._Group(db, reported.append)
    setup = engine.prepare("hemolysis")
    entries = [batch.Entry((PLATE,)) for _ in range(2)]
    group.begin()
    db.execute("PRAGMA defer_foreign_keys = ON")  # the dangling link is found at the commit, not the insert
    for entry, run in zip(entries, [record.stored, dangling]):
        batch._commit(entry, run, setup, group, out=tmp_path, templates=None, pdf=False, certificate=False)
        group.add(entry)
    assert [e.run_id for e in entries] == [1, 2]
    group.commit()
    assert reported == entries and all(e.status == "failed" and e.run_id is None for e in entries)
    assert "not stored: the database refused the commit (FOREIGN KEY constraint failed)" in entries[0].error
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("select count(*) from runs").fetchone() == (0,)
