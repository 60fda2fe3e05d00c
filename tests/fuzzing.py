"""Mutated exports for fuzzing the readers (used by tests/test_fuzz_readers.py and bench/fuzz_readers.py).

A mutation takes the bytes of a real export and a random.Random and returns new bytes: the kinds of damage
files meet (cut short, bytes flipped, lines lost or repeated, numbers replaced by what no reader expects,
huge cells, other encodings); workbooks are damaged inside their zip (a sheet's XML edited) as well as outside.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from pathlib import Path

from assayrunner.errors import PluginError, UserError
from assayrunner.reading import read_input

HERE = Path(__file__).parent
EXPORTS = sorted(p for p in (HERE / "data" / "plate-exports").rglob("*") if p.is_file() and p.suffix != ".md"
                 and "expected" not in p.parts)
ODD_VALUES = [b"inf", b"-inf", b"NaN", b"1e400", b"-1e999", b"1e308", b"", b"-", b"OVRFLW", b"?????", b"9" * 400,
              b"0x1F", b"1,2,3", b'"', b"\x00", b"\xff\xfe", b"A1", b"Z99", b"99999999999999999999", b"1e-400",
              b"#NUM!", b"\t\t\t", b"\r", b"1.2.3", b"--5", b"\xe2\x80\xaf5"]
_NUMBER = re.compile(rb"-?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


def flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def cut(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def delete_span(data: bytes, rng: random.Random) -> bytes:
    a = rng.randrange(len(data) + 1)
    return data[:a] + data[a + rng.randint(1, 400):]


def repeat_span(data: bytes, rng: random.Random) -> bytes:
    a = rng.randrange(len(data) + 1)
    b = min(len(data), a + rng.randint(1, 2000))
    return data[:b] + data[a:b] * rng.randint(1, 3) + data[b:]


def shuffle_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    k = rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines.insert(rng.randrange(len(lines) + 1), lines[k])
    else:
        lines.pop(k)
    if rng.random() < 0.3:
        rng.shuffle(lines)
    return b"\n".join(lines)


def odd_numbers(data: bytes, rng: random.Random) -> bytes:
    """Some numbers replaced by values no reader should take as numbers (or huge ones)."""
    found = list(_NUMBER.finditer(data[:400_000]))
    if not found:
        return data + rng.choice(ODD_VALUES)
    out, last = [], 0
    for m in sorted(rng.sample(found, min(len(found), rng.randint(1, 12))), key=lambda m: m.start()):
        out += [data[last:m.start()], rng.choice(ODD_VALUES)]
        last = m.end()
    return b"".join(out) + data[last:]


def huge_cell(data: bytes, rng: random.Random) -> bytes:
    cell = b'"' + b"x" * rng.choice([1000, 140_000, 300_000]) + b'"' if rng.random() < 0.5 else b"7" * 200_000
    a = rng.randrange(len(data) + 1)
    return data[:a] + cell + data[a:]


def separators(data: bytes, rng: random.Random) -> bytes:
    a, b = rng.sample([b",", b";", b"\t", b" ", b"|", b"\r\n", b"\r", b"\n"], 2)
    return data.replace(a, b)


def encoding(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("utf-8", errors="replace")
    return text.encode(rng.choice(["utf-16", "utf-16-le", "utf-32", "cp1252", "utf-8-sig"]), errors="replace")


def random_bytes(data: bytes, rng: random.Random) -> bytes:
    a = rng.randrange(len(data) + 1)
    return data[:a] + rng.randbytes(rng.randint(1, 64)) + data[a:]


TEXT_MUTATIONS = [flip, cut, delete_span, repeat_span, shuffle_lines, odd_numbers, huge_cell, separators, encoding,
                  random_bytes]


def inside_zip(data: bytes, rng: random.Random) -> bytes:
    """A workbook with one member (a sheet's XML, the shared strings ...) damaged, rezipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: archive.read(info) for info in archive.infolist()}
    except Exception:  # noqa: BLE001 - an already damaged zip (bad CRC, broken deflate ...): damage it further
        return flip(data, rng)
    name = rng.choice(sorted(members))
    members[name] = rng.choice([flip, cut, delete_span, repeat_span, odd_numbers, _xml_dimension])(members[name], rng)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return buffer.getvalue()


def _xml_dimension(data: bytes, rng: random.Random) -> bytes:
    """Cell references and dimensions moved (r="C7" -> r="C70000"): what a crafted sheet declares."""
    return re.sub(rb'(r|ref)="([A-Z]+)(\d+)', lambda m: m.group(1) + b'="' + m.group(2) + m.group(3) +
                  str(rng.randint(0, 99)).encode(), data, count=rng.randint(1, 5))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three mutations; a workbook is damaged inside its zip half of the time."""
    for _ in range(rng.randint(1, 3)):
        if data[:2] == b"PK" and rng.random() < 0.5:
            data = inside_zip(data, rng)
        else:
            data = rng.choice(TEXT_MUTATIONS)(data or b"\n", rng)
    return data


def outcome(path: Path, readers: dict, forced: str | None = None) -> str:
    """'plates', 'refused' (our UserError) or 'failed: <what>' for anything else (a bug to fix), including a
    warning that a reader's sniff or read raised (built-in readers must not)."""
    import contextlib
    import json

    warnings = io.StringIO()
    try:
        with contextlib.redirect_stderr(warnings):
            result = read_input(path, readers, forced)
            json.dumps(result.to_json(), allow_nan=False)  # what `assayrun read --json` prints
        found = "plates"
    except UserError:
        found = "refused"
    except PluginError as exc:
        return f"failed: PluginError: {str(exc)[:300]}"
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a bug
        return f"failed: {type(exc).__name__}: {str(exc)[:300]}"
    return f"failed: {warnings.getvalue()[:300]}" if "warning:" in warnings.getvalue() else found
