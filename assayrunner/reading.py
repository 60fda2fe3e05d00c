"""Choosing a reader for a file and reading it: sniff scores, hand-over, --format, and checks on what comes back.

Every reader whose sniff scores above 0 may try the file, best score first. A reader that finds
the file laid out otherwise than it expects raises FormatMismatch and the next one tries; any
other UserError (a truncated file, a value no reader should accept) stops at once. Once a
format reader sure of the file (score 0.9) has refused it, the generic table readers do not
try: they would take the vendor's calculated tables for data. Whatever a
reader returns is checked here, for built-in and third-party readers alike: no plate without a
value, no read of the wrong shape, no infinite number, distinct plate names and read labels.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bounds
from .cells import is_value
from .config import Limits
from .errors import FormatMismatch, PluginError, UserError
from .plate import Plate, well_name
from .reads import describe_area, unique_labels
from .registry import Reader
from .source import Source, load


@dataclass
class InputFile:
    """A file as read for a run: its bytes' SHA-256, the reader used and the plates it gave."""

    path: Path
    sha256: str
    size: int
    content: bytes
    format: str
    plates: list[Plate]
    notes: list[str] = field(default_factory=list)  # readers that tried the file first and why they gave up

    def to_json(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "format": self.format,
                "plates": [p.to_json() for p in self.plates]}


def candidates(source: Source, readers: dict[str, Reader]) -> list[tuple[float, Reader]]:
    """Readers whose sniff scores above 0, best first (a sniff that fails counts as 0 and is reported; one that
    finds the file damaged, a UserError, stops the read)."""
    scored = []
    for reader in readers.values():
        try:
            score = float(reader.sniff(source))
        except UserError:  # the file itself is damaged (a sheet that cannot be read): say so, once
            raise
        except Exception as exc:  # a broken sniff must not keep the other readers from the file
            print(f"warning: {_who(reader)} failed to sniff {source.path} and is skipped: {type(exc).__name__}: "
                  f"{_short(exc)}", file=sys.stderr)
            continue
        if score > 0:
            scored.append((score, reader))
    return sorted(scored, key=lambda pair: -pair[0])


def read_input(path: Path, readers: dict[str, Reader], forced: str | None = None,
               limits: Limits | None = None) -> InputFile:
    """Read one export into plates, with the SHA-256 of its bytes, within the [limits] of size and time
    (`limits`: the ones a command looked up for all its files; looked up here when not given)."""
    limits = limits or bounds.current_limits()
    with bounds.deadline(path, limits):
        return _read_input(path, readers, forced, limits)


def _read_input(path: Path, readers: dict[str, Reader], forced: str | None, limits) -> InputFile:
    source = load(path, limits)
    _check_kind(source)
    ranked = [(1.0, _forced(forced, readers, path))] if forced else candidates(source, readers)
    failures: list[tuple[Reader, str]] = []
    crash: PluginError | None = None
    recognized = False  # a format reader was sure of the file: generic table readers must not guess at it
    for score, reader in ranked:
        if recognized and reader.generic:
            continue
        try:
            plates = reader.read(source)
            check_plates(plates, reader.name, path)
            bounds.check_plates(plates, path, limits)
        except FormatMismatch as exc:
            if forced:
                raise
            failures.append((reader, ": ".join(str(p) for p in (exc.where, exc.message) if p)))
            recognized = recognized or (score >= 0.9 and not reader.generic)
            continue
        except UserError as exc:
            if exc.file is None:  # a reader's error names the place; the file is this one
                raise UserError(exc.message, file=path, where=exc.where) from None
            raise
        except Exception as exc:
            crash = crash or PluginError(f"{_who(reader)} failed on {path}: {type(exc).__name__}: {_short(exc)}")
            failures.append((reader, f"failed ({type(exc).__name__}: {_short(exc)})"))
            if forced:
                raise crash from exc
            print(f"warning: {_who(reader)} failed to read {path} and is skipped: {type(exc).__name__}: "
                  f"{_short(exc)}", file=sys.stderr)
            continue
        _name_apart(plates)
        notes = [f"the {r.name} reader tried first: {why}" for r, why in failures]
        content = source.content
        return InputFile(path, hashlib.sha256(content).hexdigest(), len(content), content, reader.name, plates, notes)
    if crash is not None and len(failures) == 1:
        raise crash
    raise _no_reader(source, failures)


