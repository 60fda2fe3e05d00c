"""What each table and column of the database means, as datasette's metadata.json."""

from __future__ import annotations

TABLES = {
    "runs": ("One assay run: protocol, parameters, verdict, operator, stored details and its digest.", "assay", {
        "assay": "assay plugin name", "protocol_id": "protocol id", "protocol_sha256": "SHA-256 of the protocol text",
        "parameters": "the run's parameters (JSON), protocol values with any --param overrides",
        "overridden": "parameter keys set for this run by --param (JSON)", "valid": "1 when every acceptance "
        "criterion passed", "operator": "who ran the assay", "created_at": "when the run was computed (UTC)",
        "details": "what the assay's certificate block shows (JSON)", "samples": "the samples file's rows (JSON)",
        "settings": "lab settings the certificate shows (JSON)", "digest": "SHA-256 over every stored row of the run",
        "digest_version": "digest scheme (empty: 1, inputs/checks/results only; 2: every row)",
        "supersedes": "the run this run corrects (re-analysis)",
        "protocol_modified": "shipped protocol this run's protocol was modified from (JSON: id, version, changed "
        "keys); empty when unmodified"}),
    "input_files": ("Every file a run used, with its bytes and SHA-256.", "name", {
        "kind": "export, samples, parameters, settings or logo", "sha256": "SHA-256 of content",
        "format": "the reader (exports) or file type"}),
    "wells": ("Raw well values per read (kinetic reads: one row per time point).", "well", {
        "role": "layout role of the well", "group_name": "layout group", "flag": "saturated, masked, ...",
        "plate": "position of the well's plate in a plate-series run (empty for one-plate runs)"}),
    "fits": ("Calibration and dose-response fits.", "name", {"parameters": "fitted parameters (JSON)",
                                                             "se": "standard errors (JSON)"}),
    "checks": ("Acceptance criteria verdicts.", "check_id", {"limit_text": "the limit as written",
                                                             "passed": "1 pass, 0 fail", "unit": "unit of value",
                                                             "total": "a count's item total"}),
    "results": ("Reported results, one row per sample and metric.", "sample", {
        "sample": "display label", "slot": "layout sample slot", "sample_id": "sample id from the samples file",
        "lot": "sample lot", "concentration": "sample (or dose) concentration",
        "concentration_unit": "unit of concentration", "unit": "unit of value", "flags": "flags (JSON list)",
        "qualifier": "< or > when value is a censored bound (below / above the reportable range)"}),
    "protocol_texts": ("Protocol file texts, stored once per SHA-256 (runs.protocol_sha256 points here).", "sha256",
                       {"text": "the protocol file's text, byte for byte as run"}),
    "certificates": ("Certificate files issued, with their SHA-256.", "path", {}),
    "signatures": ("Review and approval signatures.", "signer", {
        "mode": "ed25519 (key-signed) or unauthenticated (demo)", "signature": "Ed25519 signature (hex) over the "
        "run digest, role, signer, meaning and time", "key_sha256": "SHA-256 of the signer's public key"}),
    "signers": ("Registered signers and their public keys (private keys are kept outside the database).", "name",
                {"name_key": "the name as compared (case and spaces normalised)"}),
    "audit_log": ("Append-only log, each row chained to the previous by SHA-256.", "event", {
        "prev_sha256": "the previous row's sha256", "sha256": "SHA-256 of this row's content and prev_sha256"}),
    "chain_head": ("The audit chain's head kept beside the log (one row, moved by every audit row), and this "
                   "database's id.", "database_id", {
        "database_id": "random id of this database; certificate file names carry its first 8 hex digits",
        "audit_rows": "how many audit rows the log has (the last row's position)",
        "audit_sha256": "sha256 of the last audit row"}),
}


def datasette_metadata(database: str) -> dict:
    """metadata.json content for the database file named `database` (its stem, as datasette names it)."""
    return {
        "title": "assayrunner records",
        "description": "Assay runs, their inputs, results, signatures and the chained audit log.",
        "databases": {database: {"tables": {
            table: {"description": text, "label_column": label, "columns": columns}
            for table, (text, label, columns) in TABLES.items()}}},
    }
