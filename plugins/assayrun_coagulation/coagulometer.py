"""Coagulometer results table: one clotting time per row, columns test, sample, replicate, seconds.

    test,sample,replicate,seconds
    PT,NC,1,12.1
    APTT,NP-A 10 ug/mL,2,>120        right-censored: no clot within 120 s
    TT,NP-A 10 ug/mL,1,no clot       right-censored at the protocol's max_time_s for TT

A coagulometer has no plate, so the table becomes one: a calculated read per test labelled
"PT clot time (s)", a column per sample (first appearance order, names in metadata["samples"])
and a row per replicate. A censored cell holds its bound (NaN for "no clot"), the flag
"censored" and its text.
"""

from __future__ import annotations

import csv
import re
from collections import Counter

import numpy as np

from assayrunner import (CENSORED, AssayInput, FormatMismatch, Plate, Read, Reader, Source, UserError, parse_cell,
                         well_name)

from .model import Condition, Parameters, Replicate, role_of

COLUMNS = ("test", "sample", "replicate", "seconds")
MAX_SAMPLES, MAX_REPLICATES = 99, 52  # well names go up to row AZ and column 99
_ABOVE = re.compile(r"^>\s*(\d+(?:[.,]\d+)?)\s*s?$", re.IGNORECASE)
_NO_CLOT = re.compile(r"^no[\s_-]*clot$", re.IGNORECASE)
LABEL = " clot time (s)"


def read_label(test: str) -> str:
    """The label of a test's read, as protocols name it: 'PT clot time (s)'."""
    return test + LABEL


def _header(lines: list[str]) -> tuple[int, str, dict[str, int]] | None:
    """(line index, separator, column -> index) of the first line naming all four columns."""
    for i, line in enumerate(lines):
        if not all(name in line.lower() for name in COLUMNS):  # quick: the header names every column
            continue
        for sep in ("\t", ";", ","):
            names = [c.strip().strip('"').lower() for c in line.split(sep)]
            if all(name in names for name in COLUMNS):
                return i, sep, {name: names.index(name) for name in COLUMNS}
    return None


def seconds_cell(text: str, decimal_comma: bool) -> tuple[float, bool] | None:
    """(seconds, censored) of a cell: '12.3' -> (12.3, False); '>120' -> (120, True); 'no clot' -> (NaN, True)."""
    text = text.strip().strip('"').strip()
    above = _ABOVE.match(text)
    if above:
        return float(above.group(1).replace(",", ".")), True
    if _NO_CLOT.match(text):
        return float("nan"), True
    value, _ = parse_cell(text, decimal_comma)
    return (value, False) if value is not None and value > 0 else None


def _rows(lines: list[str], sep: str, path, first: int):
    """The table's lines as cells; a cell beyond csv's field size limit is a UserError naming the line."""
    reader = csv.reader(lines, delimiter=sep)
    try:
        yield from reader
    except csv.Error as exc:
        raise UserError(f"not a readable table line ({exc})", file=path, where=f"line {first + reader.line_num - 1}") \
            from None


def read_coagulometer(source: Source) -> list[Plate]:
    path, lines = source.path, source.lines
    found = _header(lines)
    if found is None:
        raise FormatMismatch(f"no header row with columns {', '.join(COLUMNS)}", file=path)
    start, sep, col = found
    entries: list[tuple[str, str, float, bool, str]] = []  # test, sample, seconds, censored, cell text
    seen: dict[tuple[str, str, str], int] = {}
    for n, cells in enumerate(_rows(lines[start + 1:], sep, path, start + 2), start=start + 2):
        if not any(c.strip() for c in cells):
            continue
        test, sample, replicate, text = (cells[col[c]].strip() if len(cells) > col[c] else "" for c in COLUMNS)
        if not test or not sample:
            raise UserError("every row needs a test and a sample", file=path, where=f"line {n}")
        key = (test.upper(), sample, replicate)
        if key in seen:
            raise UserError(f"{test} {sample!r} replicate {replicate!r} is also on line {seen[key]}",
                            file=path, where=f"line {n}")
        seen[key] = n
        parsed = seconds_cell(text, decimal_comma=sep != ",")
        if parsed is None:
            raise UserError(f"seconds {text!r} is not a clotting time (a number, '>120' or 'no clot')",
                            file=path, where=f"line {n}")
        entries.append((test.upper(), sample, *parsed, text))
    if not entries:
        raise UserError("the table has a header but no results", file=path)
    columns = {sample: i for i, sample in enumerate(dict.fromkeys(e[1] for e in entries))}
    shape = (max(Counter(e[:2] for e in entries).values()), len(columns))
    if shape[1] > MAX_SAMPLES or shape[0] > MAX_REPLICATES:
        raise UserError(f"{shape[1]} samples with up to {shape[0]} replicates: at most {MAX_SAMPLES} samples "
                        f"and {MAX_REPLICATES} replicates per file; split the file", file=path)
    reads: dict[str, Read] = {}
    filled: Counter = Counter()
    for test, sample, seconds, censored, text in entries:
        read = reads.setdefault(test, Read(read_label(test), np.full(shape, np.nan), kind="calculated"))
        row, column = filled[test, sample], columns[sample]
        filled[test, sample] += 1
        read.values[row, column] = seconds
        if censored:
            read.flags[well_name(row, column)], read.texts[well_name(row, column)] = CENSORED, text
    return [Plate(path.stem, *shape, list(reads.values()), {"samples": list(columns)})]


