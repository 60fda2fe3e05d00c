"""execute(): read -> layout -> analyze -> judge -> store -> render. Usable from Python without the CLI."""

from __future__ import annotations

import getpass
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from . import __version__, plugins, store
from .criteria import Check, MissingMetric, Prepared, TooFewItems, evaluate
from .errors import PluginError, UserError
from .layout import Layout
from .plate import Plate, Read, parse_well, well_name
from .config import Limits, limits as current_limits, load_config_file
from .parameters import override_parameters, validated_parameters
from .protocol import Protocol, ReadSpec, modified_from
from .reading import InputFile, read_input, select_plate
from .reads import describe_area
from .registry import Assay, AssayInput, AssayResult, PlateDose, Result, SeriesPlate
from .result_check import check_result
from .run_record import RunRecord
from .samples import read_samples
from .vendor import layout_from_export


@dataclass
class RunOutcome:
    """What a run produced; `to_json()` is the `execute --json` contract."""

    run_id: int
    assay: str
    protocol: Protocol
    valid: bool
    checks: list[Check]
    result: AssayResult
    certificate_html: Path | None
    certificate_pdf: Path | None = None
    skipped: list[str] = field(default_factory=list)
    modified_from: dict | None = None  # the shipped protocol this one has the id and version of, and what changed
    digest: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "assay": self.assay,
            "protocol": {"id": self.protocol.id, "version": self.protocol.version, "sha256": self.protocol.sha256,
                         "modified_from": self.modified_from},
            "valid": self.valid,
            "checks": [c.to_json() for c in self.checks],
            "results": [result_json(r) for r in self.result.results],
            "certificate": {"html": str(self.certificate_html) if self.certificate_html else None,
                            "pdf": str(self.certificate_pdf) if self.certificate_pdf else None},
            "digest": self.digest,
            "warnings": self.warnings,
        }


def result_json(r) -> dict:
    value = r.value if r.value is not None and math.isfinite(r.value) else None
    return {"sample": r.sample, "metric": r.metric, "value": value, "unit": r.unit,
            "flags": list(r.flags), "interpretation": r.interpretation, "qualifier": r.qualifier, "slot": r.slot,
            "sample_id": r.sample_id, "lot": r.lot, "concentration": r.concentration,
            "concentration_unit": r.concentration_unit}


def execute(assay_name: str, files: list[Path], *, protocol: str | Path | None = None,
            samples: Path | None = None, db: Path = Path("assayrun.db"), out: Path = Path("certificates"),
            operator: str | None = None, format: str | None = None, plate: str | None = None,
            templates: Path | None = None, pdf: bool = False, supersedes: int | None = None,
            params: Sequence[str] = (), certificate: bool = True, layout_from_export: bool = False) -> RunOutcome:
    """Run one assay on export files (one plate, or the group of files the protocol takes for one run),
    store the run and write its certificate.

    params: per-run overrides of the protocol's [parameters] (see override_parameters); the
    validated parameters are stored with the run.
    """
    setup = prepare(assay_name, protocol, params, layout_from_export)
    record = compute(setup, files, samples=samples, operator=operator, format=format, plate=plate)
    if certificate:
        from .certificate import check_destination

        check_destination(out, templates)  # before anything is stored
    database = store.open_db(db)
    try:
        return commit(record, database, out=out, templates=templates, pdf=pdf, supersedes=supersedes,
                      certificate=certificate, db_path=db)
    finally:
        database.close()


@dataclass(frozen=True)
class Setup:
    """What every run of a call shares: the assay, its protocol, the validated parameters and the --param
    specs they came from, the software and the assay's plugin; and, worked out at its first run, the lab
    settings, the OS user and the prepared criteria (a batch reads its settings once, at its first run:
    every run of one command stores the same settings, and the next command reads them again)."""

    assay: Assay
    protocol: Protocol
    parameters: object
    software: dict
    params: tuple[str, ...] = ()
    assay_plugin: dict | None = None
    modified_from: dict | None = None  # see protocol.modified_from
    layout_from_export: bool = False  # --layout-from-export, or the protocol's [layout] from_export
    parameters_json: dict = field(default_factory=dict)  # the parameters as stored (JSON values)
    overridden: list[str] = field(default_factory=list)  # the parameter names the params changed

    @cached_property
    def lab_settings(self) -> tuple[dict, list[store.StoredFile]]:
        """lab_settings(), once (an error is raised again at the next run: nothing is kept)."""
        return lab_settings()

    @cached_property
    def limits(self) -> Limits:
        """The [limits] on reading every file of the command, looked up at its first run."""
        return current_limits()

    @cached_property
    def os_user(self) -> str:
        return _os_user()

    @cached_property
    def criteria(self) -> tuple[Prepared, ...]:
        """Each acceptance criterion, prepared for judging (its description rendered, its limits as shown)."""
        return tuple(Prepared.of(criterion) for criterion in self.protocol.acceptance)


