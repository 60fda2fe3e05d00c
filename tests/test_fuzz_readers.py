"""Property-based fuzzing of every reader: over mutated real exports and random bytes, the only outcomes are
plates or our input error (exit 2), never another exception. bench/fuzz_readers.py runs many more inputs."""

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assayrunner.plugins import load
from fuzzing import EXPORTS, mutate, outcome

READERS = [*load().readers, "auto"]  # auto: every reader by sniff score, as `assayrun read` does
FUZZ = settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(data: bytes, suffix: str, reader: str) -> str:
    readers = load().readers
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        return outcome(path, readers, None if reader == "auto" else reader)


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(source=st.sampled_from(EXPORTS), seed=st.integers(0, 2**32 - 1))
def test_mutated_exports_give_plates_or_our_error(reader, source, seed):
    data = mutate(source.read_bytes(), random.Random(seed))
    result = _outcome(data, source.suffix, reader)
    assert result in ("plates", "refused"), (source.name, seed, result)


@pytest.mark.parametrize("reader", READERS)
@settings(FUZZ, max_examples=10)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".txt", ".xlsx", ".xls"]))
def test_random_bytes_give_plates_or_our_error(reader, data, suffix):
    result = _outcome(data, suffix, reader)
    assert result in ("plates", "refused"), (data[:80], result)


FOUND = [("gen5_endpoint_260-280-230_pathlength.txt", 4282, "gen5"),  # (export, seed, reader) that once failed
         ("synergy_kinetic_od600_columnwise_latin1.txt", 420, "tecan")]


@pytest.mark.parametrize("name, seed, reader", FOUND)
def test_inputs_that_once_failed(name, seed, reader):
    """Kept from earlier fuzz runs. 4282: a Gen5 blank-subtracted value printed too large for a float; its
    inf reached `read --json` as a vendor value. 420: a kinetic time of hundreds of digits of hours (a clock text)
    raised OverflowError converting its int to a float."""
    source = next(e for e in EXPORTS if e.name == name)
    assert _outcome(mutate(source.read_bytes(), random.Random(seed)), source.suffix, reader) in ("plates", "refused")


def test_the_checker_sees_a_crash(tmp_path):
    """outcome() reports a reader that raises as a failure: the properties above can fail."""
    import assayrunner

    def boom(source):
        raise KeyError("x")

    path = tmp_path / "plate.csv"
    path.write_text("Well,Value\nA1,1\n")
    reader = assayrunner.Reader(name="boom", sniff=lambda s: 1.0, read=boom)
    assert outcome(path, {"boom": reader}, "boom").startswith("failed: PluginError")


ASSAY_INPUTS = [("hemolysis", "hemolysis/valid_plate.csv", []), ("hemolysis", "hemolysis/gen5_plate_540.txt", []),
                ("complement", "complement/valid_plate.csv", ["--param", "@{data}/complement/kit-lot-T1.toml"]),
                ("cytotoxicity", "cytotoxicity/mtt_llc-pk1.csv", ["--protocol", "ncl-gta-1-mtt"]),
                ("coagulation", "coagulation/coagulometer_run.csv", [])]


@settings(FUZZ, max_examples=15)
@given(case=st.sampled_from(ASSAY_INPUTS), seed=st.integers(0, 2**32 - 1))
def test_execute_on_damaged_values_is_stored_or_refused_never_a_crash(case, seed):
    """Numbers replaced by odd values (NaN, inf, 1e400, huge, markers) through the whole run: exit 0, 1 or 2."""
    from typer.testing import CliRunner

    from assayrunner.cli import app
    from conftest import DATA
    from fuzzing import odd_numbers

    assay, name, options = case
    source = DATA / name
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / source.name
        path.write_bytes(odd_numbers(source.read_bytes(), random.Random(seed)))
        args = ["execute", assay, str(path), *(o.replace("{data}", str(DATA)) for o in options),
                "--db", f"{folder}/runs.db", "--out", f"{folder}/certificates"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2), (name, seed, result.stderr)
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
