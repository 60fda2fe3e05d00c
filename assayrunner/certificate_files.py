"""Certificate files that exist only for stored runs: written under a temporary name, named after the
commit, never overwriting another file; what a killed process left is finished or removed by the next writer."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from sqlite_utils import Database

from . import store
from .errors import UserError

PARTIAL = ".partial"


def write_after_commit(db: Database, out: Path, stem: str, fmt: str, content: bytes) -> Path:
    """Write `content` under a temporary name in `out` now, and give it its name once the open transaction
    commits: a certificate file never exists for a run that was not stored. The name is `stem.fmt`, else
    `stem-2.fmt`, `stem-3.fmt` ... (a re-issue of an unchanged record is the same revision): the first name no
    file has, no certificate of this database recorded (committed, perhaps not yet renamed) and no partial file
    claims; an existing file is never overwritten. Call under the write lock (inside store.transaction())."""
    folder, n = out.resolve(), 1
    path = _named(folder, f"{stem}.{fmt}")
    while _taken(db, path):
        n += 1
        path = _named(folder, f"{stem}-{n}.{fmt}")
    partial = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    try:
        _write_new(partial, content)
    except OSError as exc:
        if not isinstance(exc, FileExistsError):
            partial.unlink(missing_ok=True)
        raise UserError(f"cannot write the certificate: {exc.strerror}", file=path) from None
    partials = _partials(db, path.parent)
    partials.add(partial.name)

    def undo() -> None:
        partial.unlink(missing_ok=True)
        partials.discard(partial.name)

    store.after_commit(db, lambda: publish(partial, path), undo=undo)
    return path


def _named(folder: Path, name: str) -> Path:
    """The resolved path of `name` in a resolved folder: the folder's path with the name, unless the name is a
    symbolic link (then where it leads, as Path.resolve says)."""
    path = folder / name
    return path.resolve() if path.is_symlink() else path


def _write_new(path: Path, content: bytes) -> None:
    """Create the file (never one that exists), write `content` and fsync it: the four system calls it takes
    (open, write, fsync, close), without a buffered file object's stat, terminal check and seek."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _taken(db: Database, path: Path) -> bool:
    return path.exists() or store.certificate_sha256(db, path) is not None or \
        any(name.startswith(f".{path.name}.") for name in _partials(db, path.parent))


#: The partial files of a folder, listed once per write transaction of a database and kept up to date by
#: this module (no other writer of that database adds one while it holds the write lock; another database's
#: names carry its own id); forgotten when the transaction commits or anything in it rolls back.
_listed: dict[tuple[int, Path], set[str]] = {}


def _partials(db: Database, folder: Path) -> set[str]:
    """The names of the partial files in a (resolved) folder: one listing per transaction, as folders grow large."""
    key = (id(db), folder)
    names = _listed.get(key)
    if names is None:
        names = _listed[key] = {name for name in os.listdir(folder) if name.endswith(PARTIAL) and name.startswith(".")}

        def forget() -> None:
            _listed.pop(key, None)

        store.after_commit(db, forget, undo=forget)  # with no transaction open: forgotten at once
    return names


def publish(partial: Path, path: Path) -> None:
    """Give a written certificate its name, never replacing another file (a hard link fails if it exists)."""
    try:
        os.link(partial, path)
    except FileExistsError:
        print(f"warning: {path} appeared while this run was stored; its certificate stays at {partial}",
              file=sys.stderr)
        return
    partial.unlink()


def recover_partial(db: Database, folder: Path) -> list[str]:
    """Finish what a killed process left in a certificate folder: a partial file whose certificate this
    database recorded gets its name; one of this database that no live process writes and that was never
    recorded is removed. Call under the write lock (inside store.transaction()). Returns what was done."""
    if not folder.is_dir():
        return []
    done, folder = [], folder.resolve()
    tag, mine = f"-{store.database_id(db)[:8]}", f".{os.getpid()}{PARTIAL}"
    partials = _partials(db, folder)
    for partial_name in sorted(partials):
        if partial_name.endswith(mine):  # this live process's own (as _alive would say), without parsing each
            continue
        name, _, pid = partial_name[1:-len(PARTIAL)].rpartition(".")
        if not partial_name.startswith(".run-") or tag not in name or not pid.isdigit() or _alive(int(pid)):
            continue
        partial, path = folder / partial_name, (folder / name).resolve()
        recorded = store.certificate_sha256(db, path)
        if recorded and not path.exists() and hashlib.sha256(partial.read_bytes()).hexdigest() == recorded:
            publish(partial, path)
            partials.discard(partial_name)
            done.append(f"completed {path.name}")
        elif not recorded:
            partial.unlink(missing_ok=True)
            partials.discard(partial_name)
            done.append(f"removed {partial.name} (its run was never stored)")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
