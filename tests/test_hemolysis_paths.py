"""The hemolysis analysis's fast paths against the general ones, bit for bit, on varied plates and layouts:
one indexing of the plate for every group (vs inp.values group by group), the layout sorted in one pass (vs the
toolkit's lookups and their errors), and the curve-fitting shortcuts (vs the formulas they skip)."""

import math
import random
import struct
from dataclasses import fields, is_dataclass, replace

import numpy as np
import pytest

from assayrunner import engine, least_squares
from assayrunner.errors import UserError
from assayrunner.curves import _design, fit
from conftest import DATA

from assayrun_hemolysis import analysis

PLATE = DATA / "hemolysis" / "valid_plate.csv"
SETTINGS = [(), ("calibration_model=quadratic",), ("calibration_weights=1/x",),
            ("calibration_model=quadratic", "calibration_weights=1/x^2"), ("flag_cv_percent=1",)]


def varied_plate(tmp_path, seed: int):
    """The valid plate with noise, shifted wells and flagged cells (saturated, masked), by seed."""
    rng = random.Random(seed)
    sigma = (0.0, 0.02, 0.3, 1.5)[seed % 4]
    lines = []
    for line in PLATE.read_text().splitlines():
        cells = line.split(",")
        if len(cells) == 13 and cells[0] in tuple("ABCDEFGH"):
            cells = [cells[0]] + [c if not c else rng.choice(["OVRFLW", "masked"]) if rng.random() < 0.06 else
                                  f"{float(c) * (1 + rng.gauss(0, sigma)) + rng.choice([0, 0, 0.2]):.4f}"
                                  for c in cells[1:]]
        lines.append(",".join(cells))
    path = tmp_path / f"plate_{seed}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def assay_inputs(tmp_path, settings=(), n=12):
    """The AssayInput the engine gives the analysis for n varied plates (those the engine reads)."""
    setup = engine.prepare("hemolysis", params=settings)
    captured = []

    def capture(inp):
        captured.append(inp)
        raise _Captured

    capturing = replace(setup, assay=replace(setup.assay, analyze=capture))
    for seed in range(n):
        try:
            engine.compute(capturing, [varied_plate(tmp_path, seed)])
        except _Captured:
            pass
        except UserError:  # a plate the engine refuses before its analysis
            pass
    return captured


class _Captured(BaseException):
    """Raised from analyze to stop the run there (the engine re-raises only what is not an Exception)."""


def outcome(analyze, inp):
    try:
        return "ok", analyze(inp)
    except Exception as exc:  # the same error, by type and text, is part of the same outcome
        return "error", type(exc).__name__, str(exc)


def bits(value):
    """A comparable form of a result: floats by their bits (NaN equal to NaN), containers walked."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else struct.pack("<d", value))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return ("dict", [(k, bits(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [bits(v) for v in value])
    if is_dataclass(value):
        return (type(value).__name__, [(f.name, bits(getattr(value, f.name))) for f in fields(value)])
    return (type(value).__name__, value)


def general(monkeypatch):
    """The analysis with one-indexing reads turned off: every group through inp.values."""
    monkeypatch.setattr(analysis, "_every_group", lambda inp, read, groups: (None, {}))


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: " ".join(s) or "protocol")
def test_one_indexing_gives_inp_values(tmp_path, settings):
    inputs = assay_inputs(tmp_path, settings)
    assert len(inputs) >= 8 and any(inp.reads[inp.parameters.read].flags for inp in inputs)
    for inp in inputs + [flagged_numbers(inp, seed) for seed, inp in enumerate(inputs)]:
        read = inp.parameters.read
        groups = inp.layout.groups()
        values, where = analysis._every_group(inp, read, groups)
        assert values is not None
        for g in groups:
            assert values[where[g.index]].tobytes() == inp.values(g, read).tobytes(), g.name


def flagged_numbers(inp, seed: int):
    """The input with some wells that hold a number flagged too (readers flag some cells that keep a number)."""
    read = inp.reads[inp.parameters.read]
    rng = random.Random(seed)
    flags = {**read.flags, **{w: "masked" for g in inp.layout.groups() for w in g.wells if rng.random() < 0.1},
             "H12": "saturated"}
    return replace(inp, reads={**inp.reads, inp.parameters.read: replace(read, flags=flags)})


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: " ".join(s) or "protocol")
def test_fast_and_general_paths_agree(tmp_path, monkeypatch, settings):
    inputs = assay_inputs(tmp_path, settings)
    inputs += [flagged_numbers(inp, seed) for seed, inp in enumerate(inputs)]
    fast = [outcome(analysis.analyze, inp) for inp in inputs]
    assert sum(o[0] == "ok" for o in fast) >= 4
    general(monkeypatch)
    assert [bits(outcome(analysis.analyze, inp)) for inp in inputs] == [bits(o) for o in fast]


def mutated_layouts(inp):
    """The input's layout with pieces missing, reordered or added."""
    wells = list(inp.layout.wells)
    variants = [
        [w for w in wells if w.role != "blank"],
        [w for w in wells if w.name != "TBHd"],
        [w for w in wells if w.name != "PFH"],
        [w for w in wells if w.name != "NC"],
        [w for w in wells if not w.interference],
        [w for w in wells if w.role != "qc"],
        [w for w in wells if w.role != "calibrator" or w.name == "CAL1"],
        wells[::-1],
        wells + [w.model_copy(update={"interference": True}) for w in wells if w.role == "blood"],
        wells + [w.model_copy(update={"name": "S1"}) for w in wells if w.name == "S2"],
    ]
    return [replace(inp, layout=inp.layout.model_copy(update={"wells": v})) for v in variants]


