"""No reader hands back an empty plate: every corpus export with its data removed is a clear user error.

The numbers are taken out of each export (text lines of numbers dropped, workbook number cells
emptied), leaving headers, titles and metadata. Whichever reader recognizes what is left must
stop with one line naming the file, as `assayrun read` shows it: exit 2, never a plate of empty
wells, never an internal error.
"""

import re
from pathlib import Path

import pytest

from assayrunner.plugins import load as load_plugins
from assayrunner.reading import read_input
from assayrunner.source import load

CORPUS = Path(__file__).parent / "data" / "plate-exports"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.parent.name != "expected" and p.suffix != ".md")
_VALUE = re.compile(r"^\s*[-+]?(\d+[.,]?\d*|[.,]\d+)([eE][+-]?\d+)?\s*$|^\s*(OVRFLW|OVER|-|MISSED|\?+|\d+:\d\d(:\d\d)?)\s*$")


def _without_numbers_text(path: Path, out: Path) -> None:
    source = load(path)
    sep = source.separator
    kept = []
    for line in source.lines:
        cells = [c for c in line.split(sep) if c.strip()]
        values = sum(1 for c in cells if _VALUE.match(c))
        if not (values >= 3 and values >= len(cells) / 2):
            kept.append(line)
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")


def _without_numbers_workbook(path: Path, out: Path) -> None:
    from openpyxl import load_workbook

    book = load_workbook(path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, (int, float)) or (isinstance(cell.value, str) and _VALUE.match(cell.value)):
                    cell.value = None
    book.save(out)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_export_without_its_data_is_a_clear_error(tmp_path, cli, path):
    out = tmp_path / f"nodata{path.suffix}"
    if path.suffix in (".xlsx", ".xls"):
        _without_numbers_workbook(path, out)
    else:
        _without_numbers_text(path, out)
    result = cli("read", out)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {out}") and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception) as caught:
        read_input(out, load_plugins().readers)
    assert type(caught.value).__name__ in ("UserError", "FormatMismatch")
