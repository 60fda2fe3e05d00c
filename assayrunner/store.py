"""SQLite persistence through sqlite-utils: numbered migrations, one transaction per run, a chained audit log."""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from . import filesystems
from .errors import UserError
from .plate import well_name


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


def m002_integrity(db: Database) -> None:
    """Signatures, the supersedes link, and triggers that refuse UPDATE and DELETE on stored records."""
    db["runs"].add_column("supersedes", int)
    db["signatures"].create({"id": int, "run_id": int, "role": str, "signer": str, "meaning": str,
                             "signed_at": str}, pk="id", foreign_keys=[("run_id", "runs")])
    db["signatures"].create_index(["run_id", "role"], unique=True)
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: records are never changed'); END")


def m006_chain_head(db: Database) -> None:
    """The audit chain's length and last hash kept beside it, and a random id naming this database's files."""
    db["chain_head"].create({"id": int, "database_id": str, "audit_rows": int, "audit_sha256": str}, pk="id")
    last = db.execute("select sha256 from audit_log order by id desc limit 1").fetchone()
    db["chain_head"].insert({"id": 1, "database_id": secrets.token_hex(16),
                             "audit_rows": db.execute("select count(*) from audit_log").fetchone()[0],
                             "audit_sha256": last[0] if last else GENESIS})


GENESIS = "0" * 64
MIGRATIONS = [m001_initial, m002_integrity, m006_chain_head]


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


def open_db(path: Path) -> Database:
    """Open (creating if needed) and migrate the database; WAL and a busy timeout for concurrent writers.
    A database on a network file system is refused."""
    filesystems.refuse_network_filesystem(path)
    try:
        db = Database(path)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        _retry_locked(db, lambda: db.enable_wal(), path)
        migrate(db)
    except UserError:
        raise
    except Exception as exc:  # sqlite3.DatabaseError for a file that is not a database, OSError for a bad path
        raise UserError(f"cannot open the database: {exc}", file=path) from None
    return db


def open_read_only(path: Path) -> Database:
    """The database as it is, for looking only: no migration, no write (sqlite3.Error if it cannot be opened)."""
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
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
        with db.atomic():
            yield db
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
    row = db.execute("select database_id from chain_head where id = 1").fetchone() if db["chain_head"].exists() \
        else None
    if row is None:
        raise UserError("the database has lost its chain head (table chain_head): it was edited outside assayrun; "
                        "run `assayrun doctor`, and restore it from a backup", file=_path(db))
    return row[0]


def save_run(db: Database, record: dict) -> int:
    """Insert one run and everything it computed; call inside transaction()."""
    proto, result, plate = record["protocol"], record["result"], record["plate"]
    run_id = db["runs"].insert({
        "assay": record["assay"], "protocol_id": proto.id, "protocol_version": proto.version,
        "protocol_sha256": proto.sha256, "protocol_path": str(proto.path),
        "protocol_toml": proto.text,
        "parameters": _json(record["parameters"]), "valid": int(record["valid"]), "operator": record["operator"],
        "created_at": record["created_at"], "software": _json(record["software"]),
        "metrics": _json(result.metrics), "details": _json(result.details), "samples": _json(record["samples"]),
        "skipped": _json(record["skipped"]), "plate_name": plate.name, "plate_metadata": _json(plate.metadata),
        "digest": record["digest"], "supersedes": record.get("supersedes"),
    }).last_pk
    db["input_files"].insert_all({
        "run_id": run_id, "position": i, "name": f.path.name, "path": str(f.path.resolve()), "sha256": f.sha256,
        "size": f.size, "format": f.format, "content": f.content,
    } for i, f in enumerate(record["inputs"]))
    db["wells"].insert_all(_well_rows(run_id, plate, record["layout"]))
    db["fits"].insert_all({
        "run_id": run_id, "name": fit["name"], "model": fit["model"], "parameters": _json(fit["parameters"]),
        "se": _json(fit["se"]), "r2": _float(fit["r2"]), "n": fit["n"], "converged": int(fit["converged"]),
        "plot": _json({k: fit.get(k) for k in ("x", "y", "line", "x_unit", "y_label", "log_x")}),
    } for fit in result.fits)
    db["checks"].insert_all({
        "run_id": run_id, "position": i, "check_id": c.id, "description": c.description, "value": c.value,
        "limit_text": c.limit, "passed": int(c.passed), "detail": c.detail, "scope": c.scope, "is_count": int(c.is_count),
    } for i, c in enumerate(record["checks"]))
    db["results"].insert_all({
        "run_id": run_id, "position": i, "sample": r.sample, "metric": r.metric, "value": _float(r.value),
        "unit": r.unit, "flags": _json(r.flags), "interpretation": r.interpretation, "scope": r.scope,
    } for i, r in enumerate(result.results))
    audit(db, "run stored", run_id, record["operator"], {"digest": record["digest"], "valid": record["valid"]})
    return run_id