def prepare(assay_name: str, protocol: str | Path | None = None, params: Sequence[str] = (),
            layout_from_export: bool = False) -> Setup:
    """Find the assay and protocol and validate the parameters (UserError for any of them)."""
    loaded = plugins.load()
    assay = loaded.assay(assay_name)
    proto = loaded.protocol(protocol or assay.default_protocol)
    if proto.assay != assay.name:
        raise UserError(f"this protocol is for assay {proto.assay!r}, not {assay.name!r}", file=proto.path,
                        where="assay")
    plugin = loaded.assay_plugins.get(assay.name)
    parameters = validated_parameters(assay, proto, params)
    return Setup(assay, proto, parameters, software_versions(loaded), tuple(params),
                 {"distribution": plugin.distribution, "version": plugin.version} if plugin else None,
                 modified_from(proto, loaded.protocol_files), layout_from_export or proto.layout.from_export,
                 parameters.model_dump(mode="json"), sorted(override_parameters(proto.parameters, params)[1]))


def compute(setup: Setup, files: Sequence[Path], *, samples: Path | None = None, operator: str | None = None,
            format: str | None = None, plate: str | None = None, doses: Sequence[PlateDose] = ()) -> RunRecord:
    """Read, lay out, analyze and judge one run: the run record the store takes. Pure (no writes).

    doses: for a plate_series protocol, what the run sheet says of each file (concentrations, replicate set)."""
    assay, proto = setup.assay, setup.protocol
    operator = setup.os_user if operator is None else _operator(operator)
    _check_file_count(proto, files)
    loaded = plugins.load()
    inputs = [read_input(Path(f), loaded.readers, format, setup.limits) for f in files]
    plates = _series_plates(inputs, doses, plate) if proto.plate_series else \
        [(select_plate(inputs, plate), inputs[0], PlateDose(), None)]
    if setup.layout_from_export:  # the run's layout is the one the reader software was given (the first plate's)
        proto = proto.model_copy(update={"layout": layout_from_export(plates[0][0], plates[0][1].path)})
    laid_out = [_lay_out(proto, p, f) for p, f, _, _ in plates]
    chosen, (reads, layout, skipped) = plates[0][0], laid_out[0]
    skipped = [s for s in skipped if all(s in other[2] for other in laid_out)]  # empty on every plate
    slots = sorted(proto.layout.sample_slots(), key=_slot_order)
    sample_info = read_samples(samples, slots, skipped) if samples else {}
    settings, settings_files = setup.lab_settings
    series = [SeriesPlate(k, p.name, f.path.name, concentration, dose.unit, dose.replicate,
                          AssayInput(proto, setup.parameters, p, r, lay, sample_info))
              for k, ((p, f, dose, concentration), (r, lay, _)) in enumerate(zip(plates, laid_out), start=1)
              ] if proto.plate_series else []
    assay_input = AssayInput(proto, setup.parameters, chosen, reads, layout, sample_info, series)
    result = _analyze(assay, assay_input)
    _interpret(proto, result)
    checks = _judge(proto, result, setup.criteria)
    _invalidate_scoped(checks, result)
    describe_samples(result.results, assay_input, slots)
    try:
        return RunRecord(
            assay=assay.name, assay_title=assay.title, assay_template=assay.template, assay_plugin=setup.assay_plugin,
            protocol=proto, parameters=setup.parameters_json, overridden=setup.overridden, inputs=inputs,
            attachments=_attachments(samples, setup.params) + settings_files, plate=chosen,
            series=[(s.position, s.input.plate) for s in series], layout=proto.layout, result=result, checks=checks,
            valid=all(c.passed for c in checks), operator=operator,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), software=setup.software,
            samples={k: vars(v) for k, v in sample_info.items()}, skipped=skipped, settings=settings,
            modified_from=setup.modified_from)
    except (TypeError, ValueError):  # a part of the assay's result cannot be stored as JSON: name it
        check_result(result, _who(assay))
        raise


