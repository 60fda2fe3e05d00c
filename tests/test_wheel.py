"""The built wheel works on its own: fresh virtual environment, run from another directory."""

import json
import shutil
import subprocess
import sys

from conftest import REPO


def test_wheel_in_a_fresh_venv_runs_hemolysis(tmp_path):
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    str(REPO), "-w", str(dist)], check=True, capture_output=True)
    wheel = next(dist.glob("assayrunner-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True)
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
