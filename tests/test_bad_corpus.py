"""The catalogue of bad inputs (tests/data/bad/cases.toml) through the real CLI: each exits 2 with exactly one
line on stderr naming the file or option and the place, and leaves the database byte-identical."""

import shutil
import sqlite3
import tomllib

import pytest

from conftest import DATA, Cli, count_rows

BAD = DATA / "bad"
CASES = {case["name"]: case for case in tomllib.loads((BAD / "cases.toml").read_text())["case"]}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A database that already holds one valid run (its bytes must not change)."""
    folder = tmp_path_factory.mktemp("seeded")
    result = Cli()("execute", "hemolysis", DATA / "hemolysis" / "valid_plate.csv", "--db", folder / "runs.db",
                   "--out", folder / "certificates")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(folder / "runs.db") as conn:  # everything in the one file, so a copy is the database
        conn.execute("pragma wal_checkpoint(truncate)")
    return folder / "runs.db"


def test_the_catalogue_is_broad():
    groups = {next((a.split("/")[0] for a in case["args"] if a.split("/")[0] in
                    ("readers", "protocols", "samples", "options")), "options") for case in CASES.values()}
    assert len(CASES) >= 60 and groups == {"readers", "protocols", "samples", "options"}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_refused_with_one_line(name, seeded, tmp_path, monkeypatch):
    case = CASES[name]
    db = tmp_path / "runs.db"
    shutil.copy(seeded, db)
    before = db.read_bytes()
    monkeypatch.chdir(BAD)
    monkeypatch.delenv("ASSAYRUN_TEMPLATES", raising=False)
    args = [a.replace("{data}", str(DATA)) for a in case["args"]]
    extra = [] if args[0] != "execute" else ["--db", str(db)] + (
        [] if "--out" in args else ["--out", str(tmp_path / "certificates")])
    result = Cli()(*args, *extra)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in case["expect"]:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output
    assert db.read_bytes() == before and count_rows(db) == 1
    assert not (tmp_path / "certificates").exists() or not any((tmp_path / "certificates").iterdir())
