"""Digests and verification: what a certificate attests, recomputed from the database and the files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database


def digest(input_sha256: list[str], protocol_sha256: str, parameters: dict, valid: bool, checks: list[dict],
           results: list[dict]) -> str:
    """SHA-256 over the inputs' and the protocol's hashes, the run's parameters (with any --param
    overrides), the verdicts and the results, in canonical JSON."""
    payload = {
        "inputs": list(input_sha256),
        "protocol": protocol_sha256,
        "parameters": parameters,
        "valid": bool(valid),
        "checks": [{"id": c["id"], "description": c["description"], "value": _number(c["value"]),
                    "limit": c["limit"], "passed": bool(c["passed"])} for c in checks],
        "results": [{"sample": r["sample"], "metric": r["metric"], "value": _number(r["value"]), "unit": r["unit"],
                     "flags": list(r["flags"]), "interpretation": r["interpretation"]} for r in results],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=False).encode()).hexdigest()


def stored_digest(db: Database, run_id: int) -> str:
    """The digest recomputed from the rows stored for a run."""
    run = db["runs"].get(run_id)
    inputs = [r["sha256"] for r in db.query("select sha256 from input_files where run_id = ? order by position", [run_id])]
    checks = [{"id": c["check_id"], "description": c["description"], "value": c["value"], "limit": c["limit_text"],
               "passed": c["passed"]} for c in db.query("select * from checks where run_id = ? order by position", [run_id])]
    results = [{**r, "flags": json.loads(r["flags"])}
               for r in db.query("select * from results where run_id = ? order by position", [run_id])]
    return digest(inputs, run["protocol_sha256"], json.loads(run["parameters"]), run["valid"], checks, results)


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
JSON_COLUMNS = {"runs": ("parameters", "software", "metrics", "details", "samples", "skipped", "plate_metadata"),
                "fits": ("parameters", "se", "plot"), "results": ("flags",), "audit_log": ("payload",)}


def verify(db: Database, run_ids: list[int], report: Report, files: list[Path] = ()) -> Report:
    """Everything `assayrun verify` checks; a step that meets a row it cannot read reports it, never raises."""
    steps = (("triggers and stored rows", verify_structure), ("audit log", verify_audit_log),
             ("records against the audit log", verify_records_logged))
    for what, step in steps:
        try:
            step(db, report)
        except Exception as exc:  # a malformed row written outside assayrun
            report.differs.append(f"{what}: cannot be checked ({type(exc).__name__}: {exc}); "
                                  "the database was edited outside assayrun")
    for run_id in run_ids:
        verify_run(db, run_id, report, files)
    return report


def verify_structure(db: Database, report: Report) -> None:
    """The append-only triggers are all there, and every stored value has its column's type (JSON where JSON
    is kept): a row edited outside assayrun is named, never a crash."""
    from .store import APPEND_ONLY

    gone = [t for t in (*APPEND_ONLY, "chain_head") if not db[t].exists()]
    report.check(not gone, "every table of the records present", f"{', '.join(gone)} dropped")
    present = {r["name"] for r in db.query("select name from sqlite_master where type = 'trigger'")}
    expected = [f"{t}_no_{a}" for t in APPEND_ONLY for a in ("update", "delete")]
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
                  "signatures"):
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
    from .store import GENESIS, applied_migrations, chain_head

    previous = GENESIS
    rows = list(db.query("select * from audit_log order by id"))
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
    head = chain_head(db)
    if head is None and "m006_chain_head" in applied_migrations(db):
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
    run = db["runs"].get(run_id)
    given = {hashlib.sha256(Path(f).read_bytes()).hexdigest(): Path(f) for f in files}
    for f in db.query("select * from input_files where run_id = ? order by position", [run_id]):
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
        known = db.execute("select 1 from input_files where run_id = ? and sha256 = ?", [run_id, sha]).fetchone()
        report.check(bool(known), f"run {run_id}: given file {path}", "its SHA-256 is not one of the run's inputs")
    protocol_sha = hashlib.sha256(run["protocol_toml"].encode("utf-8")).hexdigest()
    report.check(protocol_sha == run["protocol_sha256"], f"run {run_id}: protocol text",
                 "the stored protocol no longer matches its SHA-256")
    report.check(stored_digest(db, run_id) == run["digest"], f"run {run_id}: digest {run['digest'][:16]}…",
                 "inputs, protocol, parameters, checks or results differ from what was certified")
    logged = [json.loads(r["payload"]).get("digest") for r in
              db.query("select payload from audit_log where run_id = ? and event = 'run stored'", [run_id])]
    report.check(logged == [run["digest"]], f"run {run_id}: digest in the audit log",
                 "the audit log records another digest for this run")
    for cert in db.query("select * from certificates where run_id = ? order by id", [run_id]):
        path = Path(cert["path"])
        if path.is_file():
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            report.check(actual == cert["sha256"], f"run {run_id}: certificate {path.name}",
                         "the file was changed after it was issued")
        else:
            report.missing(f"run {run_id}: certificate {path} is no longer on disk")


def run_for_certificate(db: Database, path: Path) -> int | None:
    """The run a certificate file was issued for, found by the file's SHA-256."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    row = db.execute("select run_id from certificates where sha256 = ?", [sha]).fetchone()
    return row[0] if row else None


def _number(value):
    return None if value is None else float(value)
