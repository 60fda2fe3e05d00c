"""Tampering by someone who has the database file: drop the triggers, change something, and `verify` must say what.

Every case first drops the append-only triggers (which verify reports on its own), so each case asserts a
finding beyond that one. The records digest (issue 12) covers every stored row of a run (wells, fits,
details, samples, times, instrument metadata). A consistent rewrite of the whole database (chain rehashed,
head moved) is found only against an anchor kept elsewhere (`verify --anchor`); without one those cases stay
strict xfails.
"""

import shutil
import sqlite3
from pathlib import Path

import pytest

from assayrunner import integrity

from conftest import DATA, Cli

PLATE = DATA / "hemolysis" / "valid_plate.csv"
NEEDS_AN_ANCHOR = pytest.mark.xfail(strict=True, reason="a consistent rewrite of the database (triggers dropped, "
                                     "chain rehashed, head moved) leaves nothing to compare against without an "
                                     "anchor kept outside it; the same case with --anchor is detected")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Run 1, run 2 superseding it, run 2 reviewed and approved: every kind of record, built once."""
    work = tmp_path_factory.mktemp("tamper-template")
    shutil.copy(PLATE, work / "plate.csv")
    cli, db = Cli(), work / "assayrun.db"
    common = ["--db", db, "--out", work / "certificates"]
    assert cli("execute", "hemolysis", work / "plate.csv", *common).exit_code == 0
    assert cli("execute", "hemolysis", work / "plate.csv", "--supersedes", "1", *common).exit_code == 0
    for role, by in (("reviewed", "R. Jones"), ("approved", "Q. Lead")):
        assert cli("sign", "2", "--role", role, "--by", by, "--meaning", "ok", "--unauthenticated",
                   *common).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    return work


def copy_of(template: Path, work: Path, keep_triggers: bool) -> Path:
    """A copy of the template whose certificate paths point into the copy. Input paths are part of the run's
    digest (records12: every stored row), so they keep naming the template's plate.csv (see `case`)."""
    shutil.copytree(template, work)
    with sqlite3.connect(work / "assayrun.db") as conn:
        triggers = conn.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f"drop trigger {name}")
        conn.execute("update certificates set path = replace(path, ?, ?)", [str(template), str(work)])
        for _, statement in triggers if keep_triggers else ():
            conn.execute(statement)
    return work


@pytest.fixture
def case(template, tmp_path):
    """A copy of the template with its triggers dropped, as an attacker starts (the input file it names, the
    template's, is put back afterwards if a case removed it)."""
    yield copy_of(template, tmp_path / "case", keep_triggers=False)
    if not (template / "plate.csv").exists():
        shutil.copy(PLATE, template / "plate.csv")


def test_an_untouched_copy_verifies(template, tmp_path):
    result = verify(copy_of(template, tmp_path / "copy", keep_triggers=True))
    assert result.exit_code == 0 and "DIFFERS" not in result.stdout


def verify(work: Path, *args: str):
    return Cli()("verify", "--db", work / "assayrun.db", *args)


def findings(result) -> list[str]:
    """DIFFERS lines other than the dropped triggers."""
    return [line for line in result.stdout.splitlines() if line.startswith("DIFFERS") and "triggers" not in line]


def sql(*statements):
    def apply(work):
        with sqlite3.connect(work / "assayrun.db") as conn:
            for statement in statements:
                assert conn.execute(statement).rowcount != 0, statement
    return apply


def rebuild_chain(conn) -> None:
    """Rehash the audit log from its first row, as an attacker who knows the scheme would, and move the head."""
    previous = "0" * 64
    rows = conn.execute("select id, at, event, run_id, actor, payload from audit_log order by id").fetchall()
    for id_, at, event, run_id, actor, payload in rows:
        row = {"at": at, "event": event, "run_id": run_id, "actor": actor, "payload": payload,
               "prev_sha256": previous}
        sha = integrity.audit_row_sha256(row)
        conn.execute("update audit_log set prev_sha256 = ?, sha256 = ? where id = ?", [previous, sha, id_])
        previous = sha
    conn.execute("update chain_head set audit_rows = ?, audit_sha256 = ?", [len(rows), previous])