def commit(record: RunRecord, database, *, out: Path = Path("certificates"), templates: Path | None = None,
           pdf: bool = False, supersedes: int | None = None, certificate: bool = True,
           db_path: Path | None = None) -> RunOutcome:
    """Store a computed run in one transaction and write its certificate (unless certificate=False)."""
    if certificate:  # jinja2 is imported only for a run that writes a certificate
        from . import certificate as cert
    formats = ("html", "pdf") if pdf else ("html",)
    warnings: list[str] = []
    with store.transaction(database):
        if supersedes is not None:
            _check_supersedes(database, supersedes, record.assay, db_path)
            record = record.superseding(supersedes)  # the link is part of the stored run
        run_id = store.save_run(database, record.stored)
        if supersedes is not None:
            store.audit(database, "run superseded", supersedes, record.operator, {"by": run_id})
        paths = cert.issue(database, run_id, out, formats, templates, just_stored=True) if certificate else {}
        if certificate and supersedes is not None:
            try:
                with store.transaction(database):  # a savepoint: a failed re-issue leaves no row and no file
                    cert.issue(database, supersedes, out, formats, templates)
            except UserError as exc:  # e.g. its assay plugin was upgraded since: the database records the link
                warnings.append(f"the certificate of run {supersedes} was not issued again: {exc.message}")
    return RunOutcome(run_id, record.assay, record.protocol, record.valid, record.checks, record.result,
                      paths.get("html"), paths.get("pdf"), record.skipped, modified_from=record.modified_from,
                      digest=record.digest, warnings=warnings)


def _series_plates(inputs: list[InputFile], doses: Sequence[PlateDose], choice: str | None) -> list[tuple]:
    """(plate, its file, the file's dose, the plate's concentration or None) for every plate of every file, in
    order: a plate-series run reads them all (stacked blocks of one file are plates in file order)."""
    if choice is not None:
        raise UserError("a plate-series protocol reads every plate of its files; --plate does not apply",
                        where="--plate")
    plates = []
    for k, f in enumerate(inputs):
        dose = doses[k] if k < len(doses) else PlateDose()
        given = dose.concentrations
        if given and len(given) != len(f.plates):
            raise UserError(f"the run sheet gives {len(given)} concentration(s) for this file but it holds "
                            f"{len(f.plates)} plate(s); give one per plate, in file order (e.g. 512;256;128)",
                            file=f.path)
        plates += [(p, f, dose, given[i] if given else None) for i, p in enumerate(f.plates)]
    return plates


def _lay_out(proto: Protocol, plate: Plate, source: InputFile) -> tuple[dict[str, Read], Layout, list[str]]:
    """A plate's reads by protocol name, its layout without empty slots, and those slots."""
    required = [s for s in proto.reads if not s.optional]
    reads = {spec.name: _find_read(spec, plate, [source], required == [spec]) for spec in proto.reads}
    reads = {name: read for name, read in reads.items() if read is not None}
    _check_shape(plate, proto, source.path)
    return (reads, *_used_layout(proto, reads, source.path))


def _check_file_count(proto: Protocol, files: Sequence[Path]) -> None:
    """One run reads as many export files as the protocol's `files` says: never a silent merge."""
    if len(files) == proto.files or (proto.plate_series and files):
        return
    names = ", ".join(Path(f).name for f in files) or "none"
    if proto.files == 1:
        raise UserError(f"protocol {proto.id} takes one export file per run, not {len(files)} ({names}); "
                        "give them as a batch (one run per file)", file=Path(files[0]) if files else None)
    raise UserError(f"protocol {proto.id} takes {proto.files} export files per run (`files` in the protocol), "
                    f"not {len(files)} ({names}); group them with --group A,B or a run sheet", file=proto.path,
                    where="files")


def _operator(operator: str) -> str:
    """Who ran the assay, as given; a blank name is refused."""
    if not operator.strip():
        raise UserError("the operator's name is blank; give the name of the person who ran the assay",
                        where="--operator")
    return " ".join(operator.split())


def _attachments(samples: Path | None, params: Sequence[str]) -> list[store.StoredFile]:
    """The samples file and --param @FILE files, stored with the run like the exports."""
    files = [store.StoredFile.of("samples", samples, "csv")] if samples else []
    return files + [store.StoredFile.of("parameters", Path(spec[1:]), "toml") for spec in params
                    if spec.startswith("@")]


