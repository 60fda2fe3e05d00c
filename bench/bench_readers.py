"""Reading speed: our readers against allotropy on every corpus file, and the import time of each.

    .venv/bin/python bench/bench_readers.py [--corpus DIR] [--repeat N]

Per file: our reader (the registered one with the highest sniff score, allotropy excluded) and
allotropy with the matching Vendor enum (allotrope_from_file: parse, map, serialise and validate
the ASM; and allotrope_model_from_file: parse and map only). Each is the median of timed runs after
one untimed warm-up, so lazy imports (python-calamine, allotropy's parsers) are not in the per-file figures;
the import times are measured separately, each in fresh interpreters. Prints tables; asserts nothing.
Goal: ours at least 50x faster per file.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from assayrunner.plugins import load
from assayrunner.reading import HEAD_BYTES

CORPUS = Path("/work/shared/data/plate-exports")
GOAL = 50.0
#: allotropy Vendor per corpus folder (PerkinElmer/Revvity by file name).
VENDORS = {"agilent-gen5": "AGILENT_GEN5", "moldev-softmaxpro": "MOLDEV_SOFTMAX_PRO", "bmg-labtech": "BMG_MARS",
           "tecan": "TECAN_MAGELLAN", "thermo-skanit": "THERMO_SKANIT"}
IMPORTS = {
    "assayrunner readers (all built-in reader modules)":
        "from assayrunner.readers import BUILTIN_READERS\n"
        "import importlib\n"
        "for m in BUILTIN_READERS: importlib.import_module(m)",
    "python-calamine (imported by our xlsx readers on first use)": "import python_calamine",
    "allotropy (to_allotrope + parser_factory)":
        "from allotropy.to_allotrope import allotrope_from_file\nfrom allotropy.parser_factory import Vendor",
}


def allotropy_vendor(path: Path) -> str | None:
    if path.parent.name == "perkinelmer-revvity":
        return "REVVITY_KALEIDO" if "kaleido" in path.name.lower() else "PERKIN_ELMER_ENVISION"
    return VENDORS.get(path.parent.name)


def median_time(call, repeat: int, budget_s: float = 0.3) -> float:
    """Median seconds of at least `repeat` calls (more, up to 200, while under budget_s), after a warm-up."""
    call()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < budget_s and len(times) < 200):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def import_time(code: str, runs: int) -> float | None:
    """Median seconds the code takes in a fresh interpreter (interpreter start-up excluded)."""
    timed = f"import time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    results = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-W", "ignore", "-c", timed], capture_output=True, text=True)
        if done.returncode != 0:
            return None
        results.append(float(done.stdout.split()[-1]))
    return statistics.median(results)


def our_reader(path: Path, readers: dict):
    head = path.read_bytes()[:HEAD_BYTES]
    scores = {name: r.sniff(head, path) for name, r in readers.items() if name != "allotropy"}
    best = max(scores, key=scores.get)
    return readers[best] if scores[best] > 0 else None


def bench_file(path: Path, readers: dict, repeat: int, allotropy) -> dict:
    row: dict = {"file": f"{path.parent.name}/{path.name}"}
    reader = our_reader(path, readers)
    if reader is None:
        row["ours"] = "no reader"
    else:
        try:
            plates = reader.read(path)
            row["reader"] = reader.name
            row["shape"] = f"{len(plates)}p/{sum(len(p.reads) for p in plates)}r"
            row["ours_s"] = median_time(lambda: reader.read(path), repeat)
        except Exception as exc:  # a bench reports, it does not stop
            row["ours"] = f"{type(exc).__name__}"
    vendor = allotropy_vendor(path)
    if allotropy is None or vendor is None:
        row["allotropy"] = "not installed" if allotropy is None else "no vendor"
        return row
    from_file, model_from_file, Vendor = allotropy
    row["vendor"] = vendor
    try:
        from_file(str(path), Vendor[vendor])
    except Exception as exc:
        row["allotropy"] = f"unsupported ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"
        return row
    row["allo_s"] = median_time(lambda: from_file(str(path), Vendor[vendor]), max(3, repeat // 2), budget_s=0)
    row["model_s"] = median_time(lambda: model_from_file(str(path), Vendor[vendor]), max(3, repeat // 2), budget_s=0)
    return row


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per file and side (at least)")
    parser.add_argument("--import-runs", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    try:
        from allotropy.parser_factory import Vendor
        from allotropy.to_allotrope import allotrope_from_file, allotrope_model_from_file
        allotropy = (allotrope_from_file, allotrope_model_from_file, Vendor)
        from allotropy.__about__ import __version__ as allotropy_version
    except ImportError:
        allotropy, allotropy_version = None, "not installed"
    readers = load().readers
    files = sorted(p for p in args.corpus.glob("*/*") if p.is_file())
    print(f"readers: {', '.join(sorted(readers))}; allotropy {allotropy_version}; python {sys.version.split()[0]}")
    print(f"{len(files)} files in {args.corpus}; median of >= {args.repeat} runs (ours), "
          f">= {max(3, args.repeat // 2)} runs (allotropy), after a warm-up\n")
    header = (f"{'file':62s} {'reader':11s} {'plates':7s} {'ours ms':>9s} {'allotropy':>9s} {'ratio':>7s}"
              f" {'no-valid.':>9s} {'ratio':>7s}  note")
    print(header)
    print("-" * len(header))
    ratios, model_ratios = [], []
    for path in files:
        row = bench_file(path, readers, args.repeat, allotropy)
        ours, allo, model = row.get("ours_s"), row.get("allo_s"), row.get("model_s")
        ratio = allo / ours if ours and allo else None
        model_ratio = model / ours if ours and model else None
        if ratio:
            ratios.append(ratio)
            model_ratios.append(model_ratio)
        note = row.get("ours", "") or row.get("allotropy", "")
        if row.get("ours") and row.get("allotropy"):
            note = f"{row['ours']}; {row['allotropy']}"
        print(f"{row['file'][:62]:62s} {row.get('reader', '-'):11s} {row.get('shape', '-'):7s} {ms(ours)} {ms(allo)}"
              f" {'' if ratio is None else f'{ratio:6.0f}x':>7s} {ms(model)}"
              f" {'' if model_ratio is None else f'{model_ratio:6.0f}x':>7s}  {note}")
    if ratios:
        met = sum(r >= GOAL for r in ratios)
        print(f"\nfiles both sides read: {len(ratios)}; ratio (allotropy / ours) median {statistics.median(ratios):.0f}x,"
              f" min {min(ratios):.0f}x, max {max(ratios):.0f}x; >= {GOAL:.0f}x on {met} of {len(ratios)}")
        print(f"against allotropy without ASM serialisation/validation: median {statistics.median(model_ratios):.0f}x,"
              f" min {min(model_ratios):.0f}x; >= {GOAL:.0f}x on {sum(r >= GOAL for r in model_ratios)}"
              f" of {len(model_ratios)}")
    print(f"\nimport time, fresh interpreter, median of {args.import_runs}:")
    for name, code in IMPORTS.items():
        seconds = import_time(code, args.import_runs)
        print(f"  {name:55s} {'not importable' if seconds is None else f'{seconds * 1000:8.1f} ms'}")


if __name__ == "__main__":
    main()