def delete_run_and_rebuild(work):
    with sqlite3.connect(work / "assayrun.db") as conn:
        for table in ("wells", "fits", "checks", "results", "input_files", "certificates", "signatures"):
            conn.execute(f"delete from {table} where run_id = 2")
        conn.execute("delete from runs where id = 2")
        conn.execute("delete from audit_log where run_id = 2 or (run_id = 1 and event = 'run superseded')")
        conn.execute("delete from audit_log where run_id = 1 and payload like '%\"revision\": 2%'")
        conn.execute("delete from certificates where run_id = 1 and path like '%-r2.html'")
        rebuild_chain(conn)


def cut_last_row_and_head(work):
    with sqlite3.connect(work / "assayrun.db") as conn:
        conn.execute("delete from audit_log where id = (select max(id) from audit_log)")
        rows, last = conn.execute("select count(*), (select sha256 from audit_log order by id desc limit 1) "
                                  "from audit_log").fetchone()
        conn.execute("update chain_head set audit_rows = ?, audit_sha256 = ?", [rows, last])


def cut_last_certificate(work):
    """The last audit row is the r3 certificate's: remove it, the certificate's row and file, and move the head."""
    with sqlite3.connect(work / "assayrun.db") as conn:
        path = conn.execute("select path from certificates order by id desc limit 1").fetchone()[0]
        conn.execute("delete from certificates where id = (select max(id) from certificates)")
    Path(path).unlink()
    cut_last_row_and_head(work)


def anchored(tamper):
    """The tamper, with the chain head as it was before (an anchor kept elsewhere) given to verify."""
    def apply(work):
        with sqlite3.connect(work / "assayrun.db") as conn:
            rows, sha = conn.execute("select audit_rows, audit_sha256 from chain_head").fetchone()
        tamper(work)
        return ["--anchor", f"{rows}:{sha[:16]}"]
    return apply


def remove_file(pattern):
    def apply(work):
        victims = list(work.glob(pattern))
        assert victims
        for path in victims:
            path.unlink()
    return apply


def remove_stored_input(work):
    """Remove the input file the run's stored path names."""
    with sqlite3.connect(work / "assayrun.db") as conn:
        path = Path(conn.execute("select path from input_files where run_id = 1").fetchone()[0])
    path.unlink()


def append_to_certificate(work):
    path = sorted((work / "certificates").glob("run-2-*-r3.html"))[0]
    path.write_text(path.read_text().replace("Q. Lead", "Q. Leader"))


