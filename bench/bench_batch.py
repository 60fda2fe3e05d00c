"""A day's plates at facility speed: the batch end to end, storage, start-up, PDF and the arithmetic floor, all
measured in one run and written to bench/RESULTS.md (every ratio from figures of this run).

    .venv/bin/python bench/bench_batch.py [--plates 1000] [--big 5000] [--jobs N] [--repeat 3] [--baseline REV]
                                          [--out bench/RESULTS.md]

Plates are generated hemolysis exports (the example plate, every absorbance times 1 + N(0, 1 %), seeded).
CPU seconds are user + system of the command and every worker it waited for (os.wait4), so
`plates per CPU-second` counts the parent, the workers and the start-up; wall seconds are shown beside. Each
CLI batch runs --repeat times, interleaved; the least CPU counts (the same work each time, so more CPU is what
other processes on the machine added), and every run's CPU is shown. With --baseline REV the batches without
certificates also run with the code of git revision REV, interleaved with ours, for a ratio that does not depend
on the machine's speed of the moment.
Peak memory is the largest resident set of any one process of the batch. Nothing here asserts: the
goals are printed next to the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assayrunner.workers import GROUP_RUNS

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "hemolysis" / "plate.csv"
ROWS = "ABCDEFGH"
#: ITA-1 layout wells the floor computes (protocols/ncl-ita-1.toml); nominal mg/mL per calibrator pair.
CALIBRATORS = {(0, 2): .8, (0, 4): .4, (0, 6): .2, (0, 8): .1, (0, 10): .05, (1, 0): .025}
SAMPLES = {"NC": ((2, 0), (3, 0)), "PC": ((2, 2), (3, 2)), "S1": ((2, 4), (3, 4)), "S2": ((2, 6), (3, 6)),
           "S3": ((2, 8), (3, 8)), "S4": ((2, 10), (3, 10)), "S5": ((4, 0), (5, 0)), "S6": ((4, 2), (5, 2)),
           "S7": ((4, 4), (5, 4)), "S8": ((4, 6), (5, 6))}


def generate(folder: Path, n: int, seed: int = 14) -> Path:
    """n plate exports like the example, each absorbance scaled by 1 + N(0, 0.01)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = EXAMPLE.read_text().splitlines()
    for i in range(n):
        out = []
        for line in lines:
            cells = line.split(",")
            if len(cells) == 13 and cells[0] in ROWS and len(cells[0]) == 1:
                cells[1:] = [f"{float(c) * (1 + rng.normal(0, 0.01)):.4f}" if c else "" for c in cells[1:]]
            out.append(",".join(cells))
        (folder / f"plate_{i:05d}.csv").write_text("\n".join(out) + "\n")
    return folder


def compile_sources() -> int:
    """Write the bytecode of assayrunner and every installed plugin, as `pip install` does for a package it
    installs. Without it an editable install under PYTHONDONTWRITEBYTECODE (set on some machines and CI runners)
    compiles our sources again in every process, and the start-up figures measure the compiler. Returns the
    number of packages compiled."""
    import compileall
    import importlib.util
    from importlib.metadata import entry_points

    packages = {"assayrunner"} | {ep.module.split(".")[0] for ep in entry_points(group="assayrunner")}
    folders = {Path(p) for name in packages if (spec := importlib.util.find_spec(name)) is not None
               for p in spec.submodule_search_locations or ()}
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)
    return len(folders)


