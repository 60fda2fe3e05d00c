"""The [parameters] table of a quant protocol (imported at registration; the analysis when the assay runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveFloat


class Parameters(BaseModel):
    """The [parameters] table of a quant protocol (and --param overrides); every number is the protocol's."""

    model_config = ConfigDict(extra="forbid")

    read: str
    reference_read: str | None = None
    analyte: str
    unit: str
    calibration_model: Literal["linear", "quadratic", "4pl", "5pl"]
    calibration_weights: Literal["none", "1/x", "1/x^2", "1/y", "1/y^2"]
    subtract_blank: bool
    flag_cv_percent: PositiveFloat
    spike_recovery_percent: tuple[float, float]
