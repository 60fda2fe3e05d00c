"""What plugins register: readers (export formats) and assays (computations), and what an assay returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .layout import Layout
    from .plate import Plate, Read
    from .protocol import Protocol


@dataclass(frozen=True)
class Reader:
    """An export format: sniff(head bytes, path) -> score in [0, 1]; read(path) -> list of plates."""

    name: str
    sniff: Callable[[bytes, Path], float]
    read: Callable[[Path], list["Plate"]]
    title: str = ""
    extensions: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assay:
    """A computation for one kind of protocol.

    analyze(AssayInput) -> AssayResult. parameters is the pydantic model the protocol's
    [parameters] table must satisfy; template names the certificate block (e.g. 'hemolysis.html').
    """

    name: str
    title: str
    default_protocol: str
    analyze: Callable[["AssayInput"], "AssayResult"]
    parameters: type["BaseModel"]
    template: str | None = None


@dataclass(frozen=True)
class Sample:
    """What a samples file says about one sample slot."""

    slot: str
    name: str
    concentration: float | None = None
    unit: str | None = None
    lot: str | None = None


@dataclass
class AssayInput:
    """Everything an assay needs: the plate, the protocol's reads by name, the layout, the parameters."""

    protocol: "Protocol"
    parameters: Any
    plate: "Plate"
    reads: dict[str, "Read"]
    layout: "Layout"
    samples: dict[str, Sample]

    def sample_name(self, slot: str) -> str:
        sample = self.samples.get(slot)
        return sample.name if sample else slot


@dataclass
class Result:
    """One reported number with its unit, flags and interpretation."""

    sample: str
    metric: str
    value: float | None
    unit: str
    flags: list[str] = field(default_factory=list)
    interpretation: str | None = None


@dataclass
class AssayResult:
    """What analyze() returns.

    metrics: nested dict the protocol's acceptance criteria point into ('calibration.r2').
    results: the reported rows. fits: curves to store and plot. details: anything the assay's
    certificate block shows (tables, per-well values).
    """

    metrics: dict[str, Any]
    results: list[Result]
    fits: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
