"""The [parameters] tables of the hemolysis protocols (imported at registration; each analysis when its assay runs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from assayrunner import DoseSeries


class Parameters(BaseModel):
    """The [parameters] table of a hemolysis protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    read: str
    calibration_model: Literal["linear", "quadratic"]
    calibration_weights: Literal["none", "1/x", "1/x^2"]
    supernatant_dilution: PositiveFloat
    tbhd_dilution: PositiveFloat
    pfh_dilution: PositiveFloat
    blood_volume_ul: PositiveFloat
    tube_volume_ul: PositiveFloat
    negative_control: str
    positive_control: str
    flag_cv_percent: PositiveFloat
    flag_interference_fraction: PositiveFloat
    flag_above_percent: PositiveFloat
    control_min_wells: PositiveInt


class PercentParameters(BaseModel):
    """The [parameters] table of a hemolysis-percent-pc protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    read: str
    reference_read: str | None = None
    negative_control: str
    positive_control: str
    plate_controls: Literal["per-plate", "pooled"] = "per-plate"
    dose_series: DoseSeries
    fit_fixed: dict[Literal["bottom", "top", "hill"], float]
    ci_level: Annotated[float, Field(gt=0, lt=1)]
    hc50_level_percent: Annotated[float, Field(gt=0, lt=100)]
    nonmonotonic_tolerance_percent: PositiveFloat
    saturation_od: PositiveFloat
    pc_max_saturated_wells: Annotated[int, Field(ge=0)]
    flag_cv_percent: PositiveFloat
    flag_below_percent: float
    flag_above_percent: float
