"""Plate layouts: which wells hold what. A protocol lists groups of wells; here they resolve per well.

    wells = [
      { wells = "A1:A2", role = "blank" },
      { wells = "A3:A4", role = "calibrator", name = "CAL1", nominal = 0.8 },
      { wells = "D5:D6", role = "sample", name = "S1", interference = true },
    ]

A range "A1:B3" is the rectangle between two corners; "A1,A3" lists wells.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .plate import parse_well, well_name


#: Roles whose name is one level with one nominal value (a dose series may repeat a sample's name per dose).
SINGLE_NOMINAL_ROLES = ("calibrator", "qc", "standard")


class WellGroup(BaseModel):
    """One group of replicate wells with the same role and content."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    wells: str
    role: str
    name: str | None = None
    nominal: float | None = Field(None, ge=0)
    unit: str | None = None
    interference: bool = Field(False, description="the same condition without the biological matrix")
    leave_out: bool = Field(False, description="a well without a number (NaN, overflow) is left out, not an error")

    @field_validator("wells")
    @classmethod
    def _valid_wells(cls, value: str) -> str:
        expand_wells(value)
        return value

    @property
    def label(self) -> str:
        return self.name or self.role


def expand_wells(spec: str) -> list[str]:
    """'A1:B2,C5' -> ['A1', 'A2', 'B1', 'B2', 'C5'] (row by row); ValueError for a bad name."""
    return list(_expanded(spec))


@lru_cache(maxsize=4096)
def _expanded(spec: str) -> tuple[str, ...]:
    """expand_wells once per distinct spec and process: a batch resolves its layout's groups once."""
    wells: list[str] = []
    for part in spec.split(","):
        if ":" in part:
            first, last = part.split(":", 1)
            (r0, c0), (r1, c1) = parse_well(first), parse_well(last)
            wells += [well_name(r, c) for r in range(min(r0, r1), max(r0, r1) + 1)
                      for c in range(min(c0, c1), max(c0, c1) + 1)]
        else:
            wells.append(well_name(*parse_well(part)))
    return tuple(wells)


class _Resolved:
    """What a layout's list of groups resolves to, each part worked out at its first use and shared (do not
    change them); `wells` is kept so its id cannot be reused."""

    def __init__(self, wells: list[WellGroup]):
        self.wells = wells
        self.groups = tuple(Group(i, g, _expanded(g.wells)) for i, g in enumerate(wells))
        self.without: dict[frozenset[str], Layout] = {}
        self.selected: dict[tuple[str | None, bool | None], tuple[Group, ...]] = {}

    @cached_property
    def sample_slots(self) -> dict[str, tuple[str, ...]]:
        names = {g.name for g in self.groups if g.role == "sample"}
        slots: dict[str, tuple[str, ...]] = {}
        for group in self.groups:
            if group.name in names:
                slots[group.name] = slots.get(group.name, ()) + group.wells
        return slots

    @cached_property
    def cells(self) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
        wells = tuple(well for group in self.groups for well in group.wells)
        places = [parse_well(well) for well in wells]
        return wells, tuple(r for r, _ in places), tuple(c for _, c in places)

    @cached_property
    def by_well(self) -> dict[str, Group]:
        return {well: group for group in self.groups for well in group.wells}


#: id(wells list) -> what that list resolves to.
_RESOLVED: dict[int, _Resolved] = {}
_EVICTING = threading.Lock()


def _resolved(wells: list[WellGroup]) -> _Resolved:
    """A layout's groups, resolved once per layout (the list of a frozen Layout never changes)."""
    hit = _RESOLVED.get(id(wells))
    if hit is not None and hit.wells is wells:
        return hit
    hit = _Resolved(wells)
    with _EVICTING:  # threads share the cache (engine.execute from several threads)
        if len(_RESOLVED) >= 256:
            del _RESOLVED[next(iter(_RESOLVED))]  # the oldest
        _RESOLVED[id(wells)] = hit
    return hit


