"""Where a database may live: SQLite's locks do not hold on network file systems, so runs could be lost there."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

_OCTAL = re.compile(r"\\([0-7]{3})")


#: File system types where SQLite's locks do not hold (or not reliably): a database there can lose runs. Linux's
#: names (/proc/mounts) and macOS's (`mount`: smbfs, afpfs, webdav, nfs).
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "coda", "davfs", "fuse.davfs2",
    "fuse.sshfs", "sshfs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "lustre", "gpfs", "beegfs",
    "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.goofys", "fuse.blobfuse", "fuse.smbnetfs", "fuse.cifs",
    "afpfs", "webdav"})

#: A line of the BSD and macOS mount table (`mount`): "SOURCE on MOUNT POINT (TYPE, OPTION, ...)".
_BSD_MOUNT = re.compile(r"^.+? on (?P<point>/.*) \((?P<type>[^,()]+)[,)]")

#: What GetDriveTypeW says of a drive on another computer (a mapped network drive).
_DRIVE_REMOTE = 4


def network_filesystem(path: Path, mounts: str | None = None) -> str | None:
    r"""The file system type when `path` (or the folder it would be created in) lies on a network file
    system, else None. Windows: a UNC path (\\server\share) or a mapped network drive. Elsewhere the mount table:
    `mounts` (the text of /proc/mounts, or of macOS's `mount`), else this machine's."""
    if mounts is None and sys.platform == "win32":
        return windows_share(str(Path(path).resolve()), _drive_type)
    mounts = _mount_table() if mounts is None else mounts
    if mounts is None:
        return None
    target = Path(path).resolve()  # symlinks followed as far as the path exists
    best, fstype = -1, None
    for point, kind in _mount_points(mounts):
        if (target == point or point in target.parents) and len(point.parts) > best:
            best, fstype = len(point.parts), kind
    return fstype if fstype in NETWORK_FILESYSTEMS or (fstype or "").startswith("nfs") else None


def _mount_points(mounts: str):
    r"""(mount point, file system type) of each line of a mount table: /proc/mounts' (a space written \040) or
    `mount`'s on macOS and the BSDs."""
    for line in mounts.splitlines():
        bsd = _BSD_MOUNT.match(line)
        if bsd:
            yield Path(bsd["point"]), bsd["type"].strip()
            continue
        fields = line.split()
        if len(fields) >= 3:
            yield Path(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[1])), fields[2]


def _mount_table() -> str | None:
    """This machine's mount table: /proc/mounts on Linux, `mount`'s output on macOS; None where neither is had."""
    try:
        if sys.platform == "darwin":
            return subprocess.run(["/sbin/mount"], capture_output=True, text=True, timeout=10, check=True).stdout
        return Path("/proc/mounts").read_text()
    except (OSError, subprocess.SubprocessError):
        return None


def windows_share(path: str, drive_type: Callable[[str], int]) -> str | None:
    r"""'smb' for a Windows path on a share (\\server\share\..., \\?\UNC\server\..., or // for \\), 'network drive'
    for one on a drive letter that drive_type(root, e.g. 'Z:\') says is remote; else None."""
    text = path.replace("/", "\\")
    if text[:8].upper() == "\\\\?\\UNC\\" or (text.startswith("\\\\") and text[2:4] not in ("?\\", ".\\")):
        return "smb"
    drive = text[4:6] if text.startswith(("\\\\?\\", "\\\\.\\")) else text[:2]  # \\?\C: or \\.\C: names the drive after its prefix
    if len(drive) == 2 and drive[1] == ":" and drive[0].isalpha() and drive_type(drive + "\\") == _DRIVE_REMOTE:
        return "network drive"
    return None


def _drive_type(root: str) -> int:
    import ctypes

    return ctypes.windll.kernel32.GetDriveTypeW(root)


def refuse_network_filesystem(path: Path, mounts: str | None = None) -> None:
    """UserError for a database on a network file system."""
    fstype = network_filesystem(path, mounts)
    if fstype:
        raise UserError(f"the database is on a network file system ({fstype}), where SQLite's locking does not "
                        "hold and runs can be lost; keep the database on a local disk (--db or ASSAYRUN_DB)",
                        file=path)
