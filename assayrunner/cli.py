"""The `assayrun` command: parses arguments, calls engine/store/certificate, prints. Nothing else."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import PluginError, UserError

app = typer.Typer(help="Run NCL-style assays on plate-reader exports, store the runs, issue certificates.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
protocols_app = typer.Typer(help="List protocols, or show one.", invoke_without_command=True)
runs_app = typer.Typer(help="List stored runs, or show one.", invoke_without_command=True)
app.add_typer(protocols_app, name="protocols")
app.add_typer(runs_app, name="runs")
plugin_app = typer.Typer(help="Write a new assay plugin package.", no_args_is_help=True)
app.add_typer(plugin_app, name="plugin")

DbOption = Annotated[Path, typer.Option("--db", envvar="ASSAYRUN_DB", help="SQLite database (env ASSAYRUN_DB).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")]
TemplatesOption = Annotated[Optional[Path], typer.Option(
    help="Folder of templates overriding the shipped ones (env ASSAYRUN_TEMPLATES).")]
DEFAULT_DB = Path("assayrun.db")


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


@app.callback()
def main_callback(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False):
    if version:
        typer.echo(f"assayrunner {__version__}")
        raise typer.Exit()


@app.command()
@handles_errors
def execute(
    assay: Annotated[str, typer.Argument(help="Assay name (see `assayrun plugins --all`).")],
    files: Annotated[list[Path], typer.Argument(help="Plate-reader export file(s).")],
    protocol: Annotated[Optional[str], typer.Option(help="Protocol id or TOML path (default: the assay's).")] = None,
    samples: Annotated[Optional[Path], typer.Option(help="CSV: slot, sample[, concentration, unit, lot].")] = None,
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="Folder for certificates.")] = Path("certificates"),
    operator: Annotated[Optional[str], typer.Option(help="Who ran the assay (default: the OS user).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="Force a reader (see `assayrun formats`).")] = None,
    plate: Annotated[Optional[str], typer.Option(help="Plate name or number when a file holds several.")] = None,
    templates: TemplatesOption = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the certificate as PDF (needs WeasyPrint).")] = False,
    supersedes: Annotated[Optional[int], typer.Option(help="Run id this run corrects (re-analysis).")] = None,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Set a protocol parameter for this run: KEY=VALUE (a TOML value; KEY.ENTRY for one "
                        "entry of a table) or @FILE.toml (e.g. a kit lot's values). Repeatable.")] = None,
    as_json: JsonOption = False,
):
    """Run an assay on export files: compute, judge, store and write the certificate."""
    from .engine import execute as run

    outcome = run(assay, files, protocol=protocol, samples=samples, db=db, out=out, operator=operator,
                  format=format, plate=plate, templates=templates, pdf=pdf, supersedes=supersedes,
                  params=param or [])
    if as_json:
        _print_json(outcome.to_json())
    else:
        _print_summary(outcome)
    if not outcome.valid:
        raise typer.Exit(1)


def _print_summary(outcome) -> None:
    from .certificate import check_value, format_number as num

    p = outcome.protocol
    verdict = "VALID" if outcome.valid else "INVALID (acceptance failed)"
    typer.echo(f"Run {outcome.run_id}: {outcome.assay}, protocol {p.id} {p.version}: {verdict}\n")
    typer.echo(_table([["PASS" if c.passed else "FAIL", c.id, check_value(vars(c)), c.limit] for c in outcome.checks],
                      ["", "check", "value", "limit"]))
    typer.echo("")
    typer.echo(_results_table(outcome.result.results, num))
    if outcome.skipped:
        typer.echo(f"\nEmpty slots skipped: {', '.join(outcome.skipped)}")
    typer.echo(f"\nCertificate: {outcome.certificate_html}")


def _results_table(results, num) -> str:
    """A table per scope (e.g. per coagulation test): one row per sample, one column per metric."""
    scopes = list(dict.fromkeys(r.scope for r in results))
    if len(scopes) > 1:
        return "\n\n".join(f"{scope or 'other'}:\n" + _one_results_table([r for r in results if r.scope == scope],
                                                                         num, f"{scope}_" if scope else "")
                             for scope in scopes)
    return _one_results_table(results, num, "")


def _one_results_table(results, num, prefix: str) -> str:
    metrics = list(dict.fromkeys((r.metric, r.unit) for r in results))
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r.sample, {"interpretation": set(), "flags": []})
        row[(r.metric, r.unit)] = ("> " if "censored" in r.flags else "") + num(r.value)
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
    """List installed plugins with their versions; broken ones are shown with their error."""
    from .plugins import load

    infos = [i for i in load().info if all or not i.builtin]
    if as_json:
        _print_json([vars(i) for i in infos])
        return
    if not infos:
        typer.echo("No third-party plugins installed (--all shows the built-in ones).")
        return
    typer.echo(_table([[i.name, i.distribution, i.version, i.api or "?",
                        "BROKEN: " + i.error if i.error else ", ".join(i.hooks)]
                       for i in infos], ["plugin", "distribution", "version", "api", "hooks"]))


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

    protocols = [load_file(f) for f in shipped_files(load().protocol_files)]
    if as_json:
        _print_json([{"id": p.id, "version": p.version, "assay": p.assay, "title": p.title, "path": str(p.path)}
                     for p in protocols])
        return
    typer.echo(_table([[p.id, p.version, p.assay, p.title] for p in protocols], ["id", "version", "assay", "title"]))


@protocols_app.command("show")
@handles_errors
def protocols_show(ref: Annotated[str, typer.Argument(help="Protocol id or TOML path.")], as_json: JsonOption = False):
    """Show one protocol with its layout resolved to one entry per well."""
    from .plugins import load
    from .protocol import find

    p = find(ref, load().protocol_files)
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
        typer.echo(f"  {c.id}: {c.description}")


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
                        "valid" if r["valid"] else "INVALID", r["operator"]] for r in rows],
                      ["run", "computed", "assay", "protocol", "status", "operator"]))


@runs_app.command("show")
@handles_errors
def runs_show(run_id: Annotated[int, typer.Argument(help="Run id.")], db: DbOption = DEFAULT_DB,
              as_json: JsonOption = False):
    """Show one stored run: protocol, inputs, checks, results."""
    from . import store
    from .certificate import check_value, format_number as num

    run = store.get_run(_existing_db(db), run_id)
    if as_json:
        _print_json(run)
        return
    typer.echo(f"Run {run['id']}: {run['assay']}, protocol {run['protocol_id']} {run['protocol_version']}, "
               f"{'valid' if run['valid'] else 'INVALID'}, {run['created_at']} by {run['operator']}")
    for f in run["inputs"]:
        typer.echo(f"  input {f['name']} ({f['format']}) sha256 {f['sha256']}")
    typer.echo("")
    typer.echo(_table([["PASS" if c["passed"] else "FAIL", c["check_id"], check_value(c), c["limit_text"]]
                       for c in run["checks"]], ["", "check", "value", "limit"]))
    typer.echo("")
    typer.echo(_table([[r["sample"], r["metric"], num(r["value"]), r["unit"], r["interpretation"] or "",
                        ", ".join(r["flags"])] for r in run["results"]],
                      ["sample", "metric", "value", "unit", "interpretation", "flags"]))


@app.command()
@handles_errors
def certificate(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    db: DbOption = DEFAULT_DB,
    format: Annotated[str, typer.Option("--format", help="html or pdf.")] = "html",
    out: Annotated[Path, typer.Option(help="Folder for the certificate.")] = Path("certificates"),
    templates: TemplatesOption = None,
):
    """Issue the certificate of a stored run again (a new revision, recorded in the audit log)."""
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
    by: Annotated[str, typer.Option("--by", help="Full name of the person signing.")],
    meaning: Annotated[str, typer.Option(help='What the signature means, e.g. "Data reviewed, results accepted".')],
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="Folder for the re-issued certificate.")] = Path("certificates"),
    templates: TemplatesOption = None,
):
    """Sign a run electronically (reviewed, then approved) and re-issue its certificate with the signature."""
    from . import certificate as cert, store
    from .signing import sign as record_signature

    database = _existing_db(db)
    with store.transaction(database):
        row = record_signature(database, _run_id(database, run_id), role, by, meaning)
        issued = {r["format"] for r in database.query("select format from certificates where run_id = ?", [run_id])}
        paths = cert.issue(database, run_id, out, tuple(f for f in ("html", "pdf") if f in issued), templates)
    typer.echo(f"Run {run_id} {role} by {by} at {row['signed_at']}.")
    for path in paths.values():
        typer.echo(f"Certificate: {path}")


@app.command()
@handles_errors
def verify(
    target: Annotated[Optional[str], typer.Argument(help="Run id or certificate file (default: every run).")] = None,
    file: Annotated[Optional[list[Path]], typer.Option("--file", help="An input file to compare (repeatable).")] = None,
    db: DbOption = DEFAULT_DB,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="An input or certificate file no longer on disk is skipped, not a failure.")] = False,
):
    """Recompute digests from the database and the files; exit 0 when everything holds, 1 when anything differs."""
    from . import integrity

    database = _existing_db(db)
    if target is None:
        run_ids = [r["id"] for r in database.query("select id from runs order by id")] if database["runs"].exists() \
            else []
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
    report = integrity.verify(database, run_ids, integrity.Report(allow_missing=allow_missing), file or [])
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
    """Console entry point: load plugin commands, then run the app."""
    try:
        from .plugins import load

        load().manager.hook.register_commands(app=app)
    except PluginError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    app()
