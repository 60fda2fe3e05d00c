"""Workers store their own runs, in groups: a worker that dies while storing loses no run and stores none
twice. A death before the commit puts the group back in the queue (a run whose storing kills a worker twice
fails); a death after the commit but before the worker said so is found in the database."""

import os
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from assayrunner import batch, engine, store, workers
from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


class DyingStore(batch.RunStore):
    """A real RunStore whose worker is killed (SIGKILL) at one point of a save: `when` is "before commit" (in
    the transaction, after the group was announced) or "after commit" (stored, before the worker reports it).
    `times` saves die (counted in a file, as each worker is a new process); None: every save."""

    def __init__(self, *args, when: str, times: int | None, tally: Path):
        super().__init__(*args)
        self.when, self.times, self.tally = when, times, tally

    def _dies_now(self) -> bool:
        deaths = len(self.tally.read_text()) if self.tally.exists() else 0
        if self.times is not None and deaths >= self.times:
            return False
        with self.tally.open("a") as tally:
            tally.write("x")
        return True

    def save(self, group, committing):
        def announce(key, replies):
            committing(key, replies)
            if self.when == "before commit" and self._dies_now():
                os.kill(os.getpid(), signal.SIGKILL)

        replies = super().save(group, announce)
        if self.when == "after commit" and self._dies_now():
            os.kill(os.getpid(), signal.SIGKILL)
        return replies


@pytest.fixture
def plates(tmp_path):
    paths = []
    for k in range(5):
        paths.append(tmp_path / f"plate{k}.csv")
        shutil.copy(PLATE, paths[-1])
    return paths


class BlindStore(DyingStore):
    """Its parent cannot look in the database after the death."""

    def committed(self, key):
        raise sqlite3.OperationalError("unable to open database file")


def run_batch(tmp_path, plates, jobs=1, kind=DyingStore, **dying):
    job = batch.Job("hemolysis", None, (), None, None)
    setup = engine.prepare("hemolysis")
    db = tmp_path / "runs.db"
    store.open_db(db).close()
    saver = kind(db, setup.protocol.sha256, str(setup.protocol.path), tmp_path, None, False, False,
                       tally=tmp_path / "deaths", **dying)
    pool = workers.Pool(batch.compute, [(job, batch.Unit((p,))) for p in plates], jobs, 120, store=saver)
    replies = list(pool.replies())
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("select position from input_files where position = 0")]
        ids = [r[0] for r in conn.execute("select id from runs order by id")]
    return replies, stored, ids


def test_a_worker_killed_before_its_commit_loses_no_run(tmp_path, plates):
    replies, stored, ids = run_batch(tmp_path, plates, when="before commit", times=1)
    assert sorted(i for i, _ in replies) == [0, 1, 2, 3, 4]  # each reported once
    assert all(isinstance(r, batch.Stored) and r.valid for _, r in replies)
    assert len(stored) == 5 and sorted(r.run_id for _, r in replies) == ids  # each stored once, as reported


def test_a_worker_killed_after_its_commit_is_found_stored(tmp_path, plates):
    replies, stored, ids = run_batch(tmp_path, plates, when="after commit", times=1)
    assert sorted(i for i, _ in replies) == [0, 1, 2, 3, 4]
    assert all(isinstance(r, batch.Stored) for _, r in replies)
    assert len(ids) == 5 and sorted(r.run_id for _, r in replies) == ids  # none stored twice


def test_a_run_whose_storing_kills_every_worker_fails_after_two_tries(tmp_path, plates):
    replies, stored, ids = run_batch(tmp_path, plates[:2], when="before commit", times=None)
    assert sorted(i for i, _ in replies) == [0, 1] and ids == []
    for _, reply in replies:
        assert reply == workers.Failure(3, "the worker process died while storing this run (killed by SIGKILL, "
                                           "perhaps out of memory); it was not stored")
    assert len((tmp_path / "deaths").read_text()) == 2


def test_two_workers_store_into_one_database(tmp_path, plates):
    """Each worker has its own connection and commits its own groups: every run stored once."""
    replies, stored, ids = run_batch(tmp_path, plates, jobs=2, when="after commit", times=0)
    assert sorted(i for i, _ in replies) == [0, 1, 2, 3, 4] and len(ids) == 5
    assert sorted(r.run_id for _, r in replies) == ids


def test_a_commit_that_cannot_be_looked_up_fails_its_runs_naming_why(tmp_path, plates):
    replies, stored, ids = run_batch(tmp_path, plates[:2], kind=BlindStore, when="after commit", times=1)
    assert len(ids) == 2 and sorted(i for i, _ in replies) == [0, 1]  # stored, but the batch cannot tell
    for _, reply in replies:
        assert reply.exit_code == 3 and "whether it was stored cannot be told (unable to open database file)" \
            in reply.message


def test_spawned_workers_store_their_runs(tmp_path, plates):
    """Where workers are spawned (macOS, Windows) the store reaches them pickled, without a connection, and each
    opens its own."""
    job = batch.Job("hemolysis", None, (), None, None)
    setup = engine.prepare("hemolysis")
    db = tmp_path / "runs.db"
    store.open_db(db).close()
    saver = batch.RunStore(db, setup.protocol.sha256, str(setup.protocol.path), tmp_path, None, False, False)
    pool = workers.Pool(batch.compute, [(job, batch.Unit((p,))) for p in plates[:3]], 2, 120, start_method="spawn",
                        store=saver)
    replies = dict(pool.replies())
    assert sorted(replies) == [0, 1, 2] and all(isinstance(r, batch.Stored) and r.valid for r in replies.values())
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("select id from runs")) == sorted(r.run_id for r in replies.values())
