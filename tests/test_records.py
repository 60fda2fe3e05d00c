"""Records that hold up to an audit: every input digested, results by sample, certificates from stored records,
Ed25519 signatures, an anchor outside the database, run state, the LIMS export, a self-describing database."""

import csv
import io
import json
import re
import shutil
import sqlite3
import struct
import zlib
from html import unescape
from pathlib import Path

import pytest
from sqlite_utils import Database

from assayrunner import integrity, store
from assayrunner.certificate import environment, render_html

from conftest import REPO

EXAMPLES = REPO / "examples"
PLATE = EXAMPLES / "hemolysis" / "plate.csv"
SAMPLES = EXAMPLES / "hemolysis" / "samples.csv"
PASS = "correct horse battery"


def tiny_png(red: int = 255) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes([0, red, 0, 0]))) + chunk(b"IEND", b""))


def digest_at(db_path, run_id: int, created_at: str = "2026-01-01T00:00:00+00:00") -> str:
    """A run's digest recomputed from its stored rows with the computing time set to one value, so two runs
    compare on everything else."""
    rows = store.stored_rows(Database(db_path), run_id)
    rows["runs"][0]["created_at"] = created_at
    return integrity.record_digest(rows)


def drop_triggers(db_path) -> list[str]:
    """Drop the append-only triggers; returns the statements that create them again (restore_triggers)."""
    with sqlite3.connect(db_path) as conn:
        triggers = conn.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f"drop trigger {name}")
    return [statement for _, statement in triggers]


def restore_triggers(db_path, statements: list[str]) -> None:
    """Put dropped triggers back, as someone covering their tracks would (verify reports dropped triggers)."""
    with sqlite3.connect(db_path) as conn:
        for statement in statements:
            conn.execute(statement)


# --- 1. every input is an input -------------------------------------------------------------------------------

KINDS = {
    "export": ("plate.csv", lambda p: p.write_text(p.read_text().replace("0.3497", "0.3498"))),
    "samples": ("samples.csv", lambda p: p.write_text(p.read_text().replace("L-2611", "L-9999"))),
    "parameters": ("params.toml", lambda p: p.write_text(p.read_text().replace("lot A", "lot B"))),
    "settings": ("assayrun.toml", lambda p: p.write_text(p.read_text().replace("daily", "weekly"))),
    "logo": ("logo.png", lambda p: p.write_bytes(tiny_png(254))),
}


@pytest.fixture
def inputs(workdir):
    """A plate, samples file, parameter file, lab settings and logo in the working directory."""
    shutil.copy(PLATE, workdir / "plate.csv")
    shutil.copy(SAMPLES, workdir / "samples.csv")
    (workdir / "params.toml").write_text("# tube volume of kit lot A\ntube_volume_ul = 900.0\n")
    (workdir / "assayrun.toml").write_text('# checked daily\n[lab]\nname = "Nano Lab"\nlogo = "logo.png"\n')
    (workdir / "logo.png").write_bytes(tiny_png())
    return workdir


def execute(cli, *extra):
    result, data = cli.json("execute", "hemolysis", "plate.csv", "--samples", "samples.csv", "--param",
                            "@params.toml", "--operator", "Olga Operator", *extra)
    assert result.exit_code == 0, result.output
    return data


@pytest.mark.parametrize("kind", KINDS)
def test_every_input_kind_changes_the_digest_and_verify_sees_it(cli, inputs, kind):
    name, edit = KINDS[kind]
    original = (inputs / name).read_bytes()
    first = execute(cli)
    stored = {f["kind"]: f for f in store.get_run(Database("assayrun.db"), 1)["inputs"]}
    assert set(stored) == set(KINDS) and stored[kind]["name"] == name
    html = open(first["certificate"]["html"], encoding="utf-8").read()
    assert stored[kind]["sha256"] in html  # listed on the certificate
    edit(inputs / name)
    assert cli("verify", "1").exit_code == 1  # the file on disk no longer is the one the run used
    execute(cli)
    (inputs / name).write_bytes(original)
    execute(cli)
    assert digest_at("assayrun.db", 1) != digest_at("assayrun.db", 2)
    assert digest_at("assayrun.db", 1) == digest_at("assayrun.db", 3)  # same bytes, same digest
    assert cli("verify", "1").exit_code == 0 and cli("verify", "3").exit_code == 0