def test_layout_sorted_in_one_pass_finds_what_the_toolkit_finds(tmp_path, monkeypatch):
    from assayrunner import required_group

    for inp in mutated_layouts(assay_inputs(tmp_path, n=1)[0]):
        groups = analysis._Groups(inp)
        for role, name in [("blank", None), ("blood", "TBHd"), ("blood", "PFH"), ("control", "NC"), ("qc", None)]:
            assert outcome(lambda i: groups.required(role, name), inp) == \
                outcome(lambda i: required_group(i, role, name, needed_by=analysis.NEEDED_BY), inp)
        for role in ("calibrator", "qc", "sample"):
            assert outcome(lambda i: groups.with_nominal(role), inp) == outcome(lambda i: i.with_nominal(role), inp)
        assert groups.conditions == [g for g in inp.layout.groups(interference=False)
                                     if g.role in ("control", "sample")]
        for g in groups.conditions:
            assert groups.without.get((g.role, g.name)) == inp.layout.group(g.role, g.name, interference=True)
        fast = bits(outcome(analysis.analyze, inp))
        with monkeypatch.context() as m:
            general(m)
            assert bits(outcome(analysis.analyze, inp)) == fast


def test_design_tensor_and_skipped_zero_product():
    """The design filled in place equals np.stack's; with nothing fixed, Y - D @ 0 (skipped) is Y, bit for bit."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        X = rng.normal(0, 10.0 ** rng.integers(-8, 8), (int(rng.integers(1, 3)), int(rng.integers(1, 14))))
        X[rng.random(X.shape) < 0.1] = rng.choice([0.0, -0.0])
        for model, stacked in [("linear", np.stack([X, np.ones_like(X)], axis=-1)),
                               ("quadratic", np.stack([np.ones_like(X), X, X * X], axis=-1))]:
            D = _design(model, X)
            assert D.tobytes() == stacked.tobytes() and D.flags.c_contiguous
            Y = rng.normal(0, 1, X.shape)
            Y[rng.random(Y.shape) < 0.1] = -0.0
            zero = np.zeros((X.shape[0], D.shape[-1]))
            assert (Y - np.einsum("mnk,mk->mn", D, zero)).tobytes() == Y.tobytes()


def test_near_null_check_only_when_needed():
    """diag_of_inverse's shortcut (no direction near null) against the einsum formula it skips."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        m, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        eigenvalues = rng.random((m, k)) * 10.0 ** rng.integers(-14, 2, (m, k))
        vt = rng.normal(size=(m, k, k))
        vt[rng.random(vt.shape) < 0.2] = 0.0
        norms = rng.random((m, k))
        norms[rng.random(norms.shape) < 0.1] = 0.0
        tiny = eigenvalues <= 1e-12 * eigenvalues.max(axis=-1, keepdims=True)
        inverse = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, eigenvalues))
        weights = vt ** 2
        touched = np.einsum("md,mdk->mk", tiny.astype(float), (weights > 1e-12).astype(float)) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.where(touched | (norms == 0), np.inf,
                                np.einsum("md,mdk->mk", inverse, weights) / norms ** 2)
        assert least_squares.diag_of_inverse(eigenvalues, vt, norms).tobytes() == expected.tobytes()


def test_fit_ends_and_distinct_levels():
    """Too few distinct x is refused as before; the fit's x range is its lowest and highest x."""
    with pytest.raises(ValueError, match="distinct x values"):
        fit([1.0, 1.0, 1.0, -0.0, 0.0], [1, 2, 3, 4, 5], model="quadratic")
    curve = fit([0.0, -0.0, 0.5, 0.5, 1.0], [0.1, 0.1, 0.5, 0.6, 1.0], model="linear")
    assert curve.x_range == (0.0, 1.0)
