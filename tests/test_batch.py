"""Batch execution: one run per plate, every file an outcome, groups only when the protocol takes several files."""

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, REPO, count_rows

PLATE = DATA / "hemolysis" / "valid_plate.csv"
COMPLEMENT = DATA / "complement" / "valid_plate.csv"
LOT = ("--param", f"@{REPO / 'examples' / 'complement' / 'kit-lot-XYZ.toml'}")  # complement runs need the kit lot


def grid_values(path):
    """Well -> value of every 8 x 12 grid row in a CSV, read with the csv module (not our readers)."""
    rows = [r for r in csv.reader(open(path, newline="")) if r and len(r[0]) == 1 and r[0] in "ABCDEFGH"]
    return {f"{r[0]}{c}": float(v) for r in rows for c, v in enumerate(r[1:13], start=1) if v}


def scaled_plate(path, factor):
    """The valid plate with every absorbance multiplied by factor (the same run, other numbers)."""
    lines = []
    for line in PLATE.read_text().splitlines():
        cells = line.split(",")
        if len(cells) == 13 and cells[0] in list("ABCDEFGH"):
            cells[1:] = [f"{float(c) * factor:.4f}" if c else "" for c in cells[1:]]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def mixed(workdir):
    """A day's folder: two good plates, one invalid (weak positive control), one unreadable, one truncated."""
    files = {"good": workdir / "p1_good.csv", "invalid": workdir / "p2_invalid.csv", "broken": workdir / "p3_broken.csv",
             "truncated": workdir / "p4_truncated.csv", "good2": workdir / "p5_good.csv"}
    files["good"].write_bytes(PLATE.read_bytes())
    files["invalid"].write_text(PLATE.read_text().replace("C,0.0492,0.0498,0.2526,0.2530", "C,0.0492,0.0498,0.0501,0.0499"))
    files["broken"].write_text("this is not a plate export\nat all\n")
    files["truncated"].write_text(PLATE.read_text()[:PLATE.read_text().index("D,") + 20])
    scaled_plate(files["good2"], 1.1)
    return files


def test_mixed_batch_stores_the_good_and_names_every_failure(cli, workdir, mixed):
    missing = workdir / "p6_missing.csv"
    args = [*mixed.values(), missing]
    result, data = cli.json("execute", "hemolysis", *args, "-j", "2")
    assert result.exit_code == 1
    assert [e["file"] for e in data["runs"]] == [str(f) for f in args]  # every file, in order, once
    status = {os.path.basename(e["file"]): e["status"] for e in data["runs"]}
    assert status == {"p1_good.csv": "valid", "p2_invalid.csv": "invalid", "p3_broken.csv": "failed",
                      "p4_truncated.csv": "failed", "p5_good.csv": "valid", "p6_missing.csv": "failed"}
    assert data["summary"] == {**data["summary"], "runs": 6, "valid": 2, "invalid": 1, "failed": 3, "jobs": 2}
    by_file = {os.path.basename(e["file"]): e for e in data["runs"]}
    assert by_file["p2_invalid.csv"]["failed_checks"] == ["positive-control"]
    assert by_file["p2_invalid.csv"]["exit_code"] == 1 and by_file["p2_invalid.csv"]["run_id"] is not None
    for name in ("p3_broken.csv", "p4_truncated.csv", "p6_missing.csv"):
        entry = by_file[name]
        assert entry["run_id"] is None and entry["exit_code"] == 2 and entry["error"].startswith(str(workdir / name))
        assert f"error: {entry['error']}" in result.stderr.splitlines()
    assert "truncated" in by_file["p4_truncated.csv"]["error"]
    assert count_rows(workdir / "assayrun.db") == 3
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        stored = dict(conn.execute("select r.id, f.name from runs r join input_files f on f.run_id = r.id"))
        assert sorted(stored.values()) == ["p1_good.csv", "p2_invalid.csv", "p5_good.csv"]
        assert {e["run_id"]: os.path.basename(e["file"]) for e in data["runs"] if e["run_id"]} == stored
    assert all((workdir / "certificates").glob("run-*-hemolysis.html"))
    assert len(list((workdir / "certificates").glob("*.html"))) == 3


