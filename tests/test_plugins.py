"""Plugins as users install them: real packages pip-installed into a folder, the CLI run in a subprocess."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import assayrunner

from conftest import DATA, count_rows

PLUGINS = __import__("pathlib").Path(__file__).parent / "plugins"


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """name -> a folder where that test plugin is pip-installed (with its dist-info and entry points)."""
    folders = {}
    for name in ("assayrun_broken", "assayrun_demo", "assayrun_clash", "assayrun_oldapi", "assayrun_faulty"):
        target = tmp_path_factory.mktemp(name)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(PLUGINS / name)], check=True, capture_output=True)
        folders[name] = target
    return folders


def assayrun(*args, plugins=(), cwd=None, env=None):
    """The CLI in a subprocess with these plugin folders, and only their plugins besides the built-in ones
    (other plugins installed in the environment, like the LAL example, are not loaded)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in plugins),
                   "ASSAYRUN_LOAD_PLUGINS": ",".join(_distributions(plugins)), **(env or {})}
    return subprocess.run([sys.executable, "-m", "assayrunner", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=environment)


def _distributions(folders) -> list[str]:
    return [d.name.split("-")[0].replace("_", "-") for folder in folders for d in Path(folder).glob("*.dist-info")]


def test_broken_plugin_is_named_and_the_tool_keeps_working(installed, tmp_path):
    broken = [installed["assayrun_broken"]]
    listing = assayrun("plugins", plugins=broken)
    assert listing.returncode == 0
    assert "broken" in listing.stdout and "BROKEN" in listing.stdout and "a_module_that_is_not_installed" in listing.stdout
    assert "warning: plugin 'broken' (assayrun-broken 0.0.1) failed to load" in listing.stderr
    run = assayrun("execute", "hemolysis", DATA / "hemolysis" / "valid_plate.csv", "--json", plugins=broken, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["valid"] is True
    assert "Traceback" not in run.stderr


def test_builtins_hidden_unless_all(installed):
    plain = assayrun("plugins", "--json", plugins=[installed["assayrun_demo"]])
    names = [p["name"] for p in json.loads(plain.stdout)]
    assert names == ["demo"]
    everything = json.loads(assayrun("plugins", "--all", "--json", plugins=[installed["assayrun_demo"]]).stdout)
    by_name = {p["name"]: p for p in everything}
    assert by_name["hemolysis"]["builtin"] is True and by_name["assayrunner.readers.grid"]["builtin"] is True
    assert by_name["demo"]["version"] == "1.2.3" and by_name["demo"]["distribution"] == "assayrun-demo"
    assert set(by_name["demo"]["hooks"]) == {"register_readers", "register_assays", "register_protocols",
                                             "register_template_dirs", "register_commands"}


def test_third_party_assay_reader_protocol_template_and_command(installed, tmp_path):
    demo = [installed["assayrun_demo"]]
    plate = tmp_path / "plate.demo"
    plate.write_text("DEMO-READER\nA1 0.05\nA2 0.07\nB1 0.80\nB2 0.90\n")
    run = assayrun("execute", "demo-od", plate, "--json", plugins=demo, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["protocol"]["id"] == "demo-od-1"
    assert data["results"][0]["value"] == pytest.approx(0.85 - 0.06, rel=1e-12)
    html = open(data["certificate"]["html"]).read()
    assert '<p class="demo">Blank OD 0.06000</p>' in html
    assert "assayrun-demo 1.2.3" in html
    assert "demo-od-1" in assayrun("protocols", plugins=demo).stdout
    assert assayrun("demo-hello", plugins=demo).stdout.strip() == "hello from assayrun-demo"
    assert "demo-hello" in assayrun("--help", plugins=demo).stdout  # help lists a plugin's commands
    assert "demo-hello" not in assayrun("--help").stdout


def test_load_only_named_plugins(installed):
    both = [installed["assayrun_demo"], installed["assayrun_broken"]]
    result = assayrun("plugins", "--json", plugins=both, env={"ASSAYRUN_LOAD_PLUGINS": "assayrun-demo"})
    assert [p["name"] for p in json.loads(result.stdout)] == ["demo"]
    assert result.stderr == ""


def test_a_plugin_reusing_a_builtin_reader_name_is_disabled_naming_both(installed, tmp_path):
    clash = [installed["assayrun_clash"]]
    listing = assayrun("plugins", "--json", plugins=clash)
    assert listing.returncode == 0
    [info] = json.loads(listing.stdout)
    assert info["error"] == "registers reader 'grid', which plugin 'assayrunner.readers.grid' registers too"
    result = assayrun("execute", "hemolysis", DATA / "hemolysis" / "valid_plate.csv", "--json", plugins=clash,
                      cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["valid"] is True  # the built-in grid reader
    assert "warning: plugin 'clash' (assayrun-clash 0.0.1) is broken and disabled: registers reader 'grid'" \
        in result.stderr


def _twin(tmp_path) -> Path:
    """A copy of the demo plugin under another name, registering the same assay 'demo-od', installed."""
    source = tmp_path / "src-twin"
    shutil.copytree(PLUGINS / "assayrun_demo", source)
    (source / "assayrun_demo").rename(source / "assayrun_twin")
    toml = source / "pyproject.toml"
    toml.write_text(toml.read_text().replace("assayrun-demo", "assayrun-twin").replace('demo = "assayrun_demo"',
                                                                                      'twin = "assayrun_twin"'))
    twin = tmp_path / "twin"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(twin), str(source)], check=True, capture_output=True)
    return twin


def test_two_plugins_registering_one_assay_name_are_both_disabled(installed, tmp_path):
    """Neither is the rightful owner of 'demo-od': both are broken, each naming the other; the tool works on."""
    both = [installed["assayrun_demo"], _twin(tmp_path)]
    errors = {p["name"]: p["error"] for p in json.loads(assayrun("plugins", "--json", plugins=both).stdout)}
    assert errors == {"demo": "registers assay 'demo-od', which plugin 'twin' registers too",
                      "twin": "registers assay 'demo-od', which plugin 'demo' registers too"}
    plate = tmp_path / "plate.demo"
    plate.write_text("DEMO-READER\nA1 0.05\nA2 0.07\nB1 0.80\nB2 0.90\n")
    run = assayrun("execute", "demo-od", plate, plugins=both, cwd=tmp_path)
    assert run.returncode == 3 and count_rows(tmp_path / "assayrun.db") == 0
    assert "error: assay 'demo-od' comes from plugin 'demo' (assayrun-demo 1.2.3), which is broken" in run.stderr
    assert assayrun("execute", "hemolysis", DATA / "hemolysis" / "valid_plate.csv", plugins=both,
                    cwd=tmp_path).returncode == 0


def test_plugin_api_version_shown_and_a_mismatch_warned(installed):
    both = [installed["assayrun_demo"], installed["assayrun_oldapi"]]
    result = assayrun("plugins", "--json", plugins=both)
    assert result.returncode == 0
    api = {p["distribution"]: p["api"] for p in json.loads(result.stdout)}
    assert api == {"assayrun-demo": assayrunner.PLUGIN_API, "assayrun-oldapi": "0.3"}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "'oldapi'" in warnings[0] and "0.3" in warnings[0], result.stderr
    table = assayrun("plugins", plugins=both).stdout
    assert "api" in table.splitlines()[0] and "0.3" in table
    assert assayrun("oldapi-hello", plugins=both).stdout.strip() == "hello from an old plugin"
    builtin = json.loads(assayrun("plugins", "--all", "--json").stdout)
    assert {p["api"] for p in builtin} == {assayrunner.PLUGIN_API}


def test_reader_whose_sniff_or_read_raises_is_skipped_with_a_warning(installed, tmp_path):
    plate = tmp_path / "plate.csv"
    plate.write_text("Note,FAULTY-READ\n" + (DATA / "hemolysis" / "valid_plate.csv").read_text())
    run = assayrun("execute", "hemolysis", plate, "--json", plugins=[installed["assayrun_faulty"]], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["valid"] is True
    warnings = run.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: reader 'faulty-") for w in warnings)
    assert "'faulty-sniff' (plugin faulty) failed to sniff" in warnings[0] and "RuntimeError: sniff exploded" in warnings[0]
    assert "'faulty-read' (plugin faulty) failed to read" in warnings[1] and "IndexError" in warnings[1]
    shown = assayrun("read", plate, "--json", plugins=[installed["assayrun_faulty"]])
    assert shown.returncode == 0 and json.loads(shown.stdout)["format"] == "grid"


MALFORMED = {"none": "NoneType, not an AssayResult", "dict": "dict, not an AssayResult",
             "nan": "NaN without a flag", "inf": "is infinite", "text-value": "'0.5' is not a number",
             "no-unit": "has no unit", "not-a-result": "results[0] is a dict, not a Result",
             "non-json": "metrics cannot be stored as JSON", "broken-fit": "fits[0] needs 'parameters'",
             "fit-points": "'x' and 'y' differ in length", "raise": "failed: ZeroDivisionError"}


_EVERY_MODE = """
import json, os, sys
from typer.testing import CliRunner
from assayrunner.cli import app
out = {}
for mode in sys.argv[2:]:
    os.makedirs(mode)
    r = CliRunner().invoke(app, ["execute", "faulty", sys.argv[1], "--param", "mode=" + mode, "--db", mode + "/runs.db",
                                 "--out", mode + "/certificates"])
    out[mode] = [r.exit_code, r.stderr]
print(json.dumps(out))
"""


def test_assay_returning_a_malformed_result_exits_3_naming_the_plugin(installed, tmp_path):
    """Every malformed result in one process (the real CLI app, the plugin installed): exit 3, one line naming
    the plugin, nothing stored; the same plugin returning a good result is stored (the check is no blanket)."""
    modes = [*MALFORMED, "good"]
    run = subprocess.run([sys.executable, "-c", _EVERY_MODE, str(DATA / "hemolysis" / "valid_plate.csv"), *modes],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(installed["assayrun_faulty"]),
                              "ASSAYRUN_LOAD_PLUGINS": "assayrun-faulty"})
    outcomes = json.loads(run.stdout)
    assert outcomes["good"][0] == 0, outcomes["good"]
    assert count_rows(tmp_path / "good" / "runs.db") == 1
    for mode, why in MALFORMED.items():
        code, stderr = outcomes[mode]
        errors = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
        assert code == 3 and len(errors) == 1, (mode, stderr)
        assert errors[0].startswith("error: assay 'faulty' (plugin faulty)") and why in errors[0], (mode, errors[0])
        assert "Traceback" not in stderr
        assert count_rows(tmp_path / mode / "runs.db") == 0


def test_doctor_names_a_broken_plugin(installed, tmp_path):
    result = assayrun("doctor", plugins=[installed["assayrun_broken"]], cwd=tmp_path)
    assert result.returncode == 1
    assert "FIX  plugin broken: broken:" in result.stdout and "a_module_that_is_not_installed" in result.stdout
    assert "pip install --upgrade assayrun-broken" in result.stdout


def test_reissue_needs_the_assay_plugin_version_that_computed_the_run(installed, tmp_path):
    """A certificate is never rendered by a missing or other plugin version; verify needs no plugin at all."""
    newer = tmp_path / "newer"
    shutil.copytree(PLUGINS / "assayrun_demo", tmp_path / "src")
    toml = tmp_path / "src" / "pyproject.toml"
    toml.write_text(toml.read_text().replace('version = "1.2.3"', 'version = "1.2.4"'))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(newer), str(tmp_path / "src")], check=True, capture_output=True)
    plate = tmp_path / "plate.demo"
    plate.write_text("DEMO-READER\nA1 0.05\nA2 0.07\nB1 0.80\nB2 0.90\n")
    demo = [installed["assayrun_demo"]]
    assert assayrun("execute", "demo-od", plate, plugins=demo, cwd=tmp_path).returncode == 0
    gone = assayrun("certificate", "1", cwd=tmp_path)
    assert gone.returncode == 2 and "computed by assay 'demo-od' (assayrun-demo 1.2.3), which is not installed" \
        in gone.stderr and "Traceback" not in gone.stderr
    broken = assayrun("certificate", "1", plugins=[*demo, _twin(tmp_path)], cwd=tmp_path)
    assert broken.returncode == 3 and "assay 'demo-od' comes from plugin 'demo' (assayrun-demo 1.2.3), which is " \
        "broken" in broken.stderr  # installed but broken: named, not "not installed"
    other = assayrun("certificate", "1", plugins=[newer], cwd=tmp_path)
    assert other.returncode == 2
    assert "computed by assayrun-demo 1.2.3, but assayrun-demo 1.2.4 is installed" in other.stderr
    assert count_rows(tmp_path / "assayrun.db", "certificates") == 1  # nothing issued
    signed = assayrun("sign", "1", "--role", "reviewed", "--by", "R. Jones", "--meaning", "ok", "--unauthenticated",
                      plugins=[newer], cwd=tmp_path)
    assert signed.returncode == 0 and "warning: the certificate was not issued again" in signed.stderr
    assert count_rows(tmp_path / "assayrun.db", "signatures") == 1  # the signature stands
    again = assayrun("execute", "demo-od", plate, "--supersedes", "1", plugins=[newer], cwd=tmp_path)
    assert again.returncode == 0 and "warning: the certificate of run 1 was not issued again" in again.stderr
    assert count_rows(tmp_path / "assayrun.db") == 2  # re-analysis with the new plugin is stored all the same
    assert assayrun("certificate", "1", plugins=demo, cwd=tmp_path).returncode == 0
    assert assayrun("verify", "1", cwd=tmp_path).returncode == 0
