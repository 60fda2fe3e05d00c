"""Samples files: which sample sits in which layout slot.

Columns slot and sample, optionally concentration, unit, lot; any other column is kept in
Sample.extra for the assay (e.g. a dose series' top concentration and dilution factor).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from .errors import UserError
from .registry import Sample
from .source import load


def read_samples(path: Path, slots: list[str], skipped: Sequence[str] = ()) -> dict[str, Sample]:
    """Slot -> Sample; UserError naming the line for an unknown or skipped slot, a duplicate or a bad number
    (not a number, NaN, infinite or negative)."""
    if not path.is_file():
        raise UserError("samples file not found", file=path)
    source = load(path)
    if source.kind != "text":
        raise UserError(f"a samples file is a CSV table, not a {source.kind} file", file=path)
    lines = [line for line in source.lines if line.strip()]
    sep = max((",", ";", "\t"), key=lines[0].count)
    try:
        rows = list(csv.reader(lines, delimiter=sep))
    except csv.Error as exc:
        raise UserError(f"not a readable CSV table ({exc}); save it again as CSV", file=path) from None
    header = [h.strip().lower() for h in rows[0]]
    for needed in ("slot", "sample"):
        if needed not in header:
            raise UserError(f"the header needs a column {needed!r} (columns: slot, sample, concentration, unit, lot)",
                            file=path, where="line 1")
    samples: dict[str, Sample] = {}
    for n, row in enumerate(rows[1:], start=2):
        cells = dict(zip(header, (c.strip() for c in row)))
        slot = cells.get("slot", "")
        if slot not in slots:
            raise UserError(f"slot {slot!r} is not in the protocol layout; slots: {', '.join(slots)}",
                            file=path, where=f"line {n}")
        if slot in skipped:
            raise UserError(f"slot {slot!r} has no readings in the export (its wells are empty, so it is skipped); "
                            "remove this line or fill the slot's wells", file=path, where=f"line {n}")
        if slot in samples:
            raise UserError(f"slot {slot!r} is named twice", file=path, where=f"line {n}")
        concentration = cells.get("concentration") or None
        try:
            concentration = float(concentration.replace(",", ".")) if concentration else None
        except ValueError:
            raise UserError(f"concentration {cells['concentration']!r} is not a number",
                            file=path, where=f"line {n}") from None
        if concentration is not None and not (math.isfinite(concentration) and concentration >= 0):
            raise UserError(f"concentration {cells['concentration']!r} must be a finite number of at least 0",
                            file=path, where=f"line {n}")
        extra = {k: v for k, v in cells.items() if k not in ("slot", "sample", "concentration", "unit", "lot") and v}
        sample = Sample(slot, cells.get("sample") or slot, concentration, cells.get("unit") or None,
                        cells.get("lot") or None, extra)
        if any(s.label == sample.label for s in samples.values()):
            raise UserError(f"sample {sample.label!r} is named for two slots; give each slot its own name "
                            "or concentration", file=path, where=f"line {n}")
        samples[slot] = sample
    return samples
