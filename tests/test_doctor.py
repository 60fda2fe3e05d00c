"""`assayrun doctor`: each check holds on a sound installation and names what to fix when it does not."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assayrunner import filesystems, store
from assayrunner.errors import UserError

from conftest import DATA

PLATE = DATA / "hemolysis" / "valid_plate.csv"


@pytest.fixture
def stored(cli, workdir):
    assert cli("execute", "hemolysis", PLATE).exit_code == 0
    return workdir / "assayrun.db"


def fixes(result) -> dict[str, str]:
    lines = result.stdout.splitlines()
    return {line[5:].split(":")[0]: lines[k + 1].strip() for k, line in enumerate(lines) if line.startswith("FIX")}


def test_all_good(cli, stored):
    result = cli("doctor")
    assert result.exit_code == 0, result.stdout
    checks = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert checks == ["OK   plugins", "OK   PDF certificates", "OK   database on a local disk", "OK   schema version",
                      "OK   integrity_check", "OK   triggers present", "OK   audit chain intact",
                      "OK   records match the audit log"]
    data = json.loads(cli("doctor", "--json").stdout)
    assert all(f["ok"] for f in data) and {"check", "ok", "detail", "fix"} <= set(data[0])


def test_no_database_yet_is_not_a_problem(cli, workdir):
    result = cli("doctor")
    assert result.exit_code == 0 and "does not exist yet" in result.stdout
    assert not (workdir / "assayrun.db").exists()  # doctor looks, never creates


def test_dropped_triggers_and_a_cut_chain(cli, stored):
    with sqlite3.connect(stored) as conn:
        conn.execute("drop trigger audit_log_no_delete")
        conn.execute("delete from audit_log where id = (select max(id) from audit_log)")
    result = cli("doctor")
    assert result.exit_code == 1
    found = fixes(result)
    assert set(found) == {"triggers present", "audit chain intact", "records match the audit log"}
    assert "restore the database from a backup" in found["triggers present"]
    assert "rows were deleted at the end" in result.stdout


def test_schema_written_by_a_newer_version(cli, stored):
    with sqlite3.connect(stored) as conn:
        conn.execute("insert into _migrations values ('m099_future', '2027-01-01')")
    result = cli("doctor")
    assert result.exit_code == 1 and "unknown: m099_future" in result.stdout
    assert "upgrade" in fixes(result)["schema version"]


def test_pending_migrations_are_reported_not_applied(cli, workdir):
    db = store.Database(workdir / "old.db")
    store.m001_initial(db)
    db["_migrations"].insert({"name": "m001_initial", "applied_at": "2026-01-01T00:00:00+00:00"})
    db.close()
    result = cli("doctor", "--db", workdir / "old.db")
    assert result.exit_code == 0 and ("m002_integrity, m003_result_qualifier, m003_check_unit_and_modified_protocol, "
                                      "m005_records, m004_protocol_texts, m006_chain_head, m007_well_plate, "
                                      "m008_certificate_path_index pending") in result.stdout
    assert [r[0] for r in sqlite3.connect(workdir / "old.db").execute("select name from _migrations")] == \
        ["m001_initial"]


def test_a_damaged_file(cli, stored):
    with sqlite3.connect(stored) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
        pages = conn.execute("pragma page_count").fetchone()[0]
        page = conn.execute("pragma page_size").fetchone()[0]
    data = bytearray(stored.read_bytes())
    for k in range(2, pages):  # scribble over every page after the schema
        data[k * page + 8:k * page + 64] = os.urandom(56)
    stored.write_bytes(bytes(data))
    result = cli("doctor")
    assert result.exit_code == 1
    assert "integrity_check" in fixes(result) or "database" in fixes(result)
    assert "Traceback" not in result.output


def test_pdf_support_names_the_system_packages(workdir):
    """WeasyPrint present but its system library missing: a stand-in weasyprint module that fails to load
    as WeasyPrint does (OSError from cffi's dlopen)."""
    stub = workdir / "stub"
    stub.mkdir()
    (stub / "weasyprint.py").write_text("raise OSError(\"cannot load library 'libpango-1.0-0': libpango-1.0.so.0: "
                                        "cannot open shared object file: No such file or directory\")\n")
    env = {**os.environ, "PYTHONPATH": str(stub)}
    result = subprocess.run([sys.executable, "-m", "assayrunner", "doctor"], cwd=workdir, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "FIX  PDF certificates: WeasyPrint cannot load a system library" in result.stdout
    assert "libpango-1.0-0 libpangoft2-1.0-0" in result.stdout


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/lab nfs4 rw,relatime 0 0
/dev/sdb1 /mnt/lab/local ext4 rw 0 0
//nas/share /media/with\\040space cifs rw 0 0
"""


@pytest.mark.parametrize("path, expected", [
    ("/home/me/assayrun.db", None),
    ("/mnt/lab/assayrun.db", "nfs4"),
    ("/mnt/lab/sub/dir/new.db", "nfs4"),  # not there yet: the folder it would be made in counts
    ("/mnt/lab/local/assayrun.db", None),  # a local disk mounted inside the share
    ("/media/with space/assayrun.db", "cifs"),
    ("/mnt/laboratory/assayrun.db", None),  # a prefix of the name is not a parent folder
])
def test_network_filesystem_from_the_mount_table(path, expected):
    assert filesystems.network_filesystem(Path(path), MOUNTS) == expected


#: macOS's `mount` (as it prints it, 14.x): SMB, AFP, NFS and WebDAV shares beside local APFS volumes.
MOUNTS_MACOS = """\
/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)
devfs on /dev (devfs, local, nobrowse)
/dev/disk3s5 on /System/Volumes/Data (apfs, local, journaled, nobrowse, protect)
map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)
//alice@nas.lab.example/plates on /Volumes/plates (smbfs, nodev, nosuid, mounted by alice)
afp_0TQBq20bxp5S0VPR1l0bq5bQ-1.2d000006 on /Volumes/Old Share (afpfs, nodev, nosuid, mounted by alice)
server:/export on /Volumes/nfs (nfs, asynchronous)
https://dav.example/remote.php on /Volumes/dav (webdav, nodev, noexec, nosuid, mounted by alice)
/dev/disk4s1 on /Volumes/Lab (USB) (apfs, local, nodev, nosuid, journaled, noowners, mounted by alice)
"""


@pytest.mark.parametrize("path, expected", [
    ("/Users/alice/assayrun.db", None),
    ("/Volumes/plates/day1/assayrun.db", "smbfs"),
    ("/Volumes/Old Share/assayrun.db", "afpfs"),
    ("/Volumes/nfs/assayrun.db", "nfs"),
    ("/Volumes/dav/assayrun.db", "webdav"),
    ("/Volumes/Lab (USB)/assayrun.db", None),  # a local disk whose name has parentheses
    ("/Volumes/platesX/assayrun.db", None),
])
def test_network_filesystem_from_the_macos_mount_table(path, expected):
    assert filesystems.network_filesystem(Path(path), MOUNTS_MACOS) == expected


@pytest.mark.parametrize("path, expected", [
    (r"\\nas\lab\assayrun.db", "smb"),
    ("//nas/lab/assayrun.db", "smb"),
    (r"\\?\UNC\nas\lab\assayrun.db", "smb"),
    (r"Z:\assayrun.db", "network drive"),  # Z: mapped to a share
    (r"\\?\Z:\lab\assayrun.db", "network drive"),
    (r"C:\Users\alice\assayrun.db", None),
    (r"\\?\C:\lab\assayrun.db", None),
    (r"\\.\C:\lab\assayrun.db", None),
    (r"\\.\Z:\lab\assayrun.db", "network drive"),
    ("assayrun.db", None),
])
def test_network_share_from_a_windows_path(path, expected):
    """What GetDriveTypeW would say of each drive root (4: DRIVE_REMOTE, 3: DRIVE_FIXED) given beside the path."""
    def drive_type(root):
        return {"Z:\\": 4, "C:\\": 3}[root]  # a KeyError for anything but a drive's root

    assert filesystems.windows_share(path, drive_type) == expected


def test_a_database_on_a_network_share_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError) as refused:
        filesystems.refuse_network_filesystem(Path("/mnt/lab/assayrun.db"), MOUNTS)
    assert str(refused.value).startswith("/mnt/lab/assayrun.db: the database is on a network file system (nfs4)")
    assert "keep the database on a local disk" in str(refused.value) and "\n" not in str(refused.value)
    assert filesystems.network_filesystem(tmp_path / "x.db") is None  # this machine's temp folder is local
