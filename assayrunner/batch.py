"""Batch execution: one run per plate file (or per group of files a protocol takes for one run), computed in
worker processes, each of which stores and certifies the runs it computed. Every file gets an outcome; a
failure stops no other.

A run sheet is a CSV (comma, semicolon or tab) with a header: `file` (required; relative to the sheet's
folder), and optionally `samples`, `operator` and `run`. Rows with the same `run` value are one run whose
files are grouped in row order; without a `run` column every row is a run. For a plate-series protocol
`concentration` (one per plate of the file: several separated by spaces, `|` or `;`), `unit` and
`replicate` (the replicate plate set) say what each file's plates hold.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import engine, store
from .errors import PluginError, UserError
from .plugins import format_traceback
from .registry import PlateDose
from .workers import Failure, Pool

#: Characters that make a FILES argument a pattern to expand (when no file has that name).
GLOB_CHARS = "*?["


@dataclass(frozen=True, slots=True)
class Unit:
    """The files of one run and what the run sheet says about it."""

    files: tuple[Path, ...]
    samples: Path | None = None
    operator: str | None = None
    doses: tuple[PlateDose, ...] = ()  # per file, from a run sheet's concentration, unit and replicate columns


@dataclass(frozen=True)
class Job:
    """What every worker needs to compute any unit of the batch (picklable)."""

    assay: str
    protocol: str | None
    params: tuple[str, ...]
    format: str | None
    plate: str | None
    layout_from_export: bool = False


@dataclass(slots=True)
class Entry:
    """The outcome of one unit: valid, invalid (stored, a criterion failed) or failed (nothing stored)."""

    files: tuple[Path, ...]
    status: str = "failed"
    run_id: int | None = None
    error: str | None = None
    exit_code: int = 3
    certificate: dict | None = None
    failed_checks: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"file": str(self.files[0]), "files": [str(f) for f in self.files], "status": self.status,
                "run_id": self.run_id, "valid": None if self.run_id is None else self.status == "valid",
                "exit_code": self.exit_code, "error": self.error, "failed_checks": list(self.failed_checks),
                "certificate": self.certificate}


def is_batch(files: Sequence[Path], groups: Sequence[str], sheet: Path | None, samples: Path | None = None) -> bool:
    """Anything but a single plain file (several files, a folder, a pattern, --group, --sheet or a run sheet
    as --samples) is a batch."""
    if groups or sheet is not None or len(files) != 1 or (samples is not None and is_run_sheet(samples)):
        return True
    only = Path(files[0])
    return only.is_dir() or (not only.exists() and any(ch in str(only) for ch in GLOB_CHARS))


def plan(files: Sequence[Path], groups: Sequence[str], sheet: Path | None, *, samples: Path | None,
         operator: str | None, skip: Sequence[Path] = ()) -> list[Unit]:
    """The runs of a batch, in order: each FILES argument expanded (folder, pattern), each --group, each
    run of the run sheet. `skip`: files a folder or a pattern must not contribute (the samples file, the sheet).

    `samples` may itself be a run sheet (a `file` column, no `slot`): alone it lists the runs; beside
    FILES or --group it gives each plate file its samples file (and operator) by the file's path."""
    skipped = {Path(p).resolve() for p in skip if p}
    mapping, by_file = None, {}
    if samples is not None and is_run_sheet(samples):
        if not files and not groups and sheet is None:
            sheet, samples = samples, None
        else:
            mapping, samples = samples, None
            by_file = {f.resolve(): unit for unit in read_sheet(mapping, None, operator) for f in unit.files}
            skipped |= {unit.samples.resolve() for unit in by_file.values() if unit.samples}
    units = [Unit((path,), samples, operator) for arg in files for path in _expand(Path(arg), skipped)]
    units += [Unit(_group(text), samples, operator) for text in groups]
    if mapping is not None:
        units = [_with_samples(unit, by_file, mapping) for unit in units]
    if sheet is not None:
        units += read_sheet(sheet, samples, operator)
    if not units:
        raise UserError("no plate files to run: give files, a folder, a pattern, --group or --sheet")
    return units


