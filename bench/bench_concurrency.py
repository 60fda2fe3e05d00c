"""4 processes x 50 runs of `assayrun execute` into one database (issue 11, item 2); not part of the tests.

    python bench/bench_concurrency.py [PROCESSES] [RUNS_EACH]

Prints runs stored, failures (and how many said 'locked'), the wall time and whether verify is clean.
"""

import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PLATE = Path(__file__).parent.parent / "tests" / "data" / "hemolysis" / "valid_plate.csv"


def main(processes: int = 4, runs: int = 50) -> None:
    work = Path(tempfile.mkdtemp(prefix="assayrun-concurrency-"))
    shutil.copy(PLATE, work / "plate.csv")

    def lane(_):
        return [subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "plate.csv",
                                "--db", "bench.db"], cwd=work, capture_output=True, text=True) for _ in range(runs)]

    started = time.monotonic()
    with ThreadPoolExecutor(processes) as pool:
        results = [r for chunk in pool.map(lane, range(processes)) for r in chunk]
    elapsed = time.monotonic() - started
    import sqlite3

    stored = sqlite3.connect(work / "bench.db").execute("select count(*) from runs").fetchone()[0]
    failed = [r for r in results if r.returncode != 0]
    verify = subprocess.run([sys.executable, "-m", "assayrunner", "verify", "--db", "bench.db"], cwd=work,
                            capture_output=True, text=True)
    print(f"{processes} processes x {runs} runs: {stored} of {processes * runs} stored, {len(failed)} failed "
          f"({sum('locked' in r.stderr for r in failed)} 'locked'), {elapsed:.1f} s, "
          f"verify exit {verify.returncode}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
