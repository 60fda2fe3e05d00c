"""The `assayrun` command: parses arguments, calls engine/store/certificate, prints. Nothing else."""

import functools
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import PluginError, UserError

app = typer.Typer(help="Run NCL-style assays on plate-reader exports, store the runs, issue certificates.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  rich_markup_mode=None)  # plain help: rendering it with rich costs more than typer's import
protocols_app = typer.Typer(help="List protocols, or show one.", invoke_without_command=True, rich_markup_mode=None)
runs_app = typer.Typer(help="List stored runs, or show one.", invoke_without_command=True, rich_markup_mode=None)
app.add_typer(protocols_app, name="protocols")
app.add_typer(runs_app, name="runs")
plugin_app = typer.Typer(help="Write a new assay plugin package.", no_args_is_help=True)
app.add_typer(plugin_app, name="plugin")

DbOption = Annotated[Path, typer.Option("--db", envvar="ASSAYRUN_DB", help="SQLite database (env ASSAYRUN_DB).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")]
TemplatesOption = Annotated[Optional[Path], typer.Option(
    help="Folder of templates overriding the shipped ones (env ASSAYRUN_TEMPLATES).")]
KeysOption = Annotated[Optional[Path], typer.Option(
    "--keys", help="Folder of signers' private keys (env ASSAYRUN_KEYS; default ~/.config/assayrun/keys).")]
DEFAULT_DB = Path("assayrun.db")


def passphrase_input(prompt: str, confirm: bool = False) -> str:
    """A passphrase from ASSAYRUN_PASSPHRASE (scripts) or asked for without echo."""
    return os.environ.get("ASSAYRUN_PASSPHRASE") or typer.prompt(prompt, hide_input=True,
                                                                 confirmation_prompt=confirm)


def handles_errors(command):
    """Turn our errors into one line on stderr and the exit code of DESIGN.md; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (UserError, PluginError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except typer.Exit:
            raise
        except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug: still one line, exit 3
            from .plugins import format_traceback

            typer.echo(f"internal error: {format_traceback(exc)}", err=True)
            raise typer.Exit(3) from None

    return wrapper


def _print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"assayrunner {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False):
    """Run NCL-style assays on plate-reader exports, store the runs, issue certificates."""


@app.command()
@handles_errors
def execute(
    assay: Annotated[str, typer.Argument(help="Assay name (see `assayrun plugins --all`).")],
    files: Annotated[Optional[list[Path]], typer.Argument(
        help="Plate-reader exports: files, folders or patterns; one run per file (a batch when more than one).",
        show_default=False)] = None,
    protocol: Annotated[Optional[str], typer.Option(help="Protocol id or TOML path (default: the assay's).")] = None,
    samples: Annotated[Optional[Path], typer.Option(
        help="CSV: slot, sample[, concentration, unit, lot]; or a run sheet (file, samples) giving each plate "
             "its own.")] = None,
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="Folder for certificates.")] = Path("certificates"),
    operator: Annotated[Optional[str], typer.Option(help="Who ran the assay (default: the OS user).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="Force a reader (see `assayrun formats`).")] = None,
    plate: Annotated[Optional[str], typer.Option(help="Plate name or number when a file holds several.")] = None,
    templates: TemplatesOption = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the certificate as PDF (needs WeasyPrint).")] = False,
    no_certificate: Annotated[bool, typer.Option("--no-certificate", help="Store the runs, write no certificate.")] = False,
    supersedes: Annotated[Optional[int], typer.Option(help="Run id this run corrects (re-analysis).")] = None,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Set a protocol parameter for this run: KEY=VALUE (a TOML value; KEY.ENTRY for one "
                        "entry of a table) or @FILE.toml (e.g. a kit lot's values). Repeatable.")] = None,
    group: Annotated[Optional[list[str]], typer.Option(
        "--group", help="Files of one run, comma-separated, for a protocol that takes several (`files = N`). "
                        "Repeatable.")] = None,
    sheet: Annotated[Optional[Path], typer.Option(
        help="Run sheet CSV: file[, samples, operator, run]; rows with the same run are one run's files.")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1,
                                                help="Worker processes for a batch (default: the cores).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds one run of a batch may take.")] = 300.0,
    layout_from_export: Annotated[bool, typer.Option(
        "--layout-from-export", help="Take the plate layout from the export (Gen5 Layout block, SoftMax Pro "
                                     "group tables) instead of the protocol's.")] = False,
    as_json: JsonOption = False,
):
    """Run an assay on export files: compute, judge, store and write the certificate (one run per plate)."""
    from .batch import is_batch

    files, groups = files or [], group or []
    if is_batch(files, groups, sheet, samples):
        if supersedes is not None:
            raise UserError("--supersedes corrects one run: give one file")
        _execute_batch(assay, files, groups, sheet, protocol=protocol, samples=samples, db=db, out=out,
                       operator=operator, format=format, plate=plate, templates=templates, pdf=pdf,
                       certificate=not no_certificate, params=param or [], jobs=jobs, timeout=timeout,
                       as_json=as_json, layout_from_export=layout_from_export)
        return
    from .engine import execute as run

    outcome = run(assay, files, protocol=protocol, samples=samples, db=db, out=out, operator=operator,
                  format=format, plate=plate, templates=templates, pdf=pdf, supersedes=supersedes,
                  params=param or [], certificate=not no_certificate, layout_from_export=layout_from_export)
    if as_json:
        _print_json(outcome.to_json())
    else:
        _print_summary(outcome)
    for warning in outcome.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if not outcome.valid:
        raise typer.Exit(1)


def _execute_batch(assay: str, files: list[Path], groups: list[str], sheet: Path | None, *, protocol, samples,
                   operator, format, plate, params, jobs, timeout, as_json, layout_from_export=False,
                   **commit) -> None:
    """One run per unit in worker processes; exit 0 only when every run is valid, else 1."""
    from . import batch
    from .progress import progress

    units = batch.plan(files, groups, sheet, samples=samples, operator=operator,
                       skip=(samples, sheet, *batch.own_files(commit["db"])))
    job = batch.Job(assay, protocol, tuple(params), format, plate, layout_from_export)
    jobs = jobs or batch.default_jobs()
    with progress(len(units), enabled=not as_json) as tick:
        entries, seconds = batch.execute(job, units, jobs=jobs, timeout=timeout, on_entry=tick, **commit)
    summary = batch.summary(entries, seconds, jobs)
    if as_json:
        _print_batch_json(entries, summary)
    else:
        typer.echo(_table([[", ".join(str(f) for f in e.files), e.status.upper() if e.status != "valid" else "valid",
                            e.run_id or "", _clip(e.error or ", ".join(e.failed_checks))] for e in entries],
                          ["file", "status", "run", "failed checks or error"]))
        typer.echo(f"\n{summary['runs']} runs: {summary['valid']} valid, {summary['invalid']} invalid, "
                   f"{summary['failed']} failed ({seconds:.1f} s, {jobs} worker process(es))")
    for entry in entries:
        if entry.status == "failed":
            typer.echo(f"error: {entry.error}", err=True)
    if summary["exit_code"]:
        raise typer.Exit(summary["exit_code"])


#: Entries of a batch's --json written at once.
JSON_CHUNK = 256


def _print_batch_json(entries, summary: dict) -> None:
    """{"runs": [...], "summary": {...}} as _print_json writes it, JSON_CHUNK entries at a time (no second copy
    of a large batch's outcomes in memory, and not a write per entry)."""
    typer.echo('{\n  "runs": [', nl=False)
    for first in range(0, len(entries), JSON_CHUNK):
        typer.echo("".join(("," if k else "") + "\n" + textwrap.indent(
            json.dumps(entries[k].to_json(), indent=2, ensure_ascii=False, allow_nan=False), "    ")
            for k in range(first, min(first + JSON_CHUNK, len(entries)))), nl=False)
    summary_text = textwrap.indent(json.dumps(summary, indent=2), "  ").lstrip()
    typer.echo(f'\n  ],\n  "summary": {summary_text}\n}}')


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _print_summary(outcome) -> None:
    from .certificate import check_value, format_number as num

    p = outcome.protocol
    verdict = "VALID" if outcome.valid else "INVALID (acceptance failed)"
    typer.echo(f"Run {outcome.run_id}: {outcome.assay}, protocol {p.id} {p.version}: {verdict}")
    if outcome.modified_from:
        m = outcome.modified_from
        typer.echo(f"Protocol modified from {m['id']} {m['version']}: changed {', '.join(m['changed'])}")
    typer.echo("")
    typer.echo(_table([["PASS" if c.passed else "FAIL", c.id, check_value(vars(c)), c.limit] for c in outcome.checks],
                      ["", "check", "value", "limit"]))
    for c in outcome.checks:
        if not c.passed and c.detail:
            typer.echo(f"{c.id}: {c.detail}")
    typer.echo("")
    typer.echo(_results_table(outcome.result.results, num))
    if outcome.skipped:
        typer.echo(f"\nEmpty slots skipped: {', '.join(outcome.skipped)}")
    if outcome.certificate_html:
        typer.echo(f"\nCertificate: {outcome.certificate_html}")


def _results_table(results, num) -> str:
    """A table per scope (e.g. per coagulation test): one row per sample, one column per metric."""
    scopes = list(dict.fromkeys(r.scope for r in results))
    if len(scopes) > 1:
        return "\n\n".join(f"{scope or _title([r for r in results if r.scope is None])}:\n" +
                             _one_results_table([r for r in results if r.scope == scope], num,
                                                f"{scope}_" if scope else "") for scope in scopes)
    return _one_results_table(results, num, "")


def _title(results) -> str:
    """'pattern' for a group of one metric (the coagulation interpretation lines), else 'other'."""
    metrics = {r.metric for r in results}
    return metrics.pop() if len(metrics) == 1 else "other"


def _one_results_table(results, num, prefix: str) -> str:
    """Rows per sample; a metric without any value (a pattern line) gets no column of its own."""
    metrics = list(dict.fromkeys((r.metric, r.unit) for r in results if r.value is not None))
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r.sample, {"interpretation": set(), "flags": []})
        row[(r.metric, r.unit)] = (f"{r.qualifier} " if r.qualifier else "") + num(r.value)
        row["interpretation"].update([r.interpretation] if r.interpretation else [])
        row["flags"] += [f for f in r.flags if f not in row["flags"]]
    header = ["sample", *(f"{m.removeprefix(prefix)} ({u})" if u else m.removeprefix(prefix) for m, u in metrics),
              "interpretation", "flags"]
    return _table([[sample, *(row.get(key, "") for key in metrics), ", ".join(sorted(row["interpretation"])),
                    ", ".join(row["flags"])] for sample, row in rows.items()], header)


@app.command()
@handles_errors
def read(
    file: Annotated[Path, typer.Argument(help="Plate-reader export.")],
    format: Annotated[Optional[str], typer.Option("--format", help="Force a reader.")] = None,
    as_json: JsonOption = False,
):
    """Read an export and show its plates and each read as a plate grid (values as in the file, no blanking)."""
    from .plugins import load
    from .reading import read_input

    result = read_input(file, load().readers, format)
    if as_json:
        _print_json(result.to_json())
        return
    from .display import describe_input

    typer.echo(describe_input(result))


@app.command()
@handles_errors
def fit(
    data: Annotated[Path, typer.Argument(help="CSV with two columns x, y (header optional).")],
    model: Annotated[str, typer.Option(help="linear, quadratic, 4pl or 5pl.")] = "4pl",
    weights: Annotated[Optional[str], typer.Option(help="1/x, 1/x^2, 1/y or 1/y^2.")] = None,
    fix: Annotated[Optional[list[str]], typer.Option(help="Hold a parameter, e.g. --fix bottom=0 (repeatable).")] = None,
    as_json: JsonOption = False,
):
    """Fit a standard curve to a two-column CSV: parameters, SEs, R^2."""
    from .fit_command import fit_command

    typer.echo(fit_command(data, model=model, weights=weights, fix=fix or [], as_json=as_json))


@app.command()
@handles_errors
def formats():
    """List the readers (export formats) with their extensions and instruments."""
    from .plugins import load

    readers = load().readers.values()
    typer.echo(_table([[r.name, " ".join(r.extensions), r.title, "; ".join(r.instruments)] for r in readers],
                      ["name", "extensions", "format", "instruments"]))


@app.command()
@handles_errors
def plugins(
    all: Annotated[bool, typer.Option("--all", help="Include the built-in plugins.")] = False,
    as_json: JsonOption = False,
):
    """List installed plugins with their versions; broken ones are shown with their error, problems below."""
    from .plugins import add_commands, load

    loaded = load()
    problems = loaded.problems(add_commands(typer.Typer()))
    infos = [i for i in loaded.info if all or not i.builtin]
    if as_json:
        _print_json([vars(i) for i in infos])
        return
    if not infos:
        typer.echo("No third-party plugins installed (--all shows the built-in ones).")
    else:
        typer.echo(_table([[i.name, i.distribution, i.version, i.api or "?",
                            "BROKEN: " + i.error if i.error else ", ".join(i.hooks)]
                           for i in infos], ["plugin", "distribution", "version", "api", "hooks"]))
    for line in problems:
        typer.echo(f"problem: {line}")


@plugin_app.command("new")
@handles_errors
def plugin_new(
    name: Annotated[str, typer.Argument(help="Assay name, e.g. endotoxin (the package is assayrun-NAME).")],
    dir: Annotated[Optional[Path], typer.Option("--dir", help="Folder to create (default: ./assayrun-NAME).")] = None,
    title: Annotated[Optional[str], typer.Option(help="The assay's title on certificates.")] = None,
):
    """Write a ready plugin package: pyproject with the entry point, analysis, protocol, certificate block,
    example plate and passing tests."""
    from .scaffold import new_plugin

    folder = dir or Path(f"assayrun-{name}")
    for path in new_plugin(name, folder, title):
        typer.echo(f"wrote {path}")
    typer.echo(f"\nNext: cd {folder} && pip install -e '.[test]' && python -m pytest")


@protocols_app.callback()
@handles_errors
def protocols_list(ctx: typer.Context, as_json: JsonOption = False):
    """List the shipped and plugin-provided protocols."""
    if ctx.invoked_subcommand:
        return
    from .plugins import load
    from .protocol import load_file, shipped_files

    loaded = load()
    protocols = [load_file(f) for f in shipped_files(loaded.protocol_files)]
    problems = loaded.problems()
    if as_json:
        _print_json([{"id": p.id, "version": p.version, "assay": p.assay, "title": p.title, "path": str(p.path),
                      "plugin": loaded.protocol_plugins.get(p.path),
                      "problem": next((line for line in problems if line.startswith(f"protocol id {p.id!r} ")), None)}
                     for p in protocols])
        return
    typer.echo(_table([[p.id, p.version, p.assay, p.title] for p in protocols], ["id", "version", "assay", "title"]))
    for line in problems:
        typer.echo(f"problem: {line}")


@protocols_app.command("show")
@handles_errors
def protocols_show(ref: Annotated[str, typer.Argument(help="Protocol id or TOML path.")], as_json: JsonOption = False):
    """Show one protocol with its layout resolved to one entry per well."""
    from .plugins import load

    p = load().protocol(ref)
    data = p.model_dump(mode="json", exclude={"layout", "text"})
    data["layout"] = {"rows": p.layout.rows, "columns": p.layout.columns, "wells": {
        well: {k: v for k, v in g.spec.model_dump(exclude={"wells"}).items()} for well, g in p.layout.by_well().items()}}
    if as_json:
        _print_json(data)
        return
    typer.echo(f"{p.id} {p.version}: {p.title}\nassay {p.assay}; source {p.source.document}"
               f"{', ' + p.source.version if p.source.version else ''}\nfile {p.path}\nsha256 {p.sha256}\n")
    typer.echo(_table([[w, g["role"], g["name"] or "", "" if g["nominal"] is None else f"{g['nominal']:g}",
                        "yes" if g["interference"] else ""] for w, g in data["layout"]["wells"].items()],
                      ["well", "role", "name", "nominal", "interference"]))
    typer.echo("\nparameters:")
    for key, value in p.parameters.items():
        typer.echo(f"  {key} = {value}")
    typer.echo("\nacceptance:")
    for c in p.acceptance:
        typer.echo(f"  {c.id}: {c.rendered_description()}")


@runs_app.callback()
@handles_errors
def runs_list(ctx: typer.Context, db: DbOption = DEFAULT_DB, as_json: JsonOption = False):
    """List stored runs, newest first."""
    if ctx.invoked_subcommand:
        return
    from . import store

    rows = store.list_runs(_existing_db(db))
    if as_json:
        _print_json([{**r, "valid": bool(r["valid"])} for r in rows])
        return
    typer.echo(_table([[r["id"], r["created_at"], r["assay"], f"{r['protocol_id']} {r['protocol_version']}",
                        run_status(r), r["operator"]] for r in rows],
                      ["run", "computed", "assay", "protocol", "status", "operator"]))


def run_status(run: dict) -> str:
    """valid/INVALID, then superseded, reviewed and approved with who and when."""
    parts = ["valid" if run["valid"] else "INVALID"]
    if run["superseded_by"]:
        parts.append(f"SUPERSEDED by run {run['superseded_by']}")
    for role in ("reviewed", "approved"):
        s = run[role]
        if s:
            demo = " (unauthenticated)" if s["mode"] == "unauthenticated" else ""
            parts.append(f"{role} by {s['by']}{demo} {s['at']}")
    return "; ".join(parts)


@runs_app.command("show")
@handles_errors
def runs_show(run_id: Annotated[int, typer.Argument(help="Run id.")], db: DbOption = DEFAULT_DB,
              as_json: JsonOption = False):
    """Show one stored run: protocol, inputs, checks, results."""
    from . import store
    from .certificate import check_value, qualified

    run = store.get_run(_existing_db(db), run_id)
    if as_json:
        _print_json(run)
        return
    typer.echo(f"Run {run['id']}: {run['assay']}, protocol {run['protocol_id']} {run['protocol_version']}, "
               f"{run['created_at']} by {run['operator']}\nstatus: {run_status(run)}\ndigest: {run['digest']}")
    for f in run["inputs"]:
        typer.echo(f"  {f['kind']} {f['name']} ({f['format']}) sha256 {f['sha256']}")
    typer.echo("")
    typer.echo(_table([["PASS" if c["passed"] else "FAIL", c["check_id"], check_value(c), c["limit_text"]]
                       for c in run["checks"]], ["", "check", "value", "limit"]))
    typer.echo("")
    typer.echo(_table([[r["slot"] or "", r["sample"], r["lot"] or "", r["metric"], qualified(r), r["unit"],
                        r["interpretation"] or "", ", ".join(r["flags"])] for r in run["results"]],
                      ["slot", "sample", "lot", "metric", "value", "unit", "interpretation", "flags"]))


@app.command()
@handles_errors
def certificate(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    db: DbOption = DEFAULT_DB,
    format: Annotated[str, typer.Option("--format", help="html or pdf.")] = "html",
    out: Annotated[Path, typer.Option(help="Folder for the certificate.")] = Path("certificates"),
    templates: TemplatesOption = None,
):
    """Issue a stored run's certificate again from its stored record (recorded in the audit log); refused when
    the run's assay plugin is missing or another version."""
    from . import certificate as cert, store

    if format not in ("html", "pdf"):
        raise UserError(f"--format must be html or pdf, not {format!r}")
    database = _existing_db(db)
    with store.transaction(database):
        paths = cert.issue(database, _run_id(database, run_id), out, (format,), templates)
    typer.echo(str(paths[format]))


@app.command()
@handles_errors
def sign(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    role: Annotated[str, typer.Option(help="reviewed or approved.")],
    by: Annotated[str, typer.Option("--by", help="Name of the registered signer (see `assayrun signer list`).")],
    meaning: Annotated[str, typer.Option(help='What the signature means, e.g. "Data reviewed, results accepted".')],
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="Folder for the re-issued certificate.")] = Path("certificates"),
    templates: TemplatesOption = None,
    keys: KeysOption = None,
    unauthenticated: Annotated[bool, typer.Option(
        "--unauthenticated", help="Teaching and demos only: record the typed name without a key; the "
                                  "certificate says 'unauthenticated signature'.")] = False,
):
    """Sign a run (reviewed, then approved) with the signer's key and passphrase; re-issue its certificate."""
    from . import certificate as cert, store
    from .signing import registered_signer, sign as record_signature

    database = _existing_db(db)
    _run_id(database, run_id)
    passphrase = None
    if not unauthenticated:
        signer = registered_signer(database, by, role) if role in ("reviewed", "approved") else {"name": by}
        passphrase = passphrase_input(f"Passphrase of {signer['name']}'s key")
    with store.transaction(database):
        row = record_signature(database, run_id, role, by, meaning, passphrase=passphrase, keys=keys,
                               unauthenticated=unauthenticated)
        issued = {c["format"] for c in store.certificates(database, run_id)}
        try:
            with store.transaction(database):  # a savepoint: a certificate that fails leaves no row and no file
                paths = cert.issue(database, run_id, out, tuple(f for f in ("html", "pdf") if f in issued),
                                   templates)
        except UserError as exc:  # e.g. the assay plugin was upgraded since the run: the signature still stands
            paths = {}
            typer.echo(f"warning: the certificate was not issued again: {exc}", err=True)
    how = "with key " + row["key_sha256"][:16] if row["mode"] == "ed25519" else "(unauthenticated signature)"
    typer.echo(f"Run {run_id} {role} by {row['signer']} at {row['signed_at']} {how}.")
    for path in paths.values():
        typer.echo(f"Certificate: {path}")


