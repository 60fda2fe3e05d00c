"""Start-up: `--version` alone, and what `--help` imports (the timings are in bench/, not here)."""

import os
import subprocess
import sys

from conftest import REPO

PROBE = ("import sys\nsys.argv = ['assayrun', {arg!r}]\nfrom assayrunner.cli import main\n"
         "try:\n    main()\nexcept SystemExit:\n    pass\n"
         "print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'numpy', 'pydantic', 'importlib_metadata', "
         "'sqlite_utils', 'jinja2'}} | ({{'importlib.metadata'}} & set(sys.modules))))")


def test_version_alone(tmp_path):
    from assayrunner import __version__

    run = subprocess.run([sys.executable, "-m", "assayrunner", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout == f"assayrunner {__version__}\n" and run.stderr == ""
    assert __version__ == _pyproject_version()


def _pyproject_version():
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_version_and_help_load_no_assay_machinery():
    """Without third-party plugins (none loaded), neither imports the plugins, numpy or importlib.metadata."""
    env = {**os.environ, "ASSAYRUN_LOAD_PLUGINS": ""}
    for arg in ("--version", "--help"):
        out = subprocess.run([sys.executable, "-c", PROBE.format(arg=arg)], capture_output=True, text=True, check=True,
                             env=env)
        assert out.stdout.strip().splitlines()[-1] == "[]", arg


def test_builtin_plugins_add_no_commands():
    """`--help` skips importing the built-in plugins for commands; this keeps that shortcut honest."""
    from assayrunner.plugins import load

    loaded = load()
    builtin = [name for name, plugin in loaded.manager.list_name_plugin()
               if next(i for i in loaded.info if i.name == name).builtin]
    assert len(builtin) >= 4
    for name in builtin:
        assert "register_commands" not in next(i for i in loaded.info if i.name == name).hooks


def test_a_run_does_not_import_pandas(tmp_path):
    """sqlite-utils would import pandas (when installed) for nothing: the store hides it. A whole run, with
    its certificate, imports neither pandas nor scipy."""
    plate = REPO / "examples" / "hemolysis" / "plate.csv"
    code = ("import sys\nfrom pathlib import Path\nfrom assayrunner.engine import execute\n"
            f"outcome = execute('hemolysis', [Path({str(plate)!r})], db=Path('x.db'))\n"
            "print(outcome.valid, 'pandas' in sys.modules, 'scipy' in sys.modules)")
    env = {**os.environ, "ASSAYRUN_LOAD_PLUGINS": ""}  # the built-in plugins only
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    assert out.stdout.split() == ["True", "False", "False"]
