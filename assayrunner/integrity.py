"""Digests and verification: what a certificate attests, recomputed from the database and the files."""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from . import signing, store
from .errors import UserError
from .store import Database


#: Row fields outside a run's digest: ids (assigned by the database), the digest itself, and file bytes
#: (their SHA-256 is covered, and verify checks the bytes against it).
_NOT_DIGESTED = frozenset({"id", "run_id", "digest", "content"})


def record_digest(rows: dict[str, list[dict]]) -> str:
    """SHA-256 over every row a run is stored as (store.run_rows / store.stored_rows), in canonical JSON:
    keys sorted, numbers as floats (SQLite may store 5 as 5.0), null fields left out (a column added
    by a later migration does not change an old run's digest), each table's rows sorted (SQLite keeps
    no row order; checks, results and inputs carry their position)."""
    payload = {table: sorted(json.dumps({k: _canonical(v) for k, v in row.items()
                                         if k not in _NOT_DIGESTED and v is not None}, sort_keys=True, allow_nan=False)
                             for row in table_rows) for table, table_rows in rows.items()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _canonical(value):
    return float(value) if isinstance(value, numbers.Real) else value  # bool, int, float, numpy scalars


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
    """What verify found: lines that hold and lines that differ."""

    ok: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def check(self, holds: bool, what: str, why: str = "") -> None:
        (self.ok if holds else self.differs).append(what if holds else f"{what}: {why}")


def verify_audit_log(db: Database, report: Report) -> None:
    """Every audit row's hash is its content's, and each points at the one before."""
    previous = "0" * 64
    rows = store.audit_rows(db)
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
            report.skipped.append(f"{name}: {on_disk} is no longer on disk")
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
            report.skipped.append(f"run {run_id}: certificate {path} is no longer on disk")


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
