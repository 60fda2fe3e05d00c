"""Several writers into one database: every run stored, no 'database is locked', certificates never overwritten.

The CLI test runs 4 processes x 5 runs (a CLI run costs ~0.8 s of CPU and the suite shares 2 cores);
bench/bench_concurrency.py runs the full 4 x 50.
"""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlite_utils import Database

from assayrunner import engine, store

from conftest import DATA, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
ASSAYRUN = [sys.executable, "-m", "assayrunner"]


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ASSAYRUN, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def lanes(n_lanes: int, per_lane: int, *args, cwd: Path) -> list[subprocess.CompletedProcess]:
    """n_lanes processes at a time, each lane running its commands one after the other."""
    def lane(_):
        return [run_cli(*args, cwd=cwd) for _ in range(per_lane)]

    with ThreadPoolExecutor(n_lanes) as pool:
        return [done for results in pool.map(lane, range(n_lanes)) for done in results]


def assert_all_certificates_recorded(db_path: Path, folder: Path) -> None:
    """Every certificate row names a distinct file whose bytes are what was recorded; no stray file."""
    rows = list(Database(db_path).query("select path, sha256 from certificates"))
    paths = [Path(r["path"]) for r in rows]
    assert len(set(paths)) == len(paths)
    for row in rows:
        assert hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest() == row["sha256"], row["path"]
    assert sorted(folder.iterdir()) == sorted(paths)  # no partial or orphan file left behind


def test_four_cli_processes_store_every_run(tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(PLATE, plate)
    results = lanes(4, 5, "execute", "hemolysis", plate, "--db", "shared.db", cwd=tmp_path)
    failed = [(r.returncode, r.stderr) for r in results if r.returncode != 0]
    assert not failed, failed[:3]
    assert not any("locked" in r.stderr for r in results)
    assert count_rows(tmp_path / "shared.db") == 20
    run_ids = {int(r.stdout.split()[1].rstrip(":")) for r in results}
    assert run_ids == set(range(1, 21))
    verify = run_cli("verify", "--db", "shared.db", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout[-2000:]
    assert_all_certificates_recorded(tmp_path / "shared.db", tmp_path / "certificates")


def test_four_threads_through_the_python_api(tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(PLATE, plate)
    db_path, out = tmp_path / "api.db", tmp_path / "certs"
    errors: list[BaseException] = []

    def worker(_):
        ids = []
        for _ in range(8):
            try:
                ids.append(engine.execute("hemolysis", [plate], db=db_path, out=out).run_id)
            except BaseException as exc:  # collected: the assertion below shows it
                errors.append(exc)
        return ids

    with ThreadPoolExecutor(4) as pool:
        ids = [i for chunk in pool.map(worker, range(4)) for i in chunk]
    assert not errors, errors[:3]
    assert sorted(ids) == list(range(1, 33))
    assert run_cli("verify", "--db", db_path, cwd=tmp_path).returncode == 0
    assert_all_certificates_recorded(db_path, out)


def test_a_fresh_database_opened_by_many_at_once_is_migrated_once(tmp_path):
    path = tmp_path / "fresh.db"
    barrier = threading.Barrier(6)
    errors = []

    def open_it(_):
        barrier.wait()
        try:
            store.open_db(path)
        except BaseException as exc:
            errors.append(exc)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(open_it, range(6)))
    assert not errors
    names = [r["name"] for r in Database(path).query("select name from _migrations")]
    assert sorted(names) == sorted(m.__name__ for m in store.MIGRATIONS)  # the table lists them by name


def test_concurrent_certificate_reissues_each_get_their_own_file(tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(PLATE, plate)
    assert run_cli("execute", "hemolysis", plate, cwd=tmp_path).returncode == 0
    results = lanes(4, 1, "certificate", "1", cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    printed = [r.stdout.strip() for r in results]
    assert len(set(printed)) == 4
    # an unchanged record is re-issued as the same revision (issue 12), under the next free name
    assert {Path(p).stem.rsplit("-", 1)[1] for p in printed} == {str(k) for k in range(2, 6)}
    assert_all_certificates_recorded(tmp_path / "assayrun.db", tmp_path / "certificates")
    assert run_cli("verify", cwd=tmp_path).returncode == 0


def test_two_databases_sharing_a_certificate_folder(tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(PLATE, plate)
    for name in ("a.db", "b.db"):
        assert run_cli("execute", "hemolysis", plate, "--db", name, "--out", "shared", cwd=tmp_path).returncode == 0
    files = sorted(p.name for p in (tmp_path / "shared").iterdir())
    assert len(files) == 2 and all(f.startswith("run-1-hemolysis-") for f in files)
    for name in ("a.db", "b.db"):
        assert run_cli("verify", "--db", name, cwd=tmp_path).returncode == 0


def test_a_writer_waits_a_bounded_time_then_stores_nothing(tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(PLATE, plate)
    assert run_cli("execute", "hemolysis", plate, cwd=tmp_path).returncode == 0
    before = sorted((tmp_path / "certificates").iterdir())
    holder = sqlite3.connect(tmp_path / "assayrun.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that keeps the lock
    try:
        started = time.monotonic()
        result = subprocess.run([*ASSAYRUN, "execute", "hemolysis", str(plate)], cwd=tmp_path, capture_output=True,
                                text=True, env={**os.environ, "ASSAYRUN_DATABASE_LOCK_TIMEOUT_S": "1.5"}, timeout=120)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "stayed locked by other writers for 1.5 s; nothing was stored" in result.stderr
    assert 1.5 <= waited < 60
    assert count_rows(tmp_path / "assayrun.db") == 1
    assert sorted((tmp_path / "certificates").iterdir()) == before
