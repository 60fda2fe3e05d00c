"""SIGKILL a batch of runs at random points, many times (issue 11, item 3); not part of the tests.

    python bench/bench_kills.py [KILLS] [SEED]

After each kill: integrity_check ok, only complete runs, no certificate file without its stored run. At the
end one run that is not killed, then `assayrun verify` must be clean. Prints the counts.
"""

import hashlib
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLATE = Path(__file__).parent.parent / "tests" / "data" / "hemolysis" / "valid_plate.csv"
BATCH = """
import sys
from pathlib import Path
from assayrunner import engine
print("ready", flush=True)
while True:
    engine.execute("hemolysis", [Path(sys.argv[1])], db=Path("kill.db"), out=Path("certificates"))
"""


def check(work: Path) -> tuple[int, int]:
    """(complete runs, partial files); AssertionError when the database or the certificate folder is wrong."""
    db = work / "kill.db"
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        if not conn.execute("select 1 from sqlite_master where name = 'chain_head'").fetchone():
            return 0, 0
        runs = {r[0] for r in conn.execute("select id from runs")}
        for table in ("wells", "checks", "results", "certificates", "input_files"):
            assert {r[0] for r in conn.execute(f"select distinct run_id from {table}")} == runs, table
        recorded = dict(conn.execute("select path, sha256 from certificates"))
    partial = 0
    for path in (work / "certificates").glob("*") if (work / "certificates").exists() else []:
        if path.name.endswith(".partial"):
            partial += 1
            continue
        assert str(path) in recorded, f"{path.name} has no stored run"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[str(path)]
    return len(runs), partial


def main(kills: int = 100, seed: int = 11) -> None:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="assayrun-kills-"))
    plate = work / "plate.csv"
    shutil.copy(PLATE, plate)
    partial_seen = 0
    for _ in range(kills):
        worker = subprocess.Popen([sys.executable, "-c", BATCH, str(plate)], cwd=work, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert worker.stdout.readline() == "ready\n", worker.stderr.read()
        time.sleep(rng.uniform(0.05, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        partial_seen += check(work)[1]
    runs, _ = check(work)
    subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis", str(plate), "--db", "kill.db"],
                   cwd=work, check=True, capture_output=True)
    after, partial = check(work)
    verify = subprocess.run([sys.executable, "-m", "assayrunner", "verify", "--db", "kill.db"], cwd=work,
                            capture_output=True, text=True)
    print(f"{kills} kills survived: {runs} complete runs stored, integrity_check ok after each, no certificate "
          f"without its run; {partial_seen} partial files seen after kills, {partial} left after the next run; "
          f"runs after it {after}; verify exit {verify.returncode}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