@app.command()
@handles_errors
def verify(
    target: Annotated[Optional[str], typer.Argument(help="Run id or certificate file (default: every run).")] = None,
    file: Annotated[Optional[list[Path]], typer.Option("--file", help="An input file to compare (repeatable).")] = None,
    anchor: Annotated[Optional[list[str]], typer.Option(
        "--anchor", help="An audit chain head kept elsewhere: POSITION:HASH as a certificate prints it, or an "
                         "`assayrun audit export` file (repeatable).")] = None,
    db: DbOption = DEFAULT_DB,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="An input or certificate file no longer on disk is skipped, not a failure.")] = False,
):
    """Recompute digests, signatures and the audit chain; exit 0 when everything holds, 1 when anything differs."""
    from . import integrity, store

    anchors = [pair for spec in anchor or [] for pair in integrity.parse_anchors(spec)]
    database = _existing_db(db)
    if target is None:
        run_ids = store.run_ids(database) if database["runs"].exists() else []
    elif target.isdigit():
        run_ids = [_run_id(database, int(target))]
    else:
        path = Path(target)
        if not path.is_file():
            raise UserError("neither a run id nor a certificate file", file=path)
        found = integrity.run_for_certificate(database, path)
        if found is None:
            typer.echo(f"DIFFERS  {path}: not a certificate this database issued, or changed since")
            raise typer.Exit(1)
        run_ids = [found]
    report = integrity.verify(database, run_ids, integrity.Report(allow_missing=allow_missing), file or [], anchors)
    for line in report.ok:
        typer.echo(f"OK       {line}")
    for line in report.skipped:
        typer.echo(f"SKIPPED  {line}")
    for line in report.differs:
        typer.echo(f"DIFFERS  {line}")
    if report.differs:
        raise typer.Exit(1)


