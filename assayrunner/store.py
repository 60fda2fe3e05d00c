"""SQLite persistence through sqlite-utils: numbered migrations, one transaction per run, a chained audit log."""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import mimetypes
import random
import secrets
import sqlite3
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np


def _sqlite_utils_without_pandas() -> None:
    """sqlite-utils imports pandas when it is installed, only to store pandas Timestamps (we never do): hide
    pandas during that import, so it costs no command its ~0.3 s."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # makes `import pandas` raise ImportError, which sqlite-utils expects
    try:
        importlib.import_module("sqlite_utils")
    finally:
        del sys.modules["pandas"]


_sqlite_utils_without_pandas()
from sqlite_utils import Database  # noqa: E402

from . import filesystems
from .errors import UserError
from .plate import well_name

if TYPE_CHECKING:
    from .run_record import RunRecord


@dataclass(frozen=True)
class StoredFile:
    """A file a run used besides its exports (samples, parameters, lab settings, logo), stored with its bytes."""

    kind: str
    path: Path
    content: bytes
    format: str

    @classmethod
    def of(cls, kind: str, path: Path, format: str) -> "StoredFile":
        try:
            return cls(kind, Path(path), Path(path).read_bytes(), format)
        except OSError as exc:
            raise UserError(f"cannot read the {kind} file: {exc.strerror}", file=path) from None


def m001_initial(db: Database) -> None:
    db["runs"].create({
        "id": int, "assay": str, "protocol_id": str, "protocol_version": str, "protocol_sha256": str,
        "protocol_path": str, "protocol_toml": str, "parameters": str, "valid": int, "operator": str,
        "created_at": str, "software": str, "metrics": str, "details": str, "samples": str,
        "skipped": str, "plate_name": str, "plate_metadata": str, "digest": str,
    }, pk="id")
    db["input_files"].create({"run_id": int, "position": int, "name": str, "path": str, "sha256": str,
                              "size": int, "format": str, "content": bytes}, foreign_keys=[("run_id", "runs")])
    db["wells"].create({"run_id": int, "read": str, "well": str, "time_s": float, "value": float,
                        "flag": str, "role": str, "group_name": str}, foreign_keys=[("run_id", "runs")])
    db["fits"].create({"run_id": int, "name": str, "model": str, "parameters": str, "se": str, "r2": float,
                       "n": int, "converged": int, "plot": str}, foreign_keys=[("run_id", "runs")])
    db["checks"].create({"run_id": int, "position": int, "check_id": str, "description": str, "value": float,
                         "limit_text": str, "passed": int, "detail": str, "scope": str, "is_count": int}, foreign_keys=[("run_id", "runs")])
    db["results"].create({"run_id": int, "position": int, "sample": str, "metric": str, "value": float,
                          "unit": str, "flags": str, "interpretation": str, "scope": str}, foreign_keys=[("run_id", "runs")])
    db["certificates"].create({"id": int, "run_id": int, "format": str, "path": str, "sha256": str,
                               "created_at": str}, pk="id", foreign_keys=[("run_id", "runs")])
    db["audit_log"].create({"id": int, "at": str, "event": str, "run_id": int, "actor": str, "payload": str,
                            "prev_sha256": str, "sha256": str}, pk="id")
    for table in ("wells", "checks", "results", "input_files", "fits"):
        db[table].create_index(["run_id"])


#: Tables whose rows are never changed or removed once written.
APPEND_ONLY = ("runs", "input_files", "wells", "fits", "checks", "results", "certificates", "audit_log", "signatures")
#: The digest scheme of runs stored by this version (runs before m005 carry none: scheme 1).
DIGEST_VERSION = 2
#: Tables whose rows make up a run, in the order the digest covers them (see run_rows).
RUN_TABLES = ("runs", "input_files", "wells", "fits", "checks", "results")


def m002_integrity(db: Database) -> None:
    """Signatures, the supersedes link, and triggers that refuse UPDATE and DELETE on stored records."""
    db["runs"].add_column("supersedes", int)
    db["signatures"].create({"id": int, "run_id": int, "role": str, "signer": str, "meaning": str,
                             "signed_at": str}, pk="id", foreign_keys=[("run_id", "runs")])
    db["signatures"].create_index(["run_id", "role"], unique=True)
    _append_only(db, APPEND_ONLY)


def _append_only(db: Database, tables) -> None:
    for table in tables:
        for action in ("UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: records are never changed'); END")


def m003_result_qualifier(db: Database) -> None:
    """results.qualifier ('<', '>' or NULL: a censored bound or a measured value)."""
    db["results"].add_column("qualifier", str)


def m003_check_unit_and_modified_protocol(db: Database) -> None:
    """checks.unit and checks.total (a count's item total); runs.protocol_modified (JSON: shipped id, version, keys)."""
    db["checks"].add_column("unit", str)
    db["checks"].add_column("total", int)
    db["runs"].add_column("protocol_modified", str)


def m005_records(db: Database) -> None:
    """Every input kind, results by sample, the rendered record, key-based signatures, foreign keys.

    SQLite cannot add a foreign key to an existing column, so runs and audit_log are rebuilt (same
    rows, same ids) with runs.supersedes -> runs.id and audit_log.run_id -> runs.id; their
    append-only triggers are dropped with the old tables and created again. The new column
    signatures.signer_id is added with its reference to signers.id.
    """
    for table, columns in {
        "runs": {"settings": str, "overridden": str, "assay_title": str, "assay_template": str,
                 "assay_plugin": str, "digest_version": int},
        "input_files": {"kind": str},
        "results": {"slot": str, "sample_id": str, "lot": str, "concentration": float, "concentration_unit": str},
        "signatures": {"mode": str, "key_sha256": str, "signature": str},
    }.items():
        for column, kind in columns.items():
            db[table].add_column(column, kind)
    db["signers"].create({"id": int, "name": str, "name_key": str, "roles": str, "public_key": str,
                          "key_sha256": str, "added_at": str}, pk="id")
    db["signers"].create_index(["name_key"], unique=True)
    db.execute("ALTER TABLE signatures ADD COLUMN signer_id INTEGER REFERENCES signers(id)")
    db["runs"].transform(add_foreign_keys=[("supersedes", "runs", "id")])
    db["audit_log"].transform(add_foreign_keys=[("run_id", "runs", "id")])
    db["runs"].create_index(["supersedes"])
    db["audit_log"].create_index(["run_id"])
    _append_only(db, ("runs", "audit_log", "signers"))


def m004_protocol_texts(db: Database) -> None:
    """Protocol text stored once per distinct SHA-256 instead of once per run. Runs stored before keep their
    runs.protocol_toml (records are never changed); texts that still match their hash are copied over."""
    db["protocol_texts"].create({"sha256": str, "text": str}, pk="sha256")
    texts = db.execute("select distinct protocol_sha256, protocol_toml from runs where protocol_toml is not null")
    db.conn.executemany("insert or ignore into protocol_texts (sha256, text) values (?, ?)",
                        [(sha, text) for sha, text in texts if hashlib.sha256(text.encode()).hexdigest() == sha])
    _append_only(db, ("protocol_texts",))


def m006_chain_head(db: Database) -> None:
    """The audit chain's length and last hash kept beside it, and a random id naming this database's files."""
    db["chain_head"].create({"id": int, "database_id": str, "audit_rows": int, "audit_sha256": str}, pk="id")
    last = db.execute("select sha256 from audit_log order by id desc limit 1").fetchone()
    db["chain_head"].insert({"id": 1, "database_id": secrets.token_hex(16),
                             "audit_rows": db.execute("select count(*) from audit_log").fetchone()[0],
                             "audit_sha256": last[0] if last else GENESIS})


def m007_well_plate(db: Database) -> None:
    """wells.plate: the 1-based position of the well's plate in a plate-series run (NULL for one-plate runs)."""
    db["wells"].add_column("plate", int)


def m008_certificate_path_index(db: Database) -> None:
    """An index on certificates.path: naming a certificate file looks its path up without scanning the table."""
    db["certificates"].create_index(["path"])


GENESIS = "0" * 64
MIGRATIONS = [m001_initial, m002_integrity, m003_result_qualifier, m003_check_unit_and_modified_protocol, m005_records,
              m004_protocol_texts, m006_chain_head, m007_well_plate,
              m008_certificate_path_index]


def migrate(db: Database) -> list[str]:
    """Apply the migrations not yet applied, in order, under the write lock; returns their names."""
    if not pending_migrations(db):
        return []
    with transaction(db):
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
        applied = pending_migrations(db)  # again under the lock: another process may have just migrated
        for migration in MIGRATIONS:
            if migration.__name__ in applied:
                migration(db)
                db["_migrations"].insert({"name": migration.__name__, "applied_at": _now()})
    return applied


def pending_migrations(db: Database) -> list[str]:
    """The names of the known migrations this database has not applied yet."""
    done = {row["name"] for row in db["_migrations"].rows} if db["_migrations"].exists() else set()
    return [m.__name__ for m in MIGRATIONS if m.__name__ not in done]


def applied_migrations(db: Database) -> list[str]:
    """The migrations recorded in the database, known or not, in the order applied."""
    if not db["_migrations"].exists():
        return []
    return [row["name"] for row in db.query("select name from _migrations order by applied_at, name")]


class _Connection(sqlite3.Connection):
    """sqlite3's connection, weakly referable: the store knows which of its connections are still open."""


_connections: weakref.WeakSet[_Connection] = weakref.WeakSet()


def _connect(*args, **kwargs) -> _Connection:
    conn = sqlite3.connect(*args, factory=_Connection, **kwargs)
    _connections.add(conn)
    return conn


def any_open() -> bool:
    """Whether a connection of open_db or open_read_only is still open (closing it checkpoints the WAL)."""
    for conn in list(_connections):
        try:
            conn.total_changes
        except sqlite3.ProgrammingError:  # closed
            continue
        return True
    return False


def open_db(path: Path) -> Database:
    """Open (creating if needed) and migrate the database; WAL and a busy timeout for concurrent writers.
    A database on a network file system is refused.

    After the migrations, the connection keeps its temporary files in memory: above all the statement journal
    of the savepoint each run is stored in (the pages it changes, as they were, to roll back to). SQLite spills
    that journal to a file in /var/tmp once it passes 64 KiB, which a batch's runs do within a transaction, and
    then writes every page to it twice over (about 40 writes a run). Only rolling back to a savepoint reads it:
    the WAL alone makes a commit durable, so nothing about a crash changes."""
    filesystems.refuse_network_filesystem(path)
    try:
        # what Database(path) connects with; sqlite-utils plugins have no say in our records
        db = Database(_connect(str(path)), execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        _retry_locked(db, lambda: db.enable_wal(), path)
        migrate(db)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA temp_store = MEMORY")
    except UserError:
        raise
    except Exception as exc:  # sqlite3.DatabaseError for a file that is not a database, OSError for a bad path
        raise UserError(f"cannot open the database: {exc}", file=path) from None
    return db


def open_read_only(path: Path) -> Database:
    """The database as it is, for looking only: no migration, no write (sqlite3.Error if it cannot be opened)."""
    conn = _connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    conn.execute("select count(*) from sqlite_master").fetchone()  # fails here for a file that is no database
    return Database(conn)


def integrity_problems(db: Database) -> list[str]:
    """What SQLite's integrity_check finds wrong in the file ([] when it says ok)."""
    try:
        return [row[0] for row in db.execute("pragma integrity_check").fetchall() if row[0] != "ok"]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]


_BUSY_MS = 2000  # SQLite's own wait per attempt; transaction() retries up to [database] lock_timeout_s
_pending: dict[int, list[tuple[Callable[[], None], Callable[[], None] | None]]] = {}


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One write transaction that takes the write lock up front (BEGIN IMMEDIATE), retrying with backoff
    for up to [database] lock_timeout_s; what after_commit() was given runs once it committed (or, for
    its undo, once it rolled back)."""
    if db.conn.in_transaction:  # nested: a savepoint inside the one that holds the lock
        pending = _pending.get(id(db))
        mark = len(pending) if pending is not None else 0
        try:
            with _savepoint(db):
                yield db
        except BaseException:
            if pending is not None:  # what the savepoint registered is undone with it
                for _, undo in reversed(pending[mark:]):
                    if undo is not None:
                        undo()
                del pending[mark:]
            raise
        return
    _retry_locked(db, lambda: db.conn.execute("BEGIN IMMEDIATE"), _path(db))
    _pending[id(db)] = []
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        for _, undo in _pending.pop(id(db), []):
            if undo is not None:
                undo()
        raise
    for done, _ in _pending.pop(id(db), []):
        done()


@contextmanager
def _savepoint(db: Database) -> Iterator[None]:
    """A savepoint, released when the block ends and rolled back to if it raises (as sqlite-utils' atomic() does).
    One name serves every level: SQLite releases or rolls back to the latest savepoint of a name, and the SQL
    stays the same, so it is prepared once."""
    db.conn.execute("SAVEPOINT assayrun")
    try:
        yield
    except BaseException:
        if db.conn.in_transaction:  # an error such as RAISE(ROLLBACK) may have ended the transaction
            db.conn.execute("ROLLBACK TO SAVEPOINT assayrun")
            db.conn.execute("RELEASE SAVEPOINT assayrun")
        raise
    db.conn.execute("RELEASE SAVEPOINT assayrun")


def after_commit(db: Database, done: Callable[[], None], undo: Callable[[], None] | None = None) -> None:
    """Run `done` once the transaction() open on `db` commits, `undo` if it rolls back; with no
    transaction() open, `done` runs at once."""
    if id(db) in _pending:
        _pending[id(db)].append((done, undo))
    else:
        done()


def _retry_locked(db: Database, attempt: Callable[[], object], path) -> None:
    """Run `attempt` until it gets past a locked database, with jittered exponential backoff, for up to
    [database] lock_timeout_s; then a UserError (nothing was written)."""
    from .config import load_config

    timeout = load_config().database.lock_timeout_s
    deadline, delay = time.monotonic() + timeout, 0.005
    while True:
        try:
            attempt()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise UserError(f"the database stayed locked by other writers for {timeout:g} s; nothing was "
                                "stored: try again, or raise [database] lock_timeout_s", file=path) from None
        time.sleep(min(delay * random.uniform(0.5, 1.5), max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 0.25)


def _path(db: Database) -> str:
    return db.conn.execute("pragma database_list").fetchone()[2]


def database_id(db: Database) -> str:
    """This database's random id (made by m006), which certificate file names carry."""
    row = db.conn.execute("select database_id from chain_head where id = 1").fetchone() \
        if _has_table(db, "chain_head") else None
    if row is None:
        raise UserError("the database has lost its chain head (table chain_head): it was edited outside assayrun; "
                        "run `assayrun doctor`, and restore it from a backup", file=_path(db))
    return row[0]


@dataclass(frozen=True, slots=True)
class Table:
    """One table's rows as a run is stored (run_rows): the column names, and the values of each row as a tuple in
    their order, rows in the order they are inserted. Indexing or iterating gives rows as dicts (the shape
    stored_rows gives)."""

    columns: tuple[str, ...]
    values: list[tuple]

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> dict:
        return dict(zip(self.columns, self.values[index]))

    def __iter__(self) -> Iterator[dict]:
        return (dict(zip(self.columns, row)) for row in self.values)


@dataclass(frozen=True, slots=True)
class StoredRun:
    """What a run is stored as: its rows table by table (run_rows, without run ids) and their digest."""

    rows: dict[str, Table]
    digest: str

    @property
    def operator(self) -> str:
        return self.rows["runs"][0]["operator"]

    @property
    def valid(self) -> bool:
        return bool(self.rows["runs"][0]["valid"])


def save_run(db: Database, run: StoredRun) -> int:
    """Insert one run's rows with its digest; call inside transaction(). The protocol text goes to
    protocol_texts, once per SHA-256 (stored_rows puts it back in the run row)."""
    row = run.rows["runs"][0]
    db.execute("insert or ignore into protocol_texts (sha256, text) values (?, ?)",
               [row["protocol_sha256"], row["protocol_toml"]])
    run_id = _insert(db, "runs", [{**row, "protocol_toml": None, "digest": run.digest}])
    for table in RUN_TABLES[1:]:
        _insert_run_rows(db, table, run_id, run.rows[table])
    audit(db, "run stored", run_id, row["operator"], {"digest": run.digest, "valid": bool(row["valid"])})
    return run_id


def _insert(db: Database, table: str, rows: list[dict]) -> int | None:
    """Insert rows that share their keys (see _insert_values); returns the last row id."""
    if not rows:
        return None
    columns = tuple(rows[0])
    return _insert_values(db, table, columns, [tuple(row[c] for c in columns) for row in rows])


def _insert_values(db: Database, table: str, columns: tuple[str, ...], rows: list[tuple]) -> int | None:
    """Insert rows (a tuple of values in the order of `columns` each) in one executemany, inside the caller's
    transaction (save_run runs in one) or else in its own; returns the last row id."""
    if not rows:
        return None
    if not db.conn.in_transaction:
        with transaction(db):  # like every write: the lock taken up front
            return _insert_values(db, table, columns, rows)
    sql = _insert_sql(table, columns)
    if len(rows) == 1:
        return db.conn.execute(sql, rows[0]).lastrowid
    return db.conn.executemany(sql, rows).lastrowid


#: The most rows one INSERT of _insert_run_rows writes, and the fewest variables any SQLite takes in one statement.
ROWS_PER_INSERT, _MOST_VARIABLES = 64, 999


def _insert_run_rows(db: Database, table: str, run_id: int, rows: Table) -> None:
    """Insert a run's rows of one table, in order, each with the run's id first: up to ROWS_PER_INSERT rows in
    one multi-row INSERT, the rest in the powers of two below it (at most 7 statements per table, each prepared
    once per connection), the run id bound once per statement. Inside the caller's transaction (save_run's)."""
    if not db.conn.in_transaction:
        with transaction(db):  # like every write: the lock taken up front
            return _insert_run_rows(db, table, run_id, rows)
    values, start, size = rows.values, 0, ROWS_PER_INSERT
    while size > 1 and size * len(rows.columns) >= _MOST_VARIABLES:  # SQLite before 3.32 takes at most 999
        size //= 2
    while start < len(values):
        while size > len(values) - start:
            size //= 2
        db.conn.execute(_run_rows_sql(table, rows.columns, size),
                        (run_id, *chain.from_iterable(values[start:start + size])))
        start += size


@lru_cache(maxsize=256)
def _run_rows_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    """INSERT of `rows` rows of (run_id, *columns): the run id is ?1 in every row, the other values follow in
    order (a bare ? is numbered one past the highest number before it)."""
    row = f"(?1, {', '.join('?' * len(columns))})"
    return f"insert into [{table}] ([run_id], {', '.join(f'[{c}]' for c in columns)}) values {', '.join([row] * rows)}"


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"insert into [{table}] ({', '.join(f'[{c}]' for c in columns)}) values ({', '.join('?' * len(columns))})"


def protocol_text(db: Database, run: dict) -> str:
    """The protocol text a run was computed with: stored once per SHA-256, or in the run row (older runs)."""
    if run.get("protocol_toml") is not None:
        return run["protocol_toml"]
    row = db.execute("select text from protocol_texts where sha256 = ?", [run["protocol_sha256"]]).fetchone()
    return row[0] if row else ""


def run_rows(record: RunRecord) -> dict[str, Table]:
    """The rows a run is stored as, table by table, without run ids: what the digest covers."""
    proto, result, plate = record.protocol, record.result, record.plate
    run = {
        "assay": record.assay, "protocol_id": proto.id, "protocol_version": proto.version,
        "protocol_sha256": proto.sha256, "protocol_path": str(proto.path), "protocol_toml": proto.text,
        "parameters": _json(record.parameters), "valid": int(record.valid), "operator": record.operator,
        "created_at": record.created_at, "software": _json(record.software),
        "metrics": _json(result.metrics), "details": _json(result.details), "samples": _json(record.samples),
        "skipped": _json(record.skipped), "plate_name": plate.name, "plate_metadata": _json(plate.metadata),
        "supersedes": record.supersedes, "settings": _json(record.settings),
        "overridden": _json(sorted(record.overridden)), "assay_title": record.assay_title,
        "assay_template": record.assay_template, "assay_plugin": _json(record.assay_plugin),
        "digest_version": DIGEST_VERSION,
        "protocol_modified": _json(record.modified_from) if record.modified_from else None,
    }
    files = [("export", f.path, f.content, f.format) for f in record.inputs]
    files += [(f.kind, f.path, f.content, f.format) for f in record.attachments]
    return {
        "runs": Table(tuple(run), [tuple(run.values())]),
        "input_files": Table(_INPUT_COLUMNS, [
            (i, path.name, str(path.resolve()), hashlib.sha256(content).hexdigest(), len(content), fmt, content, kind)
            for i, (kind, path, content, fmt) in enumerate(files)]),
        "wells": _wells(record),
        "fits": Table(_FIT_COLUMNS, [(
            fit["name"], fit["model"], _json(fit["parameters"]), _json(fit["se"]), _float(fit["r2"]), fit["n"],
            int(fit["converged"]),
            _json({k: fit.get(k) for k in ("x", "y", "line", "x_unit", "y_label", "log_x")}
                  | ({"mark": fit["mark"]} if fit.get("mark") else {})),  # older fits' plots unchanged
        ) for fit in result.fits]),
        "checks": Table(_CHECK_COLUMNS, [(
            i, c.id, c.description, _float(c.value), c.limit, int(c.passed), c.detail, c.scope, int(c.is_count),
            c.unit, c.total,
        ) for i, c in enumerate(record.checks)]),
        "results": Table(_RESULT_COLUMNS, [(
            i, r.sample, r.metric, _float(r.value), r.unit, _json(r.flags), r.interpretation, r.scope, r.slot,
            r.sample_id, r.lot, _float(r.concentration), r.concentration_unit, r.qualifier,
        ) for i, r in enumerate(result.results)]),
    }


#: The columns of run_rows' tables, in the order of the values it gives.
_INPUT_COLUMNS = ("position", "name", "path", "sha256", "size", "format", "content", "kind")
_FIT_COLUMNS = ("name", "model", "parameters", "se", "r2", "n", "converged", "plot")
_CHECK_COLUMNS = ("position", "check_id", "description", "value", "limit_text", "passed", "detail", "scope",
                  "is_count", "unit", "total")
_RESULT_COLUMNS = ("position", "sample", "metric", "value", "unit", "flags", "interpretation", "scope", "slot",
                   "sample_id", "lot", "concentration", "concentration_unit", "qualifier")
_WELL_COLUMNS = ("read", "well", "flag", "role", "group_name", "time_s", "value")


def stored_rows(db: Database, run_id: int) -> dict[str, list[dict]]:
    """A stored run's rows, table by table, in the order they were written (the shape run_rows gives)."""
    rows = {"runs": [{**run, "protocol_toml": protocol_text(db, run)}
                     for run in db.query("select * from runs where id = ?", [run_id])]}
    for table in RUN_TABLES[1:]:
        rows[table] = list(db.query(f"select * from {table} where run_id = ? order by rowid", [run_id]))
    return rows


def _wells(record: RunRecord) -> Table:
    """The well rows of a run; a plate-series run's carry their plate's position first (one-plate runs keep the
    rows they always had)."""
    if not record.series:
        return Table(_WELL_COLUMNS, _well_rows(record.plate, record.layout))
    return Table(("plate", *_WELL_COLUMNS),
                 [row for position, p in record.series for row in _well_rows(p, record.layout, (position,))])


def _well_rows(plate, layout, lead: tuple = ()) -> list[tuple]:
    """Per read and well in plate order: `lead`, read, well, flag, role, group name, time (kinetic) and value;
    an endpoint well only with a value or a flag."""
    groups = layout.by_well()
    rows = []
    isfinite = math.isfinite
    for read in plate.reads:
        flags, label = read.flags, read.label
        names = _well_names(*read.values.shape[:2])
        # as Python floats: float64's are the same numbers, read faster; another dtype's are what _float makes them
        values = read.values.astype(np.float64, copy=False).tolist()
        kinetic = read.kind == "kinetic"
        for row_names, row_values in zip(names, values):
            for well, value in zip(row_names, row_values):
                if not kinetic and value != value and well not in flags:  # an endpoint's NaN without a flag: no row
                    continue
                group = groups.get(well)
                base = (*lead, label, well, flags.get(well), group.role if group else None,
                        group.name if group else None)
                if kinetic:
                    rows += [(*base, _float(t), v if isfinite(v) else None) for t, v in zip(read.times_s, value)]
                else:
                    rows.append((*base, None, value if isfinite(value) else None))
    return rows


@lru_cache(maxsize=16)
def _well_names(rows: int, columns: int) -> tuple[tuple[str, ...], ...]:
    """The well names of a plate shape, row by row."""
    return tuple(tuple(well_name(r, c) for c in range(columns)) for r in range(rows))


def audit(db: Database, event: str, run_id: int | None, actor: str, payload: dict) -> None:
    """Append an audit row chained to the previous one by SHA-256, and move the chain head to it."""
    last = db.conn.execute("select sha256 from audit_log order by id desc limit 1").fetchone()
    prev = last[0] if last else GENESIS
    row = {"at": _now(), "event": event, "run_id": run_id, "actor": actor, "payload": _json(payload),
           "prev_sha256": prev}
    row["sha256"] = hashlib.sha256(_json(row, canonical=True).encode()).hexdigest()
    _insert(db, "audit_log", [row])
    db.execute("update chain_head set audit_rows = audit_rows + 1, audit_sha256 = ? where id = 1", [row["sha256"]])


def chain_head(db: Database) -> dict | None:
    """The audit chain's head as recorded beside the log (table chain_head, moved by every audit()): its length
    `rows`, which is also the last row's `position`, and that row's `sha256`. The one notion of head: certificates
    print it, `audit export --head` gives it, verify checks the log against it. None when the table or its row is
    gone (or before m006)."""
    row = db.conn.execute("select audit_rows, audit_sha256 from chain_head where id = 1").fetchone() \
        if _has_table(db, "chain_head") else None
    return {"rows": row[0], "position": row[0], "sha256": row[1]} if row else None


_JSON_COLUMNS = ("parameters", "software", "metrics", "details", "samples", "skipped", "plate_metadata", "settings",
                 "overridden", "assay_plugin", "protocol_modified")


def _has_table(db: Database, name: str) -> bool:
    """Whether the database has a table (or view) of this name: what `db[name].exists()` says, in one query."""
    return db.conn.execute("select 1 from sqlite_master where name = ? and type in ('table', 'view')",
                           [name]).fetchone() is not None


def _select(db: Database, sql: str, params: list | dict = ()) -> list[dict]:
    """The rows of one SELECT as dicts (column name -> value, no column named twice), read straight from the
    connection: without the savepoint sqlite-utils' query() puts around every statement, which only serves to
    undo a statement that turns out to return no rows."""
    cursor = db.conn.execute(sql, params)
    keys = [column[0] for column in cursor.description]
    return [dict(zip(keys, row)) for row in cursor]


def get_run(db: Database, run_id: int) -> dict:
    """A stored run with its inputs (without content), checks, results, fits and state; UserError if unknown."""
    try:
        run = next(iter(_select(db, "select * from runs where id = ?", [run_id])), None)
    except sqlite3.Error:
        run = None
    if run is None:
        raise UserError(f"no run {run_id} in this database; see `assayrun runs`", file=db_path(db))
    for key in _JSON_COLUMNS:
        run[key] = json.loads(run[key]) if run.get(key) is not None else None
    run["valid"] = bool(run["valid"])
    run["protocol_toml"] = protocol_text(db, run)
    where = {"run_id": run_id}
    run["inputs"] = [{**f, "kind": f["kind"] or "export"} for f in _select(
        db, "select name, path, sha256, size, format, kind from input_files where run_id = :run_id order by position",
        where)]
    run["checks"] = _select(db, "select * from checks where run_id = :run_id order by position", where)
    for check in run["checks"]:  # each row its own dict: its values decoded in place
        check["passed"], check["is_count"] = bool(check["passed"]), bool(check["is_count"])
    run["results"] = _select(db, "select * from results where run_id = :run_id order by position", where)
    for result in run["results"]:
        result["flags"] = json.loads(result["flags"])
    run["fits"] = [{**f, "parameters": json.loads(f["parameters"]), "se": json.loads(f["se"]),
                    "converged": bool(f["converged"]), "plot": json.loads(f["plot"])}
                   for f in _select(db, "select * from fits where run_id = :run_id order by rowid", where)]
    run.update(run_states(db, [run_id])[run_id])
    return run


def run_record(db: Database, run_id: int, issued_at: str) -> dict:
    """Everything a certificate of a run shows, as stored: the run, its endpoint wells, signatures, the
    logo's stored bytes, the revision (1 + signatures + supersession) and the audit chain head."""
    run = get_run(db, run_id)
    logo = next(iter(input_contents(db, run_id, "logo")), None)
    signed = signatures(db, run_id)
    return {
        "run": run, "wells": endpoint_wells(db, run_id), "signatures": signed,
        "logo": {"mime": mimetypes.guess_type(logo["name"])[0] or "image/png", "content": logo["content"]}
        if logo else None,
        "revision": 1 + len(signed) + bool(run["superseded_by"]), "issued_at": issued_at,
        "chain_head": _printed_head(db),
    }


def _printed_head(db: Database) -> dict | None:
    """The chain head as a certificate prints it (POSITION:HASH), None for an empty log."""
    head = chain_head(db)
    return {"position": head["position"], "sha256": head["sha256"]} if head and head["rows"] else None


def db_path(db: Database) -> str:
    return db.conn.execute("pragma database_list").fetchone()[2]


def run_ids(db: Database) -> list[int]:
    return [row["id"] for row in db.query("select id from runs order by id")]


def endpoint_wells(db: Database, run_id: int) -> list[dict]:
    """A run's endpoint well rows (no kinetic time points), as stored."""
    return _select(db, "select * from wells where run_id = ? and time_s is null order by rowid", [run_id])


def input_contents(db: Database, run_id: int, kind: str | None = None) -> list[dict]:
    """A run's input rows with their stored bytes, optionally of one kind (export rows have kind NULL before m005)."""
    if kind is None:
        rows = _select(db, "select * from input_files where run_id = ? order by position", [run_id])
    else:  # only that kind's bytes are read
        rows = _select(db, "select * from input_files where run_id = ? and coalesce(nullif(kind, ''), 'export') = ? "
                           "order by position", [run_id, kind])
    return [{**r, "kind": r["kind"] or "export"} for r in rows]


def run_has_input(db: Database, run_id: int, sha256: str) -> bool:
    return db.execute("select 1 from input_files where run_id = ? and sha256 = ?", [run_id, sha256]).fetchone() \
        is not None


def signatures(db: Database, run_id: int) -> dict[str, dict]:
    """Role -> signature row for a run."""
    return {row["role"]: row for row in _select(db, "select * from signatures where run_id = ? order by id", [run_id])}


def certificate_sha256(db: Database, path: Path) -> str | None:
    """The SHA-256 recorded for a certificate file path, None if this database issued none there."""
    row = db.execute("select sha256 from certificates where path = ? order by id desc limit 1", [str(path)]).fetchone()
    return row[0] if row else None


def superseded_by(db: Database, run_id: int) -> list[int]:
    return [row["id"] for row in db.query("select id from runs where supersedes = ? order by id", [run_id])]


def run_states(db: Database, ids: list[int]) -> dict[int, dict]:
    """Run id -> its state now: superseded_by, reviewed and approved ({by, at, mode} or None), state."""
    marks = ",".join("?" * len(ids))
    states = {i: {"superseded_by": None, "reviewed": None, "approved": None} for i in ids}
    for row in _select(db, f"select id, supersedes from runs where supersedes in ({marks}) order by id", ids):
        states[row["supersedes"]]["superseded_by"] = states[row["supersedes"]]["superseded_by"] or row["id"]
    for row in _select(db, f"select * from signatures where run_id in ({marks}) order by id", ids):
        states[row["run_id"]][row["role"]] = {"by": row["signer"], "at": row["signed_at"],
                                              "mode": row["mode"] or "unauthenticated"}
    for state in states.values():
        state["state"] = ("superseded" if state["superseded_by"] else "approved" if state["approved"]
                          else "reviewed" if state["reviewed"] else "computed")
    return states


def list_runs(db: Database, limit: int = 50) -> list[dict]:
    rows = list(db.query("select id, created_at, assay, protocol_id, protocol_version, valid, operator "
                         "from runs order by id desc limit :limit", {"limit": limit}))
    states = run_states(db, [r["id"] for r in rows])
    return [{**r, **states[r["id"]]} for r in rows]


def certificates(db: Database, run_id: int) -> list[dict]:
    return list(db.query("select * from certificates where run_id = ? order by id", [run_id]))


def add_certificate(db: Database, run_id: int, fmt: str, path: Path, sha256: str, issued_at: str, actor: str,
                    revision: int) -> None:
    """Record an issued certificate file and log it."""
    _insert(db, "certificates", [{"run_id": run_id, "format": fmt, "path": str(path), "sha256": sha256,
                                  "created_at": issued_at}])
    audit(db, "certificate issued", run_id, actor, {"format": fmt, "sha256": sha256, "revision": revision})


def run_for_certificate(db: Database, sha256: str) -> int | None:
    """The run a certificate file with this SHA-256 was issued for."""
    row = db.execute("select run_id from certificates where sha256 = ?", [sha256]).fetchone()
    return row[0] if row else None


def audit_rows(db: Database) -> list[dict]:
    return list(db.query("select * from audit_log order by id"))


def logged_digests(db: Database, run_id: int) -> list[str | None]:
    """The digests the audit log recorded when the run was stored."""
    return [json.loads(r["payload"]).get("digest") for r in
            db.query("select payload from audit_log where run_id = ? and event = 'run stored'", [run_id])]


def add_signature(db: Database, row: dict) -> None:
    db["signatures"].insert(row)


def add_signer(db: Database, row: dict) -> int:
    return db["signers"].insert(row).last_pk


def signers(db: Database) -> list[dict]:
    return [{**r, "roles": json.loads(r["roles"])} for r in db.query("select * from signers order by id")]


def signer(db: Database, name_key: str) -> dict | None:
    """The registered signer with this normalised name."""
    row = next(db.query("select * from signers where name_key = ?", [name_key]), None)
    return {**row, "roles": json.loads(row["roles"])} if row else None


def registered_keys(db: Database, name: str) -> list[str]:
    """The key fingerprints the audit log recorded when a signer of this name was added."""
    return [json.loads(r["payload"]).get("key_sha256") for r in
            db.query("select payload from audit_log where event = 'signer added' and actor = ?", [name])]


def signer_by_id(db: Database, signer_id: int) -> dict | None:
    row = next(db.query("select * from signers where id = ?", [signer_id]), None)
    return {**row, "roles": json.loads(row["roles"])} if row else None


def canonical_json(value) -> str:
    """The JSON text a value is stored as (NaN as null), keys sorted."""
    return _json(value, canonical=True)


#: The two encoders every stored JSON text comes from (json.dumps with these options, built once).
_ENCODERS = {False: json.JSONEncoder(allow_nan=False).encode,
             True: json.JSONEncoder(allow_nan=False, sort_keys=True).encode}


def _json(value, canonical: bool = False) -> str:
    """JSON text keeping the producer's key order; canonical (sorted keys) for hashing. A value that is JSON-ready
    (_ready) goes to the C encoder as it is; anything else, and a non-finite float (which the encoder refuses), is
    made plain first: the text is the same either way. A list of str (a result's flags) is written directly, as the
    encoder writes it."""
    if type(value) is list and _STR.issuperset(map(type, value)):
        return "[" + ", ".join(map(json.encoder.encode_basestring_ascii, value)) + "]"
    if _ready(value):
        try:
            return "".join(_READY_ENCODERS[canonical](value, 0))
        except ValueError:  # NaN or an infinity: _plain makes it null
            pass
    return _ENCODERS[canonical](_plain(value))


#: The C encoders _ENCODERS' encode() builds on every call, built once, for JSON-ready values: the same
#: arguments but no check for circular references (_ready has walked the value to its end: it has none).
_READY_ENCODERS = {sort: json.encoder.c_make_encoder(None, None, json.encoder.encode_basestring_ascii, None, ": ",
                                                     ", ", sort, False, False)
                   for sort in (False, True)} if json.encoder.c_make_encoder else \
    {sort: lambda value, level, sort=sort: (_ENCODERS[sort](value),) for sort in (False, True)}


#: What the C encoder writes as _plain would have it: str, int, bool, None, and floats (float64's repr is
#: its float's; non-finite ones the encoder refuses). Containers: dict with str keys, list, tuple.
_READY_SCALARS = frozenset({str, int, float, bool, type(None), np.float64})
_CONTAINERS = frozenset({dict, list, tuple})
_STR = frozenset({str})


def _ready(value) -> bool:
    """Whether `value` holds only _READY_SCALARS in dicts keyed by str, lists and tuples (exact types: a subclass,
    a numpy array or integer, a Path, a non-str key is left to _plain)."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _READY_SCALARS
    for item in items:
        kind = type(item)
        if kind in _CONTAINERS:
            if not _ready(item):
                return False
        elif kind not in _READY_SCALARS:
            return False
    return True


def _plain(value):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and infinities to None, paths to str.
    The plain types are told apart by their exact type first (the common case, and the fast one)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {k if type(k) is str else str(k): _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return _float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _float(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
