"""SIGKILL at random points of a batch of runs: the database stays whole, only complete runs are stored, no
certificate file exists without its stored run, and the next run finishes what a kill left half done."""

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlite_utils import Database

from assayrunner import certificate, certificate_files, engine, store

from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"
KILLS = 6  # bench/bench_kills.py runs more
BATCH = """
import sys
from pathlib import Path
from assayrunner import engine
print("ready", flush=True)
while True:
    engine.execute("hemolysis", [Path(sys.argv[1])], db=Path("kill.db"), out=Path("certificates"))
"""


def stored_runs_are_complete(db_path: Path) -> int:
    """integrity_check ok; every run has wells, checks, results, its audit row and a certificate row."""
    if not db_path.exists():
        return 0  # killed before it opened the database
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        if not conn.execute("select 1 from sqlite_master where name = 'chain_head'").fetchone():
            return 0  # killed while migrating: the next open migrates
        runs = [r[0] for r in conn.execute("select id from runs")]
        for table in ("wells", "checks", "results", "certificates", "input_files"):
            have = {r[0] for r in conn.execute(f"select distinct run_id from {table}")}
            assert have == set(runs), table
        logged = [r[0] for r in conn.execute("select run_id from audit_log where event = 'run stored'")]
        assert sorted(logged) == sorted(runs)
    return len(runs)


def no_certificate_without_its_run(db_path: Path, folder: Path) -> None:
    if not folder.exists():
        return
    db = Database(db_path)  # killed before m001 made the table (the folder is made first): nothing is recorded
    recorded = {Path(r["path"]): r["sha256"] for r in db.query("select path, sha256 from certificates")} \
        if db["certificates"].exists() else {}
    for path in folder.iterdir():
        if path.name.endswith(certificate_files.PARTIAL):
            continue  # not a certificate yet: named only after its run commits
        assert path in recorded, f"{path.name} has no stored run"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[path]


def test_sigkill_loop_through_a_batch(tmp_path):
    rng = random.Random(11)
    plate = tmp_path / "plate.csv"
    plate.write_bytes(PLATE.read_bytes())
    kills = 0
    for _ in range(KILLS):
        worker = subprocess.Popen([sys.executable, "-c", BATCH, str(plate)], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert worker.stdout.readline() == "ready\n"  # imports done: from here on a kill lands in the batch
        time.sleep(rng.uniform(0.05, 1.5))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait()
        assert worker.returncode == -signal.SIGKILL, worker.stderr.read()[-2000:]
        stored_runs_are_complete(tmp_path / "kill.db")
        no_certificate_without_its_run(tmp_path / "kill.db", tmp_path / "certificates")
    assert kills == KILLS
    before = stored_runs_are_complete(tmp_path / "kill.db")
    assert before > 0
    # One more run, not killed: it finishes or removes what the kills left under temporary names.
    engine.execute("hemolysis", [plate], db=tmp_path / "kill.db", out=tmp_path / "certificates")
    assert stored_runs_are_complete(tmp_path / "kill.db") == before + 1
    assert not list((tmp_path / "certificates").glob("*" + certificate_files.PARTIAL))
    no_certificate_without_its_run(tmp_path / "kill.db", tmp_path / "certificates")
    verify = subprocess.run([sys.executable, "-m", "assayrunner", "verify", "--db", "kill.db"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_a_failed_transaction_leaves_no_certificate(tmp_path):
    """A transaction that rolls back after a certificate was rendered leaves no file behind."""
    plate = tmp_path / "plate.csv"
    plate.write_bytes(PLATE.read_bytes())
    out = tmp_path / "certificates"
    engine.execute("hemolysis", [plate], db=tmp_path / "a.db", out=out)
    before = sorted(out.iterdir())
    db = store.open_db(tmp_path / "a.db")
    try:
        with store.transaction(db):
            certificate.issue(db, 1, out)
            raise RuntimeError("stop before commit")
    except RuntimeError:
        pass
    assert sorted(out.iterdir()) == before  # not even a partial file
    assert Database(tmp_path / "a.db").execute("select count(*) from certificates").fetchone()[0] == 1


def test_a_partial_certificate_of_a_dead_process(tmp_path):
    """Recorded in the database but killed before its rename: named by the next writer; never recorded:
    removed; another database's partial file: left alone."""
    plate = tmp_path / "plate.csv"
    plate.write_bytes(PLATE.read_bytes())
    out = tmp_path / "certificates"
    first = engine.execute("hemolysis", [plate], db=tmp_path / "a.db", out=out).certificate_html
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    content = first.read_bytes()
    committed = first.with_name(f".{first.name}.{dead}{certificate_files.PARTIAL}")
    first.rename(committed)
    orphan = first.with_name(f".{first.stem}-r7.html.{dead}{certificate_files.PARTIAL}")
    orphan.write_text("never committed")
    foreign = first.with_name(f".run-1-hemolysis-0000abcd.html.{dead}{certificate_files.PARTIAL}")
    foreign.write_text("another database's")
    db = store.open_db(tmp_path / "a.db")
    with store.transaction(db):
        done = certificate_files.recover_partial(db, out)
    assert sorted(done) == [f"completed {first.name}", f"removed {orphan.name} (its run was never stored)"]
    assert first.read_bytes() == content and not committed.exists() and not orphan.exists() and foreign.exists()


def test_a_name_claimed_in_a_rolled_back_savepoint_is_free_again(tmp_path):
    """The folder is listed once per transaction: a partial file written in a savepoint that rolled back no
    longer claims its name, one written and kept does, and both are named as a fresh listing would name them."""
    out = tmp_path / "certificates"
    out.mkdir()
    db = store.open_db(tmp_path / "a.db")
    with store.transaction(db):
        assert certificate_files.recover_partial(db, out) == []  # lists the folder, as issuing does
        try:
            with store.transaction(db):
                certificate_files.write_after_commit(db, out, "run-1-x", "html", b"rolled back")
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        kept = certificate_files.write_after_commit(db, out, "run-1-x", "html", b"kept")
        second = certificate_files.write_after_commit(db, out, "run-1-x", "html", b"same stem again")
    assert (kept.name, second.name) == ("run-1-x.html", "run-1-x-2.html")
    assert kept.read_bytes() == b"kept" and second.read_bytes() == b"same stem again"
    assert sorted(p.name for p in out.iterdir()) == ["run-1-x-2.html", "run-1-x.html"]