def test_runs_with_other_lots_have_other_digests_and_lots_show(cli, inputs):
    execute(cli)
    KINDS["samples"][1](inputs / "samples.csv")
    second = execute(cli)
    assert digest_at("assayrun.db", 1) != digest_at("assayrun.db", 2)
    html = open(second["certificate"]["html"], encoding="utf-8").read()
    assert "L-9999" in html and "L-2611" not in html
    s1 = [r for r in second["results"] if r["slot"] == "S1"]
    assert s1 and all(r["lot"] == "L-9999" and r["sample_id"] == "PAMAM-G4" and r["concentration"] == 1.0
                      and r["concentration_unit"] == "mg/mL" and r["sample"] == "PAMAM-G4 1 mg/mL" for r in s1)


def test_a_blank_operator_is_refused_and_nothing_stored(cli, inputs):
    result = cli("execute", "hemolysis", "plate.csv", "--operator", "  ")
    assert result.exit_code == 2 and "--operator" in result.stderr and "blank" in result.stderr
    assert not Path("assayrun.db").exists()


# --- 3. the certificate shows what was digested --------------------------------------------------------------

ASSAY_RUNS = {
    "hemolysis": ["hemolysis", EXAMPLES / "hemolysis" / "plate.csv", "--samples", EXAMPLES / "hemolysis" / "samples.csv"],
    "complement": ["complement", EXAMPLES / "complement" / "plate.csv", "--samples",
                   EXAMPLES / "complement" / "samples.csv", "--param",
                   f"@{EXAMPLES / 'complement' / 'kit-lot-XYZ.toml'}"],
    "cytotoxicity": ["cytotoxicity", EXAMPLES / "cytotoxicity" / "mtt_plate.csv", "--protocol", "ncl-gta-1-mtt",
                     "--samples", EXAMPLES / "cytotoxicity" / "samples.csv"],
    "coagulation": ["coagulation", EXAMPLES / "coagulation" / "coagulometer.csv", "--param",
                    f"@{EXAMPLES / 'coagulation' / 'control-lot.toml'}"],
    "coagulation-kinetic": ["coagulation", EXAMPLES / "coagulation" / "plate_kinetic.csv", "--protocol",
                            "ncl-ita-12-plate", "--samples", EXAMPLES / "coagulation" / "samples.csv", "--param",
                            f"@{EXAMPLES / 'coagulation' / 'plate-control-lot.toml'}"],
    "complement-kit-lot": ["complement", EXAMPLES / "complement" / "plate.csv", "--param",
                           f"@{EXAMPLES / 'complement' / 'kit-lot-XYZ.toml'}"],
    "cytotoxicity-ldh": ["cytotoxicity", EXAMPLES / "cytotoxicity" / "ldh_plate.csv", "--protocol", "ncl-gta-2-ldh"],
}


def _numbers(value, found: set) -> set:
    """Every number in a stored record, as the certificate may print it, and every number inside its texts."""
    from assayrunner.certificate import format_number, param_value

    if isinstance(value, dict):
        for v in value.values():
            _numbers(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _numbers(v, found)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, (int, float)):
        found.update({format_number(float(value), d) for d in range(1, 7)} | {param_value(value), str(value)})
        found.update(f"{scale * value:.{d}f}" for d in range(4) for scale in (1, 100))  # "%.1f", a fraction as %
        if float(value).is_integer():
            found.add(str(int(value)))
    elif isinstance(value, str):
        found.update(NUMBER.findall(value))
    return found


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")


