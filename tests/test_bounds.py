"""Bounded resources: each [limits] setting refuses what exceeds it with one line (exit 2), before a library
allocates for it, and nothing is stored. Crafted workbooks run in a subprocess: were a check missing,
python-calamine would abort the process that reads them."""

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from assayrunner import bounds

from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"
KINETIC = DATA / "plate-exports" / "tecan" / "icontrol_infinite200pro_kinetic_od600_gfp.xlsx"
GEN5_28_PLATES = DATA / "plate-exports" / "agilent-gen5" / "gen5_h1_xlsx_6well_28_plates_one_sheet_each.xlsx"


def assayrun(*args, cwd: Path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ASSAYRUN_")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "assayrunner", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def refused(result, *fragments) -> None:
    """Exit 2 with a single line on stderr holding every fragment; no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def xlsx(path: Path, cells: dict[str, float], dimension: str | None = None) -> Path:
    """A minimal workbook written by hand, so a cell can sit anywhere and the dimension say anything."""
    rows: dict[int, list[str]] = {}
    for ref, value in cells.items():
        rows.setdefault(int(re.sub("[A-Z]", "", ref)), []).append(f'<c r="{ref}"><v>{value}</v></c>')
    data = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(rows.items()))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", f'<Types xmlns="{pkg}/content-types"><Default Extension="rels" ContentType='
                   '"application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                   'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
                   'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'spreadsheetml.worksheet+xml"/></Types>')
        z.writestr("_rels/.rels", f'<Relationships xmlns="{pkg}/relationships"><Relationship Id="rId1" '
                   f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="Plate" '
                   'sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{pkg}/relationships"><Relationship '
                   f'Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
        dim = f'<dimension ref="{dimension}"/>' if dimension else ""
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{main}">{dim}<sheetData>{data}</sheetData>'
                   "</worksheet>")
    return path


def test_a_cell_reference_at_xfd1048576_is_refused_quickly(tmp_path):
    crafted = xlsx(tmp_path / "far.xlsx", {"A1": 1.0, "XFD1048576": 2.0})
    started = time.monotonic()
    result = assayrun("read", crafted, cwd=tmp_path)
    refused(result, "far.xlsx", "1048576 rows x 16384 columns", "max_sheet_cells")
    assert time.monotonic() - started < 20  # interpreter start included; calamine would allocate ~52 GB


def test_a_dimension_record_saying_xfd1048576_is_refused(tmp_path):
    crafted = xlsx(tmp_path / "dim.xlsx", {"A1": 1.0, "B2": 2.0}, dimension="A1:XFD1048576")
    refused(assayrun("execute", "hemolysis", crafted, cwd=tmp_path), "dim.xlsx", "xl/worksheets/sheet1.xml",
            "max_sheet_cells")
    assert not (tmp_path / "assayrun.db").exists()


def test_references_written_otherwise_are_still_read(tmp_path):
    """Single quotes, spaces around '=', lower-case letters, '$' and long numbers are all valid ways to write a
    reference; none lets a far cell slip past."""
    for reference in ("r='XFD1048576'", 'r = "XFD1048576"', "r='xfd1048576'", "r='A99999999'"):
        path = xlsx(tmp_path / "odd.xlsx", {"A1": 1.0})
        with zipfile.ZipFile(path) as z:
            sheet = z.read("xl/worksheets/sheet1.xml").replace(b'<c r="A1">', f"<c {reference}>".encode())
        members = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
        members["xl/worksheets/sheet1.xml"] = sheet
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
        with pytest.raises(Exception, match="max_sheet_cells"):
            bounds.check_content(path, path.read_bytes(), bounds.Limits())
    assert bounds._DIMENSION.search(b'<dimension ref="$A$1:$XFD$1048576"/>').groups() == \
        (b"A", b"1", b"XFD", b"1048576")


def test_an_ordinary_workbook_passes_the_checks(tmp_path):
    fine = xlsx(tmp_path / "fine.xlsx", {"A1": 1.0, "L8": 2.0}, dimension="A1:L8")
    bounds.check_content(fine, fine.read_bytes())  # no error
    assert bounds._xlsx_extent(zipfile.ZipFile(fine), zipfile.ZipFile(fine).getinfo("xl/worksheets/sheet1.xml")) \
        == (8, 12)
    assert [bounds.column_number(c) for c in (b"A", b"Z", b"AA", b"XFD")] == [1, 26, 27, 16384]
    for path in sorted((DATA / "plate-exports").rglob("*.xls*")):  # every real workbook export
        bounds.check_content(path, path.read_bytes())


def test_ods_repeated_rows_are_counted(tmp_path):
    table = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    cell = '<table:table-cell office:value-type="float" office:value="1"/>'
    content = (f'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               f'xmlns:table="{table}"><office:body><office:spreadsheet><table:table table:name="Plate">'
               f'<table:table-row table:number-rows-repeated="1048576">{cell}'
               f'<table:table-cell table:number-columns-repeated="3" office:value-type="float" office:value="2"/>'
               '</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>')
    path = tmp_path / "rows.ods"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content)
    refused(assayrun("read", path, cwd=tmp_path), "1048576 rows x 4 columns", "max_sheet_cells")


def test_xls_cell_records_and_dimensions(tmp_path):
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Plate")
    sheet.write(0, 0, 1.0)
    sheet.write(65535, 255, 2.0)
    far = tmp_path / "far.xls"
    book.save(str(far))
    refused(assayrun("read", far, cwd=tmp_path), "far.xls", "65536 rows x 256 columns", "max_sheet_cells")

    small = xlwt.Workbook()
    small.add_sheet("Plate").write(1, 1, 1.0)
    path = tmp_path / "dimensions.xls"
    small.save(str(path))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x00\x02\x0e\x00")  # the DIMENSIONS record: type 0x0200, 14 bytes
    assert at > 0
    data[at + 8:at + 12] = (0xFFFFFFFF).to_bytes(4, "little")  # rwMac: the last row + 1
    path.write_bytes(bytes(data))
    refused(assayrun("read", path, cwd=tmp_path), "dimensions.xls", "4294967295 rows", "max_sheet_cells")


def test_a_zip_that_inflates_past_the_limit(tmp_path):
    path = xlsx(tmp_path / "bomb.xlsx", {"A1": 1.0})
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/padding.bin", b"\0" * (3 * 1024 * 1024))
    assert path.stat().st_size < 100_000
    refused(assayrun("read", path, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_UNZIPPED_MB="2"), "bomb.xlsx", "max_unzipped_mb")


def test_file_size_is_checked_before_reading(tmp_path):
    result = assayrun("execute", "hemolysis", PLATE, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_FILE_MB="0.0001")
    refused(result, "valid_plate.csv", "MB, above the limit of 0.0001", "ASSAYRUN_LIMITS_MAX_FILE_MB")
    assert not (tmp_path / "assayrun.db").exists()


def test_a_device_or_a_growing_file_is_not_read_on(tmp_path):
    refused(assayrun("read", "/dev/zero", cwd=tmp_path), "/dev/zero: this is a device, not an export file")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", "import sys\nwith open(sys.argv[1], 'wb') as f:\n"
                               "    while True: f.write(b'1,2,3\\n' * 100000)", str(fifo)], stderr=subprocess.DEVNULL)
    try:
        result = assayrun("read", fifo, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_FILE_MB="1")
    finally:
        writer.kill()
        writer.wait()
    refused(result, "pipe.csv: the file grew while it was read", "max_file_mb")


def test_line_length(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(PLATE.read_text() + "note," + "x" * 250_000 + "\n")
    lines = PLATE.read_text().count("\n") + 1
    refused(assayrun("read", path, cwd=tmp_path), f"wide.csv: line {lines}", "250005 characters", "max_line_chars")


def test_wells_and_values_per_plate_and_plates_per_file(tmp_path):
    refused(assayrun("read", PLATE, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_WELLS_PER_PLATE="48"),
            "8 x 12 = 96 wells", "max_wells_per_plate")
    refused(assayrun("read", KINETIC, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_VALUES_PER_PLATE="1000"),
            "values over its reads", "max_values_per_plate")
    refused(assayrun("read", GEN5_28_PLATES, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_PLATES_PER_FILE="27"),
            "the file holds 28 plates", "max_plates_per_file")


def test_every_read_is_bounded_in_time(tmp_path):
    big = tmp_path / "long.csv"
    big.write_text("Well,Value\n" + "".join(f"{chr(65 + k % 8)}{k % 12 + 1},{k / 1000:.4f}\n" for k in range(400_000)))
    result = assayrun("read", big, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_READ_SECONDS="0.05")
    refused(result, "long.csv", "reading took longer than 0.05 s", "max_read_seconds")


def test_limits_come_from_assayrun_toml_and_bad_values_are_named(tmp_path):
    (tmp_path / "assayrun.toml").write_text("[limits]\nmax_wells_per_plate = 48\n")
    refused(assayrun("read", PLATE, cwd=tmp_path), "max_wells_per_plate")
    (tmp_path / "assayrun.toml").write_text("[limits]\nmax_wells_per_plate = -1\n")
    refused(assayrun("read", PLATE, cwd=tmp_path), "assayrun.toml: limits.max_wells_per_plate")
    (tmp_path / "assayrun.toml").unlink()
    refused(assayrun("read", PLATE, cwd=tmp_path, ASSAYRUN_LIMITS_MAX_FILE_MB="lots"),
            "environment: ASSAYRUN_LIMITS_MAX_FILE_MB")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 16384), st.integers(1, 1048576)), min_size=1, max_size=30))
def test_sheet_extent_is_the_farthest_cell(tmp_path_factory, cells):
    """Against openpyxl's own column arithmetic: the extent is the largest row and column addressed."""
    from openpyxl.utils.cell import get_column_letter

    path = xlsx(tmp_path_factory.mktemp("extent") / "cells.xlsx",
                {f"{get_column_letter(c)}{r}": 1.0 for c, r in cells})
    with zipfile.ZipFile(path) as archive:
        extent = bounds._xlsx_extent(archive, archive.getinfo("xl/worksheets/sheet1.xml"))
    assert extent == (max(r for _, r in cells), max(c for c, _ in cells))
