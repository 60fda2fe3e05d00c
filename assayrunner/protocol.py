"""Protocols: versioned NCL-style definitions in TOML, validated with pydantic, found by id or path."""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import tomllib
from functools import cache, lru_cache
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .criteria import Criterion
from .errors import PluginError, UserError
from .interpretation import Interpretation
from .layout import Layout
from .resources import data_dir


class Source(BaseModel):
    """Where the protocol's numbers come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str
    version: str | None = None
    date: str | None = None
    url: str | None = None
    notes: str | None = None


class ReadSpec(BaseModel):
    """A read the protocol uses, found in the plate by wavelength (or label)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    wavelength_nm: float | None = Field(None, gt=0)
    label: str | None = None
    kind: Literal["endpoint", "kinetic", "calculated"] = "endpoint"
    optional: bool = False


class Protocol(BaseModel):
    """A protocol file's content, plus where it was read from and the SHA-256 of its bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    version: str
    title: str
    assay: str
    files: int = Field(1, ge=1, description="export files one run takes (separate exports per read), grouped "
                                            "explicitly by --group or a run sheet")
    plate_series: bool = Field(False, description="a run reads one plate per dose: every plate of its files in order "
                                                  "(stacked blocks of a file in file order), any number of files")
    source: Source
    reads: list[ReadSpec]
    layout: Layout
    parameters: dict[str, Any] = {}
    lot_parameters: list[str] = []  # parameters each run must set from its kit or control lot (--param @lot.toml)
    acceptance: list[Criterion] = []
    interpretation: list[Interpretation] = []
    path: Path | None = None
    sha256: str = ""
    text: str = ""

    @field_validator("parameters")
    @classmethod
    def _finite_parameters(cls, value: dict) -> dict:
        check_numbers(value, "")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.layout.from_export and self.layout.wells:
            raise ValueError("layout.from_export: the layout comes from the export; give no wells, or drop from_export")
        for first, second in self.layout.duplicate_groups():
            raise ValueError(f"layout.wells[{second}]: repeats the role, name and nominal of layout.wells[{first}]; "
                             "put the wells of one group in one entry")
        for k, criterion in enumerate(self.acceptance):
            role = criterion.items.removesuffix("s") if criterion.items else None
            count = len({g.label for g in self.layout.wells if g.role == role})
            if count and criterion.at_least > count:
                raise ValueError(f"acceptance[{k}].at_least: needs {criterion.at_least} of {criterion.items!r} but "
                                 f"the layout has {count}; lower at_least or add {role} groups")
        return self

    @model_validator(mode="after")
    def _lot_parameters_exist(self):
        unknown = [key for key in self.lot_parameters if key not in self.parameters]
        if unknown:
            raise ValueError(f"lot_parameters names {', '.join(unknown)}, not in [parameters]")
        return self


_KEY_PATH = re.compile(r"^[\w-]+(\[\d+\])*(\.[\w-]+(\[\d+\])*)*$|^\[\d+\](\.[\w-]+)*$")


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("["):
            out += str(part)
        else:
            out += f".{part}" if out else str(part)
    return out


def check_numbers(value: Any, path: str) -> None:
    """Every number finite; a dilution or dilution factor above 0 (ValueError naming the key)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            check_numbers(item, f"{path}[{k}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: {value} is not a finite number")
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and "dilution" in path.lower() \
            and value <= 0:
        raise ValueError(f"{path}: a dilution must be above 0, not {value:g}")


