"""The built wheel works on its own: fresh virtual environment, run from another directory."""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from test_plugin_docs import example


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment with the built wheel of this tree installed (and nothing else of ours)."""
    dist, venv = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    str(REPO), "-w", str(dist)], check=True, capture_output=True)
    wheel = next(dist.glob("assayrunner-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True)
    return venv


def test_wheel_in_a_fresh_venv_runs_hemolysis(venv, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(REPO / "examples" / "hemolysis" / "plate.csv", elsewhere / "plate.csv")
    run = subprocess.run([venv / "bin" / "assayrun", "execute", "hemolysis", "plate.csv", "--json"],
                         cwd=elsewhere, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["valid"] is True and data["protocol"]["id"] == "ncl-ita-1"
    assert (elsewhere / "assayrun.db").exists()
    html = open(data["certificate"]["html"]).read()
    assert "Certificate of analysis" in html and "% hemolysis" in html
    where = subprocess.run([venv / "bin" / "python", "-c", "import assayrunner, assayrun_hemolysis; "
                            "print(assayrunner.__file__); print(assayrun_hemolysis.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(venv) in path for path in where)  # the wheel's copy, not the source tree


def test_scaffold_installs_and_its_tests_pass_in_a_fresh_venv(venv, tmp_path):
    """`assayrun plugin new`, then pip install the package into the venv and run its own tests there, and the
    testing example of docs/plugins.md against it."""
    new = subprocess.run([venv / "bin" / "assayrun", "plugin", "new", "endotoxin"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert new.returncode == 0, new.stderr
    package = tmp_path / "assayrun-endotoxin"
    install = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"{package}[test]"],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    listed = subprocess.run([venv / "bin" / "assayrun", "plugins", "--json"], capture_output=True, text=True)
    assert [p["distribution"] for p in json.loads(listed.stdout)] == ["assayrun-endotoxin"]
    start = subprocess.run([venv / "bin" / "python", "-c", "import sys; sys.argv = ['assayrun', '--help']\n"
                            "from assayrunner.cli import main\ntry: main()\nexcept SystemExit: print(*sys.modules)"],
                           capture_output=True, text=True)
    imported = set(start.stdout.split())
    assert "assayrun_endotoxin" in imported  # --help imports the plugin module, and it stays light
    assert not imported & {"numpy", "pydantic", "assayrun_endotoxin.analysis"}, start.stderr
    (package / "tests" / "test_from_guide.py").write_text(example("testing example"), encoding="utf-8")
    tests = subprocess.run([venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=package,
                           capture_output=True, text=True)
    assert tests.returncode == 0 and "4 passed" in tests.stdout, tests.stdout + tests.stderr
    again = subprocess.run([venv / "bin" / "assayrun", "plugin", "new", "endotoxin"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
