"""Where a database may live: SQLite's locks do not hold on network file systems, so runs could be lost there."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError

_OCTAL = re.compile(r"\\([0-7]{3})")


#: File system types where SQLite's locks do not hold (or not reliably): a database there can lose runs.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "coda", "davfs", "fuse.davfs2",
    "fuse.sshfs", "sshfs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "lustre", "gpfs", "beegfs",
    "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.goofys", "fuse.blobfuse", "fuse.smbnetfs", "fuse.cifs"})


def network_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """The file system type when `path` (or the folder it would be created in) lies on a network file
    system, else None. Linux: from /proc/mounts (or the given text in its format); elsewhere None."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = Path(path).resolve()  # symlinks followed as far as the path exists
    best, fstype = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[1]))  # a space is written \040
        if (target == point or point in target.parents) and len(point.parts) > best:
            best, fstype = len(point.parts), fields[2]
    return fstype if fstype in NETWORK_FILESYSTEMS or (fstype or "").startswith("nfs") else None


def refuse_network_filesystem(path: Path, mounts: str | None = None) -> None:
    """UserError for a database on a network file system."""
    fstype = network_filesystem(path, mounts)
    if fstype:
        raise UserError(f"the database is on a network file system ({fstype}), where SQLite's locking does not "
                        "hold and runs can be lost; keep the database on a local disk (--db or ASSAYRUN_DB)",
                        file=path)
