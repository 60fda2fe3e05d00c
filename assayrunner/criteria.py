"""Acceptance criteria: protocol data that compares an assay's metrics to limits, one check each.

A criterion either compares one metric ('calibration.r2' >= 0.98), or counts the items of a
group ('qc': each level's 'abs_pdft' <= 20 and 'cv_percent' <= 20) that pass, and needs
at_least of them. A metric the assay could not compute (None or NaN) fails its check; a `note`
beside the metric (metrics['controls']['PC']['note']) says why, on the check.

A description may name the limits as {limit}, {low}, {high}, {at_least} or {require[0].limit}
(rendered from the criterion); any other number in it must be one of the criterion's, so an
edited limit can never sit beside a stale description.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

Op = Literal[">=", ">", "<=", "<", "within"]
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
_NUMBER = re.compile(r"(?<![\w.{-])\d+(?:\.\d+)?(?![\w.]?\d)(?![\w}])")  # not in names: CAL6, A540, X-100


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
        return f"{_SYMBOL[self.op]} {_fmt(limit)}{extra}"

    def numbers(self) -> set[float]:
        out: set[float] = set()
        for limit in (self.limit, *self.overrides.values()):
            out |= set(limit) if isinstance(limit, tuple) else {limit}
        return out


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
    unit: str | None = None   # of the value ("mg/mL"); for a count, what is counted ("levels")

    @model_validator(mode="after")
    def _one_form(self, info: ValidationInfo):
        single = self.metric is not None and self.op is not None and self.limit is not None
        counted = self.items is not None and bool(self.require) and self.at_least is not None
        if single == counted:
            raise ValueError("give either metric, op and limit, or items, require and at_least")
        if single:
            Condition(metric=self.metric, op=self.op, limit=self.limit)
        if not (info.context or {}).get("stored"):  # a stored run's protocol is read as it was accepted then
            self.rendered_description()
        return self

    def condition(self) -> Condition:
        """The criterion's metric, op and limit (as validated with the criterion)."""
        return Condition.model_construct(metric=self.metric, op=self.op, limit=self.limit)

    def rendered_description(self) -> str:
        """The description with its {placeholders} filled; ValueError for a number that is not the criterion's."""
        require = [SimpleNamespace(limit=_Number.of(c.limit), overrides={k: _Number.of(v) for k, v in c.overrides.items()})
                   for c in self.require]
        fields = {"at_least": self.at_least, "require": require, "limit": self.limit,
                  "low": self.limit[0] if isinstance(self.limit, tuple) else None,
                  "high": self.limit[1] if isinstance(self.limit, tuple) else None}
        try:
            text = self.description.format_map(_Formatted(fields))
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"description: unknown placeholder {exc}; use {{limit}}, {{low}}, {{high}}, "
                             "{at_least} or {require[0].limit}") from None
        allowed = set() if self.at_least is None else {float(self.at_least)}
        for condition in (self.require or [self.condition()]):
            allowed |= condition.numbers()
        literal = re.sub(r"\{[^}]*\}", "", self.description)
        for match in _NUMBER.finditer(literal):
            if abs(float(match.group())) not in allowed:
                raise ValueError(f"description says {match.group()} but the criterion's numbers are "
                                 f"{', '.join(_fmt(x) for x in sorted(allowed))}; write {{limit}} (or {{low}}, "
                                 "{high}, {at_least}) for the number")
        return text


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
    unit: str | None = None
    total: int | None = None  # a count's number of items

    def to_json(self) -> dict:
        return {"id": self.id, "description": self.description, "value": self.value,
                "limit": self.limit, "passed": self.passed, "unit": self.unit, "detail": self.detail}


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


@dataclass(frozen=True)
class Prepared:
    """What judging a criterion needs that is the same for every run: its rendered description, its condition
    (a single-metric criterion's) and its limits as a check shows them (a counted one's: each condition)."""

    description: str
    condition: Condition | None
    limits: str

    @classmethod
    def of(cls, criterion: Criterion) -> Prepared:
        unit = f" {criterion.unit}" if criterion.unit else ""
        if criterion.items is None:
            condition = criterion.condition()
            return cls(criterion.rendered_description(), condition, condition.describe() + unit)
        return cls(criterion.rendered_description(), None,
                   "; ".join(f"{c.metric} {c.describe()}" for c in criterion.require))


def evaluate(criterion: Criterion, metrics: dict, prepared: Prepared | None = None) -> Check:
    """Judge one criterion against the assay's metrics (prepared: Prepared.of(criterion), when the caller
    has it)."""
    prepared = prepared or Prepared.of(criterion)
    description = prepared.description
    if criterion.items is None:
        condition = prepared.condition
        value = lookup(metrics, criterion.metric)
        parent = lookup(metrics, criterion.metric.rpartition(".")[0]) if "." in criterion.metric else metrics
        note = parent.get("note") if isinstance(parent, dict) and isinstance(parent.get("note"), str) else ""
        return Check(criterion.id, description, _number(value), prepared.limits,
                     condition.passes(value), note, scope=criterion.scope, unit=criterion.unit)
    unit = f" {criterion.unit}" if criterion.unit else ""
    items = lookup(metrics, criterion.items)
    if not isinstance(items, dict) or criterion.at_least > len(items):
        raise TooFewItems(criterion.items, len(items) if isinstance(items, dict) else 0)
    passing, failing = [], []
    for item, item_metrics in items.items():
        ok = all(c.passes(lookup(item_metrics, c.metric), item) for c in criterion.require)
        (passing if ok else failing).append(item)
    detail = f"failing: {', '.join(failing)}" if failing else ""
    return Check(criterion.id, description, len(passing),
                 f"≥ {criterion.at_least} of {len(items)}{unit}, each {prepared.limits}",
                 len(passing) >= criterion.at_least, detail, criterion.scope, is_count=True, unit=criterion.unit,
                 total=len(items))


class _Formatted(dict):
    """Placeholder values for a description: numbers as written (20, not 20.0)."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if value is None:
            raise KeyError(key)
        return _Number(value) if isinstance(value, float) else value


class _Number(float):
    @classmethod
    def of(cls, value):
        return tuple(map(cls, value)) if isinstance(value, tuple) else cls(value)

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else _fmt(self)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _fmt(x: float) -> str:
    return f"{x:g}"