def test_two_files_in_one_call_are_two_runs_each_with_its_own_wells(cli, workdir):
    a = workdir / "a.csv"
    a.write_bytes(PLATE.read_bytes())
    b = scaled_plate(workdir / "b.csv", 1.25)
    result, data = cli.json("execute", "hemolysis", a, b, "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert [e["status"] for e in data["runs"]] == ["valid", "valid"]
    with sqlite3.connect(workdir / "assayrun.db") as conn:
        for entry, path in zip(data["runs"], (a, b)):
            wells = dict(conn.execute("select well, value from wells where run_id = ?", [entry["run_id"]]))
            assert wells == grid_values(path)
            names = [n for (n,) in conn.execute("select name from input_files where run_id = ?", [entry["run_id"]])]
            assert names == [path.name]
    html = open(data["runs"][1]["certificate"]["html"], encoding="utf-8").read()
    assert "a.csv" not in html and "b.csv" in html


def test_python_api_refuses_to_merge_files_the_protocol_reads_one_at_a_time(workdir):
    from assayrunner import UserError
    from assayrunner.engine import execute

    with pytest.raises(UserError, match="takes one export file per run, not 2"):
        execute("hemolysis", [PLATE, PLATE], db=workdir / "x.db")
    assert count_rows(workdir / "x.db") == 0


def test_run_sheet_gives_each_plate_its_samples_and_operator(cli, workdir):
    scaled_plate(workdir / "b.csv", 1.1)
    (workdir / "a.csv").write_bytes(PLATE.read_bytes())
    (workdir / "s_a.csv").write_text("slot,sample\nS1,Liposome A\n")
    (workdir / "s_b.csv").write_text("slot,sample\nS1,Dendrimer B\n")
    (workdir / "sheet.csv").write_text("file;samples;operator\na.csv;s_a.csv;Ann\nb.csv;s_b.csv;Ben\n")
    result, data = cli.json("execute", "hemolysis", "--sheet", workdir / "sheet.csv")
    assert result.exit_code == 0, result.stderr
    for entry, sample, operator in zip(data["runs"], ("Liposome A", "Dendrimer B"), ("Ann", "Ben")):
        _, run = cli.json("runs", "show", entry["run_id"])
        assert run["operator"] == operator
        assert sample in {r["sample"] for r in run["results"]}
    bad = workdir / "bad_sheet.csv"
    bad.write_text("plate,samples\na.csv,s_a.csv\n")
    result = cli("execute", "hemolysis", "--sheet", bad)
    assert result.exit_code == 2 and f"{bad}: line 1: the header needs a column 'file'" in result.stderr


def test_samples_may_be_a_run_sheet_giving_each_plate_its_samples(cli, workdir):
    day = workdir / "day"
    day.mkdir()
    (day / "a.csv").write_bytes(PLATE.read_bytes())
    scaled_plate(day / "b.csv", 1.1)
    (day / "s_a.csv").write_text("slot,sample\nS1,Liposome A\n")
    (day / "s_b.csv").write_text("slot,sample\nS1,Dendrimer B\n")
    (day / "map.csv").write_text("file,samples\na.csv,s_a.csv\nb.csv,s_b.csv\n")
    result, data = cli.json("execute", "hemolysis", day, "--samples", day / "map.csv")
    assert result.exit_code == 0, result.stderr
    assert [os.path.basename(e["file"]) for e in data["runs"]] == ["a.csv", "b.csv"]  # samples files left out
    for entry, sample in zip(data["runs"], ("Liposome A", "Dendrimer B")):
        _, run = cli.json("runs", "show", entry["run_id"])
        assert sample in {r["sample"] for r in run["results"]}
    result, data = cli.json("execute", "hemolysis", day / "b.csv", "--samples", day / "map.csv")
    assert result.exit_code == 0 and len(data["runs"]) == 1
    _, run = cli.json("runs", "show", data["runs"][0]["run_id"])
    assert "Dendrimer B" in {r["sample"] for r in run["results"]}
    (day / "c.csv").write_bytes(PLATE.read_bytes())
    before = count_rows(workdir / "assayrun.db")
    result = cli("execute", "hemolysis", day, "--samples", day / "map.csv")
    assert result.exit_code == 2 and f"{day / 'map.csv'}: no row for plate file {day / 'c.csv'}" in result.stderr
    assert count_rows(workdir / "assayrun.db") == before


@pytest.mark.parametrize("text, where, message", [
    ("file,samples\na.csv,s1.csv\n\n,s2.csv\n", "line 4", "the row names no file"),
    ("run,file,samples\nr1,a.csv,s1.csv\nr1,b.csv,s2.csv\n", "line 3", "run 'r1' has two samples values"),
    ("\n\n", None, "the run sheet is empty"),
])
def test_a_bad_run_sheet_is_named_with_its_line_and_nothing_runs(cli, workdir, text, where, message):
    sheet = workdir / "sheet.csv"
    sheet.write_text(text)
    result = cli("execute", "hemolysis", "--sheet", sheet)
    place = f"{sheet}: {where}: " if where else f"{sheet}: "
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {place}{message}")
    assert count_rows(workdir / "assayrun.db") == 0


@pytest.fixture
def split_complement(workdir):
    """The complement plate exported as two files, one per read, and a protocol copy that takes two files."""
    lines = COMPLEMENT.read_text().splitlines()
    cut = lines.index("650 nm")
    (workdir / "od450.csv").write_text("\n".join(lines[:cut]) + "\n")
    (workdir / "od650.csv").write_text("\n".join(lines[:6] + lines[cut:]) + "\n")
    text = (REPO / "protocols" / "ncl-ita-5.2-sc5b9.toml").read_text()
    (workdir / "two-files.toml").write_text(text.replace('assay = "complement"\n', 'assay = "complement"\nfiles = 2\n', 1))
    return workdir / "od450.csv", workdir / "od650.csv", workdir / "two-files.toml"


def test_group_makes_one_run_from_the_files_of_one_plate(cli, workdir, split_complement):
    od450, od650, protocol = split_complement
    _, whole = cli.json("execute", "complement", *LOT, COMPLEMENT)
    result, data = cli.json("execute", "complement", *LOT, "--protocol", protocol, "--group", f"{od450},{od650}")
    assert result.exit_code == 0, result.stderr
    assert data["runs"][0]["files"] == [str(od450), str(od650)]
    _, run = cli.json("runs", "show", data["runs"][0]["run_id"])
    assert [(r["sample"], r["metric"], r["value"]) for r in run["results"]] == \
        [(r["sample"], r["metric"], r["value"]) for r in whole["results"]]
    assert [f["name"] for f in run["inputs"] if f["kind"] == "export"] == ["od450.csv", "od650.csv"]
    (workdir / "sheet.csv").write_text("run,file\nplate1,od450.csv\nplate1,od650.csv\n")
    result, data = cli.json("execute", "complement", *LOT, "--protocol", protocol, "--sheet", workdir / "sheet.csv")
    assert result.exit_code == 0 and len(data["runs"]) == 1 and data["runs"][0]["status"] == "valid"


def test_files_are_never_merged_unless_the_protocol_takes_several(cli, workdir, split_complement):
    od450, od650, protocol = split_complement
    before = count_rows(workdir / "assayrun.db")
    ungrouped = cli("execute", "complement", *LOT, "--protocol", protocol, od450, od650)
    assert ungrouped.exit_code == 2 and "takes 2 file(s) per run, not 1" in ungrouped.stderr
    assert "--group" in ungrouped.stderr
    grouped = cli("execute", "complement", *LOT, "--group", f"{od450},{od650}")
    assert grouped.exit_code == 2 and "takes 1 file(s) per run, not 2" in grouped.stderr
    same_read = cli("execute", "complement", *LOT, "--protocol", protocol, "--group", f"{od450},{od450}")
    assert same_read.exit_code == 2 and "read '450 nm' is also in od450.csv" in same_read.stderr  # nothing stored
    assert count_rows(workdir / "assayrun.db") == before


def test_folder_and_pattern_expand_to_one_run_per_file(cli, workdir, mixed):
    (workdir / "samples.csv").write_text("slot,sample\nS1,Liposome A\n")
    result, data = cli.json("execute", "hemolysis", workdir, "--samples", workdir / "samples.csv", "--no-certificate")
    assert [os.path.basename(e["file"]) for e in data["runs"]] == sorted(p.name for p in mixed.values())
    assert all(e["certificate"] is None for e in data["runs"]) and not (workdir / "certificates").exists()
    result, data = cli.json("execute", "hemolysis", str(workdir / "p*_good.csv"))
    assert result.exit_code == 0 and [e["status"] for e in data["runs"]] == ["valid", "valid"]
    nested = workdir / "day" / "reader-2"
    nested.mkdir(parents=True)
    (nested / "p7.csv").write_bytes(PLATE.read_bytes())
    result, data = cli.json("execute", "hemolysis", str(workdir / "**" / "p*_good.csv"), "--no-certificate")
    assert [e["file"] for e in data["runs"]] == [str(mixed["good"]), str(mixed["good2"])]  # ** is any depth, none too
    result, data = cli.json("execute", "hemolysis", str(workdir / "**" / "p7.csv"), "--no-certificate")
    assert result.exit_code == 0 and [e["file"] for e in data["runs"]] == [str(nested / "p7.csv")]
    empty = workdir / "empty"
    empty.mkdir()
    assert cli("execute", "hemolysis", empty).exit_code == 2
    assert cli("execute", "hemolysis", str(workdir / "nothing*.csv")).exit_code == 2


def test_a_batch_run_again_in_its_folder_leaves_out_the_database_and_the_settings(cli, workdir):
    """`assayrun execute hemolysis .` in the folder of exports puts assayrun.db there (and reads assayrun.toml from
    there): the next batch of that folder, or a pattern, takes neither (nor SQLite's -wal, -shm and -journal files)
    for a plate."""
    for name in ("p1.csv", "p2.csv"):
        (workdir / name).write_bytes(PLATE.read_bytes())
    (workdir / "assayrun.toml").write_text("[lab]\nname = \"Screening core\"\n")
    for given in (".", ".", "*", str(workdir)):
        (workdir / "assayrun.db-journal").write_bytes(b"")  # as a rolled-back journal may be left
        result, data = cli.json("execute", "hemolysis", given, "--no-certificate")
        assert result.exit_code == 0, (given, result.stdout)
        assert [Path(e["file"]).name for e in data["runs"]] == ["p1.csv", "p2.csv"], given
    assert count_rows(workdir / "assayrun.db") == 8


def test_office_lock_files_beside_the_exports_are_not_runs(cli, workdir):
    """Excel keeps an owner file `~$NAME.xlsx` beside a workbook it has open (about 160 bytes: the user's name, in
    ANSI then UTF-16). A folder or a pattern runs the exports beside it only; named on the command line, it is run
    and fails, as any file that is not an export."""
    folder = workdir / "day"
    folder.mkdir()
    (folder / "plate.csv").write_bytes(PLATE.read_bytes())
    owner = folder / "~$plate.xlsx"
    owner.write_bytes(bytes([5]) + b"alice".ljust(53) + "alice".encode("utf-16-le").ljust(106, b" "))
    for given in (folder, folder / "*"):
        result, data = cli.json("execute", "hemolysis", str(given), "--no-certificate")
        assert result.exit_code == 0 and [e["file"] for e in data["runs"]] == [str(folder / "plate.csv")], given
    result, data = cli.json("execute", "hemolysis", owner, folder / "plate.csv", "--no-certificate")
    assert result.exit_code == 1 and [e["status"] for e in data["runs"]] == ["failed", "valid"]


@pytest.fixture(scope="module")
def crash_plugin(tmp_path_factory):
    target = tmp_path_factory.mktemp("crash")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO / "tests" / "plugins" / "assayrun_crash")],
                   check=True, capture_output=True)
    return target