def own_files(db: Path) -> tuple[Path, ...]:
    """Files of ours a folder of exports may hold, which are never plates: the database with the files SQLite
    keeps beside it, and the lab settings (assayrun.toml), when the batch runs in the folder it reads."""
    from .config import config_paths

    return (db, *(db.with_name(db.name + end) for end in ("-wal", "-shm", "-journal")), *config_paths())


def is_run_sheet(path: Path) -> bool:
    """A CSV whose header has a `file` column and no `slot` column (a samples file has `slot`)."""
    try:
        head = path.read_text(encoding="utf-8-sig", errors="replace").lstrip().split("\n", 1)[0]
    except OSError:
        return False
    names = {c.strip().lower() for c in head.replace(";", ",").replace("\t", ",").split(",")}
    return "file" in names and "slot" not in names


def _with_samples(unit: Unit, by_file: dict[Path, Unit], sheet: Path) -> Unit:
    row = by_file.get(unit.files[0].resolve())
    if row is None:
        raise UserError(f"no row for plate file {unit.files[0]}; add one (file, samples) or leave the file out",
                        file=sheet)
    return Unit(unit.files, row.samples, row.operator, row.doses)


#: The start of the owner file Microsoft Office keeps beside a workbook while it is open (`~$plate.xlsx`; hidden on
#: Windows, not on a share mounted elsewhere): never an export, so no folder or pattern contributes one (nor a
#: folder its hidden files; a pattern, as glob has it, only when it asks for them). A file named is always run.
OFFICE_OWNER = "~$"


def _expand(arg: Path, skipped: set[Path]) -> list[Path]:
    if arg.is_dir():
        found = _contributed(sorted(arg.iterdir()), (".", OFFICE_OWNER), skipped)
        if not found:
            raise UserError("the folder holds no files", file=arg)
        return found
    if not arg.exists() and any(ch in str(arg) for ch in GLOB_CHARS):
        found = _contributed(map(Path, sorted(glob.glob(str(arg), recursive=True))), OFFICE_OWNER, skipped)
        if not found:
            raise UserError("the pattern matches no file", file=arg)
        return found
    return [arg]  # a file that is missing fails its own run, not the batch


def _contributed(paths, left_out: str | tuple[str, ...], skipped: set[Path]) -> list[Path]:
    """The regular files among `paths` whose names do not start with `left_out` and that are not `skipped` (each
    path resolved only if some files are to be skipped)."""
    return [p for p in paths if p.is_file() and not p.name.startswith(left_out)
            and not (skipped and p.resolve() in skipped)]


def _group(text: str) -> tuple[Path, ...]:
    files = tuple(Path(p.strip()) for p in text.split(",") if p.strip())
    if not files:
        raise UserError(f"--group {text!r} names no file; give the files of one run separated by commas")
    return files