def measured(args: list, cwd: Path, env: dict | None = None) -> dict:
    """Run a command; its exit code, wall and CPU seconds (with the children it waited for), peak RSS."""
    start = time.perf_counter()
    process = subprocess.Popen([str(a) for a in args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    return {"code": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - start,
            "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "stderr": stderr}


def assayrun() -> str:
    return str(Path(sys.executable).with_name("assayrun"))


def batch(folder: Path, work: Path, name: str, *options, env: dict | None = None) -> dict:
    result = measured([assayrun(), "execute", "hemolysis", folder, "--db", work / f"{name}.db",
                       "--out", work / f"{name}-certificates", "--json", *options], work, env)
    if result["code"] != 0:
        raise SystemExit(f"batch {name} exited {result['code']}: {result['stderr'][-500:]}")
    return result


def startup(repeat: int = 21) -> dict:
    """Median CPU seconds of `import typer`, `assayrun --version` and `assayrun --help` (with the built-in
    plugins only, ASSAYRUN_LOAD_PLUGINS='', and with every plugin installed here), interleaved."""
    own = {**os.environ, "ASSAYRUN_LOAD_PLUGINS": ""}
    commands = {"import typer": ([sys.executable, "-c", "import typer"], None),
                "--version": ([assayrun(), "--version"], own), "--help": ([assayrun(), "--help"], own),
                "--help, installed plugins": ([assayrun(), "--help"], None)}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(repeat):
        for name, (command, env) in commands.items():
            times[name].append(measured(command, Path.cwd(), env)["cpu"])
    return {k: statistics.median(v) for k, v in times.items()}


def storage(records: list[dict], work: Path, total: int, window: int = 200) -> dict:
    """CPU seconds per stored run (store.save_run, one transaction each; median): into a new database (its
    first runs) and into one already holding `total` runs, the two interleaved run by run so that the
    machine's load falls on both alike; and the new database's rows through bare sqlite3 executemany."""
    from assayrunner import store

    def save(db, k: int) -> float:
        start = time.process_time()
        with db.atomic():
            store.save_run(db, records[k % len(records)].stored)
        return time.process_time() - start

    warm = store.open_db(work / "warm-up.db")  # first calls (imports, caches) are not storage
    for k in range(20):
        save(warm, k)
    big = store.open_db(work / "storage.db")
    for k in range(total):
        save(big, k)
    small = store.open_db(work / "small.db")
    first, late = [], []
    for k in range(window):
        first.append(save(small, k))
        late.append(save(big, k))
    bare = bare_sqlite(work / "small.db", work / "bare.db", window)
    return {"first": statistics.median(first), "late": statistics.median(late), "bare": bare, "runs": total + window}


TABLES = ("runs", "input_files", "wells", "fits", "checks", "results", "audit_log")


def bare_sqlite(ours: Path, bare: Path, window: int) -> float:
    """CPU seconds per run (median) to insert, with plain sqlite3 executemany and one transaction per run, the
    rows our store wrote for its first `window` runs, into a copy of our schema (indexes and triggers too)."""
    source = sqlite3.connect(ours)
    target = sqlite3.connect(bare, isolation_level=None)
    target.execute("PRAGMA journal_mode=wal")
    for (sql,) in source.execute("select sql from sqlite_master where sql is not null and name not like 'sqlite_%' "
                                 "order by type = 'trigger', type = 'index'"):
        target.execute(sql)
    per_run = []
    for run_id in range(1, window + 1):
        rows = {}
        for table in TABLES:
            key = "id" if table == "runs" else "run_id"
            cursor = source.execute(f"select * from {table} where {key} = ?", [run_id])
            rows[table] = ([d[0] for d in cursor.description], cursor.fetchall())
        start = time.process_time()
        target.execute("BEGIN")
        for table, (columns, values) in rows.items():
            target.executemany(f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                               values)
        target.execute("COMMIT")
        per_run.append(time.process_time() - start)
    return statistics.median(per_run)


def pdf_seconds(work: Path, n: int = 5) -> float:
    """Median seconds (CPU) to render one stored run's certificate as PDF, after one warm-up."""
    from assayrunner import certificate, store

    db = store.open_db(work / "small.db")
    times = []
    for run_id in range(1, n + 2):
        start = time.process_time()
        with db.atomic():
            certificate.issue(db, run_id, work / "pdf", ("pdf",))
        times.append(time.process_time() - start)
    return statistics.median(times[1:])


def floor(folder: Path) -> tuple[float, int]:
    """CPU seconds per plate of the ITA-1 formula in plain numpy over all plates at once (values preloaded)."""
    plates = []
    for path in sorted(folder.glob("*.csv")):
        rows = [line.split(",") for line in path.read_text().splitlines() if line[:2] in {f"{r}," for r in ROWS}]
        plates.append([[float(c) if c else np.nan for c in row[1:13]] for row in rows])
    a = np.array(plates)
    start = time.process_time()
    for _ in range(20):
        percent = hemolysis(a)
    return (time.process_time() - start) / 20 / len(a), len(percent)


def hemolysis(a: np.ndarray) -> np.ndarray:
    """% hemolysis of every sample of every plate (ITA-1: blank, line over calibrators, back-calculation)."""
    blank = a[:, 0, 0:2].mean(axis=1)
    x = np.repeat(list(CALIBRATORS.values()), 2)
    y = np.stack([a[:, r, c + k] for (r, c) in CALIBRATORS for k in (0, 1)], axis=1) - blank[:, None]
    xm, ym = x.mean(), y.mean(axis=1)
    m = ((x - xm) * (y - ym[:, None])).sum(axis=1) / ((x - xm) ** 2).sum()
    b = ym - m * xm
    conc = (a - blank[:, None, None] - b[:, None, None]) / m[:, None, None]
    tbhd = conc[:, 1, 8:10].mean(axis=1) * 40
    out = []
    for (r1, c1), (r2, c2) in SAMPLES.values():
        net = conc[:, r1, c1:c1 + 2].mean(axis=1) * 2 - conc[:, r2, c2:c2 + 2].mean(axis=1) * 2
        out.append(100 * net * 9 / tbhd)
    return np.stack(out, axis=1)


def phases(folder: Path, work: Path, n: int = 200) -> dict[str, float]:
    """CPU seconds per plate of each step, in one process: reading the export (all readers sniff, one
    reads, the plate is checked), the assay's analysis (the plugin's analyze), the record (its rows and
    their digest, made again here to time them), the rest of the compute step (layout, criteria, checks),
    storing the run and its HTML certificate (in groups of GROUP_RUNS runs per transaction, as the batch does)."""
    from dataclasses import replace

    from assayrunner import certificate, engine, integrity, plugins, store
    from assayrunner.reading import read_input

    setup, readers = engine.prepare("hemolysis"), plugins.load().readers
    analysis = [0.0]

    def analyze(assay_input):
        start = time.process_time()
        try:
            return plain(assay_input)
        finally:
            analysis[0] += time.process_time() - start

    plain = setup.assay.analyze
    setup = replace(setup, assay=replace(setup.assay, analyze=analyze))
    db = store.open_db(work / "phases.db")
    paths = sorted(folder.glob("*.csv"))[:n]
    totals = dict.fromkeys(("read", "analysis", "record", "rest of compute", "store", "certificate"), 0.0)
    for first in range(0, len(paths), GROUP_RUNS):
        with store.transaction(db):  # as the batch stores them: a group per transaction, a savepoint per run
            for path in paths[first:first + GROUP_RUNS]:
                t0 = time.process_time()
                read_input(path, readers)
                t1 = time.process_time()
                analysis[0] = 0.0
                record = engine.compute(setup, [path])
                t2 = time.process_time()
                integrity.record_digest(store.run_rows(record))
                t3 = time.process_time()
                with store.transaction(db):
                    run_id = store.save_run(db, record.stored)
                t4 = time.process_time()
                with store.transaction(db):
                    certificate.issue(db, run_id, work / "phases", just_stored=True)
                t5 = time.process_time()
                totals["read"] += t1 - t0
                totals["analysis"] += analysis[0]
                totals["record"] += t3 - t2
                totals["rest of compute"] += (t2 - t1) - (t1 - t0) - analysis[0] - (t3 - t2)
                totals["store"] += t4 - t3
                totals["certificate"] += t5 - t4
            t6 = time.process_time()
        totals["store"] += time.process_time() - t6  # the group's commit
    return {**{k: v / len(paths) for k, v in totals.items()}, "plates": len(paths)}


def command_and_worker(folder: Path, work: Path, n: int = 400) -> dict[str, float]:
    """CPU seconds per plate of a batch's command (this process: handing out files, taking in outcomes) and of its
    one worker (reading, computing, making the record, storing it), from batch.execute run here without
    certificates."""
    import resource

    from assayrunner import batch

    def cpu(who) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    job = batch.Job("hemolysis", None, (), None, None)
    units = [batch.Unit((path,)) for path in sorted(folder.glob("*.csv"))[:n]]
    batch._setup(job)
    command, workers = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    batch.execute(job, units, db=work / "split.db", out=work / "split", templates=None, pdf=False, certificate=False,
                  jobs=1, timeout=120)
    return {"command": (cpu(resource.RUSAGE_SELF) - command) / len(units),
            "worker": (cpu(resource.RUSAGE_CHILDREN) - workers) / len(units), "plates": len(units)}


def records(folder: Path, n: int) -> list[dict]:
    from assayrunner import engine

    setup = engine.prepare("hemolysis")
    return [engine.compute(setup, [path]) for path in sorted(folder.glob("*.csv"))[:n]]


def baseline_env(rev: str, folder: Path) -> dict:
    """The environment that runs the CLI with assayrunner and the built-in plugins as they were at git revision
    `rev` (exported into `folder`, its bytecode written), for the same batches in the same run."""
    repo = HERE.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "assayrunner", "plugins", "protocols",
                              "templates"], check=True, capture_output=True).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    import compileall

    for package in ("assayrunner", "plugins"):
        compileall.compile_dir(folder / package, quiet=1)
    return {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{folder / 'plugins'}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=1000)
    parser.add_argument("--big", type=int, default=5000, help="plates of the memory batch and runs in the database")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each CLI batch (the least disturbed counts)")
    parser.add_argument("--baseline", metavar="REV", help="also run the batches without certificates with the code "
                        "of this git revision, interleaved, and give the CPU ratio (independent of the machine's speed)")
    args = parser.parse_args()
    n, big, jobs = args.plates, args.big, args.jobs
    compile_sources()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plates = generate(work / "plates", n)
        many = generate(work / "many", big, seed=15)
        print(f"generated {n} + {big} plates", file=sys.stderr)
        load = [os.getloadavg()[0]]
        configs = {"no certificate, -j 1": ("--no-certificate", "-j", "1"),
                   f"no certificate, -j {jobs}": ("--no-certificate", "-j", jobs),
                   "HTML certificates, -j 1": ("-j", "1"), f"HTML certificates, -j {jobs}": ("-j", jobs)}
        envs = {name: None for name in configs}
        if args.baseline:
            env = baseline_env(args.baseline, work / "baseline")
            for name in [name for name in configs if name.startswith("no certificate")]:
                configs[f"{name}, {args.baseline}"], envs[f"{name}, {args.baseline}"] = configs[name], env
        tries: dict[str, list[dict]] = {name: [] for name in configs}
        for k in range(args.repeat):  # interleaved, so a slow minute of the machine spreads over every config
            for i, (name, options) in enumerate(configs.items()):
                tries[name].append(batch(plates, work, f"batch{i}-{k}", *options, env=envs[name]))
        runs = {name: least_disturbed(results) for name, results in tries.items()}
        baseline = {name: runs.pop(name) for name in list(runs) if envs[name] is not None}
        print("batches done", file=sys.stderr)
        memory = {n: runs[f"no certificate, -j {jobs}"]["rss_mb"],
                  big: batch(many, work, "e", "--no-certificate", "-j", jobs)["rss_mb"]}
        print("memory done", file=sys.stderr)
        store_figures = storage(records(plates, 50), work, big)
        print("storage done", file=sys.stderr)
        try:
            pdf = pdf_seconds(work)
        except Exception as exc:  # WeasyPrint missing: say so in the results
            pdf = f"not measured ({type(exc).__name__}: {exc})"
        numpy_s, _ = floor(plates)
        steps = phases(plates, work)
        single = batch(sorted(plates.glob("*.csv"))[0], work, "single", "--no-certificate")["cpu"]
        split = command_and_worker(plates, work)
        start = startup()
        load.append(os.getloadavg()[0])
    lines = report(n, big, jobs, runs, memory, store_figures, pdf, numpy_s, start, steps, single, split, load)
    lines += against(runs, baseline, args.baseline) if baseline else []
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def against(runs: dict, baseline: dict, rev: str) -> list[str]:
    """The batches without certificates next to the same batches run with the code of `rev` in this run."""
    lines = ["", f"## Against {rev} (the same batches with that revision's code, interleaved with ours in this run)", "",
             f"| batch | CPU s, ours | CPU s, {rev} | ours / {rev} | CPU s of every run, ours / {rev} |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, theirs in baseline.items():
        mine = name.rsplit(", ", 1)[0]  # the name of our batch: theirs with ", REV" behind it
        ours = runs[mine]
        lines.append(f"| {mine} | {ours['cpu']:.2f} | {theirs['cpu']:.2f} | "
                     f"{ours['cpu'] / theirs['cpu']:.2f} | {' '.join(f'{c:.2f}' for c in ours['cpus'])} / "
                     f"{' '.join(f'{c:.2f}' for c in theirs['cpus'])} |")
    return lines


def least_disturbed(results: list[dict]) -> dict:
    """The run with the least CPU of several runs of one batch, with every run's CPU beside it. The work is the
    same each time; another process on the machine can only add to its CPU time (caches, memory bandwidth,
    clock), so the least is the best estimate of the batch's own cost (as timeit advises)."""
    best = min(results, key=lambda r: r["cpu"])
    return {**best, "cpus": [r["cpu"] for r in results], "rss_mb": max(r["rss_mb"] for r in results)}


def installed_plugins() -> str:
    from importlib.metadata import entry_points

    names = sorted({ep.dist.name for ep in entry_points(group="assayrunner") if ep.dist and ep.dist.name != "assayrunner"})
    return ", ".join(names) or "none"


def report(n, big, jobs, runs, memory, st, pdf, numpy_s, start, steps, single, split, load) -> list[str]:
    rate = {name: n / r["cpu"] for name, r in runs.items()}
    no_cert = max(v for k, v in rate.items() if k.startswith("no certificate"))
    html = max(v for k, v in rate.items() if k.startswith("HTML"))
    ours_per_plate = runs["no certificate, -j 1"]["cpu"] / n
    growth_mem = memory[big] / memory[n] - 1
    growth_insert = st["late"] / st["first"] - 1
    storage_ratio = st["first"] / st["bare"]
    version, help_ = start["--version"] / start["import typer"], start["--help"] / start["import typer"]
    in_steps = sum(v for k, v in steps.items() if k not in ("plates", "certificate"))

    def goal(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        "# Batch benchmark (bench/bench_batch.py)",
        "",
        f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}; {n} generated hemolysis "
        f"plates (and {big} for memory and the database size); all figures from one run on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. CPU = user + system of the command and its workers. "
        f"The machine's load average (1 minute) was {load[0]:.1f} at the start and {load[1]:.1f} at the end: other "
        "work on the same cores or host makes every CPU figure larger than on a quiet machine. The bytecode of "
        "assayrunner and its plugins is written before the runs, as `pip install` does (compile_sources).",
        "",
        f"Each batch ran {len(next(iter(runs.values()))['cpus'])} times, interleaved with the others; the table shows "
        "the run with the least CPU (the same work each time: the least is the least disturbed) and every run's CPU.",
        "",
        "| batch through the CLI | wall s | CPU s | plates per CPU-second | plates per wall-second | peak RSS MB "
        "| CPU s of every run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *(f"| {name} | {r['wall']:.1f} | {r['cpu']:.2f} | {n / r['cpu']:.0f} | {n / r['wall']:.0f} | {r['rss_mb']:.0f} "
          f"| {' / '.join(f'{c:.2f}' for c in r['cpus'])} |" for name, r in runs.items()),
        "",
        "| figure | value | goal | |",
        "| --- | ---: | --- | --- |",
        f"| plates per CPU-second, no certificate (best of -j 1 / -j {jobs}) | {no_cert:.0f} | >= 300 | {goal(no_cert >= 300)} |",
        f"| plates per CPU-second, HTML certificates (best of -j 1 / -j {jobs}) | {html:.0f} | >= 100 | {goal(html >= 100)} |",
        f"| peak memory, {n} plates / {big} plates (MB) | {memory[n]:.0f} / {memory[big]:.0f} ({growth_mem:+.1%}) "
        f"| flat (within 10 %) | {goal(abs(growth_mem) <= 0.10)} |",
        f"| insert, ms per run (median): into a new database / into one with {big} runs | {st['first'] * 1e3:.2f} / {st['late'] * 1e3:.2f} "
        f"({growth_insert:+.1%}) | flat | {goal(growth_insert <= 0.10)} |",
        f"| storage: our save_run / bare sqlite3 executemany, same rows (ms per run, median) | {st['first'] * 1e3:.2f} / "
        f"{st['bare'] * 1e3:.2f} = {storage_ratio:.1f}x | within 3x | {goal(storage_ratio <= 3)} |",
        f"| start-up CPU ms: import typer / --version / --help (built-in plugins) | {start['import typer'] * 1e3:.0f}"
        f" / {start['--version'] * 1e3:.0f} / {start['--help'] * 1e3:.0f} ({version:.2f}x, {help_:.2f}x) "
        f"| within 1.5x | {goal(max(version, help_) <= 1.5)} |",
        f"| --help with the third-party plugins installed here ({installed_plugins()}), CPU ms "
        f"| {start['--help, installed plugins'] * 1e3:.0f} ({start['--help, installed plugins'] / start['import typer']:.2f}x) "
        "| (each plugin's import) | |",
        f"| PDF certificate, CPU s each | {pdf if isinstance(pdf, str) else f'{pdf:.2f}'} | | |",
        f"| arithmetic floor: ITA-1 formula in plain numpy, CPU µs per plate | {numpy_s * 1e6:.1f} "
        f"(ours end to end: {ours_per_plate * 1e3:.1f} ms, {ours_per_plate / numpy_s:.0f}x) | | |",
        "",
        "The floor computes only the arithmetic, vectorised over all plates with the values already in memory;",
        "ours reads and checks each export, maps the layout, judges the acceptance criteria, computes the digest",
        f"and stores every well, result and audit row (a batch commits up to {GROUP_RUNS} runs per transaction).",
        "",
        f"Where a plate's CPU goes (one process, {steps['plates']} plates, ms per plate, stored {GROUP_RUNS} runs per "
        "transaction as the batch does):",
        "",
        "| " + " | ".join(k for k in steps if k != "plates") + " |",
        "| " + " | ".join("---:" for k in steps if k != "plates") + " |",
        "| " + " | ".join(f"{v * 1e3:.2f}" for k, v in steps.items() if k != "plates") + " |",
        "",
        f"A one-plate command (start-up, imports, plugins, one run) costs {single * 1e3:.0f} ms of CPU, "
        f"{single / n * 1e3:.2f} ms a plate when spread over {n} plates. The batch without certificates, run in "
        f"this process over {split['plates']} plates with one worker, spends {split['worker'] * 1e3:.2f} ms a plate "
        f"in the worker (read, compute, record, store) and {split['command'] * 1e3:.2f} ms in the command (handing "
        f"out files, taking in outcomes); the steps above add up to {in_steps * 1e3:.2f} ms.",
        "",
        *remaining(steps, no_cert, html),
    ]
    return lines


