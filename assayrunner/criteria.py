"""Acceptance criteria: protocol data that compares an assay's metrics to limits, one check each.

A criterion either compares one metric ('calibration.r2' >= 0.98), or counts the items of a
group ('qc': each level's 'abs_pdft' <= 20 and 'cv_percent' <= 20) that pass, and needs
at_least of them. A metric the assay could not compute (None or NaN) fails its check.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Op = Literal[">=", ">", "<=", "<", "within"]
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class Condition(BaseModel):
    """metric op limit, with per-item limits in overrides (e.g. { CAL6 = 25 })."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: str
    op: Op
    limit: float | tuple[float, float]
    overrides: dict[str, float | tuple[float, float]] = {}

    @model_validator(mode="after")
    def _limit_fits_op(self):
        for limit in (self.limit, *self.overrides.values()):
            if (self.op == "within") != isinstance(limit, tuple):
                raise ValueError("op 'within' takes limit = [low, high]; the other ops take one number")
            if isinstance(limit, tuple) and limit[0] > limit[1]:
                raise ValueError(f"limit: within [{_fmt(limit[0])}, {_fmt(limit[1])}] has low above high; "
                                 "write [low, high]")
        return self

    def limit_for(self, item: str | None) -> float | tuple[float, float]:
        return self.overrides.get(item, self.limit) if item else self.limit

    def passes(self, value: Any, item: str | None = None) -> bool:
        if not _is_number(value):
            return False
        limit = self.limit_for(item)
        if self.op == "within":
            return limit[0] <= value <= limit[1]
        return _OPS[self.op](value, limit)

    def describe(self, item: str | None = None) -> str:
        limit = self.limit_for(item)
        if self.op == "within":
            return f"within [{_fmt(limit[0])}, {_fmt(limit[1])}]"
        extra = "".join(f" ({_fmt(v)} at {k})" for k, v in self.overrides.items()) if item is None else ""
        return f"{self.op} {_fmt(limit)}{extra}"


class Criterion(BaseModel):
    """One named acceptance criterion of a protocol."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str
    description: str
    metric: str | None = None
    op: Op | None = None
    limit: float | tuple[float, float] | None = None
    items: str | None = None
    require: list[Condition] = []
    at_least: int | None = Field(None, ge=1)
    scope: str | None = None  # the results it guards (e.g. "APTT"); failing, it invalidates only those

    @model_validator(mode="after")
    def _one_form(self):
        single = self.metric is not None and self.op is not None and self.limit is not None
        counted = self.items is not None and bool(self.require) and self.at_least is not None
        if single == counted:
            raise ValueError("give either metric, op and limit, or items, require and at_least")
        if single:
            Condition(metric=self.metric, op=self.op, limit=self.limit)
        return self


@dataclass
class Check:
    """The verdict on one criterion, as stored and shown."""

    id: str
    description: str
    value: float | None
    limit: str
    passed: bool
    detail: str = ""
    scope: str | None = None
    is_count: bool = False  # value counts the items that passed

    def to_json(self) -> dict:
        return {"id": self.id, "description": self.description, "value": self.value,
                "limit": self.limit, "passed": self.passed}


class MissingMetric(KeyError):
    """A criterion names a metric the assay does not compute."""


class TooFewItems(ValueError):
    """A counted criterion needs more passing items than the assay computed: (items, count)."""


def lookup(metrics: dict, path: str) -> Any:
    """metrics['a']['b'] for 'a.b'; MissingMetric when the path does not exist."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise MissingMetric(path)
        node = node[part]
    return node


def evaluate(criterion: Criterion, metrics: dict) -> Check:
    """Judge one criterion against the assay's metrics."""
    if criterion.items is None:
        condition = Condition(metric=criterion.metric, op=criterion.op, limit=criterion.limit)
        value = lookup(metrics, criterion.metric)
        return Check(criterion.id, criterion.description, _number(value), condition.describe(),
                     condition.passes(value), scope=criterion.scope)
    items = lookup(metrics, criterion.items)
    if not isinstance(items, dict) or criterion.at_least > len(items):
        raise TooFewItems(criterion.items, len(items) if isinstance(items, dict) else 0)
    passing, failing = [], []
    for item, item_metrics in items.items():
        ok = all(c.passes(lookup(item_metrics, c.metric), item) for c in criterion.require)
        (passing if ok else failing).append(item)
    limit = "; ".join(f"{c.metric} {c.describe()}" for c in criterion.require)
    detail = f"failing: {', '.join(failing)}" if failing else ""
    return Check(criterion.id, criterion.description, len(passing),
                 f">= {criterion.at_least} of {len(items)} with {limit}",
                 len(passing) >= criterion.at_least, detail, criterion.scope, is_count=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _fmt(x: float) -> str:
    return f"{x:g}"
