"""What an assay needs from the layout and the parameters: required groups and controls, matched
parameter tables and reads; each missing piece is a UserError naming the protocol key to fix."""

from __future__ import annotations

from ..errors import UserError


def required_group(inp, role: str, name: str | None = None, *, needed_by: str = "the assay"):
    """The layout's (first) group of the role (and name), not interference wells; UserError if there is none."""
    group = inp.layout.group(role, name)
    if group is None:
        what = f"{role} wells" + (f" named {name!r}" if name else "")
        raise UserError(f"the layout has no {what}; {needed_by} needs them", file=inp.protocol.path,
                        where="layout.wells")
    return group


def required_groups(inp, role: str, *, needed_by: str = "the assay") -> list:
    """Every group of the role (not interference wells); UserError when the layout has none."""
    groups = inp.layout.groups(role, interference=False)
    if not groups:
        raise UserError(f"the layout has no {role} wells; {needed_by} needs them", file=inp.protocol.path,
                        where="layout.wells")
    return groups


def required_controls(inp, present, names) -> None:
    """UserError when a control the parameters name (e.g. negative_control) is not among the present names."""
    for name in names:
        if name not in present:
            raise UserError(f"the layout has no control named {name!r} (parameters name it)",
                            file=inp.protocol.path, where="layout.wells")


def matched_groups(inp, role: str, values: dict, key: str, *, needed_by: str = "the assay") -> list[tuple]:
    """(group, values[group name]) for each group of the role: parameters.key must name exactly those groups."""
    groups = required_groups(inp, role, needed_by=needed_by)
    names = [g.name for g in groups]
    missing = [n for n in names if n not in values]
    unknown = [n for n in values if n not in names]
    if missing or unknown:
        problem = "; ".join(([f"no value for {', '.join(missing)}"] if missing else []) +
                            ([f"{', '.join(unknown)} not in the layout"] if unknown else []))
        overridden = inp.parameters.model_dump(mode="json")[key] != inp.protocol.parameters.get(key)
        raise UserError(f"{problem}: give one entry per {role} group of the layout ({', '.join(names)})",
                        file="--param" if overridden else inp.protocol.path, where=f"parameters.{key}")
    return [(g, values[g.name]) for g in groups]


def check_reads(inp, *keys: str) -> None:
    """UserError when parameters.<key> (a read name; None allowed) is not one of the protocol's reads."""
    names = [r.name for r in inp.protocol.reads]
    for key in keys:
        value = getattr(inp.parameters, key)
        if value is not None and value not in names:
            raise UserError(f"names {value!r}, not one of the protocol's reads ({', '.join(names)})",
                            file=inp.protocol.path, where=f"parameters.{key}")


def reference_corrected(inp, read: str, reference: str | None):
    """(values, used): values(group) is the read minus the reference read per well (e.g. OD450 - OD650) when
    the plate has that reference and it is another read, else the read alone; used names the reference read
    subtracted, or None."""
    used = reference if reference is not None and reference != read and reference in inp.reads else None

    def values(group):
        measured = inp.values(group, read)
        return measured - inp.values(group, used) if used else measured

    return values, used
