"""Reading speed: our readers against allotropy on every corpus file, measured in the same run.

    .venv/bin/python bench/bench_readers.py [--corpus DIR] [--repeat N] [--markdown FILE]

Per file, ours is the whole `read_input` a user's command runs (read the bytes, decode, sniff every
reader, read, check the plates), with the allotropy fallback left out of the candidates; allotropy
is `allotrope_from_file` with the first plate-reader Vendor that converts the file (parse, map,
serialise and validate the ASM) and, beside it, `allotrope_model_from_file` (parse and map only).
Each figure is the median of timed runs after one untimed warm-up, so lazy imports (python-calamine,
allotropy's parsers) are not in the per-file figures; import times are measured separately in fresh
interpreters. Prints a table (and writes it as Markdown with --markdown); asserts nothing.
Goal: ours at least 50x faster than allotropy per file, median and worst.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from assayrunner.plugins import load
from assayrunner.reading import read_input

HERE = Path(__file__).resolve().parent
CORPUS = next((p for p in (HERE.parent.parent / "shared" / "data" / "plate-exports",
                           HERE.parent / "tests" / "data" / "plate-exports") if p.is_dir()), None)
GOAL = 50.0
#: allotropy Vendors tried first for a corpus folder; any other plate-reader Vendor for the extension after.
VENDORS = {"agilent-gen5": ["AGILENT_GEN5"], "moldev-softmaxpro": ["MOLDEV_SOFTMAX_PRO"], "bmg-labtech": ["BMG_MARS"],
           "tecan": ["TECAN_MAGELLAN"], "thermo-skanit": ["THERMO_SKANIT"],
           "perkinelmer-revvity": ["PERKIN_ELMER_ENVISION", "REVVITY_KALEIDO"]}
IMPORTS = {
    "assayrunner readers (all built-in reader modules)":
        "from assayrunner.readers import BUILTIN_READERS\n"
        "import importlib\n"
        "for m in BUILTIN_READERS: importlib.import_module(m)",
    "python-calamine (imported by the first workbook read)": "import python_calamine",
    "allotropy (to_allotrope + parser_factory)":
        "from allotropy.to_allotrope import allotrope_from_file\nfrom allotropy.parser_factory import Vendor",
}


def median_time(call, repeat: int, budget_s: float = 0.3) -> float:
    """Median seconds of at least `repeat` calls (more, up to 200, while under budget_s), after a warm-up.

    As timeit does, the garbage collector is paused while timing (after a collection), for both sides
    alike: otherwise one side pays for collecting the other's objects, which the same process holds.
    """
    call()
    gc.collect()
    gc.disable()
    try:
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < repeat or (time.perf_counter() - start < budget_s and len(times) < 200):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
    finally:
        gc.enable()
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


def allotropy_vendor(path: Path, allotropy) -> str | None:
    """The first plate-reader Vendor allotropy converts this file with, or None."""
    from_file, _, vendor_enum = allotropy
    extension = path.suffix.lower().lstrip(".")
    names = list(VENDORS.get(path.parent.name, []))
    for vendor in vendor_enum:
        try:
            if vendor.technique == "Plate Reader" and extension in vendor.supported_extensions \
                    and vendor.name not in names and not vendor.name.startswith("EXAMPLE"):
                names.append(vendor.name)
        except Exception:  # a Vendor allotropy cannot describe is no candidate
            continue
    for name in names:
        try:
            from_file(str(path), vendor_enum[name])
            return name
        except Exception:  # allotropy raises many kinds of errors for a file it cannot convert
            continue
    return None


def bench_file(path: Path, readers: dict, repeat: int, allotropy) -> dict:
    row: dict = {"file": f"{path.parent.name}/{path.name}"}
    try:
        result = read_input(path, readers)
        row["reader"] = result.format
        row["shape"] = f"{len(result.plates)}p/{sum(len(p.reads) for p in result.plates)}r"
        row["ours_s"] = median_time(lambda: read_input(path, readers), repeat)
    except Exception as exc:  # a bench reports, it does not stop
        row["note"] = f"ours: {type(exc).__name__}: {str(exc)[-80:]}"
    if allotropy is None:
        return row
    vendor = allotropy_vendor(path, allotropy)
    if vendor is None:
        row["note"] = (row.get("note", "") + " allotropy: cannot convert").strip()
        return row
    from_file, model_from_file, vendor_enum = allotropy
    row["vendor"] = vendor
    row["allo_s"] = median_time(lambda: from_file(str(path), vendor_enum[vendor]), max(3, repeat // 2), budget_s=0)
    row["model_s"] = median_time(lambda: model_from_file(str(path), vendor_enum[vendor]), max(3, repeat // 2),
                                 budget_s=0)
    return row


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per file and side (at least)")
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    try:
        from allotropy.__about__ import __version__ as allotropy_version
        from allotropy.parser_factory import Vendor
        from allotropy.to_allotrope import allotrope_from_file, allotrope_model_from_file
        allotropy = (allotrope_from_file, allotrope_model_from_file, Vendor)
    except ImportError:
        allotropy, allotropy_version = None, "not installed"
    readers = {name: r for name, r in load().readers.items() if name != "allotropy"}
    files = sorted(p for p in args.corpus.glob("*/*") if p.is_file() and p.parent.name != "expected")
    lines = [f"readers: {', '.join(sorted(readers))}; allotropy {allotropy_version}; python {sys.version.split()[0]}",
             f"{len(files)} files in {args.corpus}; median of >= {args.repeat} runs (ours), "
             f">= {max(3, args.repeat // 2)} runs (allotropy), after a warm-up", "",
             "| file | reader | plates/reads | ours ms | allotropy ms | ratio | allotropy no-validation ms | ratio | note |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    print("\n".join(lines), flush=True)
    ratios, model_ratios, ours_all = [], [], []
    for path in files:
        row = bench_file(path, readers, args.repeat, allotropy)
        ours, allo, model = row.get("ours_s"), row.get("allo_s"), row.get("model_s")
        if ours:
            ours_all.append(ours)
        ratio = allo / ours if ours and allo else None
        model_ratio = model / ours if ours and model else None
        if ratio:
            ratios.append(ratio)
            model_ratios.append(model_ratio)
        line = (f"| {row['file']} | {row.get('reader', '-')} | {row.get('shape', '-')} | {ms(ours)} | {ms(allo)} | "
                f"{'' if ratio is None else f'{ratio:.0f}x'} | {ms(model)} | "
                f"{'' if model_ratio is None else f'{model_ratio:.0f}x'} | {row.get('note', '')} |")
        lines.append(line)
        print(line, flush=True)
    summary = [""]
    if ours_all:
        summary.append(f"ours on all {len(ours_all)} files read: median {statistics.median(ours_all) * 1000:.2f} ms, "
                       f"worst {max(ours_all) * 1000:.2f} ms")
    if ratios:
        summary.append(f"files both read: {len(ratios)}; allotropy / ours: median {statistics.median(ratios):.0f}x, "
                       f"worst {min(ratios):.0f}x, best {max(ratios):.0f}x; >= {GOAL:.0f}x on "
                       f"{sum(r >= GOAL for r in ratios)} of {len(ratios)}")
        summary.append(f"against allotropy without ASM serialisation/validation: median "
                       f"{statistics.median(model_ratios):.0f}x, worst {min(model_ratios):.0f}x")
    summary += ["", f"import time, fresh interpreter, median of {args.import_runs}:"]
    for name, code in IMPORTS.items():
        seconds = import_time(code, args.import_runs)
        summary.append(f"- {name}: {'not importable' if seconds is None else f'{seconds * 1000:.1f} ms'}")
    print("\n".join(summary))
    if args.markdown:
        args.markdown.write_text("\n".join(lines + summary) + "\n")


if __name__ == "__main__":
    main()