def _who(reader: Reader) -> str:
    return f"reader {reader.name!r} (plugin {reader.plugin or '?'})"


def _short(exc: Exception) -> str:
    """An exception's message on one line, cut to a readable length."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _forced(name: str, readers: dict[str, Reader], path: Path) -> Reader:
    if name not in readers:
        raise UserError(f"unknown format {name!r}; formats: {', '.join(sorted(readers))}", file=path)
    return readers[name]


def _check_kind(source: Source) -> None:
    if source.kind == "empty":
        raise UserError("the file is empty: export the plate again", file=source.path)
    if source.kind == "binary":
        raise UserError("this is a binary file, not a plate export: export as text, CSV or xlsx", file=source.path)
    if source.kind == "text" and _cut_short(source):
        raise UserError("the file ends in the middle of a line of data: it is truncated; export it again",
                        file=source.path, where=f"line {len(source.lines)}")


def _cut_short(source: Source) -> bool:
    """True when the text stops without a line end inside a line of numbers: the last line is data like the
    one before it but has fewer fields. A complete last line without a line end is no truncation."""
    if source.text.endswith(("\n", "\r")):
        return False
    lines = [line for line in source.lines[-3:] if line.strip()]
    if len(lines) < 2:
        return False
    sep = source.separator
    last, before = lines[-1].split(sep), lines[-2].split(sep)
    return len(last) < len(before) and _numeric(last) and _numeric(before)


def _numeric(cells: list[str]) -> bool:
    filled = [c for c in cells if c.strip()]
    return len(filled) >= 2 and sum(is_value(c) or is_value(c, True) for c in filled) >= len(filled) / 2


def _no_reader(source: Source, failures: list[tuple[Reader, str]]) -> UserError:
    if failures:
        reader, why = failures[0]
        others = "".join(f"; {r.name}: {w}" for r, w in failures[1:3])
        return UserError(f"no reader could read this file (closest: {reader.name}: {why}{others}); "
                         "check the export, or give --format NAME (see `assayrun formats`)", file=source.path)
    from .tables import describe_nearest

    return UserError(f"no reader recognizes this file (closest: grid, the generic reader: {describe_nearest(source)}); "
                     "export it again as text, CSV or xlsx with its plate data, or give --format NAME "
                     "(see `assayrun formats`)", file=source.path)


def check_plates(plates: object, reader: str, path: Path) -> None:
    """What every reader must return: plates with reads of the plate's shape, finite numbers, some value.

    A plate without a single number (the data block missing) is a FormatMismatch, so another
    reader may try and, if none can, the user hears which reader stopped and why.
    """
    if not isinstance(plates, list) or not plates:
        raise FormatMismatch(f"the {reader} reader found no plate in this file", file=path)
    for plate in plates:
        if not isinstance(plate, Plate) or plate.rows < 1 or plate.columns < 1:
            raise PluginError(f"reader {reader!r} returned {plate!r}, not a Plate with rows and columns")
        if not plate.reads:
            raise FormatMismatch(f"the {reader} reader found no read on plate {plate.name!r}", file=path)
        for read in plate.reads:
            _check_read(read, plate, reader, path)
        if not any(np.isfinite(read.values).any() for read in plate.reads):
            raise FormatMismatch(f"the {reader} reader found no value on plate {plate.name!r} "
                                 "(only empty cells or markers)", file=path)
        unique_labels(plate.reads)
        partial = [r.covered for r in plate.reads if r.covered is not None and not r.covered.all()]
        if partial:
            area = describe_area(np.logical_or.reduce(partial))
            if any(not r.area_declared for r in plate.reads):
                area += " (the export stops there and declares no plate size)"
            plate.metadata.setdefault("read_area", area)


def _check_read(read, plate: Plate, reader: str, path: Path) -> None:
    shape = (plate.rows, plate.columns)
    kinetic = read.kind == "kinetic"
    values = read.values
    if not isinstance(values, np.ndarray) or values.shape[:2] != shape or values.ndim != (3 if kinetic else 2):
        raise PluginError(f"reader {reader!r}: read {read.label!r} has values of shape "
                          f"{getattr(values, 'shape', None)}, not {shape}{' x times' if kinetic else ''}")
    if kinetic and (read.times_s is None or len(read.times_s) != values.shape[2]):
        raise PluginError(f"reader {reader!r}: kinetic read {read.label!r} has {values.shape[2]} points "
                          f"but {0 if read.times_s is None else len(read.times_s)} times")
    _flag_overflow(read)
    if not np.isfinite(values).any() and not any(f != "missing" for f in read.flags.values()):
        raise FormatMismatch(f"the {reader} reader found read {read.label!r} without any value", file=path,
                             where=read.source or None)


#: Beyond this magnitude a value's square overflows float64: no computation on it can be trusted.
OVERFLOW = float(np.sqrt(np.finfo(np.float64).max))


def _flag_overflow(read) -> None:
    """Infinite or overflowing values (1e400, 'inf', 1e308) become NaN wells flagged 'overflow', never numbers."""
    bad = np.abs(read.values) >= OVERFLOW  # NaN compares False: only infinite or overflowing values
    if not bad.any():
        return
    for index in np.argwhere(bad):
        r, c = int(index[0]), int(index[1])
        well = well_name(r, c)
        if read.kind == "kinetic":
            read.point_flags.setdefault(well, {})[int(index[2])] = "overflow"
        read.texts.setdefault(well, repr(float(read.values[tuple(index)])))
        if read.flags.get(well) in (None, "no_value", "missing"):
            read.flags[well] = "overflow"
    read.values[bad] = np.nan


def _name_apart(plates: list[Plate]) -> None:
    names = [p.name for p in plates]
    if len(set(names)) < len(names):
        for k, plate in enumerate(plates, start=1):
            plate.name = f"{plate.name} #{k}"


def select_plate(inputs: list[InputFile], choice: str | None) -> Plate:
    """The plate to analyze: the only one, the one --plate names (name or 1-based index), or, for a group of
    files the protocol takes for one run (`files = N`), one plate merged from their single plates."""
    plates = [(f, p) for f in inputs for p in f.plates]
    if choice is not None and len(inputs) == 1:
        for k, (_, plate) in enumerate(plates, start=1):
            if choice in (plate.name, str(k)):
                return plate
        raise UserError(f"no plate {choice!r}; plates: {_names(plates)}", file=inputs[0].path, where="--plate")
    if len(inputs) == 1:
        if len(plates) == 1:
            return plates[0][1]
        raise UserError(f"the input holds {len(plates)} plates; choose one with --plate NAME or --plate N: "
                        f"{_names(plates)}", file=inputs[0].path)
    if choice is not None:
        raise UserError(f"--plate chooses among the plates of one file; the files of a group hold one plate each "
                        f"({_names(plates)})", file=inputs[0].path)
    return _merge_group(inputs)


def _merge_group(inputs: list[InputFile]) -> Plate:
    """One plate from a group's files: each file one plate of the same shape, each read from one file only."""
    for f in inputs:
        if len(f.plates) != 1:
            raise UserError(f"a file of a group must hold one plate, this one holds {len(f.plates)}: export each "
                            "plate separately", file=f.path)
    first = inputs[0].plates[0]
    seen: dict[tuple, Path] = {}
    for f in inputs:
        plate = f.plates[0]
        if (plate.rows, plate.columns) != (first.rows, first.columns):
            raise UserError(f"the plate is {plate.rows} x {plate.columns} but {inputs[0].path.name} is "
                            f"{first.rows} x {first.columns}: the files of one run must be the same plate", file=f.path)
        for read in plate.reads:
            key = (read.kind, read.wavelength_nm) if read.wavelength_nm is not None else (read.kind, read.label)
            if key in seen:
                raise UserError(f"read {read.label!r} is also in {seen[key].name}: the files of one run must hold "
                                "different reads", file=f.path)
            seen[key] = f.path
    reads = [read for f in inputs for read in f.plates[0].reads]
    unique_labels(reads)
    return Plate(first.name, first.rows, first.columns, reads, first.metadata)


def _names(plates) -> str:
    return ", ".join(f"{k} = {p.name!r}" for k, (_, p) in enumerate(plates, start=1))
