"""`assayrun fit DATA.csv`: fit a standard curve to a two-column (x, y) CSV and report it."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .errors import UserError

DELIMITERS = ",;\t"


def fit_command(data: Path, model: str = "4pl", weights: str | None = None,
                fix: list[str] | tuple[str, ...] = (), as_json: bool = False) -> str:
    """Fit ``model`` to the CSV at ``data``; return the text to print (a table, or JSON).

    JSON: ``{"model", "parameters": {name: value}, "se": {name: value}, "r2", "converged"}``,
    non-finite numbers as null. Bad input raises UserError naming the file and the place.
    """
    from .curves import fit   # numpy only when the command runs

    data = Path(data)
    x, y = read_xy_csv(data)
    fixed = parse_fixed(fix)
    try:
        result = fit(x, y, model=model, weights=weights, fixed=fixed)
    except ValueError as exc:
        raise UserError(str(exc), file=data) from None
    summary = result.to_dict()
    if as_json:
        keys = ("model", "parameters", "se", "r2", "converged")
        return json.dumps({k: summary[k] for k in keys}, indent=2, allow_nan=False)
    return format_fit(result, data)


def read_xy_csv(path: Path) -> tuple[list[float], list[float]]:
    """x and y from a two-column CSV (comma, semicolon or tab); a non-numeric first row is a header."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the file: {exc}", file=path) from None
    lines = text.splitlines()
    sample = next((line for line in lines if line.strip()), "")
    delimiter = max(DELIMITERS, key=sample.count) if any(d in sample for d in DELIMITERS) else ","
    x, y = [], []
    for number, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) != 2:
            raise UserError(f"expected 2 columns (x, y), found {len(cells)}", file=path,
                            where=f"line {number}")
        values = [_number(c) for c in cells]
        if None in values:
            if not x and all(v is None for v in values):   # header row
                continue
            bad = cells[values.index(None)]
            raise UserError(f"not a number: {bad!r}", file=path, where=f"line {number}")
        x.append(values[0])
        y.append(values[1])
    if not x:
        raise UserError("no data rows: expected two columns x, y", file=path)
    return x, y


def parse_fixed(items) -> dict[str, float]:
    """``["bottom=0", "top=100"]`` -> ``{"bottom": 0.0, "top": 100.0}``."""
    fixed = {}
    for item in items:
        name, sep, value = item.partition("=")
        number = _number(value)
        if not sep or not name.strip() or number is None:
            raise UserError(f"expected NAME=VALUE such as bottom=0, got {item!r}", where="--fix")
        fixed[name.strip()] = number
    return fixed


def format_fit(result, data: Path) -> str:
    """Human-readable report: status, parameter table with SEs, R^2."""
    status = "converged" if result.converged else "NOT CONVERGED"
    lines = [f"{result.model} fit of {data} (n = {result.n}, df = {result.df}): {status}"]
    if result.message != "converged":
        lines.append(f"  {result.message}")
    width = max(len(k) for k in result.params)
    lines.append("")
    lines.append(f"{'parameter':<{max(width, 9)}}  {'estimate':>12}  {'se':>12}")
    for name, value in result.params.items():
        se = "fixed" if name in result.fixed else _format(result.se[name])
        lines.append(f"{name:<{max(width, 9)}}  {_format(value):>12}  {se:>12}")
    lines.append("")
    weighting = f" (weights {result.weights})" if result.weights else ""
    lines.append(f"R^2 = {_format(result.r2)}{weighting}")
    return "\n".join(lines)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _format(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else "undetermined"