@pytest.mark.parametrize("assay", ASSAY_RUNS)
def test_certificate_is_a_function_of_the_stored_record_and_its_numbers_are_stored(cli, workdir, assay):
    result, data = cli.json("execute", *ASSAY_RUNS[assay])
    assert result.exit_code in (0, 1), result.output
    db = Database("assayrun.db")
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    issued_at = re.search(r"<th>Certificate issued</th><td>([^<]+)</td>", html).group(1)
    record = store.run_record(db, data["run_id"], issued_at)
    from assayrunner.plugins import load

    record["chain_head"] = {"position": 1, "sha256": db["audit_log"].get(1)["sha256"]}
    assert render_html(environment(load().template_dirs), record) == html  # nothing but the stored record
    assert cli("verify", str(data["run_id"])).exit_code == 0  # the digest made in memory is the stored rows'
    text = unescape(re.sub(r"<style>.*?</style>|<svg.*?</svg>|<[^>]+>", " ", html, flags=re.S))
    text = re.sub(r"\b[0-9a-f]{16,64}\b|\d{4}-\d\d-\d\dT[\d:.]+\+00:00|\b[A-P]\d{1,2}\b|SHA-256", " ", text)
    stored = _numbers(store.stored_rows(db, data["run_id"]), set()) | _numbers(record["run"], set())
    stored |= {str(data["run_id"]), "1"}  # run id, revision
    unexplained = {n for n in NUMBER.findall(text.replace(",", " ")) if n not in stored}
    assert not unexplained, f"numbers on the certificate that no stored record holds: {sorted(unexplained)[:20]}"


def test_tampered_details_change_the_digest(cli, workdir):
    _, data = cli.json("execute", *ASSAY_RUNS["hemolysis"])
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("update runs set details = replace(details, '\"lloq\": ', '\"lloq\": 1') where id = 1")
        assert conn.total_changes == 1
    result = cli("verify", "1")
    assert result.exit_code == 1 and "DIFFERS  run 1: digest" in result.stdout
    reissue = cli("certificate", "1")
    assert reissue.exit_code == 2 and "stored records no longer match its digest" in reissue.stderr


@pytest.mark.parametrize("tamper", [
    "update results set qualifier = '<' where qualifier = '>'",
    "update checks set total = total + 1 where total is not null",
    "update checks set unit = 'mg' where unit = 'AU'",
    "update runs set protocol_modified = replace(protocol_modified, 'comments', 'limits')",
])
def test_issue_17_columns_are_in_the_digest(cli, workdir, tamper):
    """results.qualifier, checks.unit/total and runs.protocol_modified are stored rows: changing one breaks the digest."""
    edited = workdir / "mtt.toml"
    edited.write_text((REPO / "protocols" / "ncl-gta-1-mtt.toml").read_text(encoding="utf-8") + "# edited copy\n",
                      encoding="utf-8")
    result, data = cli.json("execute", "cytotoxicity", EXAMPLES / "cytotoxicity" / "mtt_plate.csv", "--protocol",
                            edited, "--samples", EXAMPLES / "cytotoxicity" / "samples.csv")
    assert result.exit_code in (0, 1), result.output
    assert data["protocol"]["modified_from"]["changed"] == ["comments or formatting only"]
    assert cli("verify", "1").exit_code == 0
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute(tamper)
        assert conn.total_changes >= 1
    result = cli("verify", "1")
    assert result.exit_code == 1 and "DIFFERS  run 1: digest" in result.stdout


