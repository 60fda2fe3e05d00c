"""Certificates: a stored run rendered through Jinja (autoescaped) to self-contained HTML."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import tomllib
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from markupsafe import Markup, escape

from . import certificate_files, integrity, plugins, store
from .errors import PluginError, UserError
from .plate import parse_well, row_label
from .plots import curve_plot
from .protocol import Protocol
from .resources import data_dir
from .store import Database


def environment(template_dirs: list[Path], user_templates: Path | None = None) -> Environment:
    """Templates from the user's folder (--templates or ASSAYRUN_TEMPLATES), then the given (plugins'), then built-in."""
    folders = [Path(p) for p in (user_templates, os.environ.get("ASSAYRUN_TEMPLATES")) if p]
    folders += list(template_dirs) + [data_dir("templates")]
    return _environment(tuple(str(f) for f in folders))


@lru_cache(maxsize=8)
def _environment(folders: tuple[str, ...]) -> Environment:
    """One environment per process and template set: templates compile once (Jinja reloads a changed file)."""
    env = _Environment(loader=ChoiceLoader([FileSystemLoader(f) for f in folders]),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["nums"] = format_numbers
    env.filters["css_string"] = css_string
    env.filters["param_value"] = param_value
    env.filters["check_value"] = check_value
    env.filters["qualified"] = qualified
    return env


class _Environment(Environment):
    """Jinja's environment with `record.key` on a plain dict looked up as the key straight away (the stored
    record is dicts): the same value Jinja finds after its attribute lookup fails, without the exception.
    A dict's own attributes (items, get, ...) are left to Jinja, so they keep their precedence."""

    def getattr(self, obj, attribute):
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_DICT_ATTRIBUTES = frozenset(dir(dict))


def check_value(check: dict) -> str:
    """A check's value for reading, with its unit: a count as "5 of 6 levels", else "10.21 mg/mL"."""
    unit = f" {check['unit']}" if check.get("unit") and check["value"] is not None else ""
    if check["is_count"] and check["value"] is not None:
        total = f" of {check['total']}" if check.get("total") is not None else ""
        return f"{int(check['value'])}{total}{unit}"
    value = check["value"]
    whole = isinstance(value, float) and value.is_integer() and abs(value) < 1e6
    return (str(int(value)) if whole else format_number(value)) + unit


def qualified(result: dict) -> str:
    """A result's value for reading with its qualifier: "< 4.52", "> 600", "12.3"."""
    prefix = f"{result['qualifier']} " if result.get("qualifier") else ""
    return prefix + format_number(result["value"])


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
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    if value == 0:
        return "0"
    if not _isfinite(value):
        return "—"
    magnitude = _floor(_log10(abs(value)))
    if magnitude >= 6:
        return f"{value:.{digits - 1}e}"
    places = digits - 1 - magnitude
    return "%.*f" % (places if places > 0 else 0, value)


_isfinite, _floor, _log10 = math.isfinite, math.floor, math.log10  # format_number runs ~200 times a certificate


def format_numbers(values, digits: int = 4) -> str:
    """Numbers for reading (format_number), separated by ", "."""
    return ", ".join(format_number(value, digits) for value in values)