def remaining(steps: dict, no_cert: float, html: float) -> list[str]:
    """What the missed goals would take, from this run's figures, and what each step is."""
    ms = {k: v * 1e3 for k, v in steps.items() if k != "plates"}
    plugin_side = ms["read"] + ms["analysis"]
    return [
        "What the goals would take: 300 plates per CPU-second is 3.33 ms a plate, all in; this run spends "
        f"{1e3 / no_cert:.2f} ms. Reading the export and the assay's analysis alone take {plugin_side:.2f} ms; the "
        f"core's own part (record, the rest of compute, store) takes {ms['record'] + ms['rest of compute'] + ms['store']:.2f} ms. "
        f"100 plates per CPU-second with certificates is 10 ms a plate; this run spends {1e3 / html:.2f} ms, "
        f"of which the certificate {ms['certificate']:.2f} ms.",
        "",
        "- read: the file read within the limits, every installed reader's sniff, the chosen reader's parse and "
        "the plate checks (readers/, tables.py: Python over every cell).",
        "- analysis: the assay plugin's analyze (for hemolysis, numpy on arrays of 2 to 12 values, where numpy's "
        "per-call cost is most of the work).",
        "- record: the rows the run is stored as (JSON of parameters, metrics and details; a row per well, result "
        "and check) and the SHA-256 digest over every row in canonical JSON, made once per run in the worker.",
        "- rest of compute: the layout checks, criteria, result contract checks and sample descriptions.",
        "- store: multi-row INSERTs per table, the chained audit row, a savepoint per run, the group's commit.",
        "- certificate: the stored record read back, the Jinja render (plate map, plot, the plugin's block), the "
        "file written and fsync'd before the commit, its row and audit row.",
    ]


if __name__ == "__main__":
    main()