def test_a_database_with_m005_gets_issue_17_columns(workdir):
    """A database made by main before issue 17 (m005 applied, no m003 ones) gets them after, triggers intact."""
    db = Database(workdir / "old.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for migration in (store.m001_initial, store.m002_integrity, store.m005_records):
        migration(db)
        db["_migrations"].insert({"name": migration.__name__, "applied_at": "2026-01-01T00:00:00+00:00"})
    assert store.migrate(db) == ["m003_result_qualifier", "m003_check_unit_and_modified_protocol",
                                 "m004_protocol_texts", "m006_chain_head", "m007_well_plate",
                                 "m008_certificate_path_index"]
    assert {"unit", "total"} <= set(db["checks"].columns_dict) and "qualifier" in db["results"].columns_dict
    db["runs"].insert({"id": 3, "assay": "hemolysis", "digest": "abc", "valid": 1})
    assert db["runs"].get(3)["protocol_modified"] is None
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("update runs set protocol_modified = '{}' where id = 3")


def test_row_order_is_not_content(cli, workdir):
    """SQLite promises no row order (VACUUM may renumber rowids): the same rows in reverse still verify."""
    cli("execute", *ASSAY_RUNS["hemolysis"])
    triggers = drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("create table copy as select * from wells order by rowid desc")
        conn.execute("delete from wells")
        conn.execute("insert into wells select * from copy")
        conn.execute("drop table copy")
    restore_triggers("assayrun.db", triggers)
    assert cli("verify", "1").exit_code == 0
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("update wells set value = value + 0.001 where rowid = (select max(rowid) from wells)")
    assert "DIFFERS  run 1: digest" in cli("verify", "1").stdout


# --- 4. signatures that prove identity --------------------------------------------------------------------------

@pytest.fixture
def signers(cli, workdir, monkeypatch):
    """A run by Olga Operator, a registered reviewer and approver, keys in workdir/keys."""
    monkeypatch.setenv("ASSAYRUN_KEYS", str(workdir / "keys"))
    monkeypatch.setenv("ASSAYRUN_PASSPHRASE", PASS)
    result = cli("execute", "hemolysis", PLATE, "--operator", "Olga  Operator")
    assert result.exit_code == 0
    for name, role in (("Jane Reviewer", "reviewer"), ("Alan Approver", "approver"), ("Olga Operator", "reviewer")):
        added = cli("signer", "add", name, "--role", role)
        assert added.exit_code == 0, added.output
    return workdir


def sign(cli, role, by, **kw):
    return cli("sign", "1", "--role", role, "--by", by, "--meaning", f"{role} as {by}", **kw)


def test_signature_round_trip_with_prompted_passphrase(cli, signers, monkeypatch):
    monkeypatch.delenv("ASSAYRUN_PASSPHRASE")
    from assayrunner.cli import app

    review = cli.runner.invoke(app, ["sign", "1", "--role", "reviewed", "--by", "  jane   REVIEWER ",
                                     "--meaning", "Data reviewed"], input=PASS + "\n")
    assert review.exit_code == 0, review.output
    assert "reviewed by Jane Reviewer" in review.stdout and "with key" in review.stdout
    approve = cli.runner.invoke(app, ["sign", "1", "--role", "approved", "--by", "alan approver",
                                      "--meaning", "Released"], input=PASS + "\n")
    assert approve.exit_code == 0, approve.output
    html = open(approve.stdout.strip().splitlines()[-1].removeprefix("Certificate: "), encoding="utf-8").read()
    assert "Ed25519 signature" in html and "unauthenticated" not in html
    verified = cli("verify", "1")
    assert verified.exit_code == 0
    assert "OK       run 1: reviewed by Jane Reviewer: Ed25519 signature" in verified.stdout
    assert "OK       run 1: approved by Alan Approver: Ed25519 signature" in verified.stdout
    assert not any(p.stat().st_mode & 0o077 for p in (signers / "keys").iterdir())  # private keys: owner only
    assert b"PRIVATE KEY" not in Path("assayrun.db").read_bytes()


def test_wrong_passphrase_signs_nothing(cli, signers, monkeypatch):
    monkeypatch.setenv("ASSAYRUN_PASSPHRASE", "not the passphrase")
    result = sign(cli, "reviewed", "Jane Reviewer")
    assert result.exit_code == 2 and "wrong passphrase for Jane Reviewer's key" in result.stderr
    assert Database("assayrun.db")["signatures"].count == 0


def test_unregistered_or_wrong_role_refused(cli, signers):
    nobody = sign(cli, "reviewed", "Root")
    assert nobody.exit_code == 2 and "'Root' is not a registered signer" in nobody.stderr
    assert sign(cli, "reviewed", "Jane Reviewer").exit_code == 0
    wrong = sign(cli, "approved", "Olga Operator")
    assert wrong.exit_code == 2 and "registered as reviewer, not approver" in wrong.stderr


def test_name_variants_are_one_person(cli, signers):
    again = cli("signer", "add", "JANE  reviewer", "--role", "approver")
    assert again.exit_code == 2 and "Jane Reviewer is already registered" in again.stderr
    own = sign(cli, "reviewed", "olga operator")
    assert own.exit_code == 2 and "ran run 1 as its operator" in own.stderr
    assert sign(cli, "reviewed", "Jane Reviewer").exit_code == 0


def test_a_changed_run_is_not_signed(cli, signers):
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("update wells set value = 0.5 where run_id = 1 and well = 'A1'")
    result = sign(cli, "reviewed", "Jane Reviewer")
    assert result.exit_code == 2 and "no longer match its digest" in result.stderr
    assert Database("assayrun.db")["signatures"].count == 0


def test_names_compare_by_case_spacing_and_unicode_form():
    from assayrunner.signing import name_key

    assert name_key(" jane\tREVIEWER ") == name_key("Jane Reviewer")
    assert name_key("Jose\u0301 Núñez") == name_key("JOSÉ NÚÑEZ")
    assert name_key("Jane Reviewer") != name_key("Jane Reviewers")


def test_a_valid_key_signing_outside_its_role_is_named(cli, signers):
    """An insider with the reviewer's key and database access writes an approval: the key is right, the role not."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from assayrunner.signing import signature_payload

    assert sign(cli, "reviewed", "Alan Approver").exit_code == 2  # approver is not a reviewer
    assert sign(cli, "reviewed", "Jane Reviewer").exit_code == 0
    db = Database("assayrun.db")
    jane = next(db.query("select * from signers where name = 'Jane Reviewer'"))
    key = load_pem_private_key((signers / "keys" / f"signer-{jane['key_sha256'][:16]}.pem").read_bytes(),
                               PASS.encode())
    row = {"run_id": 1, "role": "approved", "signer": "Jane Reviewer", "meaning": "Released",
           "signed_at": "2026-12-02T09:00:00+00:00", "mode": "ed25519", "signer_id": jane["id"],
           "key_sha256": jane["key_sha256"]}
    row["signature"] = key.sign(signature_payload(row, db["runs"].get(1)["digest"])).hex()
    db["signatures"].insert(row)
    result = cli("verify", "1")
    assert result.exit_code == 1 and "Jane Reviewer is not registered as approver" in result.stdout
    assert "DIFFERS  run 1: approved by Jane Reviewer: another person than the run's other signers: Jane " \
           "Reviewer reviewed run 1; approval needs a second person" in result.stdout


def test_operator_may_review_when_the_lab_allows_and_the_certificate_says_so(cli, workdir, monkeypatch):
    monkeypatch.setenv("ASSAYRUN_KEYS", str(workdir / "keys"))
    monkeypatch.setenv("ASSAYRUN_PASSPHRASE", PASS)
    (workdir / "assayrun.toml").write_text("[signatures]\ndistinct_people = false\n")
    cli("execute", "hemolysis", PLATE, "--operator", "Sam Small")
    cli("signer", "add", "Sam Small", "--role", "reviewer", "--role", "approver")
    assert sign(cli, "reviewed", "sam small").exit_code == 0
    result = sign(cli, "approved", "Sam Small")
    assert result.exit_code == 0
    html = open(result.stdout.strip().splitlines()[-1].removeprefix("Certificate: "), encoding="utf-8").read()
    assert "allow one person to be more than one of operator, reviewer and approver" in html


def test_forged_and_changed_signatures_are_named(cli, signers):
    assert sign(cli, "reviewed", "Jane Reviewer").exit_code == 0
    db = Database("assayrun.db")
    approver = next(db.query("select * from signers where name = 'Alan Approver'"))
    db["signatures"].insert({"run_id": 1, "role": "approved", "signer": "Alan Approver", "meaning": "Released",
                             "signed_at": "2026-12-02T09:00:00+00:00", "mode": "ed25519",
                             "signer_id": approver["id"], "key_sha256": approver["key_sha256"],
                             "signature": "00" * 64})
    forged = cli("verify", "1")
    assert forged.exit_code == 1
    assert "DIFFERS  run 1: approved by Alan Approver: Ed25519 signature" in forged.stdout
    assert "forged or changed" in forged.stdout
    assert "OK       run 1: reviewed by Jane Reviewer" in forged.stdout
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("delete from signatures where role = 'approved'")
        conn.execute("update signatures set meaning = 'Rubber-stamped' where role = 'reviewed'")
    changed = cli("verify", "1")
    assert changed.exit_code == 1 and "DIFFERS  run 1: reviewed by Jane Reviewer" in changed.stdout


def test_a_swapped_public_key_is_named(cli, signers):
    """Someone replaces the reviewer's public key with their own and signs with it: the audit log disagrees."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from assayrunner.signing import signature_payload

    db = Database("assayrun.db")
    mallory = Ed25519PrivateKey.generate()
    raw = mallory.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    pem = mallory.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo).decode()
    key_sha256 = __import__("hashlib").sha256(raw).hexdigest()
    drop_triggers("assayrun.db")
    db.execute("update signers set public_key = ?, key_sha256 = ? where name = 'Jane Reviewer'", [pem, key_sha256])
    db.conn.commit()
    jane = next(db.query("select * from signers where name = 'Jane Reviewer'"))
    row = {"run_id": 1, "role": "reviewed", "signer": "Jane Reviewer", "meaning": "ok",
           "signed_at": "2026-12-02T09:00:00+00:00", "mode": "ed25519", "signer_id": jane["id"],
           "key_sha256": key_sha256}
    row["signature"] = mallory.sign(signature_payload(row, db["runs"].get(1)["digest"])).hex()
    db["signatures"].insert(row)
    result = cli("verify", "1")
    assert result.exit_code == 1 and "public key is not the one the audit log registered" in result.stdout


