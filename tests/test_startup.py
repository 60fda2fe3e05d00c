"""Start-up: `--version` alone, and what `--help` imports (the timings are in bench/, not here)."""

import os
import re
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


def test_a_run_imports_only_its_own_assays_analysis(tmp_path):
    """Every built-in assay is registered, but a run imports the analysis of its own assay only (the others'
    are imported at their first run)."""
    plate = REPO / "examples" / "hemolysis" / "plate.csv"
    others = ["assayrun_coagulation.analysis", "assayrun_complement.analysis", "assayrun_cytotoxicity.analysis",
              "assayrun_quant.analysis", "assayrun_hemolysis.percent_pc"]
    code = ("import sys\nfrom pathlib import Path\nfrom assayrunner.engine import execute\n"
            "from assayrunner.plugins import load\n"
            f"outcome = execute('hemolysis', [Path({str(plate)!r})], db=Path('x.db'), certificate=False)\n"
            "print(outcome.valid, sorted(load().assays))\n"
            f"print([m for m in {others!r} if m in sys.modules])")
    env = {**os.environ, "ASSAYRUN_LOAD_PLUGINS": ""}  # the built-in plugins only
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    valid_and_assays, imported = out.stdout.strip().splitlines()
    assert valid_and_assays == ("True ['coagulation', 'complement', 'cytotoxicity', 'hemolysis', 'hemolysis-pc', "
                                "'quant']")
    assert imported == "[]"


def _outcome(args, cwd, fast: bool):
    """Exit code, output and the files left, through run() (`python -m assayrunner`) or through main() with the
    interpreter's usual exit."""
    usual = ("import runpy\nfrom assayrunner import cli\ncli.run = cli.main\n"
             "runpy.run_module('assayrunner', run_name='__main__', alter_sys=True)")
    code = [sys.executable, "-m", "assayrunner", *args] if fast else [sys.executable, "-c", usual, *args]
    run = subprocess.run(code, capture_output=True, text=True, cwd=cwd)
    return run.returncode, run.stdout.replace(str(cwd), "CWD"), run.stderr, sorted(p.name for p in cwd.iterdir())


def test_run_exits_as_the_usual_exit_would(tmp_path):
    """run() ends the process without the interpreter's teardown: same exit codes, output and files (no WAL
    left beside the database) as main() followed by the usual exit, for successes, errors and a batch."""
    plate = REPO / "examples" / "hemolysis" / "plate.csv"
    cases = [["--version"], ["--help"], [], ["execute", "nope", str(plate)],
             ["execute", "hemolysis", str(plate), "--json", "--no-certificate"],
             ["execute", "hemolysis", str(plate), str(plate), "-j", "1", "--json"],
             ["runs"], ["runs", "--json"], ["verify"]]
    for k, args in enumerate(cases):
        got = {}
        for fast in (True, False):
            cwd = tmp_path / f"{k}-{fast}"
            cwd.mkdir()
            if args[:1] in (["runs"], ["verify"]):
                assert _outcome(["execute", "hemolysis", str(plate)], cwd, fast)[0] == 0
            got[fast] = _outcome(args, cwd, fast)
        assert _masked(got[True]) == _masked(got[False]), args


def _masked(outcome):
    """Without what differs between any two runs: the times, the digests (any long hex), the
    database's id."""
    code, out, err, files = outcome
    for pattern, replacement in ((r"\d{4}-\d\d-\d\dT[\d:+]+", "T"), (r"[0-9a-f]{16,}", "?"),
                                 (r'"seconds": [\d.]+', '"seconds": ?'),
                                 (r"(run-\d+-[\w-]+)-[0-9a-f]{8}\.html", r"\1.html")):
        out = re.sub(pattern, replacement, out)
    return code, out, err, files


def test_a_batch_closes_its_database(tmp_path, monkeypatch):
    """batch.execute closes the database it opened (its WAL checkpointed), so run() can end the command at once."""
    import gc
    import weakref

    from assayrunner import batch, store

    monkeypatch.setattr(store, "_connections", weakref.WeakSet())  # not the other tests' databases
    plate = REPO / "examples" / "hemolysis" / "plate.csv"
    units = [batch.Unit((plate,)), batch.Unit((tmp_path / "missing.csv",))]
    gc.disable()  # not closed by the collector freeing it: the database is in reference cycles
    try:
        entries, _ = batch.execute(batch.Job("hemolysis", None, (), None, None), units, db=tmp_path / "x.db",
                                   out=tmp_path / "certificates", templates=None, pdf=False, certificate=False,
                                   jobs=1, timeout=120)
        assert [e.status for e in entries] == ["valid", "failed"]
        assert not store.any_open() and not (tmp_path / "x.db-wal").exists()
    finally:
        gc.enable()


def test_exit_now_waits_for_an_open_database(tmp_path, monkeypatch):
    """With a database still open (closing it checkpoints the WAL) _exit_now leaves the exit to the usual
    path; once it is closed it runs the atexit handlers and ends the process with the code."""
    import weakref

    from assayrunner import cli, store

    monkeypatch.setattr(store, "_connections", weakref.WeakSet())  # not the other tests' databases
    ended = []
    monkeypatch.setattr(cli.os, "_exit", lambda code: ended.append(code))
    monkeypatch.setattr("atexit._run_exitfuncs", lambda: ended.append("atexit"))
    db = store.open_db(tmp_path / "x.db")
    cli._exit_now(3)
    assert ended == [] and store.any_open()
    db.close()
    read_only = store.open_read_only(tmp_path / "x.db")
    cli._exit_now(3)
    assert ended == []
    read_only.close()
    assert not store.any_open()
    cli._exit_now(3)
    assert ended == ["atexit", 3]