def test_a_dying_or_hanging_worker_fails_only_its_file(crash_plugin, tmp_path):
    """With one worker, each crash also takes the next file the worker held: that file must still run."""
    (tmp_path / "good.csv").write_bytes(PLATE.read_bytes())
    (tmp_path / "abort.txt").write_text("CRASHTEST abort\n")
    (tmp_path / "hang.txt").write_text("CRASHTEST sleep 60\n")
    (tmp_path / "good2.csv").write_bytes(PLATE.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(crash_plugin), "ASSAYRUN_LOAD_PLUGINS": "assayrun-crash"}
    env.pop("ASSAYRUN_DB", None)
    run = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "good.csv", "abort.txt",
                          "hang.txt", "good2.csv", "-j", "1", "--timeout", "3", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    entries = {e["file"]: e for e in json.loads(run.stdout)["runs"]}
    assert [entries[f]["status"] for f in ("good.csv", "abort.txt", "hang.txt", "good2.csv")] == \
        ["valid", "failed", "failed", "valid"]
    assert entries["abort.txt"]["error"] == "abort.txt: the worker process died (killed by SIGABRT); " \
                                            "nothing was stored for this file"
    assert entries["hang.txt"]["error"] == "hang.txt: stopped after 3 s (the per-file time limit, --timeout)"
    assert count_rows(tmp_path / "assayrun.db") == 2


