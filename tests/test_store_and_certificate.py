"""Storage (migrations, audit chain) and the HTML certificate as a reviewer reads it."""

import hashlib
from html import escape as html_escape
import json
import subprocess
import sys
from pathlib import Path

from sqlite_utils import Database

from assayrunner import store

from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


def test_migrations_from_empty_and_idempotent(tmp_path):
    db = Database(tmp_path / "new.db")
    assert store.migrate(db) == [m.__name__ for m in store.MIGRATIONS]
    assert store.migrate(db) == []
    assert {"runs", "input_files", "wells", "fits", "checks", "results", "certificates", "audit_log",
            "_migrations"} <= set(db.table_names())


def test_a_certificate_path_is_looked_up_by_index(tmp_path):
    """Naming a certificate file asks whether its path was recorded: SQLite answers from m008's index, not a
    scan of every certificate the database issued."""
    db = store.open_db(tmp_path / "new.db")
    plan = " ".join(str(row[-1]) for row in db.execute(
        "explain query plan select sha256 from certificates where path = ? order by id desc limit 1", ["x"]))
    assert "USING INDEX idx_certificates_path" in plan and "SCAN certificates" not in plan, plan


def test_audit_log_is_a_hash_chain(cli, workdir):
    for _ in range(2):
        assert cli("execute", "hemolysis", PLATE).exit_code == 0
    rows = list(Database(workdir / "assayrun.db").query("select * from audit_log order by id"))
    assert [r["event"] for r in rows] == ["run stored", "certificate issued"] * 2
    previous = "0" * 64
    for row in rows:
        assert row["prev_sha256"] == previous
        content = {k: row[k] for k in ("at", "event", "run_id", "actor", "payload", "prev_sha256")}
        assert row["sha256"] == hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        previous = row["sha256"]


def test_certificate_shows_what_a_reviewer_signs(cli, workdir):
    samples = workdir / "samples.csv"
    samples.write_text('slot,sample\nS1,<script>alert(1)</script>\nS2,{{ 7*7 }}\n')
    result, data = cli.json("execute", "hemolysis", PLATE, "--samples", samples, "--operator", "A. Reviewer & co")
    html = open(data["certificate"]["html"], encoding="utf-8").read()
    run = Database(workdir / "assayrun.db")["runs"].get(data["run_id"])
    assert data["protocol"]["sha256"] in html
    assert hashlib.sha256(PLATE.read_bytes()).hexdigest() in html
    assert run["digest"] in html
    assert "A. Reviewer &amp; co" in html
    for check in data["checks"]:
        assert html_escape(check["description"], quote=False) in html
    assert html.count(">PASS<") == 6 and "VALID" in html
    assert "<svg" in html and "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and ">49<" not in html
    assert "assayrunner " in html and "python " in html  # software versions


def test_certificate_reissued_for_a_stored_run(cli, workdir):
    """Re-issuing an unchanged record is the same revision; a name already used is never overwritten."""
    _, data = cli.json("execute", "hemolysis", PLATE)
    again = cli("certificate", str(data["run_id"]), "--out", workdir / "reissued")
    assert again.exit_code == 0
    issued = Path(data["certificate"]["html"])  # run-1-hemolysis-<database id>.html
    assert issued.name.startswith(f"run-{data['run_id']}-hemolysis-")
    first = workdir / "reissued" / issued.name
    assert again.stdout.strip() == str(first)
    third = cli("certificate", str(data["run_id"]), "--out", workdir / "reissued")
    assert third.stdout.strip() == str(workdir / "reissued" / f"{issued.stem}-2.html")
    assert "revision 1" in first.read_text() and "revision 2" not in first.read_text()
    assert cli("verify").exit_code == 0


def test_help_does_not_import_heavy_libraries():
    code = ("import sys\nsys.argv = ['assayrun', '--help']\nfrom assayrunner.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib', 'weasyprint', 'python_calamine', 'allotropy', 'pandas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
