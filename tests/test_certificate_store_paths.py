"""The certificate's store-side paths give what the general paths gave: reads straight from the connection
(store._select) the rows sqlite-utils' query() gives, store._has_table what `db[name].exists()` says, the input
rows of one kind those the full list filters to, and a certificate file's resolved name and written bytes
(certificate_files._named, _write_new) what Path.resolve and a buffered open wrote."""

import os

import pytest

from assayrunner import certificate_files, engine, store
from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    plate = folder / "plate.csv"
    plate.write_bytes(PLATE.read_bytes())
    engine.execute("hemolysis", [plate], db=folder / "a.db", out=folder / "certificates")
    engine.execute("hemolysis", [plate], db=folder / "a.db", certificate=False)
    database = store.open_db(folder / "a.db")
    with store.transaction(database):  # input rows of every kind spelling: NULL and '' (before m005), named kinds
        for position, kind in enumerate((None, "", "logo", "samples", "export"), start=10):
            database.conn.execute("insert into input_files (run_id, position, name, path, sha256, size, format, "
                                  "content, kind) values (2, ?, 'f', '/f', 'x', 1, 'csv', x'00', ?)", [position, kind])
    return database


QUERIES = [
    ("select * from runs where id = ?", [1]), ("select * from runs where id = ?", [99]),
    ("select * from wells where run_id = ? and time_s is null order by rowid", [1]),
    ("select * from results where run_id = :run_id order by position", {"run_id": 1}),
    ("select * from checks where run_id = :run_id order by position", {"run_id": 2}),
    ("select * from fits where run_id = :run_id order by rowid", {"run_id": 1}),
    ("select name, path, sha256, size, format, kind from input_files where run_id = ? order by position", [2]),
    ("select * from audit_log order by id", []), ("select id, supersedes from runs where supersedes in (?, ?)", [1, 2]),
    ("select * from signatures where run_id in (?) order by id", [1]), ("select * from certificates", []),
]


@pytest.mark.parametrize("sql,params", QUERIES, ids=range(len(QUERIES)))
def test_select_gives_the_rows_query_gives(db, sql, params):
    rows = store._select(db, sql, params)
    assert rows == list(db.query(sql, params))
    assert [list(row) for row in rows] == [list(row) for row in db.query(sql, params)]  # keys in the same order


def test_select_inside_a_transaction_sees_its_writes(db):
    with pytest.raises(RuntimeError), store.transaction(db):
        db.conn.execute("insert into protocol_texts (sha256, text) values ('select-test', 't')")
        sql = "select * from protocol_texts where sha256 = 'select-test'"
        assert store._select(db, sql) == list(db.query(sql)) != []
        raise RuntimeError  # rolled back
    assert store._select(db, "select * from protocol_texts where sha256 = 'select-test'") == []


def test_has_table_says_what_exists_says(db):
    with pytest.raises(RuntimeError), store.transaction(db):
        db.conn.execute("create view a_view as select 1")
        for name in ("chain_head", "runs", "a_view", "idx_wells_run_id", "no_such_table", "wells_no_update", ""):
            assert store._has_table(db, name) is db[name].exists(), name
        raise RuntimeError  # rolled back


@pytest.mark.parametrize("kind", [None, "export", "logo", "samples", "", "unknown"])
@pytest.mark.parametrize("run_id", [1, 2])
def test_inputs_of_one_kind_are_the_full_list_filtered(db, run_id, kind):
    everything = store.input_contents(db, run_id)
    assert [r["kind"] for r in everything].count("export") >= 1
    expected = [r for r in everything if kind is None or r["kind"] == kind]
    assert store.input_contents(db, run_id, kind) == expected


def test_named_is_where_resolve_leads(tmp_path):
    folder, elsewhere = (tmp_path / "out").resolve(), (tmp_path / "elsewhere").resolve()
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "file.html").write_text("x")
    (elsewhere / "target.html").write_text("x")
    (folder / "link.html").symlink_to(elsewhere / "target.html")
    (folder / "dangling.html").symlink_to(elsewhere / "missing.html")
    (folder / "chain.html").symlink_to(folder / "link.html")
    (folder / "relative.html").symlink_to("../elsewhere/target.html")
    for name in ("file.html", "missing.html", "link.html", "dangling.html", "chain.html", "relative.html"):
        assert certificate_files._named(folder, name) == (folder / name).resolve(), name


@pytest.mark.parametrize("size", [0, 1, 65536, 3 * 1024 * 1024 + 7])
def test_write_new_writes_the_bytes_and_never_over_a_file(tmp_path, size):
    content = os.urandom(size)
    path = tmp_path / ".run-1.html.1.partial"
    certificate_files._write_new(path, content)
    assert path.read_bytes() == content
    with pytest.raises(FileExistsError):
        certificate_files._write_new(path, b"other")
    assert path.read_bytes() == content