# --- 5. an anchor outside the database ----------------------------------------------------------------------------

def rebuild_history(db_path) -> None:
    """What someone with write access does: drop the triggers, edit a result, recompute the run's digest and
    every audit row's hash, move the chain head kept beside the log, and put the triggers back, so the chain is
    whole again."""
    triggers = drop_triggers(db_path)
    db = Database(db_path)
    db.execute("update results set value = value * 0.5 where run_id = 1 and metric = 'percent_hemolysis'")
    digest = integrity.record_digest(store.stored_rows(db, 1))
    db.execute("update runs set digest = ? where id = 1", [digest])
    previous = "0" * 64
    for row in list(db.query("select * from audit_log order by id")):
        payload = json.loads(row["payload"])
        if row["event"] == "run stored" and row["run_id"] == 1:
            payload["digest"] = digest
        row.update(payload=json.dumps(payload), prev_sha256=previous)
        row["sha256"] = previous = integrity.audit_row_sha256(row)
        db.execute("update audit_log set payload = ?, prev_sha256 = ?, sha256 = ? where id = ?",
                   [row["payload"], row["prev_sha256"], row["sha256"], row["id"]])
    db.execute("update chain_head set audit_sha256 = ?", [previous])
    db.conn.commit()
    db.close()
    restore_triggers(db_path, triggers)


