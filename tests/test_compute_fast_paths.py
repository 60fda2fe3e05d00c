"""The compute path's shortcuts give the general paths' answers: result_check's verdicts on a result row and a fit
(flags of exact str, finite float values and lines of pairs pass without the item-by-item checks), against the
checks written out in full as they were."""

import enum
import math
from fractions import Fraction

import numpy as np
import pytest

from assayrunner import result_check
from assayrunner.registry import Result


class Text(str, enum.Enum):
    A = "a"


def _reference_result_problem(row):
    """result_check._result_problem as it was, every check item by item."""
    if not isinstance(row, Result):
        return f"is a {type(row).__name__}, not a Result"
    if not isinstance(row.sample, str) or not row.sample or not isinstance(row.metric, str) or not row.metric:
        return "needs a sample and a metric name (text)"
    if not isinstance(row.unit, str):
        return f"({row.sample} {row.metric}) has no unit (give '' for a number without one)"
    if not isinstance(row.flags, list) or not all(isinstance(f, str) for f in row.flags):
        return f"({row.sample} {row.metric}) flags must be a list of text"
    if row.value is not None and not result_check._is_number(row.value):
        return f"({row.sample} {row.metric}) value {row.value!r} is not a number"
    if row.value is not None and math.isinf(row.value):
        return f"({row.sample} {row.metric}) value {row.value!r} is infinite"
    if row.value is not None and math.isnan(row.value) and not row.flags:
        return f"({row.sample} {row.metric}) value is NaN without a flag saying why (use None and a flag)"
    if row.interpretation is not None and not isinstance(row.interpretation, str):
        return f"({row.sample} {row.metric}) interpretation must be text"
    return None


VALUES = [None, 0.0, -0.0, 1.5, 5e-324, 1e308, math.inf, -math.inf, math.nan, 3, True, False, np.float64(2.5),
          np.float64(math.nan), np.float64(math.inf), np.float32(1.5), np.int64(4), Fraction(1, 3), "1.5", [1.0],
          complex(1, 0)]
FLAGS = [[], ["below-lloq"], ["a", "b"], [Text.A], ["a", 1], [None], ("a",), "a", None, [b"a"]]


def _rows():
    yield 3.5
    yield None
    for value in VALUES:
        for flags in FLAGS:
            yield Result("S1", "m", value, "%", flags)
    for sample, metric, unit, interpretation in [("", "m", "%", None), ("S", None, "%", None), ("S", "m", None, None),
                                                 ("S", "m", "%", 3), ("S", "m", "%", "ok"), (Text.A, "m", "", None)]:
        yield Result(sample, metric, 1.0, unit, [], interpretation)


@pytest.mark.parametrize("row", list(_rows()))
def test_result_problem_is_the_full_check(row):
    try:
        expected = _reference_result_problem(row)
    except Exception as exc:
        with pytest.raises(type(exc)):
            result_check._result_problem(row)
        return
    assert result_check._result_problem(row) == expected


def _reference_line_problem(line):
    return any(not (isinstance(p, (list, tuple)) and len(p) == 2) for p in line or [])


class Pair(tuple):
    pass


LINES = [None, [], [(0.0, 1.0)], [[0.0, 1.0], (1.0, 2.0)], [(0.0, 1.0, 2.0)], [(0.0,)], [[]], [(0.0, 1.0), 3],
         [Pair((0.0, 1.0))], [Pair((0.0,))], [np.array([0.0, 1.0])], [(0.0, 1.0), "ab"], ["ab"], [{0: 1, 1: 2}],
         [(0.0, 1.0)] * 60 + [(1.0,)], ((0.0, 1.0),)]


@pytest.mark.parametrize("line", LINES, ids=range(len(LINES)))
def test_fit_line_verdict_is_the_full_check(line):
    fit = {"name": "c", "model": "linear", "parameters": {}, "se": {}, "n": 3, "converged": True, "line": line}
    verdict = result_check._fit_problem(fit, json=False)
    assert (verdict == "'line' must be a list of [x, y] points") == _reference_line_problem(line)
    assert verdict in (None, "'line' must be a list of [x, y] points")


def test_by_well_once_per_layout_is_every_group_well_by_well():
    """layout.by_well() (worked out once per layout) against the groups' wells taken in order, for every shipped
    protocol's layout and one with a well in two groups."""
    from assayrunner.layout import Layout
    from assayrunner.protocol import load_file, shipped_files

    layouts = [load_file(f).layout for f in shipped_files()]
    layouts.append(Layout(rows=8, columns=12, wells=[{"role": "blank", "wells": "A1:A3"},
                                                     {"role": "sample", "name": "S1", "wells": "A3,B1"}]))
    for layout in layouts:
        expected = {well: group for group in layout.groups() for well in group.wells}
        assert list(layout.by_well().items()) == list(expected.items())
        assert layout.by_well() is layout.by_well()
