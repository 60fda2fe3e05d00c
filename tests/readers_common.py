"""Helpers for the vendor reader tests: the copied corpus, and the reader sniffing would choose."""

import json
from pathlib import Path

from assayrunner.plugins import load as load_plugins
from assayrunner.reading import candidates
from assayrunner.source import load

EXPORTS = Path(__file__).parent / "data" / "plate-exports"


def chosen(path: Path) -> str:
    """The name of the reader that wins the sniff among all registered readers."""
    return candidates(load(path), load_plugins().readers)[0][1].name


def other_vendors_files(own: str) -> list[Path]:
    """Every copied export (all vendors, whichever engineer copied them) outside the folder `own`."""
    return sorted(p for p in EXPORTS.glob("*/*") if p.is_file() and p.parent.name not in (own, "expected"))


def sniff(reader: str, path: Path) -> float:
    return load_plugins().readers[reader].sniff(load(path))


def check_json(plates) -> None:
    """Every plate serialises to JSON (metadata included) and plate names are distinct."""
    for plate in plates:
        json.dumps(plate.to_json(), allow_nan=False)
    assert len({p.name for p in plates}) == len(plates)


def markers(read) -> dict[str, str]:
    """The read's flags from markers in the file, without the wells it never read (flagged 'missing')."""
    return {well: flag for well, flag in read.flags.items() if read.is_covered(well)}