def test_anchor_detects_a_rebuilt_chain(cli, workdir):
    _, data = cli.json("execute", "hemolysis", PLATE)
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    head = re.search(r"verify --anchor (\d+:[0-9a-f]{16})", html).group(1)
    exported = cli("audit", "export", "--out", workdir / "anchors.jsonl")
    assert exported.exit_code == 0
    assert cli("verify", "--anchor", head).exit_code == 0
    assert cli("verify", "--anchor", workdir / "anchors.jsonl").exit_code == 0
    rebuild_history(workdir / "assayrun.db")
    assert cli("verify").exit_code == 0  # without an anchor the rewrite is invisible: that is why anchors exist
    for anchor in (head, workdir / "anchors.jsonl"):
        result = cli("verify", "--anchor", anchor)
        assert result.exit_code == 1 and "history was rewritten" in result.stdout


def test_bad_anchor_is_a_usage_error(cli, workdir):
    cli("execute", "hemolysis", PLATE)
    result = cli("verify", "--anchor", "latest")
    assert result.exit_code == 2 and "--anchor" in result.stderr and "POSITION:HASH" in result.stderr
    assert cli("audit", "export", "--head").stdout.strip() == f"{Database('assayrun.db')['audit_log'].count}:" + \
        next(Database("assayrun.db").query("select sha256 from audit_log order by id desc limit 1"))["sha256"]


