"""The run record's fast paths give the general paths' results to the byte: JSON of JSON-ready values straight
through the C encoder (store._json)."""

import enum
from pathlib import Path

import numpy as np
import pytest

from assayrunner import store


class Label(str, enum.Enum):
    A = "a"


class Level(enum.IntEnum):
    ONE = 1


NAN, INF = float("nan"), float("inf")

#: Values of every kind _plain handles, JSON-ready or not, nested and at the top.
VALUES = [
    {"a": 1, "b": [1.5, 2, True, False, None, "x"], "c": {"d": (1, 2.0), "e": "é\"\\\n\x7f\x00 ✓"}},
    {"z": 1, "a": {"y": 2, "b": 3}},
    {"floats": [0.1, -0.0, 0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 2 ** 0.5], "big": 2 ** 70},
    {"nan": NAN}, {"deep": [[{"inf": [INF]}]]}, [-INF], NAN,
    {"f64": np.float64(0.1), "list": [np.float64(1 / 3), np.float64(-0.0)]},
    [np.float64(NAN)], {"x": np.float64(INF)},
    {"f32": np.float32(0.1)}, {"i": np.int64(3)}, {"arr": np.array([[1.0, np.nan], [2.5, 3.0]])},
    {"ints": np.arange(3)}, {"p": Path("/tmp/x y")}, [Path("a")],
    {1: "int key"}, {2.5: "float key"}, {True: "bool key"}, {None: "none key"}, {10: "a", 9: "b"},
    {Label.A: "str-enum key"}, {Level.ONE: "int-enum key"}, {"l": Label.A, "lv": Level.ONE},
    -0.0, 1e16, 2 ** 64, "plain", None, True, [], {}, (), [{"deep": [[[{"x": [1, 2.0]}]]]}],
    {"set": {1, 2}}, {"bool_": np.bool_(True)}, {"bytes": b"x"},
]


def _general(value, canonical):
    return store._ENCODERS[canonical](store._plain(value))


@pytest.mark.parametrize("canonical", [False, True])
@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_json_of_any_value_is_the_general_text(value, canonical):
    try:
        expected = _general(value, canonical)
    except Exception as exc:
        with pytest.raises(type(exc)):
            store._json(value, canonical)
        return
    assert store._json(value, canonical) == expected


def test_json_ready_values_take_the_fast_path():
    """The values the comparison above relies on really are sent to the C encoder as they are."""
    assert store._ready(VALUES[0]) and store._ready(VALUES[2]) and store._ready(VALUES[7])
    assert not store._ready({1: "int key"}) and not store._ready({"i": np.int64(3)})
    assert not store._ready([Label.A]) and not store._ready({"p": Path("a")})
