"""How a computed run reaches the database: the rows of a run inserted by multi-row INSERTs (store._insert_run_rows)
are the rows one INSERT per row stores, in the same order; a StoredRun and its Tables survive pickling (a pool
without a store sends them back, as an engine fanning out the compute step would) unchanged."""

import pickle
import sqlite3

import pytest

from assayrunner import store

#: Values of every kind a run's rows hold: text, int, float, None, bytes (an input file's content).
KINDS = ["A1", 3, 0.1, None, b"\x00bytes", -0.0, 1e300, "é ✓", 2 ** 62, True]


def _rows(count: int, width: int) -> list[tuple]:
    return [tuple(KINDS[(r * 7 + c) % len(KINDS)] for c in range(width)) for r in range(count)]


def _db(tmp_path, name: str, width: int):
    db = store.open_db(tmp_path / f"{name}.db")
    db.conn.execute(f"create table t (run_id integer, {', '.join(f'c{i}' for i in range(width))})")
    return db


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 63, 64, 65, 100, 127, 128, 129, 300])
@pytest.mark.parametrize("width", [1, 8, 14])
def test_run_rows_are_the_rows_of_one_insert_per_row(tmp_path, count, width):
    columns = tuple(f"c{i}" for i in range(width))
    rows = _rows(count, width)
    fast, general = _db(tmp_path, "fast", width), _db(tmp_path, "general", width)
    with store.transaction(fast):
        store._insert_run_rows(fast, "t", 42, store.Table(columns, rows))
    with store.transaction(general):
        for row in rows:
            general.conn.execute(f"insert into t values ({', '.join('?' * (width + 1))})", (42, *row))
    read = "select rowid, typeof(c0), * from t order by rowid"
    assert fast.conn.execute(read).fetchall() == general.conn.execute(read).fetchall()
    assert len(fast.conn.execute(read).fetchall()) == count


@pytest.mark.parametrize("width", [15, 16, 40, 998])
def test_wide_rows_stay_within_the_999_variables_of_older_sqlite(tmp_path, width):
    columns = tuple(f"c{i}" for i in range(width))
    rows = _rows(70, width)
    db = _db(tmp_path, "wide", width)
    db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite's limit before 3.32
    with store.transaction(db):
        store._insert_run_rows(db, "t", 7, store.Table(columns, rows))
    assert db.conn.execute(f"select {', '.join(columns)} from t order by rowid").fetchall() == rows


def test_run_rows_outside_a_transaction_are_written_in_one(tmp_path):
    db = _db(tmp_path, "alone", 2)
    store._insert_run_rows(db, "t", 1, store.Table(("c0", "c1"), _rows(5, 2)))
    assert not db.conn.in_transaction
    assert db.conn.execute("select count(*) from t").fetchone()[0] == 5


def test_run_rows_statements_name_the_run_id_once():
    sql = store._run_rows_sql("t", ("a", "b"), 3)
    assert sql == "insert into [t] ([run_id], [a], [b]) values (?1, ?, ?), (?1, ?, ?), (?1, ?, ?)"
    connection = sqlite3.connect(":memory:")
    connection.execute("create table t (run_id, a, b)")
    connection.execute(sql, (9, 1, 2, 3, 4, 5, 6))
    assert connection.execute("select * from t order by rowid").fetchall() == [(9, 1, 2), (9, 3, 4), (9, 5, 6)]


def test_a_stored_run_survives_pickling():
    tables = {"runs": store.Table(("a", "valid", "operator"), [("x", 1, "ann")]),
              "wells": store.Table(("well", "value"), _rows(70, 2)), "fits": store.Table(("n",), [])}
    run = store.StoredRun(tables, "d" * 64)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(run, protocol))
        assert type(back) is store.StoredRun and back == run and back.digest == run.digest
        assert all(type(t) is store.Table for t in back.rows.values())
        assert [list(t) for t in back.rows.values()] == [list(t) for t in tables.values()]
        assert back.valid and back.operator == "ann"
        with pytest.raises(AttributeError):  # still frozen
            back.digest = "x"
        with pytest.raises(AttributeError):
            back.rows["wells"].values = []