#: What each flag a result may carry means; a plugin adds or refines entries with details["flag_legend"].
FLAG_LEGEND = {
    "saturated": "the reader marked the well over range; the computation left it out",
    "masked": "the well was masked in the export; left out",
    "missing": "the export has no reading for the well; left out",
    "replicate-cv": "replicate wells disagree (%CV above the protocol's flag limit): repeat",
    "below-lloq": "below the lowest calibrator: reported as '< LLOQ', never as a number",
    "above-uloq": "above the highest calibrator or saturated: reported as '> ULOQ', re-test diluted",
    "interference": "the blood-/cell-free signal is too large a part of the signal: not interpretable",
    "negative-net": "the blood-free signal exceeds the with-blood signal: reported as 0, the signed value kept",
    "above-100-percent": "more than 100 %: physically impossible, interference or a dilution error",
    "censored": "a bound, not a number: '>' the true value is above it (no clot in the read window, above the "
                "instrument limit, a saturated rise), '<' below it (clotted before the first read)",
    "clotted-before-first-read": "at its plateau in the first reads: clotted before the first read ('<')",
    "clot-time-unreliable": "the rise is clipped by saturated reads: the clot time is a lower bound ('>')",
    "above-instrument-limit": "above the coagulometer's limit for the test: censored ('>')",
    "mixed-censored": "one replicate has a time, another is censored: repeat",
    "prolonged": "above the normal range of the test",
    "shortened": "below the normal range of the test",
    "re-assay at another dilution": "outside the standard curve: no value is extrapolated",
    "not-computable": "the curve cannot give a concentration for the well",
    "invalid": "an acceptance criterion guarding this result failed",
    "no clot time": "a flat curve and no clotting well of the test to compare: no clot or clotted before the first read",
    "fit without": "left out of the IC50 fit: flagged for interference (the protocol's fit_interference)",
    "above-highest-tested": "the effect does not reach 50 % in the tested range: '>' the highest concentration",
    "below-lowest-tested": "every tested concentration is past 50 %: '<' the lowest concentration",
    "not-estimated": "no IC50: the reason is given with the result",
    "not-reached": "no concentration differs from untreated by the protocol's rule: '>' the highest tested",
}


def flag_legend(results: list[dict], extra: dict | None = None) -> list[tuple[str, str]]:
    """(flag, meaning) for every kind of flag the results carry, in first-seen order."""
    legend = {**FLAG_LEGEND, **extra} if extra else FLAG_LEGEND
    seen: dict[str, str] = {}
    for flag in dict.fromkeys(flag for r in results for flag in r["flags"]):
        key = _legend_key(flag, legend)
        if key and key not in seen:
            seen[key] = legend[key]
    return list(seen.items())


def _legend_key(flag: str, legend: dict) -> str | None:
    """The longest legend key that is the flag or starts it followed by ' ' or ':' ('fit without: ...')."""
    if flag in legend:
        return flag
    for end in range(len(flag) - 1, 0, -1):
        if flag[end] in " :" and flag[:end] in legend:
            return flag[:end]
    return None


def context(record: dict) -> dict:
    """Everything a certificate shows, from a stored run record (store.run_record) and nothing else."""
    run = record["run"]
    protocol = stored_protocol(run["protocol_toml"])
    overridden = run["overridden"]
    if overridden is None:  # a run stored before m005: compare with the protocol file's values
        overridden = [k for k, v in run["parameters"].items() if v != protocol.parameters.get(k)]
    settings = run["settings"] or {"lab": {"name": "", "address": ""}, "certificate": {"paper": "A4"},
                                   "signatures": {"distinct_people": True}}
    logo = record.get("logo")
    names = plate_names((run["details"] or {}).get("plates"))
    return {
        "run": run, "protocol": protocol, "assay_title": run["assay_title"] or run["assay"],
        "assay_template": run["assay_template"], "details": run["details"],
        "fits": [{**f, "svg": Markup(fit_svg(f["plot"]))} for f in run["fits"]],
        "plate_maps": plate_maps(record["wells"], protocol, names), "series_plates": len(names),
        "flag_legend": flag_legend(run["results"], (run["details"] or {}).get("flag_legend")), "samples": samples_table(run["samples"]),
        "signatures": record["signatures"], "superseded_by": [run["superseded_by"]] if run["superseded_by"] else [],
        "overridden": set(overridden), "lab": settings["lab"], "paper": settings["certificate"]["paper"],
        "distinct_people": settings.get("signatures", {}).get("distinct_people", True),
        "logo": f"data:{logo['mime']};base64,{base64.b64encode(logo['content']).decode()}" if logo else None,
        "revision": record["revision"], "issued_at": record["issued_at"], "chain_head": record["chain_head"],
    }


@lru_cache(maxsize=16)
def stored_protocol(text: str) -> Protocol:
    """A run's protocol as stored, parsed once per distinct text (shared: do not change it). Rules added since
    (e.g. numbers in descriptions as placeholders) are not applied again to a run computed and accepted under it."""
    return Protocol.model_validate(tomllib.loads(text), context={"stored": True})


