"""Digests and verification: what a certificate attests, recomputed from the database and the files."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path

from . import signing, store
from .errors import UserError
from .store import Database


#: Row fields outside a run's digest: ids (assigned by the database), the digest itself, and file bytes
#: (their SHA-256 is covered, and verify checks the bytes against it).
_NOT_DIGESTED = frozenset({"id", "run_id", "digest", "content"})


def record_digest(rows: dict[str, list[dict] | store.Table]) -> str:
    """SHA-256 over every row a run is stored as (store.run_rows / store.stored_rows), in canonical JSON:
    keys sorted, numbers as floats (SQLite may store 5 as 5.0) and zero without its sign (SQLite stores -0.0 as
    0: a digest over the sign could never be verified), null fields left out (a column added
    by a later migration does not change an old run's digest), each table's rows sorted (SQLite keeps
    no row order; checks, results and inputs carry their position)."""
    payload = {table: sorted(_table_texts(table_rows) if isinstance(table_rows, store.Table) and len(table_rows) > 8
                             else [_row_text(row) for row in table_rows])
               for table, table_rows in rows.items()}
    return hashlib.sha256(_PAYLOAD_TEXT(payload).encode()).hexdigest()


#: json.dumps(payload, sort_keys=True), its encoder built once.
_PAYLOAD_TEXT = json.JSONEncoder(sort_keys=True).encode


def _row_text(row: dict) -> str:
    """A row's canonical JSON text: its digested fields, null ones left out, numbers as floats, keys sorted."""
    return _ROW_TEXT({k: _canonical(v) for k, v in row.items() if v is not None and k not in _NOT_DIGESTED})


#: json.dumps(row, sort_keys=True, allow_nan=False), its encoder built once.
_ROW_TEXT = json.JSONEncoder(sort_keys=True, allow_nan=False).encode


def _canonical(value):
    """A number as its float, zero without its sign (+ 0.0 turns -0.0 into 0.0 and changes no other float)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float or kind is int or kind is bool:
        return float(value) + 0.0
    return float(value) + 0.0 if isinstance(value, numbers.Real) else value  # numpy scalars


def _table_texts(table: store.Table) -> list[str]:
    """_row_text of each row of a Table, written a column at a time (record_digest's way for a table of more
    than a few rows: the work per column pays off from about ten). Each digested column's values are encoded as
    the JSON encoder writes them (a str by encode_basestring_ascii, a number by float.__repr__ of its float)
    behind ", " and their key, null ones left out; a row's text is its columns' parts in key order, joined, without
    the first part's ", ". A table holding any other value (or a non-finite number, which _row_text refuses) goes
    through _row_text."""
    if not table.values:
        return []
    by_column = list(zip(*table.values))
    parts = []
    for name, index in sorted((name, i) for i, name in enumerate(table.columns) if name not in _NOT_DIGESTED):
        texts = _value_texts(by_column[index], ", " + encode_basestring_ascii(name) + ": ")
        if texts is None:
            return [_row_text(row) for row in table]
        if texts:  # not a column of nulls only
            parts.append(texts)
    if not parts:
        return ["{}"] * len(table)
    return ["{" + text[2:] + "}" for text in map("".join, zip(*parts))]


def _value_texts(column: tuple, key: str) -> list[str] | None:
    """`key` and each value's JSON text ("" for a null), for a column of str or of finite numbers (a number as its
    float, zero without its sign); [] for a column of nulls only, None for a column holding anything else."""
    kinds = set(map(type, column))
    nulls = _NONE in kinds
    kinds.discard(_NONE)
    if not kinds:
        return []
    if kinds == _STR:
        distinct = set(column)
        if nulls or 2 * len(distinct) < len(column):  # each distinct text encoded once (a column repeats names)
            texts = {v: key + encode_basestring_ascii(v) for v in distinct if v is not None}
            texts[None] = ""
            return list(map(texts.__getitem__, column))
        return list(map(key.__add__, map(encode_basestring_ascii, column)))
    if not kinds <= _NUMBERS:
        return None
    present = [v for v in column if v is not None] if nulls else column
    if not all(map(math.isfinite, present)):
        return None
    if kinds != _FLOAT:
        present = list(map(float, present))
    if 0.0 in present:  # as _canonical: zero without its sign
        present = [v + 0.0 for v in present]
    encoded = map(float.__repr__, present)
    if nulls:
        return [key + next(encoded) if v is not None else "" for v in column]
    return list(map(key.__add__, encoded))


_NONE, _STR, _FLOAT, _NUMBERS = type(None), frozenset({str}), frozenset({float}), frozenset({float, int, bool})


def digest_v1(input_sha256: list[str], protocol_sha256: str, parameters: dict, valid: bool, checks: list[dict],
              results: list[dict]) -> str:
    """The first scheme (runs stored before m005): the inputs' and protocol's hashes, parameters, verdicts
    and results only."""
    payload = {
        "inputs": list(input_sha256),
        "protocol": protocol_sha256,
        "parameters": parameters,
        "valid": bool(valid),
        "checks": [{"id": c["check_id"], "description": c["description"], "value": _number(c["value"]),
                    "limit": c["limit_text"], "passed": bool(c["passed"])} for c in checks],
        "results": [{"sample": r["sample"], "metric": r["metric"], "value": _number(r["value"]), "unit": r["unit"],
                     "flags": json.loads(r["flags"]), "interpretation": r["interpretation"],
                     **({"qualifier": r["qualifier"]} if r.get("qualifier") else {})} for r in results],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=False).encode()).hexdigest()


def stored_digest(db: Database, run_id: int) -> str:
    """The digest recomputed from the rows stored for a run, by the scheme it was stored under."""
    rows = store.stored_rows(db, run_id)
    run = rows["runs"][0]
    if run.get("digest_version"):
        return record_digest(rows)
    return digest_v1([f["sha256"] for f in rows["input_files"]], run["protocol_sha256"], json.loads(run["parameters"]),
                     run["valid"], rows["checks"], rows["results"])


def audit_row_sha256(row: dict) -> str:
    content = {k: row[k] for k in ("at", "event", "run_id", "actor", "payload", "prev_sha256")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass
class Report:
    """What verify found: lines that hold and lines that differ. A file no longer on disk differs
    unless allow_missing, when it is only listed as skipped."""

    ok: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    allow_missing: bool = False

    def check(self, holds: bool, what: str, why: str = "") -> None:
        (self.ok if holds else self.differs).append(what if holds else f"{what}: {why}")

    def missing(self, what: str) -> None:
        (self.skipped if self.allow_missing else self.differs).append(
            what + ("" if self.allow_missing else " (give --allow-missing if it was moved on purpose)"))


#: Columns holding JSON text, per table.
JSON_COLUMNS = {"runs": ("parameters", "software", "metrics", "details", "samples", "skipped", "plate_metadata",
                          "settings", "overridden", "assay_plugin", "protocol_modified"), "signers": ("roles",),
                "fits": ("parameters", "se", "plot"), "results": ("flags",), "audit_log": ("payload",)}


def verify(db: Database, run_ids: list[int], report: Report, files: list[Path] = (),
           anchors: list[tuple[int, str]] = ()) -> Report:
    """Everything `assayrun verify` checks (with `anchors`: the audit log against chain heads kept elsewhere);
    a step that meets a row it cannot read reports it, never raises."""
    steps = (("triggers and stored rows", verify_structure), ("audit log", verify_audit_log),
             ("records against the audit log", verify_records_logged))
    for what, step in steps:
        try:
            step(db, report)
        except Exception as exc:  # a malformed row written outside assayrun
            report.differs.append(f"{what}: cannot be checked ({type(exc).__name__}: {exc}); "
                                  "the database was edited outside assayrun")
    if anchors:
        try:
            verify_anchors(db, anchors, report)
        except Exception as exc:
            report.differs.append(f"anchors: cannot be checked ({type(exc).__name__}: {exc}); "
                                  "the database was edited outside assayrun")
    for run_id in run_ids:
        verify_run(db, run_id, report, files)
    return report


def verify_structure(db: Database, report: Report) -> None:
    """The append-only triggers are all there, and every stored value has its column's type (JSON where JSON
    is kept): a row edited outside assayrun is named, never a crash."""
    from .store import APPEND_ONLY

    append_only = (*APPEND_ONLY, "signers") if "m005_records" in store.applied_migrations(db) else APPEND_ONLY
    gone = [t for t in (*append_only, "chain_head") if not db[t].exists()]
    report.check(not gone, "every table of the records present", f"{', '.join(gone)} dropped")
    present = {r["name"] for r in db.query("select name from sqlite_master where type = 'trigger'")}
    expected = [f"{t}_no_{a}" for t in append_only for a in ("update", "delete")]
    dropped = [name for name in expected if name not in present]
    report.check(not dropped, f"append-only triggers, {len(expected)} present",
                 f"{len(dropped)} dropped ({', '.join(dropped[:6])}{' ...' if len(dropped) > 6 else ''}): "
                 "the records could have been changed since")
    bad = malformed_rows(db)
    report.check(not bad, "stored rows well-formed", "; ".join(bad[:10]) + (f" and {len(bad) - 10} more"
                                                                           if len(bad) > 10 else ""))


_TYPES = {"TEXT": "text", "INTEGER": "integer", "FLOAT": "real", "REAL": "real", "BLOB": "blob"}


def malformed_rows(db: Database) -> list[str]:
    """'table row N: column holds text, not integer' for each value of another type than its column's."""
    found = []
    for table in ("runs", "input_files", "wells", "fits", "checks", "results", "certificates", "audit_log",
                  "signatures", "signers"):
        if not db[table].exists():
            continue
        for column in db[table].columns:
            want = _TYPES.get(column.type.upper())
            if want is None:
                continue
            allowed = (want, "integer") if want == "real" else (want,)
            for row in db.execute(f"select rowid, typeof([{column.name}]) from [{table}] where typeof([{column.name}]) "
                                  f"not in ('null', {', '.join('?' * len(allowed))}) limit 5", allowed):
                found.append(f"{table} row {row[0]}: {column.name} holds {row[1]}, not {want}")
        for column in JSON_COLUMNS.get(table, ()):
            for (rowid,) in db.execute(f"select rowid from [{table}] where [{column}] is not null and "
                                       f"(typeof([{column}]) != 'text' or not json_valid([{column}])) limit 5"):
                found.append(f"{table} row {rowid}: {column} is not JSON")
    return found


