"""Plasma coagulation (NCL ITA-12): clotting times per test and sample, ratios to vehicle, flags, pattern.

Replicate clotting times per (test, condition) come from a coagulometer table (coagulometer.py)
or from kinetic plate reads (kinetic.py); some are censored: "> t" (no clot in the window, above the
instrument's limit, a saturated rise) or "< t" (clotted before the first read).

    mean = mean(replicates), %CV = 100 x SD / mean   censored replicates are never averaged with numbers
    ratio = mean / mean(vehicle), change = 100 x (mean - vehicle) / vehicle
    prolonged: mean > ULN of the test; shortened: mean < LLN
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from assayrunner import (CENSORED, MIXED_CENSORED, REPLICATE_CV, AssayInput, AssayResult, CensoredReplicates,
                         MissingMetric, Result, evaluate, flag_not_computable)

from .coagulometer import table_conditions
from .kinetic import plate_conditions
from .model import CONTROL_ROLES, Condition, Parameters, Replicate


@dataclass
class Row:
    """One condition in one test: its replicates and their summary, its range (controls), seconds outside it,
    state, flags, and ratio and % change to the vehicle."""

    name: str
    sample: str
    role: str
    replicates: list[Replicate]
    summary: CensoredReplicates
    range: tuple[float, float] | None
    outside: float
    state: str | None = None
    flags: list[str] = field(default_factory=list)
    ratio: float = math.nan
    change: float = math.nan

    def to_dict(self) -> dict:
        """As stored in the details: the summary's keys inline."""
        return {"name": self.name, "sample": self.sample, "role": self.role,
                "replicates": [asdict(r) for r in self.replicates], **self.summary.to_dict(), "state": self.state,
                "flags": self.flags, "range": self.range, "outside": self.outside, "ratio": self.ratio,
                "change": self.change}


def summarize(replicates: list[Replicate]) -> CensoredReplicates:
    """Mean and %CV of the numeric replicates; a censored mean only when all are censored the same way:
    '>' the lowest bound, '<' the highest."""
    return CensoredReplicates.of([r.seconds for r in replicates], [r.qualifier for r in replicates])


def state(summary: CensoredReplicates, normal_range: tuple[float, float]) -> str | None:
    """'prolonged', 'normal' or 'shortened' against the test's normal range; None when the time is unknown."""
    mean, (low, high) = summary.mean, normal_range
    if not math.isfinite(mean):
        return None
    if summary.qualifier == ">":
        return "prolonged" if mean >= high else None
    if summary.qualifier == "<":
        return "shortened" if mean <= low else None
    return "prolonged" if mean > high else "shortened" if mean < low else "normal"


def outside_range(summary: CensoredReplicates, limits: tuple[float, float]) -> float:
    """Seconds outside [low, high] (0 inside); NaN when unknown (a censored bound that may lie inside the range);
    for a bound beyond the range, at least that far."""
    mean, (low, high), q = summary.mean, limits, summary.qualifier
    if not math.isfinite(mean) or (q == ">" and mean <= high) or (q == "<" and mean >= low):
        return math.nan
    return max(low - mean, mean - high, 0.0)


def analyze(inp: AssayInput) -> AssayResult:
    p: Parameters = inp.parameters
    conditions, extra_metrics, extra_details = (plate_conditions if p.kinetics else table_conditions)(inp)
    metrics: dict = {}
    tests = []
    for test, spec in p.tests.items():
        rows = [_row(c, test, p) for c in conditions[test]]
        vehicle = next((r for r in rows if r.role == "vehicle"), None)
        for row in rows:
            _compare_to_vehicle(row, vehicle)
        metrics[test] = {"controls": _control_metrics(rows, p)}
        tests.append({"test": test, "title": spec.title, "normal_range": list(spec.normal_range_s), "rows": rows,
                      **extra_details.get(test, {})})
    metrics.update(extra_metrics)
    failed = _failed_scopes(inp, metrics)
    results = [result for t in tests for row in t["rows"] for result in _results(t["test"], row)]
    patterns = _patterns(tests, p, failed)
    results += [Result(pt["sample"], "pattern", None, "", pt["flags"], pt["text"]) for pt in patterns]
    details = {"input": "plate" if p.kinetics else "coagulometer",
               "tests": [{**t, "rows": [row.to_dict() for row in t["rows"]]} for t in tests], "patterns": patterns}
    if p.kinetics:
        details["kinetics"] = {**p.kinetics.model_dump(), **metrics["kinetics"]}
    return AssayResult(metrics, results, [], details)


