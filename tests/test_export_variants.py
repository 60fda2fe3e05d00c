"""The same export in every form its software (or a lab's copy of it) can take reads to the same plates.

Each text export of the corpus is rewritten in every encoding instrument software writes, every
line end and every separator (with decimal commas where the separator allows them), and as a
workbook (.xlsx, legacy .xls, an xlsx saved under an .xls name, numbers stored as text); every
form must give the plates, reads and values the original gives.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from assayrunner.plugins import load as load_plugins
from assayrunner.reading import read_input
from assayrunner.source import load, split_cells

CORPUS = Path(__file__).parent / "data" / "plate-exports"
EXAMPLES = Path(__file__).parent.parent / "examples"
TEXT_EXPORTS = [
    CORPUS / "agilent-gen5" / "synergy_endpoint_abs600_abs700_fluo_matrix.txt",
    CORPUS / "agilent-gen5" / "gen5_simulation_abs450_ovrflw_missed.txt",
    CORPUS / "agilent-gen5" / "synergy_kinetic_od600_columnwise_latin1.txt",
    CORPUS / "moldev-softmaxpro" / "smp_bca562_plateformat_latin1_cr.txt",
    CORPUS / "moldev-softmaxpro" / "smp_partial_plate_260-280-230_utf16.txt",
    CORPUS / "bmg-labtech" / "pherastar_dsrna_elisa450.csv",
    CORPUS / "perkinelmer-revvity" / "kaleido_abs_endpoint_96well.csv",
    CORPUS / "perkinelmer-revvity" / "enspire_csv_384_calculated_results_pm_date.csv",
    EXAMPLES / "hemolysis" / "plate.csv",
    EXAMPLES / "coagulation" / "plate_kinetic.csv",
]
#: encoding name -> how to write it (BOM or not); Mac Roman is written the classic Mac way, with bare CR.
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "utf-16-le+bom": "utf-16", "utf-16-be+bom": "utf-16-be",
             "utf-16-le": "utf-16-le", "utf-16-be": "utf-16-be", "cp1252": "cp1252", "mac_roman": "mac_roman"}
LINE_ENDS = {"crlf": "\r\n", "lf": "\n", "cr": "\r", "mixed": None}  # mixed: CRLF and LF by turns
SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";"}
_POINT_NUMBER = re.compile(r"^(\s*-?\d+)\.(\d+\s*)$")


def _cells(path: Path) -> list[list[str]]:
    source = load(path)
    return split_cells(source.lines, source.separator)


def _text(rows: list[list[str]], sep: str) -> str:
    decimal_comma = sep != ","
    lines = []
    for row in rows:
        cells = [_POINT_NUMBER.sub(r"\1,\2", c) if decimal_comma else c for c in row]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


def _line_ends(text: str, end: str) -> str:
    if LINE_ENDS[end] is not None:
        return text.replace("\n", LINE_ENDS[end])
    lines = text.split("\n")
    return "".join(line + ("\r\n" if k % 2 else "\n") for k, line in enumerate(lines[:-1])) + lines[-1]


def _summary(path: Path) -> tuple[str, list]:
    """The reader and, per plate, its shape and each read's label, kind, wavelength and values."""
    result = read_input(path, load_plugins().readers)
    plates = [((p.rows, p.columns), [(r.label, r.kind, r.wavelength_nm, r.values) for r in p.reads])
              for p in result.plates]
    return result.format, plates


def _same(got: tuple, want: tuple, labels: bool = True, ulp: bool = False) -> None:
    """Equal reads; ulp=True allows the last-bit differences a trip through a workbook's XML numbers makes."""
    assert got[0] == want[0]
    assert len(got[1]) == len(want[1])
    for (shape, reads), (want_shape, want_reads) in zip(got[1], want[1]):
        assert shape == want_shape
        assert [(r[1], r[2]) for r in reads] == [(r[1], r[2]) for r in want_reads]
        if labels:
            assert [r[0] for r in reads] == [r[0] for r in want_reads]
        for read, want_read in zip(reads, want_reads):
            if ulp:
                np.testing.assert_allclose(read[3], want_read[3], rtol=1e-15, atol=0)
            else:
                np.testing.assert_array_equal(read[3], want_read[3])


def _variants():
    for path in TEXT_EXPORTS:
        for sep_name in SEPARATORS:
            for encoding in ENCODINGS:
                # bare CR and an 8-bit encoding mean a classic Mac file (Mac Roman), as in the wild
                ends = ("cr",) if encoding == "mac_roman" else ("crlf", "lf") if encoding == "cp1252" else LINE_ENDS
                for end in ends:
                    yield pytest.param(path, sep_name, encoding, end, id=f"{path.stem}-{sep_name}-{encoding}-{end}")


@pytest.fixture(scope="module")
def originals():
    return {path: _summary(path) for path in TEXT_EXPORTS}


@pytest.mark.parametrize("path, sep_name, encoding, end", list(_variants()))
def test_text_variant_reads_like_the_original(tmp_path, originals, path, sep_name, encoding, end):
    text = _line_ends(_text(_cells(path), SEPARATORS[sep_name]), end)
    data = text.encode(ENCODINGS[encoding], errors="replace")
    if encoding == "utf-16-be+bom":
        data = b"\xfe\xff" + data
    variant = tmp_path / f"variant{path.suffix}"
    variant.write_bytes(data)
    exact = data.decode(ENCODINGS[encoding].replace("-sig", ""), errors="replace").lstrip("\ufeff") == text
    _same(_summary(variant), originals[path], labels=exact)


