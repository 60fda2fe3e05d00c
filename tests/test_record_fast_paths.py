"""The run record's fast paths give the general paths' results to the byte: JSON of JSON-ready values straight
through the C encoder (store._json), the digest's row texts written a column at a time (integrity._table_texts),
and well rows built as tuples (store._well_rows)."""

import enum
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assayrunner import integrity, store
from assayrunner.plate import Plate, Read, well_name


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
    ["replicate-cv", "below-lloq"], ["é\"\\\n\x7f\x00 ✓", ""], [Label.A, "a"], ["a", 1], ["a", None], ("a", "b"),
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


TABLES = [
    store.Table(("position", "name", "value", "flag", "content", "id", "run_id"), [
        (0, "a", 1.5, None, b"x", 3, 1), (1, "é\"\\\n", -0.0, "f", b"", None, 1), (2, "\x00\x7f✓", 0.0, None, None, 1, 1),
        (3, "a", 1e16, "f", b"y", 2, 1), (True, "b", 5, None, None, None, None)]),
    store.Table(("passed", "n", "r2"), [(True, 3, None), (False, 2 ** 53 + 1, 0.5), (1, 0, None)]),
    store.Table(("time_s", "value", "well"), [(None, None, "A1"), (None, 0.1, "A2")]),
    store.Table(("v",), [("a",), (1.0,)]),  # str and number in one column
    store.Table(("v", "w"), [(np.float64(0.1), "x"), (np.float64(2), "y")]),  # numpy numbers
    store.Table(("v",), [(Label.A,), ("a",)]),
    store.Table(("v",), [(0.5,), (NAN,)]), store.Table(("v",), [(1,), (-INF,)]),
    store.Table(("content", "id"), [(b"x", 1), (b"y", 2)]),  # nothing digested
    store.Table(("a", "b"), [(None, None), (None, None)]),
    store.Table(("a", "b"), [("x", 1)]), store.Table(("a",), []),
    store.Table(("position", "s", "x", "flag"),  # enough rows for record_digest to write them a column at a time
                [(i, "s" * (i % 3), i / 7 if i % 4 else None, "f" if i % 5 == 0 else None) for i in range(30)]),
    store.Table(("well", "read", "value"),  # a column of distinct texts and one of a repeated text
                [(f"{chr(65 + i // 12)}{i % 12 + 1}", "Read ✓\"", i / 3) for i in range(30)]),
    store.Table(("n", "b"), [(i, i % 2 == 0) for i in range(12)] + [(None, None)]),  # numbers as floats, nulls
]


@pytest.mark.parametrize("table", TABLES, ids=range(len(TABLES)))
def test_table_texts_are_the_row_texts(table):
    try:
        expected = [integrity._row_text(row) for row in table]
    except Exception as exc:
        with pytest.raises(type(exc)):
            integrity._table_texts(table)
        with pytest.raises(type(exc)):
            integrity.record_digest({"t": table})
        return
    assert integrity._table_texts(table) == expected
    assert integrity.record_digest({"t": table}) == integrity.record_digest({"t": list(table)})


def _reference_well_rows(plate, layout, position=None):
    """The well rows as dicts, as run_rows made them before they were tuples."""
    groups = layout.by_well()
    where = {} if position is None else {"plate": position}
    for read in plate.reads:
        rows, columns = read.values.shape[:2]
        for r in range(rows):
            for c in range(columns):
                well = well_name(r, c)
                group = groups.get(well)
                base = {**where, "read": read.label, "well": well, "flag": read.flags.get(well),
                        "role": group.role if group else None, "group_name": group.name if group else None}
                if read.kind == "kinetic":
                    for t, v in zip(read.times_s, read.values[r, c]):
                        yield {**base, "time_s": store._float(t), "value": store._float(v)}
                elif not np.isnan(read.values[r, c]) or well in read.flags:
                    yield {**base, "time_s": None, "value": store._float(read.values[r, c])}


def _plate():
    rng = np.random.default_rng(7)
    endpoint = rng.random((8, 12))
    endpoint[0, 0], endpoint[0, 1], endpoint[1, 0], endpoint[2, 2] = np.nan, np.nan, np.inf, -0.0
    kinetic = rng.random((8, 12, 4))
    kinetic[3, 3, 1], kinetic[4, 4, :] = np.nan, np.inf
    reads = [
        Read("A540", endpoint, flags={"A2": "masked", "B1": "saturated"}),
        Read("Kinetic", kinetic, kind="kinetic", times_s=np.array([0.0, 30.0, 60.5, 90.0]), flags={"D4": "missing"}),
        Read("f32 é", endpoint.astype(np.float32), kind="calculated", flags={"A1": "no_value"}),
        Read("ints", np.arange(96).reshape(8, 12)),
    ]
    return Plate("p", 8, 12, reads)


LAYOUT = SimpleNamespace(by_well=lambda: {"A1": SimpleNamespace(role="blank", name="blank"),
                                          "B1": SimpleNamespace(role="sample", name="S1"),
                                          "H12": SimpleNamespace(role="control", name="PC ✓")})


@pytest.mark.parametrize("position", [None, 2])
def test_well_rows_are_the_general_rows(position):
    plate = _plate()
    columns = store._WELL_COLUMNS if position is None else ("plate", *store._WELL_COLUMNS)
    fast = [dict(zip(columns, row)) for row in
            store._well_rows(plate, LAYOUT, () if position is None else (position,))]
    expected = list(_reference_well_rows(plate, LAYOUT, position))
    assert len(fast) == len(expected) > 96 * 5
    assert [[(k, type(v), v) for k, v in row.items()] for row in fast] == \
        [[(k, type(v), v) for k, v in row.items()] for row in expected]