def _control_metrics(rows: list[Row], p: Parameters) -> dict:
    """Mean, %CV, n and seconds outside its range of each control (NaN when the input lacks it: its checks fail)."""
    out = {}
    for role, name in zip(CONTROL_ROLES, (p.normal_control, p.abnormal_control, p.vehicle)):
        row = next((r for r in rows if r.role == role), None)
        out[name] = {"mean_s": row.summary.mean, "cv_percent": row.summary.cv, "n": row.summary.n,
                     "outside_range_s": row.outside} if row else \
            {"mean_s": math.nan, "cv_percent": math.nan, "n": 0, "outside_range_s": math.nan}
    return out


def _row(condition: Condition, test: str, p: Parameters) -> Row:
    """One condition in one test: replicates, mean, %CV, its range (controls), state, flags."""
    summary = summarize(condition.replicates)
    limits = p.control_range(condition.role, test)
    row = Row(condition.name, condition.label, condition.role, condition.replicates, summary, limits,
              outside_range(summary, limits) if limits else math.nan)
    flags = row.flags
    if condition.role not in ("normal control", "abnormal control"):  # the vehicle and samples
        row.state = state(summary, p.tests[test].normal_range_s)
        if row.state in ("prolonged", "shortened"):
            flags.append(row.state)
    if summary.censored:
        flags.append(CENSORED)
    if summary.mixed:
        flags.append(MIXED_CENSORED)
    if summary.cv > p.flag_cv_percent:
        flags.append(REPLICATE_CV)
    flags += list(dict.fromkeys(r.flag for r in condition.replicates if r.flag))
    return row


def _compare_to_vehicle(row: Row, vehicle: Row | None) -> None:
    """Ratio and % change to the vehicle's mean; a censored time gives a ratio censored the same way."""
    reference = vehicle.summary.mean if vehicle and not vehicle.summary.censored else math.nan
    row.ratio = row.summary.mean / reference if math.isfinite(reference) else math.nan
    row.change = 100 * (row.ratio - 1)


def _results(test: str, row: Row) -> list[Result]:
    flags, q = row.flags, row.summary.qualifier
    out = [Result(row.sample, f"{test}_clot_time", row.summary.mean, "s", list(flags), scope=test, qualifier=q),
           Result(row.sample, f"{test}_cv_percent", row.summary.cv, "%", list(flags), scope=test)]
    if row.role not in CONTROL_ROLES:
        out += [Result(row.sample, f"{test}_ratio_to_vehicle", row.ratio, "ratio", list(flags), scope=test,
                       qualifier=q),
                Result(row.sample, f"{test}_percent_change", row.change, "%", list(flags), scope=test, qualifier=q)]
    return flag_not_computable(out)


def _failed_scopes(inp: AssayInput, metrics: dict) -> dict[str, list[str]]:
    """Test -> ids of its failed acceptance criteria (the engine judges the same; patterns must skip them)."""
    failed: dict[str, list[str]] = {}
    for criterion in inp.protocol.acceptance:
        if criterion.scope:
            try:
                passed = evaluate(criterion, metrics).passed
            except MissingMetric:
                continue  # the engine reports it
            if not passed:
                failed.setdefault(criterion.scope, []).append(criterion.id)
    return failed


def _patterns(tests: list[dict], p: Parameters, failed: dict[str, list[str]]) -> list[dict]:
    """Per sample: the interpretation-table lines whose test states all hold; invalid tests are left out."""
    states: dict[str, dict[str, str | None]] = {}
    for t in tests:
        for row in t["rows"]:
            if row.role not in CONTROL_ROLES:
                states.setdefault(row.sample, {})[t["test"]] = None if t["test"] in failed else row.state
    out = []
    for sample, by_test in states.items():
        texts = [pattern.text for pattern in p.patterns if pattern.applies(by_test)]
        flags = [f"{test} left out: {', '.join(ids)} failed" for test, ids in failed.items() if test in by_test]
        out.append({"sample": sample, "text": "; ".join(texts) or None, "flags": flags})
    return out

