"""The typed run record: its rows and digest are what gets stored, worked out once and never out of step; a
batch stores its runs in groups, each run whole or not at all."""

import dataclasses
import sqlite3

import pytest

from assayrunner import batch, engine, integrity, store
from assayrunner.workers import Failure
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


def run_store(tmp_path, record) -> batch.RunStore:
    store.open_db(tmp_path / "runs.db").close()
    return batch.RunStore(tmp_path / "runs.db", record.protocol.sha256, str(record.protocol.path), tmp_path, None,
                          pdf=False, certificate=False)


def test_a_run_that_cannot_be_stored_leaves_its_group_whole(record, tmp_path):
    """A failing insert rolls back its own savepoint only: the group's other runs are committed and verify. The
    group is announced (its first stored run's id and digest) before the commit, when no one else sees it yet."""
    wells = record.stored.rows["wells"]
    bad_rows = {**record.stored.rows, "wells": store.Table((*wells.columns, "bogus"), [(*wells.values[0], 1)])}
    runs = [record.stored, store.StoredRun(bad_rows, record.digest), record.stored]
    saver = run_store(tmp_path, record)
    announced = []

    def committing(key, replies):
        with sqlite3.connect(tmp_path / "runs.db") as other:
            announced.append((key, replies, other.execute("select count(*) from runs").fetchone()[0],
                              saver.committed(key)))

    replies = saver.save(list(enumerate(runs, start=10)), committing)
    assert [i for i, _ in replies] == [10, 11, 12]
    good, bad, second = (r for _, r in replies)
    assert good == batch.Stored(1, True, (), None) and second == batch.Stored(2, True, (), None)
    assert isinstance(bad, Failure) and bad.exit_code == 3 and "bogus" in bad.message
    assert announced == [((1, record.digest), replies, 0, False)]
    assert saver.committed((1, record.digest)) and not saver.committed((1, "0" * 64))
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("select id from runs").fetchall() == [(1,), (2,)]  # the bad run's row was rolled back
        assert conn.execute("select count(distinct run_id) from input_files").fetchone() == (2,)
    saver.close()
    db = store.open_db(tmp_path / "runs.db")
    assert not integrity.verify(db, [1, 2], integrity.Report()).differs


def test_a_group_whose_commit_fails_stores_none_and_says_so(record, tmp_path):
    """The commit itself refused (a foreign key checked at commit): every run of the group is reported failed."""
    saver = run_store(tmp_path, record)

    def dangle(key, replies):  # a row whose missing run is found at the commit, not the insert
        saver.database.execute("PRAGMA defer_foreign_keys = ON")
        saver.database.execute("insert into results (run_id, position) values (99, 0)")

    replies = saver.save([(0, record.stored), (1, record.stored)], dangle)
    assert [i for i, _ in replies] == [0, 1] and all(isinstance(r, Failure) and r.exit_code == 3 for _, r in replies)
    assert replies[0][1].message == "not stored: the database refused the commit (FOREIGN KEY constraint failed)"
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("select count(*) from runs").fetchone() == (0,)