def lab_settings() -> tuple[dict, list[store.StoredFile]]:
    """The lab settings a certificate shows (as stored with the run) and the files they came from."""
    config, path = load_config_file()
    files = [store.StoredFile.of("settings", path, "toml")] if path else []
    if config.lab.logo:
        files.append(store.StoredFile.of("logo", config.lab.logo, config.lab.logo.suffix.lstrip(".")))
    settings = config.model_dump(mode="json", exclude={"limits", "database"})  # how this machine reads and locks
    settings["lab"]["logo"] = config.lab.logo.name if config.lab.logo else None
    return settings, files


def describe_samples(results: list[Result], assay_input: AssayInput, slots: list[str]) -> None:
    """Fill each result's slot (from the assay, else its label), sample id, lot and concentration."""
    by_label = {slot: slot for slot in slots} | {assay_input.sample_name(slot): slot for slot in slots}
    for r in results:
        r.slot = r.slot or by_label.get(r.sample)
        sample = assay_input.samples.get(r.slot) if r.slot else None
        if sample is None:
            continue
        r.sample_id, r.lot = r.sample_id or sample.name, r.lot or sample.lot
        if r.concentration is None:
            r.concentration, r.concentration_unit = sample.concentration, sample.unit


def _check_supersedes(database, run_id: int, assay: str, db: Path) -> None:
    old = store.get_run(database, run_id)
    if old["assay"] != assay:
        raise UserError(f"run {run_id} is a {old['assay']} run; a {assay} run cannot supersede it", file=db)
    later = store.superseded_by(database, run_id)
    if later:
        raise UserError(f"run {run_id} is already superseded by run {later[0]}; supersede that one instead", file=db)


def _find_read(spec: ReadSpec, plate: Plate, inputs: list[InputFile], only_spec: bool) -> Read | None:
    """The plate's read the protocol's read spec names (by label, else by wavelength and kind); two that
    match are an error (the same read twice: which one holds the data is not known)."""
    found = [read for read in plate.reads if read.kind == spec.kind and (
        (read.label == spec.label) if spec.label is not None else (read.wavelength_nm == spec.wavelength_nm))]
    if len(found) > 1:
        raise UserError(f"reads {found[0].label!r} and {found[1].label!r} both match read {spec.name!r} of the "
                        "protocol: the file holds that read twice; export it once, or give the protocol's read "
                        "a label that names one", file=inputs[0].path)
    if found:
        return found[0]
    unnamed = [r for r in plate.reads if r.kind == spec.kind and r.wavelength_nm is None]
    if only_spec and len(plate.reads) == 1 and unnamed:
        return unnamed[0]  # an export that names no wavelength: its only read is the protocol's one required read
    if spec.optional:
        return None
    have = ", ".join(f"{r.label!r} ({r.kind}, {r.wavelength_nm or '?'} nm)" for r in plate.reads) or "none"
    want = f"{spec.wavelength_nm:g} nm" if spec.wavelength_nm else repr(spec.label)
    raise UserError(f"no {spec.kind} read at {want} for read {spec.name!r}; the plate has {have}. "
                    "Export that read, or use a protocol whose reads match", file=inputs[0].path)


def _check_shape(plate: Plate, proto: Protocol, path: Path) -> None:
    """The plate must hold the layout's rows x columns, and no data outside them (a plate larger than the
    layout is fine only where its extra wells are empty: a 384-well export of a 96-well area)."""
    need = (proto.layout.rows, proto.layout.columns)
    if plate.rows < need[0] or plate.columns < need[1]:
        raise UserError(f"the plate is {plate.rows} x {plate.columns} ({plate.rows * plate.columns} wells) but "
                        f"protocol {proto.id} needs {need[0]} x {need[1]} ({need[0] * need[1]} wells); "
                        "export the whole plate or use a protocol with a smaller layout", file=path)
    extra = _data_outside(plate, *need) if proto.layout.wells else []  # no wells: the assay reads a table
    if extra:
        names = ", ".join(extra[:8]) + (f" and {len(extra) - 8} more" if len(extra) > 8 else "")
        raise UserError(f"the plate holds data outside the {need[0]} x {need[1]} wells protocol {proto.id}'s layout "
                        f"is written for ({names}): more rows or columns than the layout reads; export only the "
                        "plate the protocol is written for, or use a protocol whose layout matches", file=path)


