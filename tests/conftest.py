"""Shared fixtures: a fresh working directory per test and the CLI called in-process."""

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assayrunner.cli import app

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, so assayrun.db and certificates/ land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSAYRUN_DB", raising=False)
    return tmp_path


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    def json(self, *args: str):
        result = self(*args, "--json")
        return result, json.loads(result.stdout)


@pytest.fixture
def cli(workdir):
    return Cli()


def count_rows(db: Path, table: str = "runs") -> int:
    """Rows in a table of a database file, 0 when the file or table does not exist."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        exists = conn.execute("select 1 from sqlite_master where name = ?", [table]).fetchone()
        return conn.execute(f"select count(*) from {table}").fetchone()[0] if exists else 0
