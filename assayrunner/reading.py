"""Choosing a reader for a file and reading it: sniff scores, --format, clear errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .errors import PluginError, UserError
from .plate import Plate
from .readers.text import is_binary
from .registry import Reader

HEAD_BYTES = 65536


@dataclass
class InputFile:
    """A file as read for a run: its bytes' SHA-256, the reader used and the plates it gave."""

    path: Path
    sha256: str
    size: int
    content: bytes
    format: str
    plates: list[Plate]

    def to_json(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "format": self.format,
                "plates": [p.to_json() for p in self.plates]}


def choose_reader(path: Path, head: bytes, readers: dict[str, Reader], forced: str | None = None) -> Reader:
    """The named reader, else the one whose sniff scores highest; UserError naming the candidates."""
    if forced:
        if forced not in readers:
            raise UserError(f"unknown format {forced!r}; formats: {', '.join(sorted(readers))}", file=path)
        return readers[forced]
    scores = sorted(((_sniff(r, head, path), name) for name, r in readers.items()), reverse=True)
    best, name = scores[0] if scores else (0.0, "")
    if best > 0:
        return readers[name]
    if not head.strip():
        raise UserError("the file is empty: export the plate again", file=path)
    if is_binary(head) and path.suffix.lower() not in (".xlsx", ".xls"):
        raise UserError("this is a binary file, not a plate export: export as text, CSV or xlsx", file=path)
    closest = ", ".join(f"{n} ({s:.2f})" for s, n in scores[:3])
    raise UserError(f"no reader recognizes this file (closest: {closest}); "
                    "give --format NAME, see `assayrun formats`", file=path)


def _sniff(reader: Reader, head: bytes, path: Path) -> float:
    try:
        return float(reader.sniff(head, path))
    except Exception as exc:
        raise PluginError(f"reader {reader.name!r} failed to sniff {path}: {type(exc).__name__}: {exc}") from exc


def read_input(path: Path, readers: dict[str, Reader], forced: str | None = None) -> InputFile:
    """Read one export into plates, with the SHA-256 of its bytes."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise UserError("file not found", file=path) from None
    except OSError as exc:
        raise UserError(f"cannot read the file: {exc.strerror}", file=path) from None
    reader = choose_reader(path, content[:HEAD_BYTES], readers, forced)
    try:
        plates = reader.read(path)
    except UserError:
        raise
    except Exception as exc:
        raise PluginError(f"reader {reader.name!r} failed on {path}: {type(exc).__name__}: {exc}") from exc
    if not plates:
        raise UserError(f"the {reader.name} reader found no plate in this file", file=path)
    return InputFile(path, hashlib.sha256(content).hexdigest(), len(content), content, reader.name, plates)


def select_plate(inputs: list[InputFile], choice: str | None) -> Plate:
    """The plate to analyze: the only one, the one --plate names (name or 1-based index), or one merged
    from single-plate files of the same shape (each file then adds its reads)."""
    plates = [(f, p) for f in inputs for p in f.plates]
    if choice is not None:
        for k, (_, plate) in enumerate(plates, start=1):
            if choice in (plate.name, str(k)):
                return plate
        raise UserError(f"no plate {choice!r}; plates: {_names(plates)}")
    if len(plates) == 1:
        return plates[0][1]
    if len(plates) == len(inputs) and len({(p.rows, p.columns) for _, p in plates}) == 1:
        first = plates[0][1]
        reads = [read for _, p in plates for read in p.reads]
        return Plate(first.name, first.rows, first.columns, reads, first.metadata)
    raise UserError(f"the input holds {len(plates)} plates; choose one with --plate NAME or --plate N: "
                    f"{_names(plates)}", file=inputs[0].path)


def _names(plates) -> str:
    return ", ".join(f"{k} = {p.name!r}" for k, (_, p) in enumerate(plates, start=1))
