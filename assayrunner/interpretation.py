"""Interpretation tables: protocol data that names a class for a value (e.g. % hemolysis -> 'hemolytic')."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, model_validator


class InterpretationClass(BaseModel):
    """A class: the value is in it when below `below` (strict) or at most `at_most`; neither = the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    @model_validator(mode="after")
    def _ordered(self):
        bounds = [c.below if c.below is not None else c.at_most for c in self.classes]
        for k, bound in enumerate(bounds):
            if bound is None and k != len(bounds) - 1:
                raise ValueError(f"classes[{k}]: a class without below or at_most takes the rest and must come last")
            if k and bound is not None and bounds[k - 1] is not None and bound < bounds[k - 1]:
                raise ValueError(f"classes[{k}]: its bound {bound:g} is below the previous class's "
                                 f"{bounds[k - 1]:g}; list the classes from low to high")
        return self

    def classify(self, value: float | None) -> str | None:
        if value is None or not math.isfinite(value):
            return None
        return next((c.label for c in self.classes if c.holds(value)), None)
