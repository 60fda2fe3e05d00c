"""Results for a LIMS: one flat row per stored result, with the run's protocol and state, as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from sqlite_utils import Database

from . import store

#: The columns of `assayrun export`, in order (documented in the README).
COLUMNS = ("run_id", "assay", "protocol_id", "protocol_version", "protocol_sha256", "slot", "sample_id", "sample",
           "lot", "concentration", "concentration_unit", "metric", "value", "unit", "qualifier", "flags",
           "interpretation", "valid", "run_state", "superseded_by", "reviewed_by", "approved_by", "digest")


def export_rows(db: Database, run_ids: list[int]) -> list[dict]:
    """One row per result of each run, in the runs' order, values as stored."""
    rows = []
    for run_id in run_ids:
        run = store.get_run(db, run_id)
        for r in run["results"]:
            rows.append({
                "run_id": run["id"], "assay": run["assay"], "protocol_id": run["protocol_id"],
                "protocol_version": run["protocol_version"], "protocol_sha256": run["protocol_sha256"],
                "slot": r["slot"], "sample_id": r["sample_id"], "sample": r["sample"], "lot": r["lot"],
                "concentration": r["concentration"], "concentration_unit": r["concentration_unit"],
                "metric": r["metric"], "value": r["value"], "unit": r["unit"], "qualifier": r.get("qualifier"),
                "flags": r["flags"], "interpretation": r["interpretation"], "valid": run["valid"],
                "run_state": run["state"], "superseded_by": run["superseded_by"],
                "reviewed_by": (run["reviewed"] or {}).get("by"), "approved_by": (run["approved"] or {}).get("by"),
                "digest": run["digest"],
            })
    return rows


def to_csv(rows: list[dict]) -> str:
    """CSV for Excel and pandas: a header, numbers exact (repr), flags joined by '; ', empty for none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "; ".join(value)
    return str(value)