def read_sheet(path: Path, samples: Path | None, operator: str | None) -> list[Unit]:
    """The runs a run sheet lists; UserError naming the line for a missing column or cell."""
    from .source import load

    if not path.is_file():
        raise UserError("run sheet not found", file=path)
    source = load(path)
    if source.kind not in ("text", "empty"):
        raise UserError(f"a run sheet is a CSV table, not a {source.kind} file", file=path)
    numbered = [(n, line) for n, line in enumerate(source.lines if source.kind == "text" else [], start=1)
                if line.strip()]
    if not numbered:
        raise UserError("the run sheet is empty; give a header (file, samples, operator, run) and a row per file",
                        file=path)
    delimiter = max((",", ";", "\t"), key=numbered[0][1].count)
    rows = [(n, next(csv.reader([line], delimiter=delimiter))) for n, line in numbered]
    header = [h.strip().lower() for h in rows[0][1]]
    if "file" not in header:
        raise UserError("the header needs a column 'file' (columns: file, samples, operator, run)", file=path,
                        where=f"line {rows[0][0]}")
    runs: dict[str, dict] = {}
    for n, row in rows[1:]:
        cells = dict(zip(header, (c.strip() for c in row)))
        if not cells.get("file"):
            raise UserError("the row names no file", file=path, where=f"line {n}")
        key = cells.get("run") or f"line {n}"
        run = runs.setdefault(key, {"files": [], "samples": None, "operator": None, "doses": []})
        run["files"].append(path.parent / cells["file"])
        run["doses"].append(_dose(cells, path, n))
        _check_row(run, key, path, n)
        for column in ("samples", "operator"):
            value = cells.get(column) or None
            if value and run[column] not in (None, value):
                raise UserError(f"run {key!r} has two {column} values ({run[column]!r} on an earlier line); "
                                "give one per run", file=path, where=f"line {n}")
            run[column] = run[column] or value
    return [Unit(tuple(r["files"]), path.parent / r["samples"] if r["samples"] else samples,
                 r["operator"] or operator, tuple(r["doses"]) if any(r["doses"]) else ()) for r in runs.values()]


def _check_row(run: dict, key: str, sheet: Path, line: int) -> None:
    """A row that contradicts the earlier rows of its run: a file twice, concentrations on some rows only, two
    units, or a concentration given twice in one replicate set (each would silently misplace a plate)."""
    *earlier, this = run["doses"]
    where = f"line {line}"
    if run["files"][-1] in run["files"][:-1]:
        raise UserError(f"file {run['files'][-1].name} is already in run {key!r}; list each file once per run",
                        file=sheet, where=where)
    if earlier and any(bool(d and d.concentrations) != bool(this and this.concentrations) for d in earlier):
        raise UserError(f"run {key!r} gives concentrations on some rows only; give every plate file of the run "
                        "its concentration(s), or none (the protocol's dilution steps)", file=sheet, where=where)
    if not this:
        return
    units = {d.unit for d in earlier if d and d.unit}
    if this.unit and units and this.unit not in units:
        raise UserError(f"unit {this.unit!r} differs from {units.pop()!r} on an earlier line of run {key!r}; "
                        "give one unit per run (convert the concentrations)", file=sheet, where=where)
    same_set = [c for d in earlier if d and d.replicate == this.replicate for c in d.concentrations]
    for c in this.concentrations:
        if c in same_set or this.concentrations.count(c) > 1:
            raise UserError(f"concentration {c:g} is given twice in replicate set {this.replicate or '(none)'} of "
                            f"run {key!r}; a replicate set has one plate per concentration (a replicate plate "
                            "goes in its own set: column replicate)", file=sheet, where=where)


def _dose(cells: dict[str, str], sheet: Path, line: int) -> PlateDose | None:
    """A row's concentration(s), unit and replicate set (None when it gives none of them)."""
    text, unit, replicate = (cells.get(k) or None for k in ("concentration", "unit", "replicate"))
    if not (text or unit or replicate):
        return None
    values = []
    for part in re.split(r"[;\s|]+", text or ""):
        try:
            value = float(part.replace(",", ".")) if part else None
        except ValueError:
            value = None
        if part and not (value is not None and math.isfinite(value) and value > 0):
            raise UserError(f"concentration {part!r} is not a positive number", file=sheet, where=f"line {line}")
        values += [value] if part else []
    return PlateDose(tuple(values), unit, replicate)


