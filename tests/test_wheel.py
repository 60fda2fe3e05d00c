"""The built wheel works on its own: fresh virtual environment, run from another directory."""

import json
import os
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


PLUGINS = REPO / "tests" / "plugins"
#: A working third-party plugin among plugins that fail each its own way (see each package's docstring).
INSTALLED = ("assayrun_demo", "assayrun_broken", "assayrun_raising", "assayrun_badprotocol", "assayrun_dupid",
             "assayrun_misspelt")


@pytest.fixture(scope="module")
def faulty(venv, tmp_path_factory):
    """The venv with the test plugins built as wheels and pip-installed into it (uninstalled afterwards)."""
    dist = tmp_path_factory.mktemp("plugin-wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(dist), *(str(PLUGINS / name) for name in INSTALLED)], check=True, capture_output=True)
    pip = [venv / "bin" / "python", "-m", "pip"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", *sorted(dist.glob("*.whl"))], check=True,
                   capture_output=True)
    yield venv
    subprocess.run([*pip, "uninstall", "--quiet", "-y", *(n.replace("_", "-") for n in INSTALLED)], check=True,
                   capture_output=True)


def venv_run(venv, *args, cwd=None, env=None):
    return subprocess.run([venv / "bin" / "assayrun", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def errors(run) -> list[str]:
    """The error lines of a run's stderr (the warnings naming broken plugins come on every command)."""
    assert "Traceback" not in run.stderr
    return [line for line in run.stderr.splitlines() if not line.startswith("warning: ")]


def test_each_broken_plugin_is_listed_with_its_reason(faulty):
    listing = venv_run(faulty, "plugins", "--json")
    assert listing.returncode == 0, listing.stderr
    by_name = {p["name"]: p for p in json.loads(listing.stdout)}
    assert {"demo", "broken", "raising", "badprotocol", "dupid", "misspelt"} <= set(by_name)  # and the scaffold's
    assert by_name["demo"]["error"] is None and by_name["demo"]["assays"] == ["demo-od"]
    assert "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'" in by_name["broken"]["error"]
    assert by_name["raising"]["error"].startswith("register_template_dirs failed: FileNotFoundError: templates "
                                                  "folder missing from the wheel (__init__.py:")
    assert by_name["raising"]["protocols"][0].endswith("raising-od-1.toml")  # registered before it failed
    bad = by_name["badprotocol"]["error"]
    assert bad.startswith("invalid protocol file ") and "badprotocol-od-1.toml: acceptance[0].limt: unknown key" in bad
    assert by_name["misspelt"]["error"] == ("implements 'register_asays', which is not a hook "
                                            "(did you mean 'register_assays'?)")
    assert by_name["dupid"]["error"] is None and len(by_name["dupid"]["problems"]) == 2
    assert by_name["raising"]["problems"] == [
        next(p for p in by_name["raising"]["problems"] if "register_commands failed: RuntimeError: no commands" in p)]
    warned = [line for line in listing.stderr.splitlines() if line.startswith("warning: ")]
    assert sorted(line.split("'")[1] for line in warned) == ["badprotocol", "broken", "misspelt", "raising", "raising"]
    table = venv_run(faulty, "plugins").stdout
    assert sum("BROKEN: " in line for line in table.splitlines()) == 4
    assert "problem: protocol id 'dupid-twin' is declared by " in table


def test_every_other_plugin_and_command_keeps_working(faulty, tmp_path):
    plate = tmp_path / "plate.demo"
    plate.write_text("DEMO-READER\nA1 0.05\nA2 0.07\nB1 0.80\nB2 0.90\n")
    run = venv_run(faulty, "execute", "demo-od", plate, "--json", cwd=tmp_path)
    assert run.returncode == 0 and errors(run) == [], run.stderr
    assert json.loads(run.stdout)["results"][0]["value"] == pytest.approx(0.85 - 0.06, rel=1e-12)
    assert venv_run(faulty, "demo-hello").stdout.strip() == "hello from assayrun-demo"
    helped = venv_run(faulty, "--help")
    assert helped.returncode == 0 and "demo-hello" in helped.stdout
    assert "warning: plugin 'raising' adds no command: register_commands failed: RuntimeError" in helped.stderr
    examples = REPO / "examples" / "cytotoxicity"
    mtt = venv_run(faulty, "execute", "cytotoxicity", examples / "mtt_plate.csv", "--protocol", "ncl-gta-1-mtt",
                   "--samples", examples / "samples.csv", "--json", cwd=tmp_path)
    assert mtt.returncode == 0 and json.loads(mtt.stdout)["valid"] is True, mtt.stderr
    read = venv_run(faulty, "read", REPO / "examples" / "hemolysis" / "plate.csv", "--json")
    assert read.returncode == 0 and json.loads(read.stdout)["format"] == "grid"


def test_a_command_needing_a_broken_plugin_exits_3_naming_it(faulty, tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(REPO / "examples" / "hemolysis" / "plate.csv", plate)
    for args, plugin, reason in (
            (["execute", "hemolysis", plate, "--protocol", "raising-od-1"], "raising",
             "register_template_dirs failed: FileNotFoundError"),
            (["execute", "badprotocol-od", plate], "badprotocol", "acceptance[0].limt: unknown key"),
            (["protocols", "show", "raising-od-1"], "raising", "register_template_dirs failed")):
        run = venv_run(faulty, *args, cwd=tmp_path)
        assert run.returncode == 3, (args, run.stderr)
        [line] = errors(run)
        assert f"plugin {plugin!r} (assayrun-{plugin} 0.0.1), which is broken: " in line and reason in line, line
        assert f"pip uninstall assayrun-{plugin}" in line
    assert not (tmp_path / "assayrun.db").exists()
    unknown = venv_run(faulty, "execute", "nope", plate, cwd=tmp_path)
    assert unknown.returncode == 2
    named = errors(unknown)[0].split("broken plugins, which may have it: ")[1].removesuffix(" (see `assayrun plugins`)")
    assert sorted(named.split(", ")) == ["badprotocol", "broken", "misspelt", "raising"]


def test_a_duplicate_protocol_id_fails_only_the_commands_using_it(faulty, tmp_path):
    plate = tmp_path / "plate.csv"
    shutil.copy(REPO / "examples" / "hemolysis" / "plate.csv", plate)
    run = venv_run(faulty, "execute", "hemolysis", plate, cwd=tmp_path)
    assert run.returncode == 3
    [line] = errors(run)
    assert line.startswith("error: protocol id 'ncl-ita-1' is declared by ")
    assert "/protocols/ncl-ita-1.toml (built in) and by " in line and "ncl-ita-1-copy.toml (plugin 'dupid')" in line
    assert not (tmp_path / "assayrun.db").exists()
    shipped = next(faulty.glob("lib/python*/site-packages/assayrunner/protocols/ncl-ita-1.toml"))
    by_path = venv_run(faulty, "execute", "hemolysis", plate, "--protocol", shipped, "--json", cwd=tmp_path)
    assert by_path.returncode == 0 and json.loads(by_path.stdout)["valid"] is True, by_path.stderr
    twins = venv_run(faulty, "protocols", "show", "dupid-twin")
    assert twins.returncode == 3 and "twin-a.toml (plugin 'dupid') and by " in errors(twins)[0]
    listed = venv_run(faulty, "protocols", "--json")
    assert listed.returncode == 0
    problems = {(p["id"], p["plugin"]): p["problem"] for p in json.loads(listed.stdout)}
    assert problems[("ncl-gta-1-mtt", None)] is None
    assert "ncl-ita-1-copy.toml" in problems[("ncl-ita-1", None)] and "twin-b.toml" in problems[("dupid-twin", "dupid")]
    assert problems[("demo-od-1", "demo")] is None and ("raising-od-1", "raising") not in problems


def test_doctor_reports_broken_plugins_and_problems(faulty, tmp_path):
    run = venv_run(faulty, "doctor", "--json", cwd=tmp_path)
    assert run.returncode == 1
    findings = json.loads(run.stdout)
    failed = {f["check"] for f in findings if not f["ok"]}
    assert {"plugins", "plugin broken", "plugin raising", "plugin badprotocol", "plugin misspelt"} <= failed
    problems = [f["detail"] for f in findings if f["check"] == "plugin problem"]
    assert len(problems) == 3 and any("'dupid-twin'" in p for p in problems)


def test_tracing_shows_each_register_hook_call_with_its_plugin(faulty):
    run = venv_run(faulty, "formats", env={"ASSAYRUN_TRACE_PLUGINS": "1"})
    assert run.returncode == 0
    trace = [line for line in run.stderr.splitlines() if line.startswith("trace: ")]
    assert "trace: register_readers(register) -> demo" in trace and "trace: register_assays(register) -> hemolysis" \
        in trace
    at = trace.index("trace: register_template_dirs() -> raising")
    assert trace[at + 1] == "trace: register_template_dirs raised FileNotFoundError: templates folder missing from " \
                            "the wheel"
