"""Certificates: a stored run rendered through Jinja (autoescaped) to self-contained HTML."""

from __future__ import annotations

import base64
import hashlib
import math
import mimetypes
import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlite_utils import Database

from . import certificate_files, plugins, store
from .config import load_config
from .errors import PluginError, UserError
from .plate import parse_well, row_label
from .plots import curve_plot
from .protocol import Protocol
from .resources import data_dir


def environment(user_templates: Path | None = None) -> Environment:
    """Templates from the user's folder (--templates or ASSAYRUN_TEMPLATES), then plugins', then built-in."""
    folders = [Path(p) for p in (user_templates, os.environ.get("ASSAYRUN_TEMPLATES")) if p]
    folders += plugins.load().template_dirs + [data_dir("templates")]
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["css_string"] = css_string
    env.filters["param_value"] = param_value
    env.filters["check_value"] = check_value
    return env


def check_value(check: dict) -> str:
    """A check's value for reading: a count ("5 of 6 levels") as a whole number, else format_number."""
    if check["is_count"] and check["value"] is not None:
        return str(int(check["value"]))
    return format_number(check["value"])


def param_value(value) -> str:
    """A configured value as written (24, 0.8; not rounded or padded), tables as 'key value; ...', lists [a, b]."""
    if isinstance(value, dict):
        return "; ".join(f"{k} {param_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(param_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.15g}"
    return "—" if value is None else str(value)


def css_string(text: str) -> Markup:
    """A quoted CSS string literal for any text (quotes, backslashes and '<' escaped)."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;·-_()/" else f"\\{ord(ch):06x}" for ch in str(text))
    return Markup(f'"{escaped}"')


def format_number(value, digits: int = 4) -> str:
    """A number for reading: 4 significant digits, '—' for a missing one (stored values stay exact)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (bool, int)) or not isinstance(value, float):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}" if magnitude < 6 else f"{value:.{digits - 1}e}"


