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


def test_the_checker_sees_a_crash(tmp_path):
    """outcome() reports a reader that raises as a failure: the properties above can fail."""
    import assayrunner

    def boom(source):
        raise KeyError("x")

    path = tmp_path / "plate.csv"
    path.write_text("Well,Value\nA1,1\n")
    reader = assayrunner.Reader(name="boom", sniff=lambda s: 1.0, read=boom)
    assert outcome(path, {"boom": reader}, "boom").startswith("failed: PluginError")