def verify_audit_log(db: Database, report: Report) -> None:
    """Every audit row's hash is its content's, each points at the one before, and the chain is as long and
    ends where the chain head (kept beside it) says."""
    previous = store.GENESIS
    rows = store.audit_rows(db)
    broken = []
    for row in rows:
        if row["prev_sha256"] != previous:
            broken.append(f"row {row['id']} does not follow row before it")
        try:
            changed = audit_row_sha256(row) != row["sha256"]
        except (TypeError, ValueError):
            changed = True
        if changed:
            broken.append(f"row {row['id']} ({row['event']}) was changed after it was written")
        previous = row["sha256"]
    head = store.chain_head(db)
    if head is None and "m006_chain_head" in store.applied_migrations(db):
        broken.append("the chain head (table chain_head) is gone")
    elif head is not None and head["rows"] != len(rows):
        broken.append(f"the chain head records {head['rows']} rows, the log has {len(rows)}"
                      + (": rows were deleted at the end" if head["rows"] > len(rows) else ""))
    elif head is not None and head["sha256"] != previous:
        broken.append("the last row is not the one the chain head records")
    report.check(not broken, f"audit log, {len(rows)} rows chained", "; ".join(broken))


def verify_records_logged(db: Database, report: Report) -> None:
    """Every run, certificate, signature and supersession has its audit row and every audit row its record:
    a deleted (or inserted) run, certificate or signature shows, and so does an edited operator."""
    events: dict[str, list[dict]] = {}
    for row in db.query("select * from audit_log order by id"):
        try:
            row["payload"] = json.loads(row["payload"])
        except (TypeError, ValueError):
            continue  # named by verify_structure
        if not isinstance(row["payload"], dict):
            continue
        events.setdefault(row["event"], []).append(row)
    runs = {r["id"]: r for r in db.query("select id, operator, supersedes from runs")}
    logged = {}
    for row in events.get("run stored", []):
        logged.setdefault(row["run_id"], []).append(row)
    problems = [f"run {run_id} is in the audit log (row {rows[0]['id']}) but not in the runs table: it was deleted"
                for run_id, rows in logged.items() if run_id not in runs]
    for run_id, run in runs.items():
        rows = logged.get(run_id, [])
        if len(rows) != 1:
            problems.append(f"run {run_id} has {len(rows)} 'run stored' audit rows, not 1")
        elif rows[0]["actor"] != run["operator"]:
            problems.append(f"run {run_id}: operator {run['operator']!r} is not {rows[0]['actor']!r}, "
                            f"who stored it (audit row {rows[0]['id']})")
    problems += _compare("certificate", [(r["run_id"], r["format"], r["sha256"]) for r in
                                         db.query("select run_id, format, sha256 from certificates")],
                         [(e["run_id"], e["payload"].get("format"), e["payload"].get("sha256"))
                          for e in events.get("certificate issued", [])])
    problems += _compare("signature", [(r["run_id"], r["role"], r["signer"], r["meaning"], r["signed_at"]) for r in
                                       db.query("select * from signatures")],
                         [(e["run_id"], e["payload"].get("role"), e["actor"], e["payload"].get("meaning"),
                           e["payload"].get("signed_at")) for e in events.get("signature", [])])
    problems += _compare("supersession", [(r["supersedes"], i) for i, r in runs.items() if r["supersedes"]],
                         [(e["run_id"], e["payload"].get("by")) for e in events.get("run superseded", [])])
    report.check(not problems, f"{len(runs)} runs and their certificates and signatures match the audit log",
                 "; ".join(problems[:10]) + (f" and {len(problems) - 10} more" if len(problems) > 10 else ""))


