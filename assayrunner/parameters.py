"""A run's parameters: the protocol's [parameters] with per-run overrides (--param), validated by the assay."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import UserError
from .protocol import Protocol, check_numbers, validation_message
from .registry import Assay


def validated_parameters(assay: Assay, proto: Protocol, params: Sequence[str] = ()):
    """The protocol's [parameters] with the run's overrides, validated by the assay's model.

    The protocol's lot_parameters (kit standards, control ranges) are placeholders there: each must be
    set whole for the run (--param @lot.toml), else UserError.
    """
    values, overridden = override_parameters(proto.parameters, params)
    whole = {path[0] for spec in params for path, _, _ in _param_entries(spec) if len(path) == 1}
    missing = [key for key in proto.lot_parameters if key not in whole]
    if missing:
        raise UserError(f"{', '.join(missing)} must come from the kit or control lot in use (the protocol holds "
                        "placeholders that never certify): give them with --param @lot.toml (a TOML file of the "
                        "lot's values; see the examples' lot files)", file=proto.path, where="lot_parameters")
    try:
        check_numbers({key: values[key] for key in overridden}, "")
    except ValueError as exc:
        key, _, why = str(exc).partition(": ")
        raise UserError(why, where=f"--param {key}") from None
    try:
        return assay.parameters.model_validate(values)
    except ValidationError as exc:
        where, message = validation_message(exc, "parameters")
        key = where.removeprefix("parameters.").split(".")[0].split("[")[0]
        raise UserError(message, file="--param" if key in overridden else proto.path, where=where) from None


def override_parameters(parameters: dict, params: Sequence[str]) -> tuple[dict, set[str]]:
    """The protocol's [parameters] with --param overrides applied in order, and the keys they set.

    KEY=VALUE: VALUE is read as a TOML value (2.5, [40, 70], {A = 10, B = 20}), or as text where
    the protocol's value is text or VALUE is not TOML; a dotted KEY (standards.B) sets one entry
    of a table. @FILE: a TOML file whose top-level entries replace parameters (e.g. a kit lot's
    standards and control ranges).
    """
    merged = copy.deepcopy(parameters)
    overridden: set[str] = set()
    for spec in params:
        for path, text, value in _param_entries(spec):
            where = f"--param {spec}"
            if path[0] not in parameters:
                raise UserError(f"unknown parameter {path[0]!r}; this protocol's parameters: "
                                f"{', '.join(parameters)}", where=where)
            node = merged
            for depth, part in enumerate(path[:-1]):
                if not isinstance(node.get(part), dict):
                    raise UserError(f"{'.'.join(path[:depth + 1])} is not a table of parameters; set it whole",
                                    where=where)
                node = node[part]
            if text is not None and isinstance(node.get(path[-1]), str) and not isinstance(value, str):
                value = text  # e.g. a kit lot "123456" or a model name stays text
            node[path[-1]] = value
            overridden.add(path[0])
    return merged, overridden


def _param_entries(spec: str) -> list[tuple[list[str], str | None, Any]]:
    """(key path, raw text or None, value) for one --param."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read the parameters file: {exc.strerror}", file=path) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"not valid TOML: {exc}", file=path) from None
        return [([key], None, value) for key, value in table.items()]
    key, sep, text = spec.partition("=")
    path = [part.strip() for part in key.split(".")]
    if not sep or not all(path):
        raise UserError("give KEY=VALUE (e.g. calibration_model=4pl) or @FILE.toml", where=f"--param {spec}")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return [(path, text, value)]