def samples_table(samples: dict | None) -> list[dict]:
    """The samples file's rows as stored with the run: slot, sample id, lot, concentration and unit."""
    return [{"slot": slot, "sample_id": s["name"], "lot": s["lot"], "concentration": s["concentration"],
             "concentration_unit": s["unit"]} for slot, s in (samples or {}).items()]


def fit_svg(plot: dict) -> str:
    """The inline SVG of a stored fit: its points and fitted line ('' for a fit stored without points)."""
    if not plot.get("x") or not plot.get("y"):
        return ""
    x_label = f"concentration ({plot['x_unit']})" if plot.get("x_unit") else "concentration"
    return curve_plot(list(zip(plot["x"] or [], plot["y"] or [])), [tuple(p) for p in plot.get("line") or []],
                      x_label, plot.get("y_label") or "response", log_x=bool(plot.get("log_x")), mark=plot.get("mark"))


def plate_names(plates) -> dict[int, str]:
    """Position -> 'name, file' of a plate-series run's plates (details.plates: position, name, file)."""
    if not isinstance(plates, list):
        return {}
    return {p["position"]: f"{p['name']}, file {p['file']}" for p in plates
            if isinstance(p, dict) and {"position", "name", "file"} <= p.keys()}


def plate_maps(wells: list[dict], protocol: Protocol | None = None, names: dict[int, str] | None = None) -> list[dict]:
    """Per read with layout wells: a grid of cells (value, role, group, flag, interference) and the value range;
    a plate-series run's maps are headed by the plate's position and, from names, its name and file."""
    names = names or {}
    interference = {w for g in protocol.layout.groups(interference=True) for w in g.wells} if protocol else set()
    maps: dict[tuple, dict] = {}
    for row in wells:  # a plate-series run has a map per plate and read
        plate, read, well = row.get("plate"), row["read"], row["well"]
        grid = maps.get((plate, read))
        if grid is None:
            heading = read if plate is None else f"plate {plate}{f' ({names[plate]})' if plate in names else ''}: {read}"
            grid = maps[plate, read] = {"read": heading, "cells": {}, "rows": 0, "columns": 0}
        r, c = parse_well(well)
        if r >= grid["rows"]:
            grid["rows"] = r + 1
        if c >= grid["columns"]:
            grid["columns"] = c + 1
        grid["cells"][well] = {**row, "interference": well in interference}
    maps = {read: grid for read, grid in maps.items() if any(c["role"] for c in grid["cells"].values())}
    for grid in maps.values():
        values = [c["value"] for c in grid["cells"].values() if c["value"] is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        for cell in grid["cells"].values():
            v = cell["value"]
            cell["shade"] = 0.0 if v is None or hi == lo else (v - lo) / (hi - lo)
        grid["row_labels"] = [row_label(r) for r in range(grid["rows"])]
        grid["any_interference"] = any(cell["interference"] for cell in grid["cells"].values())
        grid["body"] = plate_map_rows(grid)
    return list(maps.values())


def plate_map_rows(grid: dict) -> Markup:
    """A plate map's table rows, escaped: the column numbers, then per plate row its label and each well
    shaded by its value, with its group, value and flag (an empty cell where a well has no row). Built here,
    not in the template: a map has 96 to 1536 cells, each several lookups and filters in Jinja."""
    cells, numbers = grid["cells"], range(1, grid["columns"] + 1)
    roles: dict = {}  # a group's name, escaped once per map (a map has a few groups and many wells)
    out = ["  <tr><th></th>", *(f"<th>{n}</th>" for n in numbers), "</tr>\n"]
    for label in grid["row_labels"]:
        out.append(f"  <tr><th>{escape(label)}</th>\n")
        for n in numbers:
            cell = cells.get(f"{label}{n}")
            if cell is None:
                out.append('<td class="empty"></td>')
                continue
            flag, interference, group, value = cell["flag"], cell["interference"], cell["group_name"], cell["value"]
            role = roles.get(group)
            if role is None:
                role = roles[group] = escape(group or "")
            # a float's text is digits, sign, '.', 'e' or '—': nothing to escape
            shown = format_number(value, 3) if isinstance(value, float) else escape(format_number(value, 3))
            out.append(f'    <td style="background: rgba(178, 34, 34, {0.08 + 0.6 * cell["shade"]:.2f})" '
                       f'class="{"flagged" if flag else ""}{" interference" if interference else ""}">\n'
                       f'      <span class="role">{role}{" ∅" if interference else ""}</span>{shown}')
            out.append(f'<span class="flag">{escape(flag)}</span></td>\n' if flag else "</td>\n")
        out.append("  </tr>\n")
    return Markup("".join(out))


def render_html(env: Environment, record: dict) -> str:
    """The certificate of a stored run record: a pure function of the record (no database, files or plugins)."""
    return env.get_template("certificate.html").render(**context(record))


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
    _writable(out)
    env = environment([], templates)
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
          templates: Path | None = None, just_stored: bool = False) -> dict[str, Path]:
    """Render a run's certificate once from its stored record, write it in each format and record each file
    (call inside store.transaction(): the files get their names only once the transaction has committed).

    UserError when the stored records no longer match the run's digest (not checked again when
    just_stored: the caller stored the digested rows in this same transaction), or the run's assay plugin
    is missing or another version than the one that computed it.
    """
    issued_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    record = store.run_record(db, run_id, issued_at)
    run = record["run"]
    if not just_stored and integrity.stored_digest(db, run_id) != run["digest"]:
        raise UserError(f"run {run_id}'s stored records no longer match its digest; no certificate is issued for "
                        f"them. See `assayrun verify {run_id}`")
    env = environment(_plugin_templates(run), templates)
    try:
        html = render_html(env, record)
    except TemplateError as exc:
        raise _template_error(exc, templates) from None
    _writable(out)
    certificate_files.recover_partial(db, out)
    stem = file_stem(db, run_id, run["assay"], record["revision"])
    paths = {}
    for fmt in formats:
        content = html.encode("utf-8") if fmt == "html" else pdf_bytes(html)
        path = certificate_files.write_after_commit(db, out, stem, fmt, content)
        store.add_certificate(db, run_id, fmt, path, hashlib.sha256(content).hexdigest(), issued_at,
                              run["operator"], record["revision"])
        paths[fmt] = path
    return paths


