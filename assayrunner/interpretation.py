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

    def classify_interval(self, low: float, high: float) -> str | None:
        """The class of every value in [low, high) (a censored value's range), or None when it spans classes.

        Classes are bounded from above, tried in order, so the ends decide: the label holds inside
        when it holds at low and just below high.
        """
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            return None
        first, last = self.classify(low), self.classify(math.nextafter(high, -math.inf))
        return first if first == last else None
