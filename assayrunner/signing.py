"""Electronic signatures: who signed a run, when, in which role and with what meaning; recorded in the audit log."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlite_utils import Database

from . import store
from .errors import UserError

ROLES = ("reviewed", "approved")


def sign(db: Database, run_id: int, role: str, signer: str, meaning: str) -> dict:
    """Record a signature (call inside store.transaction()); a run is reviewed before it is approved, each role once."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not signer.strip() or not meaning.strip():
        raise UserError("a signature needs a signer (--by) and its meaning (--meaning)")
    run = store.get_run(db, run_id)
    signed = store.signatures(db, run_id)
    if role in signed:
        s = signed[role]
        raise UserError(f"run {run_id} was already {role} by {s['signer']} on {s['signed_at']}; a role is signed once")
    if role == "approved" and "reviewed" not in signed:
        raise UserError(f"run {run_id} must be reviewed before it is approved: sign with --role reviewed first")
    if role == "approved" and signed["reviewed"]["signer"] == signer:
        raise UserError(f"{signer} reviewed run {run_id}; approval needs a second person")
    row = {"run_id": run_id, "role": role, "signer": signer, "meaning": meaning,
           "signed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    db["signatures"].insert(row)
    store.audit(db, "signature", run_id, signer, {"role": role, "meaning": meaning, "signed_at": row["signed_at"]})
    before = "reviewed" if role == "approved" else ("computed" if run["valid"] else "computed (invalid)")
    store.audit(db, "status changed", run_id, signer, {"from": before, "to": role})
    return row
