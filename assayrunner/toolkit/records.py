"""The typed fit record an assay returns in AssayResult.fits: what is stored and what the certificate plots.

A FitRecord is read like the dict it replaces (record["x"], record.get("log_x"), {**record}), so the
store, the result check and plugins that still return plain dicts all see the same keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class FitRecord(Mapping):
    """One fitted curve: the fit summary (model, parameters, se, r2, converged, n, rss) and its plot.

    x, y: the points fitted; line: [x, y] points of the fitted curve; x_unit labels the concentration
    axis, y_label the response axis; log_x: a log concentration axis (None: not said, linear); mark: the
    fit's IC50/HC50 on the plot ({label} alone for a censored one, with x, y, lower, upper for an estimate).
    """

    name: str
    model: str
    parameters: dict
    se: dict
    r2: float | None
    converged: bool
    n: int
    rss: float | None = None
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    line: list = field(default_factory=list)
    x_unit: str | None = None
    y_label: str | None = None
    log_x: bool | None = None
    mark: dict | None = None

    @classmethod
    def of(cls, name: str, fit, x, y, line, *, x_unit: str | None = None, y_label: str | None = None,
           log_x: bool | None = None, mark: dict | None = None) -> "FitRecord":
        """The record of an assayrunner.Fit (its JSON summary, non-finite numbers as None) fitted on x, y."""
        summary = fit.to_dict()
        return cls(name, summary["model"], summary["parameters"], summary["se"], summary["r2"], summary["converged"],
                   summary["n"], summary.get("rss"), _listed(x), _listed(y), list(line), x_unit, y_label, log_x, mark)

    def __getitem__(self, key: str):
        if key in _FIELDS:
            value = getattr(self, key)
            if value is not None or key not in _WHEN_SET:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> tuple[str, ...]:
        """The keys a stored fit has: every field, rss, log_x, mark only when set (as the dicts had them)."""
        return tuple(name for name in _FIELDS if name not in _WHEN_SET or getattr(self, name) is not None)


#: FitRecord's field names in order, and those that are keys only when set.
_FIELDS = tuple(f.name for f in fields(FitRecord))
_WHEN_SET = frozenset(("rss", "log_x", "mark"))


def _listed(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)