def sniff_coagulometer(source: Source) -> float:
    if source.kind != "text":
        return 0.0
    lines = source.head_lines(50)
    head = "\n".join(lines).lower()
    if not all(name in head for name in COLUMNS):  # quick: then no line names every column
        return 0.0
    return 0.9 if _header(lines) else 0.0


READER = Reader(
    name="coagulometer",
    title="Coagulometer results (test, sample, replicate, seconds): one clotting time per row",
    sniff=sniff_coagulometer,
    read=read_coagulometer,
    extensions=(".csv", ".tsv", ".txt"),
    instruments=("mechanical or optical coagulometers (e.g. Stago STart 4) exporting a result list",),
)


def table_conditions(inp: AssayInput) -> tuple[dict[str, list[Condition]], dict, dict]:
    """Per test, the table's samples with their replicate times (controls found by the parameters' names)."""
    p: Parameters = inp.parameters
    protocol = inp.protocol
    samples = inp.plate.metadata.get("samples")
    if samples is None or not inp.reads:
        raise UserError(f"protocol {protocol.id} reads a coagulometer table (columns {', '.join(COLUMNS)}) and the "
                        "input holds none; for kinetic plate reads use a plate protocol (ncl-ita-12-plate)",
                        file=protocol.path)
    specs = {spec.name: spec for spec in protocol.reads}
    for test in p.tests:
        if test not in specs:
            raise UserError(f"test {test} has no [[reads]] entry named {test!r}", file=protocol.path, where="reads")
        if test not in inp.reads:
            raise UserError(f"the input has no {test} results; protocol {protocol.id} runs "
                            f"{', '.join(p.tests)}: measure every test or use a protocol without {test}")
    wanted = {specs[test].label for test in p.tests}
    for read in inp.plate.reads:
        if read.label not in wanted:
            raise UserError(f"the input has {read.label.removesuffix(LABEL)} results, a test protocol "
                            f"{protocol.id} does not run (tests: {', '.join(p.tests)})")
    return {test: _conditions(test, inp.reads[test], samples, inp) for test in p.tests}, {}, {}


def _conditions(test: str, read: Read, samples: list[str], inp: AssayInput) -> list[Condition]:
    p: Parameters = inp.parameters
    conditions = []
    for column, name in enumerate(samples):
        replicates = []
        for row in range(read.values.shape[0]):
            well, value = well_name(row, column), float(read.values[row, column])
            censored = read.flags.get(well) == CENSORED
            limit = p.tests[test].max_time_s
            if censored and not np.isfinite(value):
                value = limit
                if value is None:
                    raise UserError(f"{test} of {name!r} reads {read.texts[well]!r}: give max_time_s, the "
                                    f"instrument's limit for {test}", file=inp.protocol.path,
                                    where=f"parameters.tests.{test}")
            if not censored and limit is not None and value > limit:
                replicates.append(Replicate(limit, ">", note=f"{value:g} s, above the limit {limit:g} s",
                                            flag="above-instrument-limit"))
            elif censored or np.isfinite(value):
                replicates.append(Replicate(value, ">" if censored else None, note=read.texts.get(well, "")))
        if replicates:
            conditions.append(Condition(name, name, role_of(name, p), replicates))
    return conditions
