"""The reading fast paths decide as the general code does: each is compared with it on varied inputs."""

import random
import warnings

import numpy as np
import pytest

from assayrunner import cells as C
from assayrunner import reads as R
from assayrunner import tables as T
from assayrunner.plate import find_well, parse_well, row_index
from assayrunner.source import _ODD_CHARS, Sheet, Source
from conftest import DATA

CELLS = ["", " ", "\t", "\u00a0", None, "0.5", " 0.5", "0.5 ", "-1e3", "+.5", "5.", ".", "-", "--", "1e400", "-inf",
         "inf", "nan", "NaN", "-nan", "1_000", "OVRFLW", "A1", "a01", " b 3 ", "A0", "ZZ1", "AF48", "AG1", "A100",
         "A1\n", "0.5\n", "\u0661\u0662", "\u00b2", "0x10", 0.5, 1, True, float("nan"), "1,5", '"0.5"', ">3", "abc",
         "A", "H", "12", "01", "1.0", "1 234.5", "E5", "1E5", "A 1", "A\t01", "\x1f", "0.5\x1f0.6"]
SEPARATORS = (",", ";", "\t")


def _files():
    return sorted(p for p in DATA.rglob("*") if p.is_file())


def _sheets(path):
    source = Source(path, path.read_bytes())
    if source.kind not in ("text", "workbook"):
        return []
    try:
        return [source.head_sheet, *source.sheets]
    except Exception:  # a damaged workbook: nothing to compare
        return []


def _random_cells(rnd: random.Random, n: int) -> list:
    return [rnd.choice(CELLS) for _ in range(n)]


def test_odd_characters_are_the_ones_is_binary_counts():
    for code in range(0x10000):
        ch = chr(code)
        assert bool(_ODD_CHARS.fullmatch(ch)) == ((ch < " " and ch not in "\t\r\n\x0c") or ch == "\ufffd")


def _find_well_by_parsing(value):
    if not isinstance(value, str):
        return None
    try:
        return parse_well(value)
    except ValueError:
        return None


def test_find_well_refuses_by_pattern_as_parsing_would():
    rnd = random.Random(1)
    texts = [*CELLS, *("".join(rnd.choice("AaBZfg 0123456789\t\n,.") for _ in range(rnd.randint(0, 6)))
                       for _ in range(20000))]
    for value in texts:
        assert find_well(value) == _find_well_by_parsing(value), repr(value)


@pytest.mark.parametrize("separator", SEPARATORS)
def test_rows_passed_by_name_no_well(separator):
    rnd = random.Random(2)
    for _ in range(300):
        lines = []
        for _ in range(rnd.randint(1, 8)):
            cells = [c if isinstance(c, str) else str(c) for c in _random_cells(rnd, rnd.randint(1, 6))]
            if rnd.random() < 0.2:
                cells = [f'"{c}"' if rnd.random() < 0.5 else c for c in cells]
            if rnd.random() < 0.1:
                cells.append('"A"1')
            lines.append(separator.join(c.replace("\n", " ") for c in cells))
        source = Source(DATA / "x.csv", ("\n".join(lines) + "\n").encode())
        if source.kind != "text":
            continue
        sheet = source.sheets[0]
        for row, flag in zip(sheet.rows, sheet.may_name_wells):
            if any(T.well_at(cell) is not None for cell in row):
                assert flag, row


def test_workbook_rows_passed_by_name_no_well():
    rnd = random.Random(3)
    rows = [_random_cells(rnd, rnd.randint(0, 6)) for _ in range(2000)]
    sheet = Sheet("x", rows, from_text=False)
    for row, flag in zip(rows, sheet.may_name_wells):
        if any(T.well_at(cell) is not None for cell in row):
            assert flag, row


def test_has_grid_is_find_grids_found_one():
    for path in _files():
        for sheet in _sheets(path):
            assert T.has_grid(sheet) == bool(T.find_grids(sheet)), path


def test_has_grid_on_cut_and_changed_grids():
    rnd = random.Random(4)
    plate = (DATA / "hemolysis" / "valid_plate.csv").read_text().splitlines()
    for _ in range(500):
        lines = list(plate)
        for _ in range(rnd.randint(1, 4)):
            k = rnd.randrange(len(lines))
            cells = lines[k].split(",")
            cells[rnd.randrange(len(cells))] = str(rnd.choice(CELLS)).replace("\n", "")
            lines[k] = ",".join(cells)
        sheet = Source(DATA / "x.csv", "\n".join(lines[rnd.randrange(len(lines)):]).encode()).sheets[0]
        assert T.has_grid(sheet) == bool(T.find_grids(sheet))


def test_plain_numbers_are_values():
    rnd = random.Random(5)
    for _ in range(20000):
        cells = _random_cells(rnd, rnd.randint(1, 5))
        if C.plain_numbers(cells):
            assert all(C.is_value(c) and C.is_value(c, True) for c in cells), cells
    assert C.plain_numbers(["0.0444", "-1.5e3", "+.5", "5.", " 12", "\u0661\u0662"])
    for odd in ("1e400", "1_000", "nan", "-", "", "0.5\x1f0.6", 0.5):
        assert not C.plain_numbers(["0.5", odd])


