"""Electronic signatures: registered signers with Ed25519 keys, signing a run's digest with role, meaning and time.

A signer's private key is kept outside the database, in the keys folder (--keys, ASSAYRUN_KEYS, else
~/.config/assayrun/keys), encrypted with the signer's passphrase; the database holds the public key.
The demo mode (--unauthenticated) records a typed name only, and the certificate says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from . import store
from .store import Database
from .errors import UserError

ROLES = ("reviewed", "approved")
#: The registered role a signer needs to sign a run in each signature role.
SIGNER_ROLES = {"reviewed": "reviewer", "approved": "approver"}
MIN_PASSPHRASE = 8


def name_key(name: str) -> str:
    """A name as compared: Unicode NFKC, case folded, runs of whitespace as one space ('jane  Reviewer ' =
    'Jane Reviewer')."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def keys_folder(keys: Path | None = None) -> Path:
    """Where private keys are kept: the folder given, else ASSAYRUN_KEYS, else the user's config folder."""
    if keys:
        return Path(keys)
    if os.environ.get("ASSAYRUN_KEYS"):
        return Path(os.environ["ASSAYRUN_KEYS"])
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "assayrun" / "keys"


def add_signer(db: Database, name: str, roles: list[str], passphrase: str, keys: Path | None = None) -> dict:
    """Register a signer: an Ed25519 key pair, the private key encrypted with the passphrase into the keys
    folder, the public key in the database (call inside store.transaction())."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    name = check_new_signer(db, name, roles)
    if len(passphrase) < MIN_PASSPHRASE:
        raise UserError(f"the passphrase needs at least {MIN_PASSPHRASE} characters", where="passphrase")
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    raw = public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    key_sha256 = hashlib.sha256(raw).hexdigest()
    path = key_file(keys, key_sha256)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    encrypted = private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                      ser.BestAvailableEncryption(passphrase.encode("utf-8")))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UserError(f"cannot write the private key: {exc.strerror}", file=path) from None
    with os.fdopen(fd, "wb") as f:
        f.write(encrypted)
    row = {"name": name, "name_key": name_key(name), "roles": json.dumps(sorted(set(roles))),
           "public_key": public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode(),
           "key_sha256": key_sha256, "added_at": _now()}
    row["id"] = store.add_signer(db, row)
    store.audit(db, "signer added", None, name, {"roles": sorted(set(roles)), "key_sha256": key_sha256})
    return {**row, "key_file": path}


def check_new_signer(db: Database, name: str, roles: list[str]) -> str:
    """The name to register (spaces normalised); UserError for a blank or taken name or an unknown role."""
    name = " ".join(name.split())
    if not name:
        raise UserError("a signer needs a name", where="NAME")
    unknown = [r for r in roles if r not in SIGNER_ROLES.values()]
    if not roles or unknown:
        raise UserError(f"give --role reviewer and/or --role approver, not {', '.join(unknown) or 'none'}",
                        where="--role")
    existing = store.signer(db, name_key(name))
    if existing:
        raise UserError(f"{existing['name']} is already registered (since {existing['added_at']}); "
                        "a name is registered once")
    return name


def key_file(keys: Path | None, key_sha256: str) -> Path:
    return keys_folder(keys) / f"signer-{key_sha256[:16]}.pem"


def sign(db: Database, run_id: int, role: str, signer: str, meaning: str, *, passphrase: str | None = None,
         keys: Path | None = None, unauthenticated: bool = False) -> dict:
    """Record a signature (call inside store.transaction()); reviewed before approved, each role once, by a
    registered signer holding that role (or a typed name in the unauthenticated demo mode)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}", where="--role")
    if not signer.strip() or not meaning.strip():
        raise UserError("a signature needs a signer (--by) and its meaning (--meaning)")
    from .integrity import stored_digest

    run = store.get_run(db, run_id)
    if stored_digest(db, run_id) != run["digest"]:
        raise UserError(f"run {run_id}'s stored records no longer match its digest; nothing was signed. "
                        f"See `assayrun verify {run_id}`")
    signed = store.signatures(db, run_id)
    if role in signed:
        s = signed[role]
        raise UserError(f"run {run_id} was already {role} by {s['signer']} on {s['signed_at']}; a role is signed once")
    if role == "approved" and "reviewed" not in signed:
        raise UserError(f"run {run_id} must be reviewed before it is approved: sign with --role reviewed first")
    registered = None if unauthenticated else registered_signer(db, signer, role)
    name = registered["name"] if registered else " ".join(signer.split())
    problem = same_person(run, signed, role, name)
    if problem:
        raise UserError(problem, where="--by")
    row = {"run_id": run_id, "role": role, "signer": name, "meaning": " ".join(meaning.split()),
           "signed_at": _now(), "mode": "unauthenticated", "signer_id": None, "key_sha256": None, "signature": None}
    if registered:
        private = _private_key(registered, passphrase, keys)
        row.update(mode="ed25519", signer_id=registered["id"], key_sha256=registered["key_sha256"])
        row["signature"] = private.sign(signature_payload(row, run["digest"])).hex()
    store.add_signature(db, row)
    store.audit(db, "signature", run_id, name, {k: row[k] for k in ("role", "meaning", "signed_at", "mode",
                                                                     "key_sha256", "signature")})
    before = "reviewed" if role == "approved" else ("computed" if run["valid"] else "computed (invalid)")
    store.audit(db, "status changed", run_id, name, {"from": before, "to": role})
    return row


