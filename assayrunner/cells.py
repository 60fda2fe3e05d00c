"""What one cell of an export holds: a number, an instrument marker (a flag), a time, or text.

Cells come from text exports (str) or workbooks (str, float, int, bool, datetime, date, time,
timedelta). Everything here is pure and shared by every reader.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta

import numpy as np

#: Text an instrument writes in place of a number, and the flag each becomes.
MARKERS = {
    "ovrflw": "saturated", "over": "saturated", "overflow": "saturated", "sat": "saturated",
    "saturated": "saturated", "#sat": "saturated",
    "missed": "missing", "missing": "missing", "n/a": "missing", "#n/a": "missing", "na": "missing",
    "nan": "missing", "?????": "missing", "masked": "masked", "range?": "masked", "excluded": "masked",
    "-": "no_value", "--": "no_value", "—": "no_value", "nofit": "no_value", "no fit": "no_value",
    "invalid": "invalid", "error": "invalid", "err": "invalid", "#value!": "invalid", "#div/0!": "invalid",
    "inf": "overflow", "+inf": "overflow", "-inf": "overflow", "infinity": "overflow", "+infinity": "overflow",
    "-infinity": "overflow", "#num!": "overflow",
}
FLAGS = ("saturated", "missing", "masked", "no_value", "below-range", "invalid", "overflow")

_NUMBER = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?$")  # no nested \d runs: linear on long cells
_COMMA_NUMBER = re.compile(r"^[+-]?(\d+,\d*|,\d+|\d+)([eE][+-]?\d+)?$")
_SPACES = str.maketrans("", "", " \u00a0\u202f\t")


def whole_number(text: str, digits: int = 6) -> int | None:
    """A count written in ASCII digits, at most `digits` of them: '12' -> 12; '²', '1e3' or 5,000 digits -> None
    (int() raises on those: superscripts pass str.isdigit, and Python refuses over 4,300 digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None


def is_blank(cell: object) -> bool:
    """True for an empty cell: None, '' or only spaces."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def row_blank(row: list) -> bool:
    """True when every cell of a line is empty."""
    for cell in row:
        if isinstance(cell, str):
            if cell and not cell.isspace():
                return False
        elif cell is not None:
            return False
    return True


def text(cell: object) -> str:
    """A cell as stripped text ('' when empty); whole floats without '.0' (a column number 1.0 -> '1')."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).replace("\u00a0", " ").strip()


def parse(cell: object, decimal_comma: bool = False) -> tuple[float | None, str | None]:
    """One cell to (number, flag): '0.5' -> (0.5, None); 'OVRFLW' -> (None, 'saturated'); '' -> (None, None).

    Text that is neither a number nor a known marker gives (None, 'invalid'). Inf and NaN are
    never numbers: 'inf' and '1e400' are an overflow, 'NaN' is a missing value.
    """
    if cell is None or isinstance(cell, bool):
        return None, None
    if isinstance(cell, (int, float)):
        value = float(cell)
        if math.isfinite(value):
            return value, None
        return None, "missing" if value != value else "overflow"
    if not isinstance(cell, str):  # a date or time where a number belongs
        return None, "invalid"
    if cell and (cell[0].isdigit() or cell[0] in "-.+ "):  # the usual case: a plain number
        try:
            value = float(cell)
            if math.isfinite(value) and "_" not in cell:
                return value, None
        except ValueError:
            pass
    raw = cell.strip().strip('"').strip()
    if not raw:
        return None, None
    if raw in MARKERS:  # '-', 'nan', written as the table writes them, without the slower steps below
        return None, MARKERS[raw]
    if _NUMBER.match(raw):
        value = float(raw)
        return (value, None) if math.isfinite(value) else (None, "overflow")
    squeezed = raw.translate(_SPACES)
    if decimal_comma and _COMMA_NUMBER.match(squeezed):
        value = float(squeezed.replace(",", "."))
        return (value, None) if math.isfinite(value) else (None, "overflow")
    if _NUMBER.match(squeezed):  # '1 234.5' written with a thousands space
        value = float(squeezed)
        return (value, None) if math.isfinite(value) else (None, "overflow")
    lower = " ".join(raw.lower().split())
    if lower in MARKERS:
        return None, MARKERS[lower]
    if lower[0] == ">":
        return None, "saturated"
    if lower[0] == "<":
        return None, "below-range"
    if len(lower) > 2 and lower[0] == "*" and lower[-1] == "*":
        return None, "masked"
    return None, "invalid"


def number(cell: object, decimal_comma: bool = False) -> float | None:
    """The cell's number, or None (empty, marker or text)."""
    return parse(cell, decimal_comma)[0]


def is_value(cell: object, decimal_comma: bool = False) -> bool:
    """True for a cell a measurement table holds: a number or an instrument marker."""
    value, flag = parse(cell, decimal_comma)
    return value is not None or (flag is not None and flag != "invalid")


def plain_numbers(cells: list) -> bool:
    """True when every cell is text that float() reads as a finite number, without '_' ('0.0444', ' -1.5e3'):
    parse() takes each such text for its number, so each is_value. False also when some cell is something
    else (which may still be a value). One join and one float() per cell, no Python loop."""
    try:
        joined = "\x1f".join(cells)
    except TypeError:  # a workbook's number or date cell
        return False
    if "_" in joined:
        return False
    try:
        return all(map(math.isfinite, map(float, cells)))
    except ValueError:
        return False


def is_datum(cell: object, decimal_comma: bool = False) -> bool:
    """is_value, or a clock duration ('0:15:00', 't at Max V' cells of a results table)."""
    if is_value(cell, decimal_comma):
        return True
    return isinstance(cell, str) and _CLOCK.match(cell) is not None


def to_array(cells: list, decimal_comma: bool = False) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """A list of cells to float64 values (NaN where no number) and {index: (flag, raw text)}.

    The common case, every cell a plain number, is one numpy conversion; only tables with
    markers, blanks or decimal commas are parsed cell by cell.
    """
    values = _text_values(cells, decimal_comma)
    if values is not None:
        return _flag_odd(cells, values, list(np.flatnonzero(~np.isfinite(values))), decimal_comma)
    nan = float("nan")
    prepared = [nan if c is None or (isinstance(c, str) and not c.strip()) else
                (c.replace(",", ".") if decimal_comma and isinstance(c, str) else c) for c in cells]
    try:
        values = np.array(prepared, dtype=float)
        if values.ndim != 1:
            raise ValueError
        odd = [k for k in np.flatnonzero(~np.isfinite(values)) if prepared[k] is not nan]
    except (ValueError, TypeError):  # some cell is no number: convert what converts, keep the rest for below
        numbers, odd = [], []
        for k, cell in enumerate(prepared):
            try:
                numbers.append(float(cell))
            except (ValueError, TypeError):
                numbers.append(nan)
                odd.append(k)
        values = np.array(numbers)
        failed = set(odd)
        odd += [k for k in np.flatnonzero(~np.isfinite(values)) if prepared[k] is not nan and k not in failed]
    return _flag_odd(cells, values, odd, decimal_comma)


def _text_values(cells: list, decimal_comma: bool) -> np.ndarray | None:
    """Every cell a number written as text (a text export's table): one join, one split and one numpy
    conversion; None when any cell is not text or not a plain number."""
    try:
        joined = "\x1f".join(cells)
    except TypeError:
        return None
    parts = (joined.replace(",", ".") if decimal_comma else joined).split("\x1f")
    if len(parts) != len(cells):
        return None
    try:
        return np.array(parts, dtype=float)
    except ValueError:
        return None


def _flag_odd(cells: list, values: np.ndarray, odd: list, decimal_comma: bool) -> tuple[np.ndarray, dict]:
    """Cells numpy could not take (markers, texts, written 'NaN'), parsed one by one into values or flags."""
    flags: dict[int, tuple[str, str]] = {}
    for k in odd:  # markers, texts and written 'NaN' / 'inf': cell by cell
        cell = cells[k]
        value, flag = parse(cell, decimal_comma)
        values[k] = float("nan") if value is None else value
        if value is None and flag:
            flags[k] = (flag, text(cell))
    return values, flags


# --- times ----------------------------------------------------------------------------------------

_CLOCK_PARTS = r"(?:(\d+)\.)?(\d+):(\d{1,2})(?::(\d{1,2}(?:[.,]\d+)?))?"  # [d.]h:mm[:ss] or m:ss
_CLOCK = re.compile(rf"^\s*{_CLOCK_PARTS}\s*$")
_CLOCK_LINES = re.compile(rf"^[ \t]*{_CLOCK_PARTS}[ \t]*$", re.MULTILINE)
_UNITS = re.compile(r"(\d+(?:[.,]\d+)?)\s*(d|days?|h|hrs?|hours?|min|mins?|minutes?|m|s|sec|secs?|seconds?|ms)\b",
                    re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_EXCEL_EPOCH = datetime(1899, 12, 30)


def unit_seconds(unit: str) -> float:
    """Seconds in a time unit as exports write it: 's', 'sec', 'min', 'h', 'hours', 'ms', 'd'."""
    unit = unit.lower().strip(" .")
    if unit == "ms":
        return 0.001
    return _UNIT_SECONDS.get("m" if unit.startswith("min") else unit[:1], 1.0)


def header_unit(header: str) -> float | None:
    """The time unit a column or row header names: 'Time [s]' -> 1, 'Time (min)' -> 60, 'Time' -> None."""
    m = re.search(r"[\[(]\s*(ms|s|sec|seconds?|min|minutes?|h|hrs?|hours?|d|days?)\s*[\])]", header, re.IGNORECASE)
    if m:
        return unit_seconds(m[1])
    m = re.search(r"\b(?:in|/)\s*(ms|s|sec|seconds|min|minutes|h|hours)\b", header, re.IGNORECASE)
    return unit_seconds(m[1]) if m else None


def duration(cell: object, unit: float = 1.0) -> float | None:
    """A time-axis cell to seconds, or None.

    Numbers are in `unit` seconds; '1:02:03' is h:mm:ss (hours may pass 24), '4:30' m:ss,
    '1.02:03:04' d.hh:mm:ss; '0 h 3 min', '90 s', '2.5 min' carry their unit; Excel durations
    (datetime near the 1900 epoch, time, timedelta) are their elapsed time.
    """
    if cell is None or isinstance(cell, bool):
        return None
    if isinstance(cell, (int, float)):
        return float(cell) * unit if math.isfinite(cell) else None
    if isinstance(cell, timedelta):
        return cell.total_seconds()
    if isinstance(cell, time):
        return cell.hour * 3600.0 + cell.minute * 60.0 + cell.second + cell.microsecond / 1e6
    if isinstance(cell, datetime):
        return excel_serial(cell) * 86400.0
    if isinstance(cell, date):
        return None
    raw = str(cell).strip()
    if not raw or len(raw) > _LONGEST_DURATION:  # no time axis cell is longer; the unit search is quadratic
        return None
    m = _CLOCK.match(raw)
    if m:
        return _clock_seconds(*m.groups())
    value, _ = parse(raw, decimal_comma=True)
    if value is not None:
        return value * unit
    parts = _UNITS.findall(raw)
    if parts and not _UNITS.sub("", raw).strip(" ,;"):
        return sum(float(n.replace(",", ".")) * unit_seconds(u) for n, u in parts)
    return None


_LONGEST_DURATION = 100


def _clock_seconds(days: str | None, a: str, b: str, c: str | None) -> float | None:
    """Seconds of a clock text's parts: a:b:c is h:mm:ss, a:b (no c) m:ss, plus whole days; None when the hours
    or days run past what a float holds (parsed as floats: an int of 400 digits cannot become one)."""
    seconds = float(a) * 3600.0 + float(b) * 60.0 + float(c.replace(",", ".")) if c else float(a) * 60.0 + float(b)
    seconds += float(days) * 86400.0 if days else 0.0
    return seconds if math.isfinite(seconds) else None


def durations(cells: list, unit: float = 1.0) -> list[float | None]:
    """duration() of each cell; a column of clock texts ('0:04:22', the usual kinetic time axis) in one pass."""
    if cells and all(type(c) is str for c in cells):
        joined = "\n".join(cells)
        found = _CLOCK_LINES.findall(joined)
        if len(found) == len(cells) and joined.count("\n") == len(cells) - 1:
            return [_clock_seconds(*parts) for parts in found]
    return [duration(c, unit) for c in cells]


def excel_serial(moment: datetime) -> float:
    """A workbook datetime back to Excel's day serial (1900 system, its leap-day bug included)."""
    days = (moment - _EXCEL_EPOCH).total_seconds() / 86400.0
    return days - 1.0 if days < 61 else days  # serials 1..60 count the nonexistent 1900-02-29


def elapsed(times: list[float | None]) -> list[float | None]:
    """Kinetic times that an export wrote as clock or Excel day values: subtract whole days that every
    time carries (Gen5 workbooks store 0:15:00 as day 2 + 15 min) so the run starts within a day of 0."""
    known = [t for t in times if t is not None]
    if not known:
        return times
    offset = (min(known) // 86400.0) * 86400.0
    return [t - offset if t is not None else None for t in times] if offset > 0 else times


# --- dates ----------------------------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m/%d/%y", "%Y/%m/%d", "%d-%b-%Y",
                 "%d %B %Y", "%B %d, %Y")
_TIME_FORMATS = ("%I:%M:%S %p", "%I:%M %p", "%H:%M:%S", "%H:%M", "%H:%M:%S.%f")


def parse_datetime(day: object, clock: object = "") -> str | None:
    """A date (and time) as instrument software writes it, to ISO 8601; None if it is not one.

    Slashed dates are read month first (US) unless the first number is above 12; 'p.m.' and
    'a.m.' are understood. Workbook date and time cells are taken as they are.
    """
    if isinstance(day, datetime):
        return day.isoformat(timespec="seconds")
    if isinstance(day, date):
        when = clock if isinstance(clock, time) else _clock(text(clock))
        return datetime.combine(day, when).isoformat(timespec="seconds") if when else day.isoformat()
    day_text, clock_text = text(day), text(clock) if not isinstance(clock, time) else clock.isoformat()
    if not clock_text and " " in day_text:
        day_text, clock_text = day_text.split(" ", 1)
    found = None
    for fmt in _DATE_FORMATS:
        try:
            found = datetime.strptime(day_text, fmt)
            break
        except ValueError:
            continue
    if found is None:
        return None
    when = _clock(clock_text)
    return datetime.combine(found.date(), when).isoformat() if when else found.date().isoformat()


def _clock(value: str) -> time | None:
    value = value.strip().upper().replace("A.M.", "AM").replace("P.M.", "PM")
    if not value:
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).time()
        except ValueError:
            continue
    return None