def check_units(units: list[Unit], files_per_run: int, protocol_id: str, plate_series: bool = False) -> None:
    """Every run has the number of files its protocol takes (a plate series any): a usage error before anything
    runs."""
    for unit in units:
        if unit.doses and not plate_series:
            raise UserError(f"the run sheet gives concentrations (or replicate sets) but protocol {protocol_id} reads "
                            "its series from the layout, not across plates; leave those columns out or use a "
                            "protocol with plate_series = true", file=unit.files[0])
        if len(unit.files) != files_per_run and not plate_series:
            names = ", ".join(f.name for f in unit.files)
            how = ("give each file as its own run" if files_per_run == 1 else
                   f"group {files_per_run} files per run with --group A,B or a run sheet's `run` column")
            raise UserError(f"protocol {protocol_id} takes {files_per_run} file(s) per run, not {len(unit.files)} "
                            f"({names}); {how}", file=unit.files[0])


@cache
def _setup(job: Job) -> engine.Setup:
    """The batch's setup, once per process (a forked worker inherits the parent's)."""
    return engine.prepare(job.assay, job.protocol, job.params, job.layout_from_export)


def compute(task: tuple[Job, Unit]) -> store.StoredRun | Failure:
    """A worker's step: the rows and digest of one unit's run (all the parent stores), or why there is none."""
    job, unit = task
    try:
        record = engine.compute(_setup(job), unit.files, samples=unit.samples, operator=unit.operator,
                                format=job.format, plate=job.plate,
                                doses=[d or PlateDose() for d in unit.doses])
    except (UserError, PluginError) as exc:
        return Failure(exc.exit_code, str(exc))
    except Exception as exc:
        return Failure(3, f"internal error: {format_traceback(exc)}")
    return record.stored


def execute(job: Job, units: list[Unit], *, db: Path, out: Path, templates: Path | None, pdf: bool,
            certificate: bool, jobs: int, timeout: float,
            on_entry: Callable[[Entry], None] = lambda entry: None) -> tuple[list[Entry], float]:
    """Compute and store every unit in worker processes (each stores and certifies its own runs); entries in
    unit order, each given to on_entry once it is final (stored, or failed)."""
    setup = _setup(job)  # usage errors (assay, protocol, parameters) stop the batch before it starts
    check_units(units, setup.protocol.files, setup.protocol.id, setup.protocol.plate_series)
    if certificate:
        from .certificate import check_destination

        check_destination(out, templates)
    store.open_db(db).close()  # created and migrated before the workers start: a bad path stops the batch here
    entries = [Entry(unit.files) for unit in units]
    started = time.perf_counter()
    runs = RunStore(db, setup.protocol.sha256, str(setup.protocol.path), out, templates, pdf, certificate)
    pool = Pool(compute, [(job, unit) for unit in units], jobs, timeout, store=runs)
    try:
        for index, reply in pool.replies():
            _report(entries[index], reply)
            on_entry(entries[index])
    except KeyboardInterrupt:  # a second Ctrl-C: the workers were killed
        pool.interrupted = True
    if pool.interrupted:  # the runs stored so far stay stored; the rest are reported, not lost
        for entry in entries:
            if entry.status == "failed" and entry.error is None:
                entry.exit_code = 1
                entry.error = _naming(entry.files, "interrupted (Ctrl-C) before this run was stored")
    return entries, time.perf_counter() - started


def _report(entry: Entry, reply: Stored | Failure) -> None:
    if isinstance(reply, Failure):
        entry.exit_code, entry.error = reply.exit_code, _naming(entry.files, reply.message)
        return
    entry.run_id, entry.exit_code = reply.run_id, 0 if reply.valid else 1
    entry.status = "valid" if reply.valid else "invalid"
    entry.failed_checks, entry.certificate = reply.failed_checks, reply.certificate


@dataclass(frozen=True, slots=True)
class Stored:
    """A run a worker stored, as its entry reports it."""

    run_id: int
    valid: bool
    failed_checks: tuple[str, ...]
    certificate: dict | None


