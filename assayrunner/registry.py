"""What plugins register: readers (export formats) and assays (computations), and what an assay returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .layout import Group, Layout
    from .plate import Plate, Read
    from .protocol import Protocol
    from .source import Source


@dataclass(frozen=True)
class Reader:
    """An export format: sniff(source) -> score in [0, 1]; read(source) -> list of plates.

    source is an assayrunner.Source: the file's path and bytes, decoded once (source.lines,
    source.sheets, source.sheet(name)). read raises FormatMismatch when the file is laid out
    otherwise than it expects (the next reader then tries), UserError for bad data.
    """

    name: str
    sniff: Callable[["Source"], float]
    read: Callable[["Source"], list["Plate"]]
    title: str = ""
    extensions: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    generic: bool = False  # reads any plain table; never tries a file a format reader recognized and refused
    plugin: str = ""  # the plugin that registered it (set when plugins load)


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
    plugin: str = ""  # the plugin that registered it (set when plugins load)


@dataclass(frozen=True)
class Sample:
    """What a samples file says about one sample slot."""

    slot: str
    name: str
    concentration: float | None = None
    unit: str | None = None
    lot: str | None = None
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        if self.concentration is None:
            return self.name
        return f"{self.name} {self.concentration:g} {self.unit or ''}".rstrip()


@dataclass
class AssayInput:
    """Everything an assay needs: the plate, the protocol's reads by name, the layout, the parameters."""

    protocol: "Protocol"
    parameters: Any
    plate: "Plate"
    reads: dict[str, "Read"]
    layout: "Layout"
    samples: dict[str, Sample]
    series: list["SeriesPlate"] = field(default_factory=list)  # a plate_series protocol's plates, in run order

    def sample_name(self, slot: str) -> str:
        """The name a slot's results are reported under: the samples file's name (and concentration), else the slot."""
        sample = self.samples.get(slot)
        return sample.label if sample else slot

    def with_nominal(self, role: str, interference: bool | None = False) -> list["Group"]:
        """The layout's groups of a role, every one with its nominal; UserError naming the protocol key if not."""
        from .errors import UserError

        groups = self.layout.groups(role, interference)
        for group in groups:
            if group.spec.nominal is None:
                index = self.protocol.layout.wells.index(group.spec)
                raise UserError(f"{role} {group.name!r} needs a nominal value (nominal = its concentration)",
                                file=self.protocol.path, where=f"layout.wells[{index}].nominal")
        return groups

    def values(self, group: "Group", read: str | None = None):
        """The group's well values in one read (the first by default); flagged wells are NaN."""
        import numpy as np

        from .plate import parse_well

        r = self.reads[read or next(iter(self.reads))]
        return np.array([np.nan if w in r.flags else float(r.values[parse_well(w)]) for w in group.wells])

    def flagged(self, group: "Group", read: str | None = None) -> dict[str, str]:
        """Well -> flag ('saturated', 'masked', ...) for the group's wells excluded from its values."""
        r = self.reads[read or next(iter(self.reads))]
        return {w: r.flags[w] for w in group.wells if w in r.flags}


@dataclass(frozen=True)
class PlateDose:
    """What a run sheet says about one file of a plate series: its plates' concentrations (one per plate, or
    none: the protocol's dilution steps), their unit and the replicate set."""

    concentrations: tuple[float, ...] = ()
    unit: str | None = None
    replicate: str | None = None


@dataclass
class SeriesPlate:
    """One plate of a plate-series run: its 1-based position, name, file, dose and the plate's own AssayInput
    (reads and layout of that plate; `series` empty)."""

    position: int
    name: str
    file: str
    concentration: float | None
    unit: str | None
    replicate: str | None
    input: AssayInput


@dataclass
class Result:
    """One reported number with its unit, flags and interpretation.

    qualifier: '<' or '>' when the value is a censored bound (the true value lies below or above it),
    None for a measured value. A plugin that sets interpretation itself (or a qualifier) is not
    classed again by the protocol's interpretation table.
    """

    sample: str
    metric: str
    value: float | None
    unit: str
    flags: list[str] = field(default_factory=list)
    interpretation: str | None = None
    scope: str | None = None  # which scoped acceptance criteria guard it (e.g. "APTT")
    qualifier: str | None = None  # "<" or ">" for a censored value (value is then the bound), else None
    # The sample a result is about: the layout slot, and what the samples file says of it (the engine
    # fills these from the slot; an assay sets concentration for a dose of a dilution series).
    slot: str | None = None
    sample_id: str | None = None
    lot: str | None = None
    concentration: float | None = None
    concentration_unit: str | None = None


NOT_COMPUTABLE = "not-computable"


def flag_not_computable(results: list[Result]) -> list[Result]:
    """Rows whose value came out NaN (the assay could not compute it, e.g. a CV of one replicate) get the flag
    'not-computable', so no NaN is ever reported without a reason (a NaN without any flag is malformed)."""
    for r in results:
        if isinstance(r.value, float) and r.value != r.value and NOT_COMPUTABLE not in r.flags:
            r.flags.append(NOT_COMPUTABLE)
    return results


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
