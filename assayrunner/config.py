"""Lab settings for certificates: assayrun.toml in the working directory, else in the user config directory.

    [lab]
    name = "Nanomedicine Characterization Lab"
    address = "Building 469, Frederick, MD"
    logo = "logo.png"            # relative to this file
    [certificate]
    paper = "A4"                 # or "letter"
    [signatures]
    distinct_people = true       # operator, reviewer, approver: three people (false for a small lab)
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UserError


class Lab(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    address: str = ""
    logo: Path | None = None


class CertificateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paper: Literal["A4", "letter"] = "A4"


class SignatureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distinct_people: bool = True  # operator, reviewer and approver are three people; false for a small lab


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lab: Lab = Lab()
    certificate: CertificateSettings = CertificateSettings()
    signatures: SignatureSettings = SignatureSettings()


def config_paths() -> list[Path]:
    """Where assayrun.toml is looked for, first match wins."""
    user_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "assayrun"
    return [Path.cwd() / "assayrun.toml", user_dir / "assayrun.toml"]


def load_config() -> Config:
    """The first assayrun.toml found (logo resolved against its folder), else defaults."""
    return load_config_file()[0]


def load_config_file() -> tuple[Config, Path | None]:
    """The lab settings and the file they came from (None: the defaults)."""
    from .protocol import validation_message

    for path in config_paths():
        if not path.is_file():
            continue
        try:
            config = Config.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"not valid TOML: {exc}", file=path) from None
        except ValidationError as exc:
            where, message = validation_message(exc)
            raise UserError(message, file=path, where=where) from None
        if config.lab.logo is not None:
            logo = (path.parent / config.lab.logo).resolve()
            if not logo.is_file():
                raise UserError(f"logo file {logo} not found", file=path, where="lab.logo")
            config.lab.logo = logo
        return config, path
    return Config(), None
