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
                     "flags": list(r["flags"]), "interpretation": r["interpretation"],
                     **({"qualifier": r["qualifier"]} if r.get("qualifier") else {})} for r in results],
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
    """What verify found: lines that hold and lines that differ."""

    ok: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def check(self, holds: bool, what: str, why: str = "") -> None:
        (self.ok if holds else self.differs).append(what if holds else f"{what}: {why}")


def verify_audit_log(db: Database, report: Report) -> None:
    """Every audit row's hash is its content's, and each points at the one before."""
    previous = "0" * 64
    rows = list(db.query("select * from audit_log order by id"))
    broken = []
    for row in rows:
        if row["prev_sha256"] != previous:
            broken.append(f"row {row['id']} does not follow row before it")
        if audit_row_sha256(row) != row["sha256"]:
            broken.append(f"row {row['id']} ({row['event']}) was changed after it was written")
        previous = row["sha256"]
    report.check(not broken, f"audit log, {len(rows)} rows chained", "; ".join(broken))


def verify_run(db: Database, run_id: int, report: Report, files: list[Path] = ()) -> None:
    """Recompute a run's hashes: stored input bytes, files on disk or given, protocol text, digest, certificates."""
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
            report.skipped.append(f"{name}: {on_disk} is no longer on disk")
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
            report.skipped.append(f"run {run_id}: certificate {path} is no longer on disk")


def run_for_certificate(db: Database, path: Path) -> int | None:
    """The run a certificate file was issued for, found by the file's SHA-256."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    row = db.execute("select run_id from certificates where sha256 = ?", [sha]).fetchone()
    return row[0] if row else None


def _number(value):
    return None if value is None else float(value)
