"""Sample dose series: the concentration of each dilution step, from the samples file or the protocol.

Layout groups of a sample slot carry nominal = dilution step (1 = top concentration). The protocol's
[parameters.dose_series] gives the default series; a samples-file row may replace it with its own
`concentration` (the top concentration) and/or `dilution_factor`, or with `concentrations`
(every step, top first, separated by ';' or spaces), in its `unit`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

from .errors import UserError
from .registry import Sample


class DoseSeries(BaseModel):
    """A dilution series: top concentration and dilution factor, or explicit concentrations (top first)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    unit: str
    top: PositiveFloat | None = None
    dilution_factor: float | None = Field(None, gt=1)
    concentrations: list[PositiveFloat] | None = None

    @model_validator(mode="after")
    def _one_form(self):
        stepped = self.top is not None and self.dilution_factor is not None
        partial = (self.top is None) != (self.dilution_factor is None)
        if partial or stepped == (self.concentrations is not None):
            raise ValueError("give top and dilution_factor, or concentrations")
        return self

    @property
    def steps(self) -> int | None:
        """How many steps the series defines (None: as many as the layout has)."""
        return None if self.concentrations is None else len(self.concentrations)

    def at(self, step: int) -> float:
        """The concentration of dilution step 1, 2, ..."""
        if self.concentrations is not None:
            return self.concentrations[step - 1]
        return self.top / self.dilution_factor ** (step - 1)


def series_for(slot: str, sample: Sample | None, default: DoseSeries) -> tuple[DoseSeries, str]:
    """(the slot's series, where it comes from): the samples file's row if it gives one, else the protocol's."""
    if sample is None:
        return default, "protocol"
    extra = sample.extra
    given = {"top": sample.concentration, "dilution_factor": _number(extra.get("dilution_factor"), slot),
             "concentrations": _numbers(extra.get("concentrations"), slot)}
    if not any(v is not None for v in given.values()):
        if sample.unit and sample.unit != default.unit:
            raise UserError(f"unit {sample.unit!r} given without concentrations; the protocol's series is in "
                            f"{default.unit}. Add concentration and dilution_factor, or concentrations",
                            file="samples file", where=f"slot {slot}")
        return default, "protocol"
    if given["concentrations"] is None:
        given["top"] = given["top"] or default.top
        given["dilution_factor"] = given["dilution_factor"] or default.dilution_factor
    try:
        series = DoseSeries(unit=sample.unit or default.unit, **given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(map(str, error["loc"]))
        message = (f"{field}: " if field else "") + error["msg"].removeprefix("Value error, ")
        raise UserError(f"dose series: {message} (columns: concentration = top concentration and "
                        "dilution_factor, or concentrations)", file="samples file", where=f"slot {slot}") from None
    return series, "samples file"


def dilution_step(group, series: DoseSeries, source: str, protocol_path) -> int:
    """A sample group's dilution step (its nominal: 1 = top concentration); UserError naming the layout entry."""
    step = group.spec.nominal
    if step is None or step != int(step) or step < 1:
        raise UserError("a sample group's nominal is its dilution step: 1 (top concentration), 2, ...",
                        file=protocol_path, where=f"layout.wells[{group.index}]")
    if series.steps is not None and step > series.steps:
        raise UserError(f"slot {group.name} has dilution step {step:g} but its dose series ({source}) lists "
                        f"{series.steps} concentrations", file=protocol_path, where=f"layout.wells[{group.index}]")
    return int(step)


def _number(text: str | None, slot: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise UserError(f"{text!r} is not a number", file="samples file", where=f"slot {slot}") from None


def _numbers(text: str | None, slot: str) -> list[float] | None:
    return None if text is None else [_number(t, slot) for t in re.split(r"[;\s|]+", text.strip()) if t]
