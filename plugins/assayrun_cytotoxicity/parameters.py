"""The [parameters] table of a cytotoxicity protocol (imported at registration; the analysis when the assay runs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from assayrunner import DoseSeries


class Parameters(BaseModel):
    """The [parameters] table of a cytotoxicity protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    readout: Literal["MTT", "LDH"]
    cell_line: str
    exposure_h: PositiveFloat
    read: str
    reference_read: str | None = None
    dose_series: DoseSeries
    fit_fixed: dict[Literal["bottom", "top", "hill"], float]
    ci_level: Annotated[float, Field(gt=0, lt=1)]
    lowest_effect_rule: Literal["dunnett", "threshold"]
    lowest_effect_alpha: Annotated[float, Field(gt=0, lt=1)]
    effect_threshold_percent: PositiveFloat
    fit_interference: bool
    nonmonotonic_tolerance_percent: PositiveFloat
    flag_cv_percent: PositiveFloat
    flag_interference_percent: PositiveFloat
    flag_above_percent: PositiveFloat