def _compare(what: str, stored: list[tuple], logged: list[tuple]) -> list[str]:
    """Records without their audit row and audit rows without their record, as one line each."""
    from collections import Counter

    have, said = Counter(stored), Counter(logged)
    extra = [f"a {what} of run {key[0]} ({', '.join(map(str, key[1:3]))}) has no audit row: it was inserted"
             for key in (have - said)]
    gone = [f"the audit log records a {what} of run {key[0]} ({', '.join(map(str, key[1:3]))}) that is not stored: "
            "it was deleted or changed" for key in (said - have)]
    return extra + gone


def verify_run(db: Database, run_id: int, report: Report, files: list[Path] = ()) -> None:
    """Recompute a run's hashes: stored input bytes, files on disk or given, protocol text, digest, certificates.
    A row too damaged to recompute from is reported as differing, never a crash."""
    try:
        _verify_run(db, run_id, report, files)
    except Exception as exc:  # a malformed row written outside assayrun
        report.differs.append(f"run {run_id}: a stored row cannot be read ({type(exc).__name__}: {exc}); "
                              "the database was edited outside assayrun")


def _verify_run(db: Database, run_id: int, report: Report, files: list[Path]) -> None:
    run = store.stored_rows(db, run_id)["runs"][0]
    given = {hashlib.sha256(Path(f).read_bytes()).hexdigest(): Path(f) for f in files}
    for f in store.input_contents(db, run_id):
        name = f"run {run_id} input {f['name']}"
        report.check(hashlib.sha256(f["content"]).hexdigest() == f["sha256"], f"{name}: stored bytes",
                     "the stored copy no longer matches its SHA-256")
        on_disk = Path(f["path"])
        if on_disk.is_file():
            actual = hashlib.sha256(on_disk.read_bytes()).hexdigest()
            report.check(actual == f["sha256"], f"{name}: file on disk {on_disk}",
                         f"SHA-256 is {actual[:12]}…, the run used {f['sha256'][:12]}…")
        else:
            report.missing(f"{name}: {on_disk} is no longer on disk")
    for sha, path in given.items():
        report.check(store.run_has_input(db, run_id, sha), f"run {run_id}: given file {path}",
                     "its SHA-256 is not one of the run's inputs")
    protocol_sha = hashlib.sha256(store.protocol_text(db, run).encode("utf-8")).hexdigest()
    report.check(protocol_sha == run["protocol_sha256"], f"run {run_id}: protocol text",
                 "the stored protocol no longer matches its SHA-256")
    report.check(stored_digest(db, run_id) == run["digest"], f"run {run_id}: digest {run['digest'][:16]}…",
                 "the stored inputs, parameters, wells, fits, checks, results, details, operator or "
                 "times differ from what was certified")
    logged = store.logged_digests(db, run_id)
    report.check(logged == [run["digest"]], f"run {run_id}: digest in the audit log",
                 "the audit log records another digest for this run")
    signed = store.signatures(db, run_id)
    for role, row in signed.items():
        what = f"run {run_id}: {role} by {row['signer']}"
        problem = signing.same_person(store.get_run(db, run_id), signed, role, row["signer"])
        report.check(problem is None, f"{what}: another person than the run's other signers", problem or "")
        if (row["mode"] or "unauthenticated") == "unauthenticated":
            report.skipped.append(f"{what}: unauthenticated signature (demo mode), the name is not proven")
        else:
            why = signing.check_signature(db, row, run["digest"])
            report.check(why is None, f"{what}: Ed25519 signature, key {row['key_sha256'][:16]}", why or "")
    for cert in store.certificates(db, run_id):
        path = Path(cert["path"])
        if path.is_file():
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            report.check(actual == cert["sha256"], f"run {run_id}: certificate {path.name}",
                         "the file was changed after it was issued")
        else:
            report.missing(f"run {run_id}: certificate {path} is no longer on disk")


