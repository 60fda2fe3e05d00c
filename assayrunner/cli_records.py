"""Commands for records: signers, the audit chain's anchors, results export, datasette metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import DEFAULT_DB, DbOption, KeysOption, _existing_db, _table, handles_errors, passphrase_input
from .errors import UserError

signer_app = typer.Typer(help="Register the people who review and approve runs, each with a key.",
                         no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: export it, or its head, to keep as an anchor elsewhere.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(signer_app, name="signer")
    app.add_typer(audit_app, name="audit")
    app.command("export")(export)
    app.command("metadata")(metadata)


@signer_app.command("add")
@handles_errors
def signer_add(
    name: Annotated[str, typer.Argument(help="Full name of the person, as they sign.")],
    role: Annotated[list[str], typer.Option("--role", help="reviewer or approver (repeat for both).")],
    db: DbOption = DEFAULT_DB,
    keys: KeysOption = None,
):
    """Register a signer: an Ed25519 key pair; the private key, encrypted with a passphrase, goes to the keys folder."""
    from .signing import add_signer, check_new_signer
    from .store import open_db, transaction

    database = open_db(db)
    passphrase = passphrase_input(f"New passphrase for {check_new_signer(database, name, role)}'s key", confirm=True)
    with transaction(database):
        row = add_signer(database, name, role, passphrase, keys)
    typer.echo(f"Registered {row['name']} as {', '.join(json.loads(row['roles']))}; key {row['key_sha256'][:16]}, "
               f"private key in {row['key_file']} (keep it and its passphrase to yourself).")


@signer_app.command("list")
@handles_errors
def signer_list(db: DbOption = DEFAULT_DB, as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the registered signers with their roles and key fingerprints."""
    from .store import signers

    rows = [{k: r[k] for k in ("id", "name", "roles", "key_sha256", "added_at")} for r in signers(_existing_db(db))]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    typer.echo(_table([[r["name"], ", ".join(r["roles"]), r["key_sha256"][:16], r["added_at"]] for r in rows],
                      ["signer", "roles", "key", "registered"]))


@audit_app.command("export")
@handles_errors
def audit_export(
    db: DbOption = DEFAULT_DB,
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: standard output).")] = None,
    head: Annotated[bool, typer.Option("--head", help="Only the chain head as POSITION:HASH.")] = False,
):
    """Write the audit log as JSON lines (a daily anchor file), or only its head; `verify --anchor` checks either."""
    from .store import audit_rows, chain_head

    database = _existing_db(db)
    if head:
        last = chain_head(database)
        text = f"{last['position']}:{last['sha256']}\n" if last and last["rows"] else ""
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in audit_rows(database))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {out}")


@handles_errors
def export(
    run_ids: Annotated[list[int], typer.Argument(help="Run id(s).")],
    format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: standard output).")] = None,
    db: DbOption = DEFAULT_DB,
):
    """Export results for a LIMS: one flat row per result with its run, protocol, sample, lot and run state."""
    from .export import export_rows, to_csv, to_json

    if format not in ("csv", "json"):
        raise UserError(f"--format must be csv or json, not {format!r}", where="--format")
    rows = export_rows(_existing_db(db), run_ids)
    text = to_csv(rows) if format == "csv" else to_json(rows)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8-sig" if format == "csv" else "utf-8", newline="")
        typer.echo(f"Wrote {len(rows)} result rows to {out}")


@handles_errors
def metadata(
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="File to write.")] = Path("metadata.json"),
):
    """Write metadata.json for datasette (table and column descriptions): `datasette assayrun.db -m metadata.json`."""
    from .db_metadata import datasette_metadata

    out.write_text(json.dumps(datasette_metadata(db.stem), indent=2) + "\n", encoding="utf-8")
    typer.echo(f"Wrote {out}; browse with: datasette {db} -m {out}")