CASES = {
    "result value": (sql("update results set value = value * 0.5 where run_id = 1 and metric = 'percent_hemolysis'"),
                     "run 1: digest"),
    "result interpretation": (sql("update results set interpretation = 'non-hemolytic' where run_id = 2"),
                              "run 2: digest"),
    "check verdict": (sql("update checks set passed = 1 - passed where run_id = 1 and position = 0"), "run 1: digest"),
    "run valid flag": (sql("update runs set valid = 0 where id = 2"), "run 2: digest"),
    "parameters": (sql("update runs set parameters = replace(parameters, '900.0', '450.0') where id = 1"),
                   "run 1: digest"),
    "protocol text": (sql("update protocol_texts set text = text || ' '"),  # stored once per SHA-256
                      "run 1: protocol text"),
    "stored input bytes": (sql("update input_files set content = cast(content || x'20' as blob) where run_id = 1"),
                           "stored bytes"),
    "input sha256": (sql("update input_files set sha256 = 'ab' || substr(sha256, 3) where run_id = 1"),
                     "run 1: digest"),
    "operator": (sql("update runs set operator = 'someone else' where id = 1"), "run 1: operator"),
    "forged signature": (sql("insert into signatures (run_id, role, signer, meaning, signed_at) "
                             "values (1, 'reviewed', 'Forger', 'ok', '2026-01-01T00:00:00+00:00')"),
                         "a signature of run 1 (reviewed, Forger) has no audit row"),
    "deleted signature": (sql("delete from signatures where run_id = 2 and role = 'approved'"),
                          "records a signature of run 2 (approved, Q. Lead) that is not stored"),
    "signer changed": (sql("update signatures set signer = 'X. Other' where role = 'reviewed'"),
                       "a signature of run 2 (reviewed, X. Other) has no audit row"),
    "deleted run": (sql(*[f"delete from {t} where run_id = 2" for t in
                          ("wells", "fits", "checks", "results", "input_files", "certificates", "signatures")],
                        "delete from runs where id = 2"), "run 2 is in the audit log"),
    "supersedes link removed": (sql("update runs set supersedes = null where id = 2"),
                                "records a supersession of run 1"),
    "last audit row deleted": (sql("delete from audit_log where id = (select max(id) from audit_log)"),
                               "rows were deleted at the end"),
    "last audit row deleted and the head moved back": (cut_last_row_and_head,
                                                       "a certificate of run 2 (html"),
    "runs table dropped": (sql("drop table runs"), "every table of the records present: runs dropped"),
    "chain head dropped": (sql("drop table chain_head"), "the chain head (table chain_head) is gone"),
    "chain head row deleted": (sql("delete from chain_head"), "the chain head (table chain_head) is gone"),
    "middle audit row deleted": (sql("delete from audit_log where id = 3"), "does not follow row before it"),
    "audit row edited": (sql("update audit_log set actor = 'x' where id = 1"), "was changed after it was written"),
    "certificate row deleted": (sql("delete from certificates where id = 1"),
                                "records a certificate of run 1 (html"),
    "certificate row inserted": (sql("insert into certificates (run_id, format, path, sha256, created_at) "
                                     "select run_id, format, path || '.x', sha256, created_at from certificates "
                                     "where id = 1"), "has no audit row: it was inserted"),
    "certificate file edited": (append_to_certificate, "the file was changed after it was issued"),
    "certificate file deleted": (remove_file("certificates/run-2-*-r3.html"), "is no longer on disk"),
    "input file deleted": (remove_stored_input, "is no longer on disk"),
    "malformed value": (sql("update results set value = 'abc' where run_id = 1 and position = 0"),
                        "results row"),
    "malformed JSON": (sql("update runs set parameters = '{not json' where id = 1"), "runs row 1: parameters is not JSON"),
    "malformed audit payload": (sql("update audit_log set payload = x'00ff' where id = 2"), "audit_log row 2"),
    # Covered by the records digest (issue 12: every stored row of a run):
    "raw well value": (sql("update wells set value = value + 0.1 where run_id = 1 and well = 'A1'"), "run 1: digest"),
    "fit parameters": (sql("update fits set parameters = replace(parameters, '0.', '0.9') where run_id = 1"),
                       "run 1: digest"),
    "details": (sql("update runs set details = '{}' where id = 1"), "run 1: digest"),
    "samples": (sql("update runs set samples = '{\"S1\": {\"sample\": \"other\"}}' where id = 1"), "run 1: digest"),
    "run time": (sql("update runs set created_at = '2020-01-01T00:00:00+00:00' where id = 1"), "run 1: digest"),
    "instrument metadata": (sql("update runs set plate_metadata = '{}' where id = 1"), "run 1: digest"),
    # A consistent rewrite of the whole database is seen only against a chain head kept elsewhere (issue 12's
    # anchors: a certificate prints it, `audit export` writes it): with the anchor it is found ...
    "consistent rebuild of the chain, checked against an anchor": (anchored(delete_run_and_rebuild),
                                                                    "history was rewritten"),
    "last audit row, its certificate row and file deleted, the head moved back, checked against an anchor": (
        anchored(cut_last_certificate), "history was rewritten"),
    # ... and without one nothing in the database is left to compare with:
    "consistent rebuild of the chain": (delete_run_and_rebuild, None),
    "last audit row, its certificate row and file deleted, the head moved back": (cut_last_certificate, None),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=NEEDS_AN_ANCHOR) if CASES[n][1] is None else n
                                  for n in CASES])
def test_tampering_is_detected(case, name):
    tamper, expected = CASES[name]
    extra = tamper(case) or []
    result = verify(case, *extra)
    assert result.exit_code == 1
    found = findings(result)
    assert found, result.stdout
    if expected is not None:
        assert any(expected in line for line in found), (expected, found)
    assert "Traceback" not in result.output


def test_dropped_triggers_alone_are_a_finding(case):
    result = verify(case)
    assert result.exit_code == 1 and findings(result) == []
    assert "DIFFERS  append-only triggers, 20 present: 20 dropped" in result.stdout


def test_missing_files_are_allowed_only_when_told(template, tmp_path):
    work = tmp_path / "case"
    shutil.copytree(template, work)
    with sqlite3.connect(work / "assayrun.db") as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    # the stored paths still point at the template: copy nothing, remove the template's input file instead
    moved = work / "moved.csv"
    (template / "plate.csv").rename(moved)
    try:
        assert verify(work).exit_code == 1
        allowed = verify(work, "--allow-missing")
        assert allowed.exit_code == 0 and "SKIPPED" in allowed.stdout and "plate.csv is no longer on disk" in allowed.stdout
    finally:
        moved.rename(template / "plate.csv")
