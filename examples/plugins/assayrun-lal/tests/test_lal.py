"""The LAL plugin against numbers computed here with numpy, on plates built with assayrunner.testing."""

from pathlib import Path

import numpy as np
import pytest

from assayrunner.testing import check, plate_from_wells, result

EXAMPLES = Path(__file__).parent.parent / "examples"
STANDARDS = {"STD1": 0.1, "STD2": 0.25, "STD3": 0.5, "STD4": 1.0}
BLANK = 0.050


def absorbance(c):
    """A405 of a well holding c EU/mL: blank + 1.2 c^0.9 (a log-log line of slope 0.9)."""
    return BLANK + 1.2 * np.asarray(c, dtype=float) ** 0.9


def plate(samples: dict[str, tuple[float, float]]):
    """Standards in duplicate, a blank, and per slot (unspiked, spiked) EU/mL in the well."""
    wells = {"A1": BLANK, "A2": BLANK}
    for k, c in enumerate(STANDARDS.values()):
        wells[f"A{3 + 2 * k}"] = wells[f"A{4 + 2 * k}"] = float(absorbance(c))
    slots = {"S1": ("B1", "B3"), "S2": ("B5", "B7"), "S3": ("B9", "B11"), "S4": ("C1", "C3")}
    for slot, (unspiked, spiked) in samples.items():
        first, spike = slots[slot]
        for well, c in ((first, unspiked), (spike, spiked)):
            row, col = well[0], int(well[1:])
            wells[f"{row}{col}"] = wells[f"{row}{col + 1}"] = float(absorbance(c))
    return plate_from_wells(wells, wavelength_nm=405)


def test_in_range_sample_times_dilution_and_spike_recovery(assay_run, tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text("slot,sample,concentration,unit,dilution\nS1,Lipo,2.0,mg/mL,10\n")
    run = assay_run("lal", plate({"S1": (0.3, 0.3 + 0.5 * 0.8)}), samples=samples)
    assert run.valid and check(run, "linearity").value == pytest.approx(1.0, abs=1e-12)
    # the curve is exact here, so the back-calculation returns the well's own concentration
    endotoxin = result(run, "Lipo 2 mg/mL", "endotoxin")
    assert endotoxin.value == pytest.approx(0.3 * 10, rel=1e-9) and endotoxin.qualifier is None
    assert result(run, "Lipo 2 mg/mL", "endotoxin_per_mg").value == pytest.approx(0.3 * 10 / 2.0, rel=1e-9)
    assert result(run, "Lipo 2 mg/mL", "ppc_recovery").value == pytest.approx(80.0, rel=1e-9)


def test_noisy_curve_matches_numpy(assay_run):
    noisy = plate({"S1": (0.4, 0.9)})
    values = noisy.reads[0].values
    values[0, 2:10] *= [1.03, 0.98, 1.01, 0.97, 1.02, 0.99, 0.995, 1.005]
    run = assay_run("lal", noisy)
    x = np.repeat(list(STANDARDS.values()), 2)
    y = values[0, 2:10] - BLANK
    slope, intercept = np.polyfit(np.log10(x), np.log10(y), 1)
    r = np.corrcoef(np.log10(x), np.log10(y))[0, 1]
    assert check(run, "linearity").value == pytest.approx(abs(r), rel=1e-12)
    wells = values[1, 0:2] - BLANK
    expected = np.mean(10 ** ((np.log10(wells) - intercept) / slope))
    assert result(run, "S1", "endotoxin").value == pytest.approx(expected, rel=1e-10)


def test_below_and_above_the_standards_are_censored(assay_run, tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text("slot,sample,dilution\nS1,low,10\nS2,high,50\n")
    run = assay_run("lal", plate({"S1": (0.05, 0.55), "S2": (1.5, 2.0)}), samples=samples)
    low, high = result(run, "low", "endotoxin"), result(run, "high", "endotoxin")
    assert (low.qualifier, low.value) == ("<", pytest.approx(0.1 * 10)) and "below-lloq" in low.flags
    assert (high.qualifier, high.value) == (">", pytest.approx(1.0 * 50)) and "above-uloq" in high.flags
    assert run.valid


def test_failed_spike_invalidates_the_sample_not_the_run(assay_run):
    run = assay_run("lal", plate({"S1": (0.3, 0.75), "S2": (0.2, 0.2 + 0.5 * 0.3)}))
    assert run.valid
    assert result(run, "S2", "ppc_recovery").value == pytest.approx(30.0, rel=1e-9)
    assert any(f.startswith("invalid: PPC recovery") for f in result(run, "S2", "endotoxin").flags)
    assert not any(f.startswith("invalid") for f in result(run, "S1", "endotoxin").flags)


def test_poor_linearity_invalidates_the_run(assay_run):
    bad = plate({"S1": (0.3, 0.75)})
    bad.reads[0].values[0, 4:6] = 0.9  # STD2 read as high as STD3/STD4
    run = assay_run("lal", bad)
    assert not run.valid and not check(run, "linearity").passed


def test_example_with_its_lot_file(assay_run):
    run = assay_run("lal", EXAMPLES / "plate.csv", samples=EXAMPLES / "samples.csv",
                    params=[f"@{EXAMPLES / 'lot.toml'}"])
    assert run.valid and run.certificate_html.is_file()
    html = run.certificate_html.read_text()
    assert "PPC recovery" in html and "&lt; 1.000" in html
