"""Settings: the lab and paper for certificates, bounds on input files, database locking; from assayrun.toml
in the working directory, else in the user config directory.

    [lab]
    name = "Nanomedicine Characterization Lab"
    address = "Building 469, Frederick, MD"
    logo = "logo.png"            # relative to this file
    [certificate]
    paper = "A4"                 # or "letter"
    [limits]                     # bounds on one input file (defaults below)
    max_file_mb = 32
    [database]
    lock_timeout_s = 60          # how long a writer waits for another one before giving up
    [signatures]
    distinct_people = true       # operator, reviewer, approver: three people (false for a small lab)

Any [limits] or [database] setting can also come from the environment, which wins:
ASSAYRUN_LIMITS_MAX_FILE_MB=8, ASSAYRUN_DATABASE_LOCK_TIMEOUT_S=5.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError

from .errors import UserError


class Lab(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    address: str = ""
    logo: Path | None = None


class CertificateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paper: Literal["A4", "letter"] = "A4"


class Limits(BaseModel):
    """Bounds on what reading one input file may cost, checked before a library allocates for it."""

    model_config = ConfigDict(extra="forbid")

    max_file_mb: PositiveFloat = 32.0
    max_line_chars: PositiveInt = 200_000
    max_unzipped_mb: PositiveFloat = 256.0  # a workbook's members once decompressed
    max_sheet_cells: PositiveInt = 2_000_000  # rows x columns a workbook sheet declares or addresses
    max_sheets: PositiveInt = 256
    max_plates_per_file: PositiveInt = 64
    max_wells_per_plate: PositiveInt = 3456  # the largest plate format
    max_values_per_plate: PositiveInt = 5_000_000  # wells x time points over every read
    max_read_seconds: PositiveFloat = 120.0


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lock_timeout_s: PositiveFloat = 60.0
class SignatureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distinct_people: bool = True  # operator, reviewer and approver are three people; false for a small lab


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lab: Lab = Lab()
    certificate: CertificateSettings = CertificateSettings()
    limits: Limits = Limits()
    database: DatabaseSettings = DatabaseSettings()
    signatures: SignatureSettings = SignatureSettings()


def config_paths() -> list[Path]:
    """Where assayrun.toml is looked for, first match wins."""
    return list(_config_paths(os.getcwd(), os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME")))


@lru_cache(maxsize=8)
def _config_paths(cwd: str, config_home: str | None, home: str | None) -> tuple[Path, Path]:
    """The two places for the folder and environment given (home: HOME, which Path.home() reads)."""
    user_dir = Path(config_home or Path.home() / ".config") / "assayrun"
    return Path(cwd) / "assayrun.toml", user_dir / "assayrun.toml"


ENV_SECTIONS = ("limits", "database")


def load_config() -> Config:
    """The first assayrun.toml found (logo resolved against its folder), else defaults; then the
    ASSAYRUN_LIMITS_* and ASSAYRUN_DATABASE_* environment variables."""
    return load_config_file()[0]


def load_config_file() -> tuple[Config, Path | None]:
    """The lab settings and the file they came from (None: the defaults and the environment only). Read again
    only when the file (its size, time or inode), the folder or the environment changed: a batch asks for
    every plate. The Config returned is shared: do not change it."""
    key = (tuple(_signature(path) for path in config_paths()), repr(sorted(_environment().items())))
    hit = _loaded.get(key)
    if hit is not None and (hit[0].lab.logo is None or hit[0].lab.logo.is_file()):
        return hit
    _loaded.clear()
    _loaded[key] = _load_config_file()
    return _loaded[key]


_loaded: dict[tuple, tuple[Config, Path | None]] = {}


def _signature(path: Path) -> tuple:
    try:
        found = path.stat()
    except OSError:
        return (str(path),)
    return str(path), found.st_mode, found.st_ino, found.st_size, found.st_mtime_ns


def _load_config_file() -> tuple[Config, Path | None]:
    from .protocol import validation_message

    found = next((path for path in config_paths() if path.is_file()), None)
    data: dict = {}
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"not valid TOML: {exc}", file=found) from None
    overrides = _environment()
    for section, values in overrides.items():
        if isinstance(data.get(section, {}), dict):
            data[section] = {**data.get(section, {}), **values}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        where, message = validation_message(exc)
        section, _, key = (where or "").partition(".")
        if key in overrides.get(section, {}):
            raise UserError(message, file="environment", where=f"ASSAYRUN_{section}_{key}".upper()) from None
        raise UserError(message, file=found, where=where) from None
    if found is not None and config.lab.logo is not None:
        logo = (found.parent / config.lab.logo).resolve()
        if not logo.is_file():
            raise UserError(f"logo file {logo} not found", file=found, where="lab.logo")
        config.lab.logo = logo
    return config, found


def _environment() -> dict[str, dict[str, str]]:
    """ASSAYRUN_<SECTION>_<SETTING>=value for the sections that may come from the environment."""
    found: dict[str, dict[str, str]] = {}
    for key in [key for key in os.environ if key.startswith("ASSAYRUN_")]:
        for section in ENV_SECTIONS:
            prefix = f"ASSAYRUN_{section.upper()}_"
            if key.startswith(prefix):
                found.setdefault(section, {})[key[len(prefix):].lower()] = os.environ[key]
    return found


def limits() -> Limits:
    """The input limits in force."""
    return load_config().limits
