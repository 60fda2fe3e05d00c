"""The [parameters] table of a complement protocol (imported at registration; the analysis when the assay runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, field_validator


class Parameters(BaseModel):
    """The [parameters] table of a complement protocol (and --param overrides); no defaults here."""

    model_config = ConfigDict(extra="forbid")

    read: str
    reference_read: str
    analyte: str
    unit: str
    kit_lot: str
    standards: dict[str, NonNegativeFloat]
    kit_control_ranges: dict[str, tuple[NonNegativeFloat, NonNegativeFloat]]
    calibration_model: Literal["linear", "4pl"]
    kit_dilution: PositiveFloat
    incubation_dilution: PositiveFloat
    kit_control_dilution: PositiveFloat
    negative_control: str
    positive_control: str
    activation_fold_change: PositiveFloat
    activation_alpha: float = Field(gt=0, lt=1)
    dunnett_alternative: Literal["two-sided", "greater"]
    flag_cv_percent: PositiveFloat

    @field_validator("kit_control_ranges")
    @classmethod
    def _low_then_high(cls, ranges):
        for name, (low, high) in ranges.items():
            if low > high:
                raise ValueError(f"the range of {name} must be [low, high], got [{low:g}, {high:g}]")
        return ranges
