"""Interpretation tables: protocol data that names a class for a value (e.g. % hemolysis -> 'hemolytic')."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, model_validator


class InterpretationClass(BaseModel):
    """A class: the value is in it when below `below` (strict) or at most `at_most`; neither = the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    below: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_bound(self):
        if self.below is not None and self.at_most is not None:
            raise ValueError("give below or at_most, not both")
        return self

    def holds(self, value: float) -> bool:
        if self.below is not None:
            return value < self.below
        if self.at_most is not None:
            return value <= self.at_most
        return True


class Interpretation(BaseModel):
    """Classes for one result metric, tried in order; the first that holds names the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    classes: list[InterpretationClass]

    def classify(self, value: float | None) -> str | None:
        if value is None or not math.isfinite(value):
            return None
        return next((c.label for c in self.classes if c.holds(value)), None)