def file_stem(db: Database, run_id: int, assay: str, revision: int) -> str:
    """run-<id>-<assay>-<8 hex of the database's id>[-r<revision>]: unique across databases sharing a folder."""
    return f"run-{run_id}-{assay}-{store.database_id(db)[:8]}" + (f"-r{revision}" if revision > 1 else "")


def _plugin_templates(run: dict) -> list[Path]:
    """The template folders of the plugins, after checking the run's assay plugin is the one that computed it."""
    loaded = plugins.load()
    stored = run["assay_plugin"] or {}
    name = f"{stored.get('distribution', 'the plugin')} {stored.get('version', '')}".strip()
    if run["assay"] not in loaded.assays:
        if any(run["assay"] in info.assays for info in loaded.broken):
            loaded.assay(run["assay"])  # PluginError naming the broken plugin and why
        raise UserError(f"run {run['id']} was computed by assay {run['assay']!r} ({name}), which is not installed; "
                        "install that plugin version to issue its certificate")
    current = loaded.assay_plugins.get(run["assay"])
    if stored and current and current.version != stored.get("version"):
        raise UserError(f"run {run['id']} was computed by {name}, but {current.distribution} {current.version} is "
                        "installed; install the version that computed the run to issue its certificate")
    return loaded.template_dirs


def pdf_bytes(html: str) -> bytes:
    """The certificate's HTML as PDF through WeasyPrint (optional dependency)."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise UserError(f"PDF certificates need WeasyPrint ({exc}); install it with: pip install 'assayrunner[pdf]'") \
            from None
    return weasyprint.HTML(string=html).write_pdf()