@app.command()
@handles_errors
def doctor(db: DbOption = DEFAULT_DB, as_json: JsonOption = False):
    """Check the installation and the database: plugins, PDF support, schema, integrity, triggers, audit chain,
    local disk. Prints what to fix; exit 0 when all is well, 1 otherwise."""
    from .doctor import diagnose, to_json

    findings = diagnose(db)
    if as_json:
        _print_json(to_json(findings))
    else:
        for f in findings:
            typer.echo(f"{'OK ' if f.ok else 'FIX'}  {f.check}: {f.detail}" + ("" if f.ok else f"\n     -> {f.fix}"))
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


def _run_id(database, run_id: int) -> int:
    from . import store

    store.get_run(database, run_id)
    return run_id


def _existing_db(path: Path):
    from . import store

    if not path.exists():
        raise UserError("no database here yet; run `assayrun execute` first or give --db", file=path)
    return store.open_db(path)


def main() -> None:
    """Console entry point: load plugin commands when the arguments may need them, then run the app."""
    if _wants_plugin_commands(sys.argv[1:]):
        from .plugins import add_commands

        add_commands(app)  # a plugin whose register_commands raises adds none, and is warned about
    app()


def run() -> None:
    """The `assayrun` program (and `python -m assayrunner`): main(), then the process ends without the
    interpreter's teardown (freeing every module and object costs a run ~0.1 s of CPU) when nothing is left
    for it: see _exit_now."""
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            _exit_now(exc.code or 0)
        raise
    _exit_now(0)


def _exit_now(code: int) -> None:
    """End the process with this code at once: the output flushed and the atexit handlers run first. Returns
    (leaving the usual exit to the caller) while a database is open (closing it checkpoints the WAL), another
    thread runs, or the output cannot be flushed."""
    import atexit

    threading, store = sys.modules.get("threading"), sys.modules.get("assayrunner.store")
    if (threading and threading.active_count() > 1) or (store and store.any_open()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # e.g. the reader of our output went away: the usual exit reports it
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        os._exit(120)  # what the interpreter exits with when it cannot flush its output
    os._exit(code)


def _register_record_commands() -> None:
    from . import cli_records

    cli_records.register(app)


_register_record_commands()


def _wants_plugin_commands(args: list[str]) -> bool:
    """Help (which lists them) and any command that is not built in; not --version or a built-in command.
    The built-in plugins add no commands: help imports plugins only when another distribution has some."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        if "--version" in args:
            return False
        from .installed import others_may_plug_in

        return others_may_plug_in()
    builtin = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    return words[0] not in builtin | {g.name for g in app.registered_groups}