# --- 6. run state everywhere -----------------------------------------------------------------------------------

def test_run_state_in_runs_and_runs_show(cli, workdir):
    cli("execute", "hemolysis", PLATE, "--operator", "Olga Operator")
    for role, by in (("reviewed", "R. Jones"), ("approved", "Q. Lead")):
        assert sign(cli, role, by, ).exit_code == 2  # not registered: the demo mode must be asked for
        assert cli("sign", "1", "--role", role, "--by", by, "--meaning", "ok", "--unauthenticated").exit_code == 0
    cli("execute", "hemolysis", PLATE, "--supersedes", "1")
    listing = cli("runs")
    line = next(line for line in listing.stdout.splitlines() if line.startswith("1 "))
    assert "SUPERSEDED by run 2" in line and "reviewed by R. Jones (unauthenticated)" in line and "Q. Lead" in line
    runs = {r["id"]: r for r in json.loads(cli("runs", "--json").stdout)}
    assert runs[1]["superseded_by"] == 2 and runs[1]["state"] == "superseded"
    assert runs[1]["approved"]["by"] == "Q. Lead" and runs[1]["approved"]["mode"] == "unauthenticated"
    assert runs[2]["state"] == "computed" and runs[2]["reviewed"] is None
    shown = json.loads(cli("runs", "show", "1", "--json").stdout)
    assert shown["superseded_by"] == 2 and shown["reviewed"]["by"] == "R. Jones"
    assert "status: valid; SUPERSEDED by run 2" in cli("runs", "show", "1").stdout


def test_html_and_pdf_of_one_state_are_one_revision(cli, workdir):
    cli("execute", "hemolysis", PLATE)
    pdf = Path(cli("certificate", "1", "--format", "pdf").stdout.strip())
    stem = pdf.stem  # run-1-hemolysis-<8 hex of the database id> (issue 11: unique across databases)
    assert pdf.suffix == ".pdf" and stem.startswith("run-1-hemolysis-") and len(stem) == len("run-1-hemolysis-") + 8
    cli("sign", "1", "--role", "reviewed", "--by", "R. Jones", "--meaning", "ok", "--unauthenticated")
    names = sorted(p.name for p in (workdir / "certificates").iterdir())
    assert names == [f"{stem}-r2.html", f"{stem}-r2.pdf", f"{stem}.html", f"{stem}.pdf"]


# --- 7. results export ------------------------------------------------------------------------------------------