def _well_rows(run_id: int, plate, layout):
    groups = layout.by_well()
    for read in plate.reads:
        rows, columns = read.values.shape[:2]
        for r in range(rows):
            for c in range(columns):
                well = well_name(r, c)
                group = groups.get(well)
                base = {"run_id": run_id, "read": read.label, "well": well, "flag": read.flags.get(well),
                        "role": group.role if group else None, "group_name": group.name if group else None}
                if read.kind == "kinetic":
                    for t, v in zip(read.times_s, read.values[r, c]):
                        yield {**base, "time_s": float(t), "value": _float(v)}
                elif not np.isnan(read.values[r, c]) or well in read.flags:
                    yield {**base, "time_s": None, "value": _float(read.values[r, c])}


def audit(db: Database, event: str, run_id: int | None, actor: str, payload: dict) -> None:
    """Append an audit row chained to the previous one by SHA-256, and move the chain head to it."""
    last = next(db.query("select sha256 from audit_log order by id desc limit 1"), None)
    prev = last["sha256"] if last else GENESIS
    row = {"at": _now(), "event": event, "run_id": run_id, "actor": actor, "payload": _json(payload),
           "prev_sha256": prev}
    row["sha256"] = hashlib.sha256(_json(row, canonical=True).encode()).hexdigest()
    db["audit_log"].insert(row)
    db.execute("update chain_head set audit_rows = audit_rows + 1, audit_sha256 = ? where id = 1", [row["sha256"]])


def chain_head(db: Database) -> dict | None:
    """The recorded length and last hash of the audit chain (None before m006)."""
    row = db.execute("select audit_rows, audit_sha256 from chain_head where id = 1").fetchone() \
        if db["chain_head"].exists() else None
    return {"rows": row[0], "sha256": row[1]} if row else None


def get_run(db: Database, run_id: int) -> dict:
    """A stored run with its inputs (without content), checks, results and fits; UserError if unknown."""
    try:
        run = db["runs"].get(run_id)
    except Exception:
        raise UserError(f"no run {run_id} in this database; see `assayrun runs`", file=db.conn.execute(
            "pragma database_list").fetchone()[2]) from None
    for key in ("parameters", "software", "metrics", "details", "samples", "skipped", "plate_metadata"):
        run[key] = json.loads(run[key])
    run["valid"] = bool(run["valid"])
    where = {"run_id": run_id}
    run["inputs"] = list(db.query("select name, path, sha256, size, format from input_files where run_id = :run_id "
                                  "order by position", where))
    run["checks"] = [{**c, "passed": bool(c["passed"]), "is_count": bool(c["is_count"])} for c in
                     db.query("select * from checks where run_id = :run_id order by position", where)]
    run["results"] = [{**r, "flags": json.loads(r["flags"])} for r in
                      db.query("select * from results where run_id = :run_id order by position", where)]
    run["fits"] = [{**f, "parameters": json.loads(f["parameters"]), "se": json.loads(f["se"]),
                    "converged": bool(f["converged"]), "plot": json.loads(f["plot"])}
                   for f in db.query("select * from fits where run_id = :run_id", where)]
    return run


def signatures(db: Database, run_id: int) -> dict[str, dict]:
    """Role -> signature row for a run."""
    return {row["role"]: row for row in db.query("select * from signatures where run_id = ? order by id", [run_id])}


def certificate_sha256(db: Database, path: Path) -> str | None:
    """The SHA-256 recorded for a certificate file path, None if this database issued none there."""
    row = db.execute("select sha256 from certificates where path = ? order by id desc limit 1", [str(path)]).fetchone()
    return row[0] if row else None


def superseded_by(db: Database, run_id: int) -> list[int]:
    return [row["id"] for row in db.query("select id from runs where supersedes = ? order by id", [run_id])]


def list_runs(db: Database, limit: int = 50) -> list[dict]:
    return list(db.query("select id, created_at, assay, protocol_id, protocol_version, valid, operator "
                         "from runs order by id desc limit :limit", {"limit": limit}))


def canonical_json(value) -> str:
    """The JSON text a value is stored as (NaN as null), keys sorted: what digests are computed over."""
    return _json(value, canonical=True)


def _json(value, canonical: bool = False) -> str:
    """JSON text keeping the producer's key order; canonical (sorted keys) for hashing."""
    return json.dumps(_plain(value), sort_keys=canonical, allow_nan=False)


def _plain(value):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and infinities to None, paths to str."""
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
