"""PDF certificates (real WeasyPrint rendering, text read back with pypdf), lab settings and template overrides."""

import base64
import subprocess
import sys

import pytest
from pypdf import PdfReader

from conftest import DATA, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
# a 1 x 1 PNG
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")


def pdf_text(path):
    reader = PdfReader(path)
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_certificate_content_and_pages(cli, workdir):
    samples = workdir / "samples.csv"
    samples.write_text("slot,sample\nS1,<script>alert(1)</script>\nS2,{{ 7*7 }}\n")
    result, data = cli.json("execute", "hemolysis", PLATE, "--pdf", "--samples", samples)
    assert result.exit_code == 0
    reader, text = pdf_text(data["certificate"]["pdf"])
    pages = len(reader.pages)
    assert 2 <= pages <= 5
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    assert "ncl-ita-1 v4.0-ar1 · run 1" in text  # running header
    assert data["protocol"]["sha256"] in text.replace("\n", "")
    for check in data["checks"]:
        assert check["id"] in text.replace("\n", "")  # ids wrap inside narrow table cells
    flat = text.replace("\n", "")
    assert "<script>alert(1)</script>" in flat and "{{ 7*7 }}" in flat  # shown as text, never run
    assert "Reviewed by" in text and "Approved by" in text
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(width), round(height)) == (595, 842)  # A4 in points


def test_lab_settings_and_letter_paper(cli, workdir):
    (workdir / "logo.png").write_bytes(PIXEL)
    (workdir / "assayrun.toml").write_text('[lab]\nname = "Nano Safety Lab"\naddress = "1 Test Road"\n'
                                           'logo = "logo.png"\n[certificate]\npaper = "letter"\n')
    result, data = cli.json("execute", "hemolysis", PLATE, "--pdf")
    html = open(data["certificate"]["html"]).read()
    assert "Nano Safety Lab" in html and "1 Test Road" in html and "data:image/png;base64," in html
    reader, text = pdf_text(data["certificate"]["pdf"])
    assert "Nano Safety Lab" in text
    assert (round(reader.pages[0].mediabox.width), round(reader.pages[0].mediabox.height)) == (612, 792)


def test_bad_lab_settings_are_one_line(cli, workdir):
    (workdir / "assayrun.toml").write_text('[lab]\nnmae = "typo"\n')
    result = cli("execute", "hemolysis", PLATE)
    assert result.exit_code == 2 and "assayrun.toml: lab.nmae: unknown key" in result.stderr


def test_certificate_command_pdf(cli, workdir):
    _, data = cli.json("execute", "hemolysis", PLATE)
    result = cli("certificate", str(data["run_id"]), "--format", "pdf")
    assert result.exit_code == 0 and result.stdout.strip() == data["certificate"]["html"].replace(".html", ".pdf")
    assert "revision 1" in pdf_text(result.stdout.strip())[1]  # same revision as the html


@pytest.mark.parametrize("how", ["option", "environment"])
def test_lab_overrides_a_template(cli, workdir, monkeypatch, how):
    custom = workdir / "lab-templates"
    custom.mkdir()
    (custom / "hemolysis.html").write_text("<h2>Our own hemolysis block</h2>{{ details.blood.TBHd | num }}")
    args = ["--templates", custom] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv("ASSAYRUN_TEMPLATES", str(custom))
    result, data = cli.json("execute", "hemolysis", PLATE, *args)
    html = open(data["certificate"]["html"]).read()
    assert "<h2>Our own hemolysis block</h2>10.19" in html
    assert "Acceptance criteria" in html  # the rest still comes from the shipped templates


def test_pdf_without_weasyprint_names_the_install_command(workdir):
    code = ("import sys\nsys.modules['weasyprint'] = None\nsys.argv = ['assayrun', 'execute', 'hemolysis', "
            f"{str(PLATE)!r}, '--pdf']\nfrom assayrunner.cli import main\nmain()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir)
    assert result.returncode == 2
    assert "pip install 'assayrunner[pdf]'" in result.stderr and "Traceback" not in result.stderr
    assert count_rows(workdir / "assayrun.db") == 0