def validation_message(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(key path, message) of the most telling error, e.g. ('layout.wells[3].nominal', 'Input should be ...').

    An unknown key comes first (a misspelling also makes the intended key 'missing'), with a
    suggestion from the missing keys beside it.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = ((prefix,) if prefix else ()) + tuple(error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"][:-1] == error["loc"][:-1]]
        close = difflib.get_close_matches(str(error["loc"][-1]), missing, n=1)
        message = f"unknown key; did you mean {close[0]!r}?" if close else "unknown key; check its spelling"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "value_error":  # our validators: 'key.path: what is wrong'
        key, sep, rest = message.removeprefix("Value error, ").partition(": ")
        if sep and _KEY_PATH.match(key):
            loc, message = loc + (key,), rest
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _location(loc) or "(top level)", message + more


def load_file(path: Path) -> Protocol:
    """Read and validate one protocol file; UserError naming the file and the key path."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the protocol: {exc.strerror}", file=path) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"not valid TOML: {exc}", file=path) from None
    for key in ("path", "sha256", "text"):
        raw.pop(key, None)
    try:
        protocol = Protocol.model_validate(raw)
    except ValidationError as exc:
        where, message = validation_message(exc)
        raise UserError(message, file=path, where=where) from None
    for well, first, second in protocol.layout.overlaps():
        raise UserError(f"well {well} is also in layout.wells[{first}]; a well belongs to one group",
                        file=path, where=f"layout.wells[{second}]")
    return protocol.model_copy(update={"path": path, "sha256": hashlib.sha256(data).hexdigest(),
                                       "text": data.decode("utf-8")})


@lru_cache(maxsize=32)
def from_text(text: str) -> Protocol:
    """A stored protocol text as a Protocol (without path and hash), parsed once per distinct text."""
    return Protocol.model_validate(tomllib.loads(text))


def shipped_files(extra: list[Path] = ()) -> list[Path]:
    """The built-in protocol files plus those plugins register."""
    return sorted(data_dir("protocols").glob("*.toml")) + list(extra)


def find(ref: str | Path, extra: list[Path] = (), owners: Mapping[Path, str] = {}) -> Protocol:
    """A protocol by file path, or by id among the shipped ones (only the file with that id is parsed).

    owners: plugin name per plugin protocol file, for the error when two files declare the id (PluginError:
    the installed plugins clash, nothing the user typed is wrong)."""
    path = Path(ref)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UserError("protocol file not found", file=path)
        return load_file(path)
    files = shipped_files(extra)
    same = duplicate_ids(files).get(str(ref))
    if same:
        raise PluginError(f"protocol id {str(ref)!r} is declared by " + " and by ".join(describe(f, owners) for f in same)
                          + "; uninstall the plugin that should not ship it, or give the path of the file to use")
    index = protocol_index(files)
    if str(ref) in index:
        protocol = load_file(index[str(ref)])
        if protocol.id == str(ref):
            return protocol
        index = dict(_parsed_ids(files))  # an id line the quick scan misread: parse all
    if str(ref) not in index:
        raise UserError(f"unknown protocol {str(ref)!r}; shipped protocols: {', '.join(sorted(index))}. "
                        "Give an id or the path of a .toml file")
    return load_file(index[str(ref)])


def describe(path: Path, owners: Mapping[Path, str] = {}) -> str:
    """A shipped protocol file and who ships it."""
    if path in owners:
        return f"{path} (plugin {owners[path]!r})"
    return f"{path} (built in)" if path.parent == data_dir("protocols") else str(path)


def _parsed_ids(files: list[Path]):
    for file in files:
        try:
            yield load_file(file).id, file
        except UserError:
            continue


#: A top-level `id = "..."` (or '...') line, the form every shipped protocol uses.
_ID_LINE = re.compile(r"""^id\s*=\s*(?:"([^"\\]*)"|'([^']*)')\s*(?:#.*)?$""")


def protocol_index(files: list[Path]) -> dict[str, Path]:
    """Protocol id -> file (see duplicate_ids for ids two files declare), read from each file's `id` line; a
    file whose id is not written that simply is parsed whole, one that cannot be read is left out. Cached per
    file state (path, size, mtime)."""
    return {pid: path for pid, path in _index(tuple(_state(f) for f in files)) if pid is not None}


def duplicate_ids(files: list[Path]) -> dict[str, list[Path]]:
    """Protocol id -> the files declaring it, for each id that more than one file declares."""
    seen: dict[str, list[Path]] = {}
    for pid, path in _index(tuple(_state(f) for f in files)):
        if pid is not None and path.resolve() not in {p.resolve() for p in seen.get(pid, [])}:
            seen.setdefault(pid, []).append(path)
    return {pid: paths for pid, paths in seen.items() if len(paths) > 1}


def _state(path: Path) -> tuple[Path, int, int]:
    try:
        st = path.stat()
    except OSError:
        return path, -1, -1
    return path, st.st_size, st.st_mtime_ns


@cache
def _index(states: tuple[tuple[Path, int, int], ...]) -> tuple[tuple[str | None, Path], ...]:
    return tuple((_declared_id(path), path) for path, _, _ in states)


def _declared_id(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.lstrip().startswith("[") or '"""' in line or "'''" in line:
            break  # past the top-level keys, or a multi-line string (a line in it may look like an id)
        match = _ID_LINE.match(line.strip())
        if match:
            return match.group(1) if match.group(1) is not None else match.group(2)
    try:
        return load_file(path).id
    except UserError:
        return None


def modified_from(protocol: Protocol, extra: list[Path] = ()) -> dict | None:
    """{'id', 'version', 'changed': [key paths]} when a shipped protocol has this id and version but other
    bytes (a protocol is what its hash says); None for a shipped protocol or one with its own id/version."""
    files = shipped_files(extra)
    ids = {path: pid for pid, path in _index(tuple(_state(f) for f in files))}
    for file in files:
        if protocol.path is not None and file.resolve() == Path(protocol.path).resolve():
            return None
        if ids.get(file, protocol.id) not in (protocol.id, None):
            continue  # its id line names another protocol: parsing it could not match
        shipped = load_file(file)
        if (shipped.id, shipped.version) == (protocol.id, protocol.version) and shipped.sha256 != protocol.sha256:
            changed = changed_keys(tomllib.loads(shipped.text), tomllib.loads(protocol.text))
            return {"id": shipped.id, "version": shipped.version, "sha256": shipped.sha256,
                    "changed": changed or ["comments or formatting only"]}
    return None


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Key paths ('parameters.flag_cv_percent', 'acceptance[3].limit') whose values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [path for key in dict.fromkeys([*old, *new])
                for path in changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [path for i, (a, b) in enumerate(zip(old, new)) for path in changed_keys(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix]