def _data_outside(plate: Plate, rows: int, columns: int) -> list[str]:
    """Wells beyond rows x columns that hold a number or an instrument marker in any read."""
    wells: set[tuple[int, int]] = set()
    for read in plate.reads:
        if read.values.shape[0] > rows or read.values.shape[1] > columns:  # else no value lies outside
            finite = np.isfinite(read.values)
            filled = finite.any(axis=2) if finite.ndim == 3 else finite
            filled[:rows, :columns] = False
            wells |= {(int(r), int(c)) for r, c in np.argwhere(filled)}
        wells |= {parse_well(w) for w, f in read.flags.items() if f not in ("missing", "no_value")
                  and (parse_well(w)[0] >= rows or parse_well(w)[1] >= columns)}
    return [well_name(r, c) for r, c in sorted(wells)]


def _check_covered(proto: Protocol, reads: dict[str, Read], path: Path) -> set[str]:
    """Layout wells outside an export's read area: an error, except sample slots wholly outside an area the
    export declares (a partial-plate read), which are unused slots. Returns those slots."""
    outside: set[str] = set()
    slots = proto.layout.sample_slots()
    for read in reads.values():
        if read.covered is None or read.covered.all():  # the whole plate read: nothing outside, nothing unread
            continue
        if read.area_declared:
            outside |= {slot for slot, wells in slots.items() if not any(read.is_covered(w) for w in wells)}
        unread = [well for group in proto.layout.groups() for well in group.wells
                  if not read.is_covered(well) and group.name not in outside]
        if unread:
            names = ", ".join(unread[:12]) + (f" and {len(unread) - 12} more" if len(unread) > 12 else "")
            raise UserError(f"the export does not cover {len(unread)} well(s) of protocol {proto.id}'s layout "
                            f"({names}): read {read.label!r} covers {describe_area(read.covered)} only; export "
                            "the whole plate, or use a protocol whose layout fits the wells read", file=path)
    return outside


def _used_layout(proto: Protocol, reads: dict[str, Read], path: Path) -> tuple[Layout, list[str]]:
    """The layout without empty sample slots (the protocol's own when none is empty); UserError for a well
    with text or no value."""
    empty_slots = list(_check_covered(proto, reads, path))
    blanks = [(read, _no_number(read)) for read in reads.values()]
    for slot, wells in proto.layout.sample_slots().items():
        if slot not in empty_slots and all(_is_empty(read, w, blank) for read, blank in blanks for w in wells):
            empty_slots.append(slot)
    layout = proto.layout.without(frozenset(empty_slots)) if empty_slots else proto.layout
    kept = layout.groups()
    if not _all_numbers(reads, *layout.cells()):
        _check_wells(kept, reads, path)
    return layout, sorted(empty_slots, key=_slot_order)


def _all_numbers(reads: dict[str, Read], wells: Sequence[str], rows: Sequence[int], columns: Sequence[int]) -> bool:
    """True when every read has a number and no flag at every one of the wells (at rows, columns): then no
    well is refused by _check_wells (which looks only at wells with a flag or NaN), and it need not look."""
    if not wells:
        return True
    for read in reads.values():
        if not (read.flags.keys().isdisjoint(wells) and read.point_flags.keys().isdisjoint(wells)):
            return False
        if np.isnan(read.values[rows, columns]).any():
            return False
    return True


def _check_wells(kept: list, reads: dict[str, Read], path: Path) -> None:
    """UserError for the first layout well (group by group, read by read) with text, no value, or a value
    that is not a number in a group without leave_out."""
    for group in kept:
        for well in group.wells:
            for name, read in reads.items():
                place = f"well {well} ({group.name}, protocol layout.wells[{group.index}])"
                if read.flags.get(well) == "invalid":
                    text = read.texts.get(well, "")
                    raise UserError(f"holds {text!r}, not a number; correct the export", file=path, where=place)
                if _is_empty(read, well):
                    raise UserError(f"has no value in read {read.label!r}; every layout well needs a reading "
                                    "(a sample slot may be left entirely empty)", file=path, where=place)
                flag = _not_a_number(read, well)
                if flag and not group.spec.leave_out:
                    raise UserError(f"holds {read.texts.get(well, flag)!r} in read {read.label!r}, "
                                    f"{NOT_A_NUMBER[flag]}; correct the export, or set leave_out = true on this "
                                    "layout group to leave such wells out", file=path, where=place)


#: Flags of a layout well that has no usable number: an error unless its group says leave_out = true.
NOT_A_NUMBER = {"missing": "a missing value (NaN)", "overflow": "an overflow (infinite or beyond float range)"}


