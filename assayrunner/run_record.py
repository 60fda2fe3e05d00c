"""The run record the engine hands to the store: everything one computed run is, typed, and the rows it is
stored as (with their digest) worked out once when the record is made."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import integrity, store

if TYPE_CHECKING:
    from .criteria import Check
    from .layout import Layout
    from .plate import Plate
    from .protocol import Protocol
    from .reading import InputFile
    from .registry import AssayResult


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One computed run, not yet stored. `stored` (rows and digest) is derived from the other fields when the
    record is made; the record is frozen so that the two never disagree (superseding() makes a new one)."""

    assay: str  # the assay's name
    assay_title: str
    assay_template: str | None  # the assay's certificate block (e.g. 'hemolysis.html')
    assay_plugin: dict | None  # {distribution, version} of the plugin that computed the run
    protocol: Protocol
    parameters: dict  # the validated parameters, as JSON values
    overridden: list[str]  # parameter names a --param changed
    inputs: list[InputFile]  # the export files, with their bytes
    attachments: list[store.StoredFile]  # samples, parameter and settings files stored with the run
    plate: Plate  # the plate the run computed (the first of a plate series)
    series: list[tuple[int, Plate]]  # a plate-series run's plates with their 1-based positions; [] for one plate
    layout: Layout  # the protocol's layout
    result: AssayResult
    checks: list[Check]
    valid: bool  # every acceptance check passed
    operator: str
    created_at: str  # ISO 8601, UTC, seconds
    software: dict  # assayrunner, Python and plugin versions
    samples: dict  # slot -> what the samples file says about it
    skipped: list[str]  # sample slots left empty on the plate
    settings: dict  # the lab settings a certificate shows
    supersedes: int | None = None  # the run this one replaces
    modified_from: dict | None = None  # the shipped protocol this one has the id and version of (see protocol.modified_from)
    stored: store.StoredRun = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = store.run_rows(self)
        object.__setattr__(self, "stored", store.StoredRun(rows, integrity.record_digest(rows)))

    @property
    def digest(self) -> str:
        """The digest a certificate carries: every row the run is stored as (integrity.record_digest)."""
        return self.stored.digest

    def superseding(self, run_id: int) -> RunRecord:
        """The same run as the replacement of run `run_id` (the link is part of the stored rows and digest)."""
        return replace(self, supersedes=run_id)
