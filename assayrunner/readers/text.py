"""Shared helpers for text exports: decoding, line splitting, cells to numbers and flags."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))

#: Markers readers write in place of a number, and the flag each becomes.
MARKERS = {
    "ovrflw": "saturated", "over": "saturated", "overflow": "saturated", "sat": "saturated",
    "saturated": "saturated", "missed": "missing", "missing": "missing", "n/a": "missing",
    "na": "missing", "nan": "missing", "?????": "missing", "masked": "masked", "range?": "masked",
}

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")


def decode(data: bytes) -> str:
    """Bytes of a text export to str: BOMs, BOM-less UTF-16, UTF-8, else Latin-1 (never fails)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding.replace("-sig", ""), errors="replace")
    head = data[:4000]
    if head and head.count(b"\x00") > len(head) // 4:
        return data.decode("utf-16-le" if head[1:2] == b"\x00" else "utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def is_binary(data: bytes) -> bool:
    """True for bytes that do not decode to text (a zip, an image, an executable)."""
    head = decode(data[:4000])
    odd = sum(1 for ch in head if (ch < " " and ch not in "\t\r\n") or "\x7f" <= ch <= "\x9f" or ch == "\ufffd")
    return odd > len(head) // 100 + 1


def read_text(path: Path) -> str:
    """A text export's contents; UserError for an empty or binary file."""
    data = path.read_bytes()
    if not data.strip():
        raise UserError("the file is empty: export the plate again", file=path)
    if is_binary(data):
        raise UserError("this is a binary file, not a text export: export as text or CSV", file=path)
    return decode(data)


def split_lines(text: str) -> list[str]:
    """Lines split on CRLF, LF and bare CR alike."""
    return re.split(r"\r\n|\n|\r", text)


def parse_cell(cell: str, decimal_comma: bool = False) -> tuple[float | None, str | None]:
    """One cell to (number, flag): ('0.5', None) -> (0.5, None); 'OVRFLW' -> (None, 'saturated').

    Empty cells give (None, None). Text that is neither a number nor a known marker gives
    (None, 'invalid').
    """
    text = cell.strip().strip('"').replace("\u00a0", "").strip()
    if not text:
        return None, None
    if _NUMBER.match(text):
        return float(text), None
    if decimal_comma and _DECIMAL_COMMA.match(text):
        return float(text.replace(",", ".")), None
    if text[0] == ">":
        return None, "saturated"
    if text[0] == "<":
        return None, "below-range"
    if len(text) > 2 and text[0] == "*" and text[-1] == "*":
        return None, "masked"
    return None, MARKERS.get(text.lower(), "invalid")