def _not_a_number(read: Read, well: str) -> str | None:
    """The NOT_A_NUMBER flag of a well (of any of its time points in a kinetic read), or None."""
    flags = [read.flags.get(well), *read.point_flags.get(well, {}).values()]
    return next((f for f in flags if f in NOT_A_NUMBER), None)


def _is_empty(read: Read, well: str, blank: list[list[bool]] | None = None) -> bool:
    """No number and no marker, or the instrument's own 'no value' mark ('-'). blank: the read's
    _no_number(), when the caller has it."""
    if blank is None:
        value = read.values[parse_well(well)]
        nothing = bool(math.isnan(value) if read.kind != "kinetic" else all(map(math.isnan, value)))
    else:
        row, column = parse_well(well)
        nothing = blank[row][column]
    return nothing and read.flags.get(well) in (None, "no_value")


def _no_number(read: Read) -> list[list[bool]]:
    """Per row and column: the well has no number (NaN; a kinetic well NaN at every time point)."""
    nan = np.isnan(read.values)
    return (nan if read.kind != "kinetic" else nan.all(axis=2)).tolist()


@lru_cache(maxsize=4096)
def _slot_order(name: str) -> tuple:
    digits = "".join(ch for ch in name if ch.isascii() and ch.isdigit())[:18]
    return (name.rstrip("0123456789"), int(digits) if digits else 0, name)


def _analyze(assay: Assay, assay_input: AssayInput) -> AssayResult:
    """The assay's result, checked against the AssayResult contract, with the wells it was told to leave out."""
    who = _who(assay)
    try:
        result = assay.analyze(assay_input)
    except UserError:
        raise
    except Exception as exc:
        raise PluginError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    check_result(result, who, json=False)  # whether it can be stored as JSON: when the record is made
    _note_left_out(result, assay_input)
    return result


def _who(assay: Assay) -> str:
    return f"assay {assay.name!r} (plugin {assay.plugin or '?'})"


def _note_left_out(result: AssayResult, assay_input: AssayInput) -> None:
    """Layout wells left out under leave_out = true: every result says so (unless the assay already did)."""
    notes = {f"{flag} well {well}": f"{flag} well {well} ({group.name}) left out"
             for group in assay_input.layout.groups() if group.spec.leave_out for well in group.wells
             for read in assay_input.reads.values() if (flag := _not_a_number(read, well))}
    if not notes:  # no well left out: every result's flags as they are
        return
    for r in result.results:  # an assay flags wells as '<flag> well <well>': those rows say it already
        r.flags += [note for plain, note in notes.items() if plain not in r.flags and note not in r.flags]


def _interpret(proto: Protocol, result: AssayResult) -> None:
    """Class measured values by the protocol's tables; a censored value or one the plugin judged is left alone."""
    for table in proto.interpretation:
        for r in result.results:
            if r.metric == table.metric and r.interpretation is None and r.qualifier is None:
                r.interpretation = table.classify(r.value)


def _judge(proto: Protocol, result: AssayResult, prepared: Sequence[Prepared]) -> list[Check]:
    """A check per acceptance criterion (prepared: each one's Prepared)."""
    checks = []
    for i, (criterion, ready) in enumerate(zip(proto.acceptance, prepared, strict=True)):
        try:
            checks.append(evaluate(criterion, result.metrics, ready))
        except MissingMetric as exc:
            raise UserError(f"metric {exc.args[0]!r} is not computed by assay {proto.assay!r}",
                            file=proto.path, where=f"acceptance[{i}]") from None
        except TooFewItems as exc:
            raise UserError(f"needs {criterion.at_least} passing {exc.args[0]!r} but this run has {exc.args[1]}; "
                            "lower at_least", file=proto.path, where=f"acceptance[{i}].at_least") from None
    return checks


def _invalidate_scoped(checks: list[Check], result: AssayResult) -> None:
    """A failed scoped check (e.g. the APTT controls) flags the results of its scope as invalid."""
    for check in checks:
        if not check.passed and check.scope:
            for r in result.results:
                if r.scope == check.scope:
                    r.flags.append(f"invalid: {check.id} failed")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def software_versions(loaded: plugins.Plugins) -> dict:
    """assayrunner, Python and every loaded plugin's distribution version."""
    versions = {"assayrunner": __version__, "python": platform.python_version()}
    for info in loaded.info:
        if not info.error:
            versions[info.distribution if info.distribution != "assayrunner" else info.name] = info.version
    return versions