def signature_payload(row: dict, digest: str) -> bytes:
    """What a signer's key signs: the run's digest with run, role, signer, meaning, time and key, canonical JSON."""
    content = {k: row[k] for k in ("run_id", "role", "signer", "meaning", "signed_at", "key_sha256")}
    return json.dumps({**content, "digest": digest}, sort_keys=True).encode("utf-8")


def check_signature(db: Database, row: dict, digest: str) -> str | None:
    """Why a stored signature does not hold (None when it does): unknown signer, other key, bad signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    signer = store.signer_by_id(db, row["signer_id"]) if row["signer_id"] is not None else None
    if signer is None:
        return "it names no registered signer"
    if signer["key_sha256"] != row["key_sha256"] or name_key(signer["name"]) != name_key(row["signer"]):
        return f"it does not match the registered key of {signer['name']}"
    if SIGNER_ROLES[row["role"]] not in signer["roles"]:
        return f"{signer['name']} is not registered as {SIGNER_ROLES[row['role']]}"
    public = load_pem_public_key(signer["public_key"].encode())
    raw = public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    if hashlib.sha256(raw).hexdigest() != signer["key_sha256"] or \
            signer["key_sha256"] not in store.registered_keys(db, signer["name"]):
        return f"{signer['name']}'s public key is not the one the audit log registered"
    try:
        public.verify(bytes.fromhex(row["signature"] or ""), signature_payload(row, digest))
    except (InvalidSignature, ValueError):
        return f"the Ed25519 signature does not verify with {signer['name']}'s public key: forged or changed"
    return None


def registered_signer(db: Database, signer: str, role: str) -> dict:
    """The registered signer of that name holding the role a signature needs; UserError otherwise."""
    registered = store.signer(db, name_key(signer))
    if registered is None:
        raise UserError(f"{signer.strip()!r} is not a registered signer; register with `assayrun signer add NAME "
                        "--role reviewer|approver`, or sign with --unauthenticated (teaching and demos only)",
                        where="--by")
    if SIGNER_ROLES[role] not in registered["roles"]:
        raise UserError(f"{registered['name']} is registered as {', '.join(registered['roles'])}, not "
                        f"{SIGNER_ROLES[role]}; a run is {role} by a registered {SIGNER_ROLES[role]}", where="--by")
    return registered


def _private_key(registered: dict, passphrase: str | None, keys: Path | None):
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path = key_file(keys, registered["key_sha256"])
    if not path.is_file():
        raise UserError(f"{registered['name']}'s private key is not here; sign on the computer that holds it "
                        "or give its folder with --keys", file=path)
    try:
        private = load_pem_private_key(path.read_bytes(), (passphrase or "").encode("utf-8"))
    except (ValueError, TypeError):
        raise UserError(f"wrong passphrase for {registered['name']}'s key; nothing was signed", file=path) from None
    raw = private.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    if hashlib.sha256(raw).hexdigest() != registered["key_sha256"]:
        raise UserError(f"this key is not the one registered for {registered['name']}", file=path)
    return private


def same_person(run: dict, signed: dict, role: str, name: str) -> str | None:
    """Why `name` may not sign `role` (None if they may): operator, reviewer and approver are three
    people, unless the run's lab settings relax it."""
    if not ((run["settings"] or {}).get("signatures") or {}).get("distinct_people", True):
        return None
    if name_key(name) == name_key(run["operator"]):
        return (f"{name} ran run {run['id']} as its operator; it is {role} by another person "
                "(a small lab may set [signatures] distinct_people = false in assayrun.toml)")
    if role == "approved" and "reviewed" in signed and name_key(signed["reviewed"]["signer"]) == name_key(name):
        return f"{name} reviewed run {run['id']}; approval needs a second person"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
