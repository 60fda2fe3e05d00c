"""Fuzz every reader for longer than the test suite does (not part of CI).

    python bench/fuzz_readers.py [--per-reader 2000] [--seed 1] [--reader NAME ...] [--keep DIR]

Each reader gets mutated real exports (tests/data) and random bytes, forced with --format so that reader
alone answers, plus the same count read the way `assayrun read` does (every reader by sniff score, 'auto').
An input may give plates or our input error (UserError); anything else is a bug, printed with the input's
seed and kept under --keep to reproduce. Inputs run in worker processes: a worker that dies (a library
abort) is counted as an abort and a new worker goes on; a worker whose peak memory passes 1 GiB is counted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing  # noqa: E402

GIB = 1 << 30
SOURCES = fuzzing.EXPORTS + sorted((fuzzing.HERE / "data").glob("[a-z]*/*.csv")) + \
    sorted((fuzzing.HERE / "data").glob("[a-z]*/*.txt"))


def make_input(reader_ext: tuple[str, ...], seed: int, index: int) -> tuple[bytes, str]:
    """The bytes and file suffix of input `index` (deterministic from the seed)."""
    rng = random.Random(seed * 1_000_003 + index)
    if rng.random() < 0.15:
        return rng.randbytes(rng.randint(0, 4096)), rng.choice(reader_ext or (".csv",))
    source = rng.choice(SOURCES)
    return fuzzing.mutate(source.read_bytes(), rng), source.suffix


def worker(reader: str, seed: int, start: int, stop: int, queue) -> None:
    from assayrunner.plugins import load

    readers = load().readers
    forced = None if reader == "auto" else reader
    extensions = readers[reader].extensions if forced else (".csv", ".txt", ".xlsx")
    with tempfile.TemporaryDirectory() as folder:
        for index in range(start, stop):
            data, suffix = make_input(extensions, seed, index)
            path = Path(folder) / f"input-{index}{suffix}"
            path.write_bytes(data)
            began = time.perf_counter()
            result = fuzzing.outcome(path, readers, forced)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            queue.put((index, result, peak, time.perf_counter() - began))
            path.unlink()


def fuzz(reader: str, count: int, seed: int, keep: Path | None) -> Counter:
    context = multiprocessing.get_context("fork")
    tally: Counter = Counter()
    index = 0
    while index < count:
        queue = context.Queue()
        process = context.Process(target=worker, args=(reader, seed, index, count, queue))
        process.start()
        while index < count:
            try:
                got, result, peak, seconds = queue.get(timeout=120)
            except Exception:  # noqa: BLE001 - the worker died or hangs
                if not process.is_alive() or process.exitcode is not None:
                    break
                process.kill()
                process.join()
                tally["hang (>120 s)"] += 1
                print(f"  {reader} seed {seed} input {index}: no answer in 120 s", flush=True)
                _keep(keep, reader, seed, index, "hang")
                index += 1
                break
            index = got + 1
            kind = result.split(":")[0]
            tally[kind] += 1
            if peak > GIB:
                tally["over 1 GiB"] += 1
            if seconds > tally["slowest s"]:
                tally["slowest s"], tally["slowest input"] = round(seconds, 2), got
            if kind == "failed":
                print(f"  {reader} seed {seed} input {got}: {result}", flush=True)
                _keep(keep, reader, seed, got, "failed")
        process.join(timeout=5)
        if process.exitcode not in (0, None, -9) and index < count:
            tally["abort"] += 1
            print(f"  {reader} seed {seed} input {index}: worker died with exit code {process.exitcode}", flush=True)
            _keep(keep, reader, seed, index, "abort")
            index += 1
    return tally


def _keep(keep: Path | None, reader: str, seed: int, index: int, why: str) -> None:
    if keep is None:
        return
    from assayrunner.plugins import load

    extensions = load().readers[reader].extensions if reader != "auto" else (".csv", ".txt", ".xlsx")
    data, suffix = make_input(extensions, seed, index)
    keep.mkdir(parents=True, exist_ok=True)
    (keep / f"{why}-{reader}-{seed}-{index}{suffix}").write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-reader", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reader", action="append", help="only these readers ('auto': chosen by sniff)")
    parser.add_argument("--keep", type=Path, help="folder for inputs that failed, to reproduce them")
    args = parser.parse_args()
    from assayrunner.plugins import load

    names = args.reader or [*load().readers, "auto"]
    print(f"{'reader':14} {'inputs':>7} {'plates':>7} {'refused':>8} {'failed':>7} {'abort':>6} {'>1GiB':>6} "
          f"{'slowest s':>10} {'(input)':>8}  wall s", flush=True)
    for name in names:
        began = time.perf_counter()
        tally = fuzz(name, args.per_reader, args.seed, args.keep)
        inputs = sum(tally[k] for k in ("plates", "refused", "failed", "hang (>120 s)")) + tally["abort"]
        print(f"{name:14} {inputs:7} {tally['plates']:7} {tally['refused']:8} {tally['failed']:7} {tally['abort']:6} "
              f"{tally['over 1 GiB']:6} {tally['slowest s']:10} {tally['slowest input']:8}  "
              f"{time.perf_counter() - began:.0f}", flush=True)


if __name__ == "__main__":
    main()
