"""What `assayrun read FILE` prints: each plate's metadata and each read as a grid to check against the export."""

from __future__ import annotations

import math

import numpy as np

from .plate import Plate, Read, row_label, well_name

UNREAD = "·"  # a well the export never read
_WIDTH = 100  # metadata values longer than this are cut


def describe_input(result) -> str:
    """The whole text for one read input file (see reading.InputFile)."""
    lines = [f"{result.path}: format {result.format}, sha256 {result.sha256}"]
    lines += [f"note: {note}" for note in result.notes]
    for k, plate in enumerate(result.plates, start=1):
        lines += ["", *plate_lines(plate, k, len(result.plates))]
    return "\n".join(lines)


def plate_lines(plate: Plate, number: int, count: int) -> list[str]:
    lines = [f"plate {number} of {count}: {plate.name!r}, {plate.rows} x {plate.columns}"]
    for key, value in plate.metadata.items():
        text = str(value)
        lines.append(f"  {key}: {text if len(text) <= _WIDTH else text[:_WIDTH - 1] + '…'}")
    layout, vendor = plate.export_layout(), plate.vendor_results()
    if layout is not None:
        lines.append(f"  layout in the export: {len(layout.entries)} wells, from the {layout.source} "
                     "(execute --layout-from-export uses it)")
    if vendor is not None:
        lines.append(f"  values the software calculated: {len(vendor.values)} wells, {vendor.source}")
    for read in plate.reads:
        lines += ["", *read_lines(read)]
    return lines


def read_lines(read: Read) -> list[str]:
    """A heading naming the read, then its values as a plate grid (the first time point of a kinetic read)."""
    parts = [read.kind]
    if read.excitation_nm:
        parts.append(f"ex {read.excitation_nm:g} / em {read.wavelength_nm:g} nm")
    elif read.wavelength_nm:
        parts.append(f"{read.wavelength_nm:g} nm")
    values = read.values
    if read.kind == "kinetic":
        times = read.times_s if read.times_s is not None else np.array([])
        parts.append(f"{len(times)} time points{_span(times)}")
        values = values[:, :, 0] if values.shape[2] else np.full(values.shape[:2], np.nan)
    markers = {w: f for w, f in read.flags.items() if read.is_covered(w)}
    if markers:
        parts.append(f"{len(markers)} flagged well{'s' if len(markers) > 1 else ''}")
    title = f"  read {read.label!r}: {', '.join(parts)}"
    if read.kind == "kinetic":
        title += "; first time point:"
    return [title, *grid_lines(read, values), *_flag_lines(read, markers)]


def _span(times: np.ndarray) -> str:
    finite = times[np.isfinite(times)] if len(times) else times
    if not len(finite):
        return ", times not given"
    if np.allclose(finite, np.round(finite)):
        return f", {_clock(finite[0])} to {_clock(finite[-1])}"
    return f", {finite[0]:g} s to {finite[-1]:g} s"


def _clock(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def grid_lines(read: Read, values: np.ndarray) -> list[str]:
    rows, columns = values.shape
    cells = [[_cell(read, values, r, c) for c in range(columns)] for r in range(rows)]
    width = max(3, *(len(x) for row in cells for x in row))
    label = max(len(row_label(r)) for r in range(rows))
    header = " " * (label + 4) + " ".join(str(c + 1).rjust(width) for c in range(columns))
    body = [f"    {row_label(r).ljust(label)} " + " ".join(x.rjust(width) for x in cells[r]) for r in range(rows)]
    return [header.rstrip(), *(line.rstrip() for line in body)]


def _cell(read: Read, values: np.ndarray, r: int, c: int) -> str:
    well = well_name(r, c)
    if read.covered is not None and not read.covered[r, c]:
        return UNREAD
    value = values[r, c]
    if math.isfinite(value):
        return f"{value:.6g}"
    if well in read.flags and (read.kind != "kinetic" or 0 in read.point_flags.get(well, {0: None})):
        return read.texts.get(well) or read.flags[well]
    return ""


def _flag_lines(read: Read, markers: dict[str, str]) -> list[str]:
    lines = []
    if markers:
        shown = [f"{w} {f}" + (f" ({read.texts[w]!r})" if read.texts.get(w) and read.texts[w] != f else "")
                 for w, f in list(markers.items())[:12]]
        more = f" and {len(markers) - 12} more" if len(markers) > 12 else ""
        lines.append(f"    flags: {', '.join(shown)}{more}")
    if read.covered is not None and not read.covered.all():
        lines.append(f"    {UNREAD} = a well the export did not read")
    return lines

