"""`assayrun doctor`: is this installation and this database fit to certify runs, and if not, what to fix."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

#: What WeasyPrint needs from the system, by the library a failed import names (Debian/Ubuntu package names;
#: Fedora: pango, harfbuzz, fontconfig, dejavu-sans-fonts; macOS: brew install pango).
PDF_SYSTEM_PACKAGES = {"pango": "libpango-1.0-0 libpangoft2-1.0-0", "harfbuzz": "libharfbuzz0b libharfbuzz-subset0",
                       "fontconfig": "libfontconfig1", "gobject": "libglib2.0-0"}
ALL_PDF_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-dejavu-core"


@dataclass
class Finding:
    """One check: what was looked at, whether it holds, and what to do when it does not."""

    check: str
    ok: bool
    detail: str
    fix: str = ""


def diagnose(db_path: Path) -> list[Finding]:
    """Every check doctor makes, in the order it prints them."""
    return [*plugin_findings(), pdf_finding(), *database_findings(db_path)]


def plugin_findings() -> list[Finding]:
    """The plugins: how many, each broken one with its reason, each problem (a protocol id two files declare, a
    register_commands that raised)."""
    import typer

    from .plugins import add_commands, load

    loaded = load()
    problems = loaded.problems(add_commands(typer.Typer()))
    broken = loaded.broken
    found = [Finding("plugins", not broken and not problems,
                     f"{len(loaded.info)} loaded ({len(loaded.assays)} assays, {len(loaded.readers)} readers)"
                     + (f", {len(broken)} broken" if broken else "")
                     + (f", {len(problems)} problem(s)" if problems else ""),
                     "fix what the lines below name")]
    for info in broken:
        found.append(Finding(f"plugin {info.name}", False, f"broken: {info.error}",
                             f"pip install --upgrade {info.distribution} (or pip uninstall {info.distribution})"))
    for line in problems:
        found.append(Finding("plugin problem", False, line,
                             "uninstall one of the plugins it names, or ask its author for a fixed version"))
    return found


def pdf_finding() -> Finding:
    """WeasyPrint importable, its system libraries present, fonts installed, and a one-line PDF rendered."""
    try:
        import weasyprint
    except ImportError:
        return Finding("PDF certificates", False, "WeasyPrint is not installed",
                       "pip install 'assayrunner[pdf]'")
    except OSError as exc:  # WeasyPrint is there but a system library it loads is not
        missing = [pkgs for lib, pkgs in PDF_SYSTEM_PACKAGES.items() if lib in str(exc).lower()]
        return Finding("PDF certificates", False, f"WeasyPrint cannot load a system library ({exc})",
                       f"install the system packages {' '.join(missing) or ALL_PDF_PACKAGES} "
                       "(Debian/Ubuntu names; e.g. apt-get install)")
    fonts = _font_count()
    if fonts == 0:
        return Finding("PDF certificates", False, "no fonts installed: a PDF would show no text",
                       "install fontconfig and a font package, e.g. fonts-dejavu-core")
    try:
        pdf = weasyprint.HTML(string="<p>assayrun doctor</p>").write_pdf()
    except Exception as exc:
        return Finding("PDF certificates", False, f"WeasyPrint failed to render ({type(exc).__name__}: {exc})",
                       f"install the system packages {ALL_PDF_PACKAGES}")
    return Finding("PDF certificates", pdf.startswith(b"%PDF"), f"WeasyPrint {weasyprint.__version__}"
                   + (f", {fonts} fonts" if fonts else ""))


def _font_count() -> int | None:
    """Fonts fontconfig knows (None when fc-list is not there to ask)."""
    if not shutil.which("fc-list"):
        return None
    try:
        return len(subprocess.run(["fc-list"], capture_output=True, text=True, timeout=30).stdout.splitlines())
    except (OSError, subprocess.SubprocessError):
        return None


def database_findings(path: Path) -> list[Finding]:
    """Local disk, schema version, integrity_check, triggers and audit chain of the database, opened read-only."""
    from . import filesystems, integrity, store

    fstype = filesystems.network_filesystem(path)
    found = [Finding("database on a local disk", fstype is None, f"{path}" + (f" is on {fstype}" if fstype else ""),
                     "move the database to a local disk: SQLite's locks do not hold on a network file system")]
    if not path.exists():
        found.append(Finding("database", True, f"{path} does not exist yet; `assayrun execute` creates it"))
        return found
    try:
        db = store.open_read_only(path)
        applied, known = store.applied_migrations(db), [m.__name__ for m in store.MIGRATIONS]
    except (sqlite3.Error, OSError) as exc:
        return [*found, Finding("database", False, f"{path} cannot be opened: {exc}",
                                "give the right --db, or restore the database from a backup")]
    unknown = [m for m in applied if m not in known]
    pending = [m for m in known if m not in applied]
    found.append(Finding("schema version", not unknown,
                         f"{len(applied)} of {len(known)} known migrations applied"
                         + (f"; {', '.join(pending)} pending (applied by the next command that writes)" if pending
                            else "") + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                         "this database was written by a newer assayrunner: upgrade it (pip install -U assayrunner)"))
    problems = store.integrity_problems(db)
    found.append(Finding("integrity_check", not problems, "ok" if not problems else "; ".join(problems[:3]),
                         "the file is damaged: restore it from a backup (sqlite3 .recover may save the rest)"))
    if problems or "m002_integrity" not in applied:
        return found
    report = integrity.Report()
    for what, step, fix in (("triggers present", integrity.verify_structure,
                             "the records were opened for editing outside assayrun: restore the database from a "
                             "backup, then run `assayrun verify` on it"),
                            ("audit chain intact", integrity.verify_audit_log,
                             "run `assayrun verify` to see which records differ; restore from a backup"),
                            ("records match the audit log", integrity.verify_records_logged,
                             "run `assayrun verify` to see which records differ; restore from a backup")):
        before, held = len(report.differs), len(report.ok)
        try:
            step(db, report)
        except Exception as exc:
            report.differs.append(f"cannot be checked ({type(exc).__name__}: {exc})")
        new = report.differs[before:]
        found.append(Finding(what, not new, "; ".join(new or report.ok[held:]), fix))
    return found


def to_json(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]
