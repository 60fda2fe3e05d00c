"""What an assay plugin must return, checked before anything is judged or stored: a malformed result is the
plugin's fault (PluginError naming it, exit 3), never a half-stored run or a certificate of nonsense."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import numpy as np

from .errors import PluginError
from .registry import AssayResult, Result

_FIT_KEYS = {"name": str, "model": str, "parameters": dict, "se": dict}


def check_result(result: object, who: str, json: bool = True) -> None:
    """PluginError naming `who` (the assay and its plugin) when result breaks the AssayResult contract.
    json=False leaves out whether metrics, details and fits can be stored as JSON (the engine learns that
    when it makes the rows, and only then asks again, to name the part)."""
    def fail(what: str) -> PluginError:
        return PluginError(f"{who} returned a malformed result: {what}")

    if not isinstance(result, AssayResult):
        raise fail(f"{type(result).__name__}, not an AssayResult")
    if not isinstance(result.metrics, dict) or not isinstance(result.details, dict):
        raise fail("metrics and details must be dicts")
    if not isinstance(result.results, list) or not isinstance(result.fits, list):
        raise fail("results and fits must be lists")
    for k, row in enumerate(result.results):
        problem = _result_problem(row)
        if problem:
            raise fail(f"results[{k}] {problem}")
    for k, fit in enumerate(result.fits):
        problem = _fit_problem(fit, json)
        if problem:
            raise fail(f"fits[{k}] {problem}")
    for name in ("metrics", "details") if json else ():
        problem = _json_problem(getattr(result, name))
        if problem:
            raise fail(f"{name} {problem}")


def _result_problem(row: object) -> str | None:
    if not isinstance(row, Result):
        return f"is a {type(row).__name__}, not a Result"
    if not isinstance(row.sample, str) or not row.sample or not isinstance(row.metric, str) or not row.metric:
        return "needs a sample and a metric name (text)"
    if not isinstance(row.unit, str):
        return f"({row.sample} {row.metric}) has no unit (give '' for a number without one)"
    flags, value = row.flags, row.value
    if not isinstance(flags, list) or not (_STR.issuperset(map(type, flags)) or all(isinstance(f, str) for f in flags)):
        return f"({row.sample} {row.metric}) flags must be a list of text"
    if value is not None and (type(value) is not float or not math.isfinite(value)):  # a finite float passes these
        if not _is_number(value):
            return f"({row.sample} {row.metric}) value {value!r} is not a number"
        if math.isinf(value):
            return f"({row.sample} {row.metric}) value {value!r} is infinite"
        if math.isnan(value) and not flags:
            return f"({row.sample} {row.metric}) value is NaN without a flag saying why (use None and a flag)"
    if row.interpretation is not None and not isinstance(row.interpretation, str):
        return f"({row.sample} {row.metric}) interpretation must be text"
    return None


def _fit_problem(fit: object, json: bool) -> str | None:
    if not isinstance(fit, Mapping):
        return f"is a {type(fit).__name__}, not a dict"
    for key, kind in _FIT_KEYS.items():
        if not isinstance(fit.get(key), kind):
            return f"needs {key!r} ({kind.__name__})"
    if fit.get("r2") is not None and not _is_number(fit["r2"]):
        return "r2 must be a number or None"
    if not _is_number(fit.get("n")) or "converged" not in fit:
        return "needs n (a number) and converged"
    for key in ("x", "y", "line"):
        if fit.get(key) is not None and not isinstance(fit[key], (list, tuple, np.ndarray)):
            return f"{key!r} must be a list"
    if fit.get("x") is not None and fit.get("y") is not None and len(fit["x"]) != len(fit["y"]):
        return "'x' and 'y' differ in length"
    line = fit.get("line") or []
    if not (_PAIRS.issuperset(map(type, line)) and _TWO.issuperset(map(len, line))) and \
            any(not (isinstance(p, (list, tuple)) and len(p) == 2) for p in line):  # lists and tuples of two pass
        return "'line' must be a list of [x, y] points"
    return _json_problem({k: fit.get(k) for k in ("parameters", "se", "x", "y", "line")}) if json else None


def _json_problem(value: object) -> str | None:
    from .store import canonical_json

    try:
        canonical_json(value)
    except (TypeError, ValueError) as exc:
        return f"cannot be stored as JSON ({exc})"
    return None


def _is_number(value: object) -> bool:
    return type(value) in _NUMBERS or (isinstance(value, Real) and not isinstance(value, bool))


#: The usual number types, known without asking the Real ABC (bool is not one of them).
_NUMBERS = (float, int)
#: The exact types of flags, and of a line's points and their length, that pass without a closer look.
_STR, _PAIRS, _TWO = frozenset({str}), frozenset({list, tuple}), frozenset({2})
