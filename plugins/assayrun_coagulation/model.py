"""What a coagulation protocol's [parameters] hold, and the replicate clotting times both inputs give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, \
    ValidationInfo, field_validator, model_validator

from assayrunner import expand_wells

CONTROL_ROLES = ("normal control", "abnormal control", "vehicle")


def _ordered(limits: tuple[float, float]) -> tuple[float, float]:
    if limits[0] >= limits[1]:
        raise ValueError("a range is [lower limit, upper limit]")
    return limits


Range = Annotated[tuple[PositiveFloat, PositiveFloat], AfterValidator(_ordered)]


class ClottingTest(BaseModel):
    """One clotting test: its normal range and, per input kind, where its results are."""

    model_config = ConfigDict(extra="forbid")

    title: str
    normal_range_s: Range
    max_time_s: PositiveFloat | None = None  # coagulometer: its measuring limit, the bound of a "no clot" result
    wells: str | None = None                 # plate: the wells holding this test

    @model_validator(mode="after")
    def _valid_wells(self):
        if self.wells is not None:
            expand_wells(self.wells)
        return self


class KineticSettings(BaseModel):
    """How clot times are read off kinetic turbidity curves (see assayrunner.kinetics)."""

    model_config = ConfigDict(extra="forbid")

    read: str
    smoothing_window: PositiveInt
    baseline_reads: PositiveInt
    clot_fraction: float = Field(gt=0, le=1)
    onset_fraction: float = Field(ge=0, lt=1)
    onset_min_au: NonNegativeFloat
    min_amplitude_au: PositiveFloat
    slope_window: int = Field(ge=2)
    saturation_au: PositiveFloat

    @model_validator(mode="after")
    def _odd_window(self):
        if self.smoothing_window % 2 == 0:
            raise ValueError("smoothing_window must be odd (a centred running median)")
        return self


class Pattern(BaseModel):
    """A line of the interpretation table: it applies when every listed test is in the listed state."""

    model_config = ConfigDict(extra="forbid")

    text: str
    prolonged: list[str] = []
    normal: list[str] = []
    shortened: list[str] = []

    def applies(self, states: dict[str, str | None]) -> bool:
        return all(states.get(test) == state for state in ("prolonged", "normal", "shortened")
                   for test in getattr(self, state))


class Parameters(BaseModel):
    """The [parameters] table of a coagulation protocol; every number comes from the protocol file."""

    model_config = ConfigDict(extra="forbid")

    normal_control: str
    abnormal_control: str
    vehicle: str
    flag_cv_percent: PositiveFloat
    tests: dict[str, ClottingTest]
    control_lot: str
    normal_control_ranges_s: dict[str, Range]    # per test, from the control lot's insert
    abnormal_control_ranges_s: dict[str, Range]
    patterns: list[Pattern]
    kinetics: KineticSettings | None = None  # set: plate input; unset: coagulometer input

    @field_validator("normal_control_ranges_s", "abnormal_control_ranges_s")
    @classmethod
    def _range_per_test(cls, ranges: dict, info: ValidationInfo) -> dict:
        tests = info.data.get("tests", {})
        if set(ranges) != set(tests):
            raise ValueError(f"{info.field_name} needs a range for each test ({', '.join(tests)}), "
                             f"not {', '.join(ranges) or 'none'}")
        return ranges

    @field_validator("patterns")
    @classmethod
    def _patterns_name_tests(cls, patterns: list[Pattern], info: ValidationInfo) -> list[Pattern]:
        for k, pattern in enumerate(patterns):
            unknown = {*pattern.prolonged, *pattern.normal, *pattern.shortened} - set(info.data.get("tests", {}))
            if unknown:
                raise ValueError(f"patterns[{k}] names {', '.join(sorted(unknown))}, not in tests")
        return patterns

    def control_range(self, role: str, test: str) -> tuple[float, float] | None:
        """The acceptable range of a control role in a test (the vehicle's is the test's normal range)."""
        if role == "normal control":
            return self.normal_control_ranges_s[test]
        if role == "abnormal control":
            return self.abnormal_control_ranges_s[test]
        return self.tests[test].normal_range_s if role == "vehicle" else None


@dataclass
class Replicate:
    """One clotting time; qualifier '>' or '<': the true time is above or below seconds. NaN seconds: unknown."""

    seconds: float
    qualifier: str | None = None
    where: str = ""
    note: str = ""
    flag: str = ""  # what the condition's row is flagged with for this replicate

    @property
    def censored(self) -> bool:
        return self.qualifier is not None


@dataclass
class Condition:
    """A control or sample in one test: its layout slot or table name, report label, role and replicates."""

    name: str
    label: str
    role: str
    replicates: list[Replicate]


def role_of(name: str, p: Parameters, default: str = "sample") -> str:
    """'normal control', 'abnormal control' or 'vehicle' for the names the parameters give, else default."""
    for role, control in zip(CONTROL_ROLES, (p.normal_control, p.abnormal_control, p.vehicle)):
        if name.casefold() == control.casefold():
            return role
    return default