def ctrl_c_as_usual():
    """For a command the test interrupts: SIGINT handled as usual. A test suite started in the background (a
    shell's `cmd &`) passes SIGINT on as ignored, Python keeps ignoring it, and the Ctrl-C would never arrive."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_stored_runs_and_reports_the_rest(crash_plugin, tmp_path):
    import signal
    import time

    (tmp_path / "hang.txt").write_text("CRASHTEST sleep 60\n")
    (tmp_path / "good.csv").write_bytes(PLATE.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(crash_plugin), "ASSAYRUN_LOAD_PLUGINS": "assayrun-crash"}
    env.pop("ASSAYRUN_DB", None)
    process = subprocess.Popen([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "hang.txt", "good.csv",
                                "-j", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=env, preexec_fn=ctrl_c_as_usual)
    children = f"/proc/{process.pid}/task/{process.pid}/children"
    deadline = time.monotonic() + 60
    while not open(children).read().strip() and time.monotonic() < deadline:  # the batch has started its worker
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in stderr
    entries = json.loads(stdout)["runs"]
    assert [e["status"] for e in entries] == ["failed", "failed"]
    assert entries[0]["error"] == "hang.txt: interrupted (Ctrl-C) before this run was stored"


def test_spawned_workers_compute_the_same_run(workdir):
    """Where workers cannot be forked (macOS, Windows) they start afresh and prepare the protocol themselves."""
    from assayrunner import batch, engine, workers

    job = batch.Job("hemolysis", None, (), None, None)
    units = [batch.Unit((PLATE,)), batch.Unit((workdir / "missing.csv",))]
    replies = dict(workers.run(batch.compute, [(job, u) for u in units], jobs=1, timeout=120, start_method="spawn"))
    here = engine.compute(engine.prepare("hemolysis"), [PLATE])
    theirs, ours = ({table: list(rows) for table, rows in run.rows.items()} for run in (replies[0], here.stored))
    assert theirs["runs"][0]["protocol_sha256"] == here.protocol.sha256
    same_time = {**theirs, "runs": [{**theirs["runs"][0], "created_at": ours["runs"][0]["created_at"]}]}
    assert same_time == ours  # the same rows (the two ran perhaps a second apart)
    assert isinstance(replies[1], workers.Failure) and replies[1].exit_code == 2


def test_a_batch_lets_go_of_the_database_while_its_workers_are_busy(crash_plugin, tmp_path):
    """Runs are committed in groups, but a group is not held open while a worker hangs: another process
    (waiting at most 3 s for the lock) stores its run meanwhile, and the batch's stored run is already visible."""
    import signal
    import time

    (tmp_path / "good.csv").write_bytes(PLATE.read_bytes())
    (tmp_path / "hang.txt").write_text("CRASHTEST sleep 60\n")
    env = {**os.environ, "PYTHONPATH": str(crash_plugin), "ASSAYRUN_LOAD_PLUGINS": "assayrun-crash"}
    env.pop("ASSAYRUN_DB", None)
    process = subprocess.Popen([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "good.csv", "hang.txt",
                                "-j", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=env, preexec_fn=ctrl_c_as_usual)
    deadline = time.monotonic() + 30  # the worker hangs for 60 s: a group held open would show nothing before
    while count_rows(tmp_path / "assayrun.db") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count_rows(tmp_path / "assayrun.db") == 1
    other = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "good.csv", "--json"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           env={**env, "ASSAYRUN_DATABASE_LOCK_TIMEOUT_S": "3"})
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert other.returncode == 0, other.stderr
    assert [e["status"] for e in json.loads(stdout)["runs"]] == ["valid", "failed"]
    assert count_rows(tmp_path / "assayrun.db") == 2