_PLAIN_NUMBER = re.compile(r"^\s*(-?)0?(\.\d+)\s*$|^\s*(-?\d+(\.\d+)?)\s*$")


def _restyled(cell: str) -> str:
    """A number cell written another way instruments do: without the leading zero ('.0385', '-.5') and
    padded to a fixed width ('   .0385'); other cells as they are."""
    m = _PLAIN_NUMBER.match(cell)
    if not m:
        return cell
    return (m[1] + m[2] if m[2] else m[3]).rjust(9)


@pytest.mark.parametrize("path", TEXT_EXPORTS, ids=lambda p: p.stem)
def test_padded_numbers_without_leading_zero_read_like_the_original(tmp_path, originals, path):
    source = load(path)
    rows = [[_restyled(c) for c in row] for row in _cells(path)]
    variant = tmp_path / f"variant{path.suffix}"
    variant.write_text("\n".join(source.separator.join(row) for row in rows) + "\n", encoding="utf-8")
    assert any(c.startswith("   ") for row in rows for c in row)  # numbers were rewritten
    _same(_summary(variant), originals[path])


def _workbook(rows: list[list[str]], path: Path, as_text: bool) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        cells = []
        for cell in row:
            number = None
            if not as_text and re.fullmatch(r"\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", cell):
                number = float(cell)
            cells.append(number if number is not None else (cell if cell != "" else None))
        sheet.append(cells)
    book.save(path)


@pytest.mark.parametrize("path", TEXT_EXPORTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("form", ["xlsx", "xlsx-numbers-as-text", "xlsx-named-xls", "xls"])
def test_workbook_variant_reads_like_the_original(tmp_path, originals, path, form):
    rows = _cells(path)
    if form == "xls":
        xlwt = pytest.importorskip("xlwt")
        variant = tmp_path / "variant.xls"
        book = xlwt.Workbook()
        sheet = book.add_sheet("Sheet1")
        for r, row in enumerate(rows[:65535]):
            for c, cell in enumerate(row[:256]):
                if cell != "":
                    number = re.fullmatch(r"\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", cell)
                    sheet.write(r, c, float(cell) if number else cell)
        book.save(str(variant))
    else:
        variant = tmp_path / ("variant.xls" if form == "xlsx-named-xls" else "variant.xlsx")
        _workbook(rows, variant, as_text=form == "xlsx-numbers-as-text")
    _same(_summary(variant), originals[path], ulp=True)


def test_kinetic_times_as_excel_durations_and_as_text(tmp_path):
    """Time cells as Excel durations (the way Gen5's own workbooks hold them) or as '0 h 3 min' texts."""
    from datetime import timedelta

    from openpyxl import Workbook

    path = CORPUS / "agilent-gen5" / "synergy_kinetic_od600_columnwise_latin1.txt"
    want = read_input(path, load_plugins().readers).plates[0].reads[0]
    rows = _cells(path)
    for form in ("duration", "text"):
        book = Workbook()
        sheet = book.active
        in_table = False
        for row in rows:
            cells = [float(c) if re.fullmatch(r"-?\d+\.\d+|\d+", c) else (c or None) for c in row]
            in_table = in_table or (row[:1] == ["Time"])
            clock = re.fullmatch(r"(\d+):(\d\d):(\d\d)", row[0]) if in_table and row else None
            if clock:
                h, m, s = map(int, clock.groups())
                cells[0] = timedelta(hours=h, minutes=m, seconds=s) if form == "duration" else f"{h} h {m} min {s} s"
            sheet.append(cells)
            if clock and form == "duration":
                sheet.cell(sheet.max_row, 1).number_format = "[h]:mm:ss"
        variant = tmp_path / f"{form}.xlsx"
        book.save(variant)
        got = read_input(variant, load_plugins().readers).plates[0].reads[0]
        np.testing.assert_array_equal(got.times_s, want.times_s)
        np.testing.assert_array_equal(got.values, want.values)


def test_384_well_table_in_two_chunks_and_1536_well_grid(tmp_path):
    """Columns 1-12 and then 13-24 of a 384-well plate are one read; rows AA..AF reach a 1536-well plate."""
    values = np.arange(384, dtype=float).reshape(16, 24) / 1000
    lines = ["Absorbance 450 nm"]
    for first in (0, 12):
        lines.append("," + ",".join(str(c + 1) for c in range(first, first + 12)))
        lines += [f"{chr(65 + r)}," + ",".join(f"{v:g}" for v in values[r, first:first + 12]) for r in range(16)]
        lines.append("")
    chunked = tmp_path / "chunked.csv"
    chunked.write_text("\n".join(lines))
    [plate] = read_input(chunked, load_plugins().readers).plates
    assert (plate.rows, plate.columns) == (16, 24) and len(plate.reads) == 1
    np.testing.assert_array_equal(plate.reads[0].values, values)

    big = np.arange(1536, dtype=float).reshape(32, 48)
    labels = [chr(65 + r) for r in range(26)] + ["A" + chr(65 + r) for r in range(6)]
    grid = ["\t" + "\t".join(str(c + 1) for c in range(48))]
    grid += [label + "\t" + "\t".join(f"{v:g}" for v in big[r]) for r, label in enumerate(labels)]
    path = tmp_path / "plate1536.txt"
    path.write_text("Luminescence\n" + "\n".join(grid) + "\n")
    [plate] = read_input(path, load_plugins().readers).plates
    assert (plate.rows, plate.columns) == (32, 48)
    np.testing.assert_array_equal(plate.reads[0].values, big)
    assert plate.reads[0].value("AF48") == 1535