def test_filled_cells_of_a_grid_line_are_the_ones_not_blank():
    rnd = random.Random(6)
    for _ in range(5000):
        data = _random_cells(rnd, rnd.randint(0, 12))
        if rnd.random() < 0.5:
            data = [rnd.choice(["0.5", "1", " x ", "OVRFLW"]) for _ in data]
        r, first = rnd.randrange(16), rnd.randrange(24)
        expected = [((r, first + c), cell) for c, cell in enumerate(data) if not C.is_blank(cell)]
        assert list(T._filled(r, first, data)) == expected


def test_grid_coverage_is_the_coverage_of_its_wells():
    rnd = random.Random(7)
    sheet = Sheet("x", [])
    for _ in range(2000):
        grid = T.Grid(sheet, 0, 0, rnd.randint(1, 30), rnd.randrange(30), 0,
                      letters=rnd.sample(range(34), rnd.randint(1, 10)))
        shape = (rnd.randint(1, 32), rnd.randint(1, 48))
        assert (grid.coverage(shape) == R.coverage(shape, grid.wells)).all()


def _endpoint_by_pairs(cells, shape, decimal_comma):
    """R.endpoint's values as indexing by a pair of tuples gives them (the general path)."""
    values = np.full(shape, np.nan)
    places = [p for p in cells if p[0] < shape[0] and p[1] < shape[1]]
    numbers, _ = C.to_array([cells[p] for p in places], decimal_comma)
    if places:
        rows, columns = zip(*places)
        values[rows, columns] = numbers
    return values


@pytest.mark.parametrize("shape", [(8, 12), (16, 24), (2, 3), (1, 1), (32, 48)])
def test_endpoint_by_flat_positions_as_by_pairs(shape):
    rnd = random.Random(shape[0] * 100 + shape[1])
    for trial in range(60):
        places = {(rnd.randrange(-2 if trial % 5 == 0 else 0, shape[0] + 2),
                   rnd.randrange(-2 if trial % 7 == 0 else 0, shape[1] + 2)) for _ in range(rnd.randrange(0, 120))}
        cells = {p: rnd.choice(CELLS + ["0.25", "3", "-0.125", "1,5"]) for p in places}
        comma = trial % 3 == 0
        try:
            expected = _endpoint_by_pairs(cells, shape, comma)
        except IndexError:  # a place before the plate's start by more than its size
            with pytest.raises(IndexError):
                R.endpoint("Read 1", cells, shape, comma)
            continue
        read = R.endpoint("Read 1", cells, shape, comma)
        np.testing.assert_array_equal(read.values, expected)
        assert read.values.shape == shape


def _column_number_by_parsing(text: str):
    n = C.whole_number(text.strip().removesuffix(".0"), 2)
    return n if n is not None and 1 <= n <= 48 else None


def test_column_numbers_looked_up_as_parsed():
    texts = [str(cell) for cell in CELLS] + [f"{pad}{n}{end}{space}" for n in range(-2, 120) for pad in ("", "0", "00")
                                              for end in ("", ".0", ".00", ".", "0") for space in ("", " ", "\t")]
    texts += ["\u0661", "\u00b2", "1\u0661", "+1", "-1", "1e1", "0", "00", ".0", "1.0.0", " 12 ", "\u00a012"]
    for text in texts:
        assert T._column_number(text) == _column_number_by_parsing(text), repr(text)


def test_row_labels_looked_up_as_parsed():
    letters = {chr(65 + k) for k in range(26)} | {"A" + chr(65 + k) for k in range(6)}
    texts = [c for c in CELLS if isinstance(c, str)] + [f"{s}{x}{s}" for x in [*letters, "AG", "ZZ", "a", "af", "Ag",
                                                                                  "AAA", "", "1"] for s in ("", " ")]
    for cell in texts + [None, 1, 0.5]:
        expected = row_index(cell.strip().upper()) if isinstance(cell, str) and cell.strip().upper() in letters else None
        assert T._row_label(cell) == expected, repr(cell)


def test_overflow_found_as_not_nan_and_not_below():
    from assayrunner.reading import OVERFLOW, _flag_overflow
    from assayrunner.plate import Read

    rnd = np.random.default_rng(7)
    special = np.array([np.nan, np.inf, -np.inf, 1e308, -1e308, OVERFLOW, -OVERFLOW, np.nextafter(OVERFLOW, 0), 0.0])
    for trial in range(40):
        shape = (8, 12) if trial % 2 else (4, 6, 3)
        values = np.where(rnd.random(shape) < 0.3, rnd.choice(special, shape), rnd.normal(0, 1e3, shape))
        expected = ~np.isnan(values) & ~(np.abs(values) < OVERFLOW)
        read = Read("r", values.copy(), "kinetic" if len(shape) == 3 else "endpoint")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _flag_overflow(read)
        np.testing.assert_array_equal(np.isnan(read.values), np.isnan(values) | expected)
        assert sum(f == "overflow" for f in read.flags.values()) == len({tuple(i[:2]) for i in np.argwhere(expected)})