def test_a_group_stored_during_a_read_keeps_the_reads_time_limit(crash_plugin, tmp_path):
    """good.csv is held while hang.txt is read; its group is stored in the middle of that read (a PDF certificate:
    about a second) and the read's 1 s limit expires meanwhile: the store finishes, then the read fails with its
    own message."""
    (tmp_path / "good.csv").write_bytes(PLATE.read_bytes())
    (tmp_path / "hang.txt").write_text("CRASHTEST sleep 60\n")
    env = {**os.environ, "PYTHONPATH": str(crash_plugin), "ASSAYRUN_LOAD_PLUGINS": "assayrun-crash",
           "ASSAYRUN_LIMITS_MAX_READ_SECONDS": "1"}
    env.pop("ASSAYRUN_DB", None)
    run = subprocess.run([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "good.csv", "hang.txt",
                          "--pdf", "-j", "1", "--json"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    good, hang = json.loads(run.stdout)["runs"]
    assert (good["status"], hang["status"]) == ("valid", "failed"), run.stderr
    assert Path(good["certificate"]["pdf"]).read_bytes().startswith(b"%PDF")
    assert "reading took longer than 1 s" in hang["error"] and hang["exit_code"] == 2
    assert count_rows(tmp_path / "assayrun.db") == 1


def test_workers_end_when_their_command_is_killed(tmp_path):
    """SIGKILL of the command (no Ctrl-C to handle): its workers see it gone and end, storing nothing more,
    instead of waiting for work forever."""
    import signal
    import time

    folder = tmp_path / "plates"
    folder.mkdir()
    for k in range(400):
        (folder / f"plate{k:03}.csv").write_bytes(PLATE.read_bytes())
    process = subprocess.Popen([sys.executable, "-m", "assayrunner", "execute", "hemolysis", "plates", "-j", "2",
                                "--no-certificate", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=tmp_path)
    children = f"/proc/{process.pid}/task/{process.pid}/children"
    deadline = time.monotonic() + 60
    while count_rows(tmp_path / "assayrun.db") == 0 and time.monotonic() < deadline:  # the workers are storing
        time.sleep(0.05)
    workers = open(children).read().split()
    assert len(workers) == 2
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    for pid in alive:  # not left behind if the test fails
        os.kill(int(pid), signal.SIGKILL)
    assert alive == []
    with sqlite3.connect(tmp_path / "assayrun.db") as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_folder_expands_in_path_order_without_skipped_files(tmp_path):
    """_expand sorts a folder's files by name and resolves them only when some are to be skipped: the same files in
    the same order as sorting the paths and resolving every one."""
    from pathlib import Path

    from assayrunner.batch import _expand

    folder = tmp_path / "plates"
    folder.mkdir()
    for name in ["b.csv", "B.csv", "a b.csv", "a-b.csv", "a_b.csv", "10.csv", "9.csv", "é.csv", "z.txt", ".hidden",
                 "~$b.xlsx"]:
        (folder / name).write_text("x")
    (folder / "sub").mkdir()
    (folder / "link.csv").symlink_to(folder / "z.txt")
    samples = folder / "z.txt"
    for skipped in (set(), {samples.resolve()}, {Path("/elsewhere/x.csv")}):
        general = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name[0] != "." and p.name[:2] != "~$"
                   and p.resolve() not in skipped]
        assert _expand(folder, skipped) == general
    assert folder / "link.csv" not in _expand(folder, {samples.resolve()})  # a link to a skipped file is skipped