def context(db: Database, run_id: int) -> dict:
    """Everything a certificate shows, read back from the database."""
    run = store.get_run(db, run_id)
    protocol = Protocol.model_validate(tomllib.loads(run["protocol_toml"]))
    assay = plugins.load().assays.get(run["assay"])
    fits = [{**f, "svg": Markup(fit_svg(f["plot"]))} for f in run["fits"]]
    return {
        "run": run, "protocol": protocol, "assay_title": assay.title if assay else run["assay"],
        "assay_template": assay.template if assay and assay.template else None,
        "details": run["details"], "fits": fits, "plate_maps": plate_maps(db, run_id),
        "signatures": store.signatures(db, run_id), "superseded_by": store.superseded_by(db, run_id),
        "protocol_parameters": _protocol_parameters(assay, protocol),
        "issued_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _protocol_parameters(assay, protocol: Protocol) -> dict:
    """The protocol file's parameters as the assay validates them, to tell --param overrides apart."""
    try:
        return assay.parameters.model_validate(protocol.parameters).model_dump(mode="json")
    except Exception:  # the plugin is gone or changed since the run: compare with the file's values
        return protocol.parameters


def fit_svg(plot: dict) -> str:
    """The inline SVG of a stored fit: its points and fitted line ('' for a fit stored without points)."""
    if not plot.get("x") or not plot.get("y"):
        return ""
    x_label = f"concentration ({plot['x_unit']})" if plot.get("x_unit") else "concentration"
    return curve_plot(list(zip(plot["x"] or [], plot["y"] or [])), [tuple(p) for p in plot.get("line") or []],
                      x_label, plot.get("y_label") or "response", log_x=bool(plot.get("log_x")))


def plate_maps(db: Database, run_id: int) -> list[dict]:
    """Per read with layout wells: a grid of cells (value, role, group, flag) and the value range for shading."""
    maps: dict[str, dict] = {}
    for row in db.query("select * from wells where run_id = ? and time_s is null", [run_id]):
        grid = maps.setdefault(row["read"], {"read": row["read"], "cells": {}, "rows": 0, "columns": 0})
        r, c = parse_well(row["well"])
        grid["rows"], grid["columns"] = max(grid["rows"], r + 1), max(grid["columns"], c + 1)
        grid["cells"][row["well"]] = row
    maps = {read: grid for read, grid in maps.items() if any(c["role"] for c in grid["cells"].values())}
    for grid in maps.values():
        values = [c["value"] for c in grid["cells"].values() if c["value"] is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        for cell in grid["cells"].values():
            v = cell["value"]
            cell["shade"] = 0.0 if v is None or hi == lo else (v - lo) / (hi - lo)
        grid["row_labels"] = [row_label(r) for r in range(grid["rows"])]
    return list(maps.values())


def render_html(db: Database, run_id: int, templates: Path | None = None, revision: int = 1) -> str:
    """The certificate's HTML; a broken template in the user's folder is a UserError naming it."""
    from jinja2 import TemplateError

    config = load_config()
    try:
        return environment(templates).get_template("certificate.html").render(
            **context(db, run_id), lab=config.lab, paper=config.certificate.paper, revision=revision,
            logo=_data_uri(config.lab.logo) if config.lab.logo else None)
    except TemplateError as exc:
        raise _template_error(exc, templates) from None


def _user_folders(templates: Path | None) -> list[Path]:
    return [Path(p) for p in (templates, os.environ.get("ASSAYRUN_TEMPLATES")) if p]


def _template_error(exc: Exception, templates: Path | None) -> Exception:
    """A user's broken template is theirs to fix (UserError); a shipped or plugin one is a PluginError."""
    where = f"{Path(exc.filename).name} line {exc.lineno}" if getattr(exc, "filename", None) else None
    what = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    user = _user_folders(templates)
    if user:
        return UserError(f"a certificate template is broken ({what}); fix the template or remove it from the "
                         "folder to use the shipped one", file=user[0], where=where)
    return PluginError(f"a shipped or plugin certificate template is broken: {what}")


def check_destination(out: Path, templates: Path | None = None) -> None:
    """Before anything is stored: --out is (or can be made) a writable folder, the user's template folders
    exist and every template in them parses."""
    from jinja2 import TemplateError

    _writable(out)
    env = environment(templates)
    for folder in _user_folders(templates):
        if not folder.is_dir():
            raise UserError("the templates folder does not exist", file=folder, where="--templates")
        for path in sorted(folder.glob("*.html")):
            try:
                env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
            except TemplateError as exc:
                raise _template_error(exc, templates) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read this template ({exc})", file=path) from None


def _writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UserError(f"cannot write certificates here ({exc.strerror or exc}); give --out a writable folder",
                        file=out, where="--out") from None


def issue(db: Database, run_id: int, out: Path, formats: tuple[str, ...] = ("html",),
          templates: Path | None = None) -> dict[str, Path]:
    """Render a run's certificate once, write it in each format and record each file (call inside
    store.transaction(): the files get their names only once the transaction has committed)."""
    run = db["runs"].get(run_id)
    revision = 1 + db.execute("select count(distinct created_at) from certificates where run_id = ?",
                              [run_id]).fetchone()[0]
    html = render_html(db, run_id, templates, revision)
    _writable(out)
    certificate_files.recover_partial(db, out)
    stem = file_stem(db, run_id, run["assay"], revision)
    issued_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    paths = {}
    for fmt in formats:
        content = html.encode("utf-8") if fmt == "html" else pdf_bytes(html)
        path = certificate_files.write_after_commit(db, (out / f"{stem}.{fmt}").resolve(), content)
        digest = hashlib.sha256(content).hexdigest()
        db["certificates"].insert({"run_id": run_id, "format": fmt, "path": str(path), "sha256": digest,
                                   "created_at": issued_at})
        store.audit(db, "certificate issued", run_id, run["operator"],
                    {"format": fmt, "sha256": digest, "revision": revision})
        paths[fmt] = path
    return paths


def file_stem(db: Database, run_id: int, assay: str, revision: int) -> str:
    """run-<id>-<assay>-<8 hex of the database's id>[-r<revision>]: unique across databases sharing a folder."""
    return f"run-{run_id}-{assay}-{store.database_id(db)[:8]}" + (f"-r{revision}" if revision > 1 else "")


def pdf_bytes(html: str) -> bytes:
    """The certificate's HTML as PDF through WeasyPrint (optional dependency)."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise UserError(f"PDF certificates need WeasyPrint ({exc}); install it with: pip install 'assayrunner[pdf]'") \
            from None
    return weasyprint.HTML(string=html).write_pdf()


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