class RunStore:
    """How a batch's workers store their runs (a workers.Store): each group in one transaction, each run in a
    savepoint of it (stored whole or not at all) with its certificate, written and fsync'd before the commit.
    Each worker opens the database once, at its first group."""

    def __init__(self, db: Path, protocol_sha256: str, protocol_path: str, out: Path, templates: Path | None,
                 pdf: bool, certificate: bool):
        self.db, self.protocol_sha256, self.protocol_path = db, protocol_sha256, protocol_path
        self.out, self.templates, self.pdf, self.certificate = out, templates, pdf, certificate
        self.database = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "database": None}  # a spawned worker opens its own

    def save(self, group: list[tuple[int, store.StoredRun]],
             committing: Callable[[object, list], None]) -> list[tuple[int, Stored | Failure]]:
        replies = []
        try:
            if self.database is None:
                self.database = store.open_db(self.db)
            with store.transaction(self.database):
                replies = [(index, self._save(run)) for index, run in group]
                stored = [(reply.run_id, run.digest) for (_, reply), (_, run) in zip(replies, group)
                          if isinstance(reply, Stored)]
                if stored:
                    committing(stored[0], replies)
        except (UserError, PluginError) as exc:  # the database could not be opened, or stayed locked
            return [(index, Failure(exc.exit_code, str(exc))) for index, _ in group]
        except Exception as exc:
            why = f"not stored: the database refused the commit ({exc})" if replies else \
                f"internal error: {format_traceback(exc)}"
            return [(index, Failure(3, why)) for index, _ in group]
        return replies

    def _save(self, run: store.StoredRun) -> Stored | Failure:
        """One run in a savepoint of the group's transaction, with its certificate."""
        database = self.database
        try:
            if run.rows["runs"][0]["protocol_sha256"] != self.protocol_sha256:  # a spawned worker read it again
                raise PluginError(f"the protocol file {self.protocol_path} changed while the batch ran; run it again")
            with store.transaction(database):
                run_id = store.save_run(database, run)
                paths = {}
                if self.certificate:  # jinja2 is imported only for a batch that writes certificates
                    from . import certificate as cert

                    paths = cert.issue(database, run_id, self.out, ("html", "pdf") if self.pdf else ("html",),
                                       self.templates, just_stored=True)
        except (UserError, PluginError) as exc:
            return Failure(exc.exit_code, str(exc))
        except Exception as exc:
            return Failure(3, f"internal error: {format_traceback(exc)}")
        return Stored(run_id, run.valid, tuple(c["check_id"] for c in run.rows["checks"] if not c["passed"]),
                      {"html": str(paths["html"]), "pdf": str(paths["pdf"]) if "pdf" in paths else None}
                      if paths else None)

    def committed(self, key: tuple[int, str]) -> bool:
        """Whether the run with this id and digest is stored (its group committed before its worker died)."""
        database = store.open_read_only(self.db)
        try:
            return database.execute("select 1 from runs where id = ? and digest = ?", list(key)).fetchone() is not None
        finally:
            database.close()

    def close(self) -> None:
        if self.database is not None:
            self.database.close()


def _naming(files: tuple[Path, ...], message: str) -> str:
    """The message starting with the file it is about (errors that name no file get the run's first)."""
    return message if any(message.startswith(str(f)) for f in files) else f"{files[0]}: {message}"


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def summary(entries: list[Entry], seconds: float, jobs: int) -> dict:
    counts = {status: sum(e.status == status for e in entries) for status in ("valid", "invalid", "failed")}
    return {"runs": len(entries), **counts, "jobs": jobs, "seconds": round(seconds, 3),
            "exit_code": exit_code(entries)}


def exit_code(entries: list[Entry]) -> int:
    """0 when every run is valid, 1 when any is invalid or failed and some run was stored; when none was
    stored, the highest failure's code (2 bad input, 3 plugin or internal error, 1 interrupted)."""
    if all(e.status == "valid" for e in entries):
        return 0
    if any(e.run_id is not None for e in entries):
        return 1
    return max(e.exit_code for e in entries)