def test_export_rows_equal_runs_show(cli, workdir):
    cli("execute", *ASSAY_RUNS["hemolysis"])
    cli("execute", *ASSAY_RUNS["coagulation"])
    exported = json.loads(cli("export", "1", "2", "--format", "json").stdout)
    shown = [json.loads(cli("runs", "show", str(i), "--json").stdout) for i in (1, 2)]
    expected = [(run, r) for run in shown for r in run["results"]]
    assert len(exported) == len(expected)
    for row, (run, r) in zip(exported, expected):
        for key in ("slot", "sample_id", "sample", "lot", "concentration", "concentration_unit", "metric", "value",
                    "unit", "flags", "interpretation"):
            assert row[key] == r[key], key
        assert (row["run_id"], row["protocol_sha256"], row["run_state"], row["digest"]) == \
               (run["id"], run["protocol_sha256"], run["state"], run["digest"])
    assert any(row["lot"] == "L-2611" for row in exported)
    cli("export", "1", "2", "--out", workdir / "results.csv")
    raw = (workdir / "results.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # UTF-8 BOM and CRLF: Excel opens it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [float(r["value"]) if r["value"] else None for r in rows] == [r["value"] for r in exported]
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(workdir / "results.csv")
    assert list(frame.columns)[0] == "run_id" and len(frame) == len(exported)


def test_export_of_unknown_run_or_format(cli, workdir):
    cli("execute", "hemolysis", PLATE)
    assert cli("export", "9").exit_code == 2
    assert cli("export", "1", "--format", "xlsx").exit_code == 2


# --- 8. the database explains itself -------------------------------------------------------------------------------

def test_foreign_keys_index_and_datasette_metadata(cli, workdir):
    cli("execute", "hemolysis", PLATE)
    db = Database("assayrun.db")
    assert ("supersedes", "runs") in [(fk.column, fk.other_table) for fk in db["runs"].foreign_keys]
    assert ("run_id", "runs") in [(fk.column, fk.other_table) for fk in db["audit_log"].foreign_keys]
    assert any(index.columns == ["supersedes"] for index in db["runs"].indexes)
    assert ("signer_id", "signers") in [(fk.column, fk.other_table) for fk in db["signatures"].foreign_keys]
    conn = store.open_db(Path("assayrun.db")).conn  # enforced: a link to no run is refused
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("insert into audit_log (at, event, run_id, actor, payload, prev_sha256, sha256) "
                     "values ('', 'x', 99, '', '{}', '', '')")
    assert cli("metadata").exit_code == 0
    meta = json.loads((workdir / "metadata.json").read_text())["databases"]["assayrun"]["tables"]
    undocumented = [t for t in db.table_names() if not t.startswith("_") and not meta.get(t, {}).get("description")]
    assert not undocumented
    for table in ("runs", "results"):
        assert set(meta[table]["columns"]) <= set(db[table].columns_dict)


# --- a database from before m005 -----------------------------------------------------------------------------------

def test_a_database_from_before_m005_migrates_and_still_verifies(cli, workdir):
    """tests/data/records/before-m005.db: written by the code before this change (run 1, run 2 superseding
    it, run 2 reviewed in the old unauthenticated way); its digests are checked by their first scheme."""
    shutil.copy(REPO / "tests" / "data" / "records" / "before-m005.db", workdir / "assayrun.db")
    verified = cli("verify", "--allow-missing")  # its input and certificate files were on the machine that wrote it
    assert verified.exit_code == 0, verified.stdout
    assert "SKIPPED  run 1 input plate.csv: /tmp/legacy/plate.csv is no longer on disk" in verified.stdout \
        or Path("/tmp/legacy/plate.csv").exists()
    assert "OK       run 1: digest" in verified.stdout and "OK       run 2: digest" in verified.stdout
    runs = {r["id"]: r for r in json.loads(cli("runs", "--json").stdout)}
    assert runs[1]["state"] == "superseded" and runs[2]["reviewed"]["mode"] == "unauthenticated"
    reissued = cli("certificate", "2")
    assert reissued.exit_code == 0
    html = Path(reissued.stdout.strip()).read_text(encoding="utf-8")
    assert "revision 2" in html and "unauthenticated signature" in html
    exported = json.loads(cli("export", "1", "2", "--format", "json").stdout)
    assert len(exported) == 2 * len(store.get_run(Database("assayrun.db"), 1)["results"])
    assert {row["run_state"] for row in exported} == {"superseded", "reviewed"}
    assert cli("execute", "hemolysis", PLATE).exit_code == 0 and cli("verify", "--allow-missing").exit_code == 0
    drop_triggers("assayrun.db")
    with sqlite3.connect("assayrun.db") as conn:
        conn.execute("update results set value = value + 1 where run_id = 1 and position = 0")
    assert "DIFFERS  run 1: digest" in cli("verify", "1").stdout