@dataclass(frozen=True)
class Group:
    """A resolved group: its definition, its wells and its index in the protocol's layout list; its role and name
    (the spec's label) are plain attributes, read for every well of every plate."""

    index: int
    spec: WellGroup
    wells: tuple[str, ...]
    role: str = field(init=False, compare=False, repr=False)
    name: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", self.spec.role)
        object.__setattr__(self, "name", self.spec.label)

    @property
    def nominal(self) -> float | None:
        """The layout entry's `nominal` (a calibrator's concentration, a dilution step), or None."""
        return self.spec.nominal

    @property
    def unit(self) -> str | None:
        return self.spec.unit

    @property
    def interference(self) -> bool:
        return self.spec.interference


class Layout(BaseModel):
    """A plate layout: the plate size it is written for and its well groups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(8, ge=1, le=32)
    columns: int = Field(12, ge=1, le=48)
    wells: list[WellGroup] = []
    from_export: bool = Field(False, description="the run's layout comes from the export (Gen5 Layout block, "
                                                 "SoftMax Pro group tables), not from `wells`")

    @model_validator(mode="after")
    def _wells_on_the_plate(self):
        for k, group in enumerate(self.wells):
            for well in expand_wells(group.wells):
                r, c = parse_well(well)
                if r >= self.rows or c >= self.columns:
                    raise ValueError(f"wells[{k}]: well {well} is outside the {self.rows} x {self.columns} plate "
                                     "the layout declares (rows, columns)")
        return self

    def duplicate_groups(self) -> list[tuple[int, int]]:
        """(first, second) indices of groups that say the same thing twice: the same role, name and
        interference (and, except for levels with one nominal each, the same nominal): merge their wells."""
        seen: dict[tuple, int] = {}
        clashes = []
        for group in self.groups():
            spec = group.spec
            key = (spec.role, group.name, spec.interference,
                   None if spec.role in SINGLE_NOMINAL_ROLES else spec.nominal)
            if key in seen:
                clashes.append((seen[key], group.index))
            seen.setdefault(key, group.index)
        return clashes

    def groups(self, role: str | None = None, interference: bool | None = None) -> list[Group]:
        """Resolved groups, optionally only those with a role / interference setting (each selection worked out
        once per layout)."""
        resolved = _resolved(self.wells)
        hit = resolved.selected.get((role, interference))
        if hit is None:
            hit = resolved.selected[role, interference] = tuple(
                g for g in resolved.groups
                if (role is None or g.role == role) and (interference is None or g.spec.interference == interference))
        return list(hit)

    def sample_slots(self) -> dict[str, tuple[str, ...]]:
        """Sample slot name -> its wells: every group with the name of a sample group, whatever its role (a slot
        may span several groups, e.g. its spiked wells with role 'spike'). Worked out once per layout and
        shared: do not change it."""
        return _resolved(self.wells).sample_slots

    def cells(self) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
        """Every group's wells in order (a well twice if two groups have it), with their 0-based rows and
        columns (for indexing a read's values); once per layout."""
        return _resolved(self.wells).cells

    def without(self, names: frozenset[str]) -> Layout:
        """This layout without the groups of those names (e.g. a plate's empty sample slots); one object per
        layout and set of names, shared: do not change it."""
        resolved = _resolved(self.wells)
        hit = resolved.without.get(names)
        if hit is None:
            hit = resolved.without[names] = self.model_copy(
                update={"wells": [g.spec for g in resolved.groups if g.name not in names]})
        return hit

    def group(self, role: str, name: str | None = None, interference: bool = False) -> Group | None:
        """The single group with this role (and name), or None."""
        for g in self.groups(role, interference):
            if name is None or g.name == name:
                return g
        return None

    def by_well(self) -> dict[str, Group]:
        """Well name -> its group, in plate order; once per layout and shared: do not change it."""
        return _resolved(self.wells).by_well

    def overlaps(self) -> list[tuple[str, int, int]]:
        """(well, first group index, second group index) for every well assigned twice."""
        seen: dict[str, int] = {}
        clashes = []
        for group in self.groups():
            for well in group.wells:
                if well in seen:
                    clashes.append((well, seen[well], group.index))
                seen[well] = group.index
        return clashes