def parse_anchors(anchor: str) -> list[tuple[int, str]]:
    """(position, hash or its prefix) pairs from POSITION:HASH (as a certificate prints it) or an
    `assayrun audit export` file (one JSON row per line)."""
    position, sep, prefix = anchor.partition(":")
    if sep and position.strip().isdigit() and len(prefix.strip()) >= 8 and \
            all(ch in "0123456789abcdef" for ch in prefix.strip().lower()):
        return [(int(position), prefix.strip().lower())]
    path = Path(anchor)
    if not path.is_file():
        raise UserError("give POSITION:HASH as a certificate prints it (at least 8 hex digits), or an "
                        "`assayrun audit export` file", file=anchor, where="--anchor")
    anchors = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line) if line.strip() else None
            if row is not None:
                anchors.append((int(row["id"]), str(row["sha256"]).lower()))
        except (ValueError, KeyError, TypeError):
            raise UserError("not an audit export line (JSON with id and sha256)", file=path, where=f"line {n}") \
                from None
    if not anchors:
        raise UserError("the anchor file holds no audit rows", file=path)
    return anchors


def verify_anchors(db: Database, anchors: list[tuple[int, str]], report: Report) -> None:
    """Each anchored audit row is still there with the hash it had: history up to it was not rewritten."""
    rows = {row["id"]: row["sha256"] for row in store.audit_rows(db)}
    broken = [f"row {position} is {'gone' if position not in rows else rows[position][:16] + '…'}, "
              f"the anchor says {sha[:16]}…" for position, sha in anchors
              if not rows.get(position, "").startswith(sha)]
    head = max(anchors)[0]
    report.check(not broken, f"audit log up to row {head} matches {len(anchors)} anchor(s)",
                 "history was rewritten: " + "; ".join(broken[:5]) + (" …" if len(broken) > 5 else ""))


def run_for_certificate(db: Database, path: Path) -> int | None:
    """The run a certificate file was issued for, found by the file's SHA-256."""
    return store.run_for_certificate(db, hashlib.sha256(path.read_bytes()).hexdigest())


def _number(value):
    return None if value is None else float(value)
