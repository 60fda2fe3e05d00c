"""assayrunner.kinetics on hand-worked series and on synthesized clotting curves; the long table's Time column."""

import numpy as np
import pytest

from assayrunner.kinetics import crossing_time, max_slope_per_min, plateau_from_start, running_median, summarize_curve
from assayrunner.plots import kinetic_plot

SETTINGS = dict(smoothing_window=3, baseline_reads=3, fraction=0.5, onset_fraction=0.1, onset_min_au=0.02,
                min_amplitude_au=0.05, slope_window=3, saturation_au=3.0)
INTERVAL = 15.0
TIMES = np.arange(0.0, 900.0 + INTERVAL, INTERVAL)


def logistic(t, a0, rise, t50, width):
    """Turbidity of a clotting well: a0 + rise / (1 + exp(-(t - t50) / width)); half of the rise at t50."""
    return a0 + rise / (1 + np.exp(-(t - t50) / width))


def test_crossing_time_interpolates_between_bracketing_reads():
    times = np.array([0.0, 10.0, 20.0, 30.0])
    values = np.array([0.0, 0.2, 0.6, 1.0])
    assert crossing_time(times, values, 0.5) == pytest.approx(17.5)  # 10 + (0.5 - 0.2) / (0.6 - 0.2) x 10
    assert crossing_time(times, values, 0.0) == 0.0
    assert crossing_time(times, values, 1.5) is None


def test_running_median_uses_the_part_of_the_window_inside_the_series():
    # windows [1, 5], [1, 5, 2], [5, 2, 8], [2, 8, 3], [8, 3]
    assert running_median(np.array([1.0, 5, 2, 8, 3]), 3).tolist() == [3.0, 2.0, 5.0, 3.0, 5.5]
    assert running_median(np.array([1.0, 5, 2]), 1).tolist() == [1.0, 5.0, 2.0]
    with pytest.raises(ValueError, match="odd"):
        running_median(np.array([1.0, 2.0]), 2)


def test_max_slope_is_per_minute():
    times = np.arange(0.0, 100.0, 10.0)
    values = 0.2 + 0.004 * times  # 0.004 AU/s = 0.24 AU/min
    values[5:] += 0.02 * (times[5:] - times[4])  # steeper after 40 s: 0.024 AU/s = 1.44 AU/min
    assert max_slope_per_min(times, values, 3) == pytest.approx(1.44)
    assert max_slope_per_min(times[:2], values[:2], 3) is None


def test_synthesized_curves_recovered_within_one_read_interval():
    rng = np.random.default_rng(20261125)
    errors, onset_errors = [], []
    for _ in range(60):
        a0, rise = rng.uniform(0.05, 0.4), rng.uniform(0.3, 1.2)
        t50, width = rng.uniform(120, 600), rng.uniform(5, 25)
        values = logistic(TIMES, a0, rise, t50, width) + rng.normal(0, 0.005, TIMES.size)
        curve = summarize_curve(TIMES, values, **SETTINGS)
        assert curve.status == "ok" and not curve.saturated
        assert curve.baseline == pytest.approx(a0, abs=0.02) and curve.amplitude == pytest.approx(rise, abs=0.03)
        errors.append(curve.fraction_time_s - t50)
        # onset: baseline + max(0.02, 0.1 x rise) = 0.1 x rise here, reached at t50 + width x ln(0.1 / 0.9)
        onset_errors.append(curve.onset_time_s - (t50 + width * np.log(0.1 / 0.9)))
    assert np.max(np.abs(errors)) < INTERVAL
    assert np.max(np.abs(onset_errors)) < INTERVAL


def test_max_slope_of_a_logistic():
    # steepest slope of a logistic: rise / (4 width) per second, at t50
    values = logistic(TIMES, 0.1, 0.8, 300.0, 30.0)
    expected = 0.8 / (4 * 30.0) * 60
    assert summarize_curve(TIMES, values, **SETTINGS).max_slope_per_min == pytest.approx(expected, rel=0.05)


def test_no_clot_is_censored_at_the_last_read():
    rng = np.random.default_rng(1)
    values = 0.12 + 0.03 * TIMES / TIMES[-1] + rng.normal(0, 0.004, TIMES.size)  # drifts 0.03 AU, under 0.05
    curve = summarize_curve(TIMES, values, **SETTINGS)
    assert curve.status == "no-rise" and curve.fraction_time_s is None and curve.onset_time_s is None
    assert curve.censored_after_s == TIMES[-1] == 900.0
    assert curve.amplitude < 0.05


def test_saturated_well_gives_a_lower_bound_never_a_time():
    rng = np.random.default_rng(7)
    t50 = 240.0
    values = logistic(TIMES, 1.0, 2.6, t50, 20.0) + rng.normal(0, 0.005, TIMES.size)  # plateau 3.6 AU
    values[values > 3.3] = np.nan  # the reader wrote OVRFLW; 3.0-3.3 AU are above the linear limit
    curve = summarize_curve(TIMES, values, **SETTINGS, overflow=True)
    assert curve.status == "saturated" and curve.saturated
    assert curve.plateau == 3.0
    # half of the clipped rise, (1.0 + 3.0) / 2, is reached at t50 + 20 ln(1.0 / 1.6) = t50 - 9.4 s: before the
    # true half-maximal time, so only a lower bound
    assert curve.fraction_time_s == pytest.approx(t50 + 20.0 * np.log(1.0 / 1.6), abs=2.0)
    assert curve.fraction_time_s < t50


def test_saturated_jump_is_a_bound_too():
    values = np.where(TIMES < 300, 0.2, 3.5)  # a jump from baseline straight past the linear limit
    curve = summarize_curve(TIMES, values, **SETTINGS)
    assert curve.status == "saturated" and curve.saturated and 285 < curve.fraction_time_s <= 300


def test_plateau_from_start_tells_an_early_clot_from_no_clot():
    times = np.arange(0.0, 601.0, 30.0)
    clotted = logistic(times, 0.08, 0.6, 20.0, 2.4)   # half-maximal at 20 s, read every 30 s
    assert plateau_from_start(times, clotted, 0.08, 0.6, 0.5) == (30.0, 1)  # "< 30 s", one read before
    turbid = np.full(times.size, 0.16)               # no clot, a nanoparticle's turbidity: +0.08 AU
    assert plateau_from_start(times, turbid, 0.08, 0.6, 0.5) is None


def test_missing_reads_are_left_out():
    values = logistic(TIMES, 0.1, 0.8, 300.0, 15.0)
    values[[4, 30]] = np.nan  # two reads the export marked missing, one of them at the clot time
    curve = summarize_curve(TIMES, values, **SETTINGS)
    assert curve.status == "ok" and not curve.saturated
    assert abs(curve.fraction_time_s - 300.0) < INTERVAL
    assert summarize_curve(TIMES[:2], values[:2], **SETTINGS).status == "no-data"


def test_kinetic_plot_marks_and_escapes():
    curves = [{"label": "NP <b>&</b>", "color": "#1f4e9c", "points": [(0, 0.1), (30, 0.5), (60, 0.9), (600, 0.9)],
               "mark": (30.0, 0.5)},
              {"label": "VEH", "color": "#777777", "points": [(0, 0.1), (60, 0.1)], "mark": None}]
    svg = kinetic_plot(curves, "time (s)", "A405", "clot time", x_max=100)
    assert svg.startswith("<svg") and svg.count("<path") == 2 and svg.count("<circle") == 2  # a mark + the legend's
    assert "NP &lt;b&gt;&amp;&lt;/b&gt;" in svg and "<b>" not in svg
    assert ">100</text>" in svg and ">600</text>" not in svg  # the time axis stops at x_max


def test_long_table_time_column_makes_a_kinetic_read(cli, workdir):
    path = workdir / "kinetic.csv"
    path.write_text("Well,Time,Value,Read\n"
                    "A1,0,0.10,405 nm\nA1,30,0.35,405 nm\nA1,0:01:00,0.80,405 nm\n"
                    "B2,0:00:00,0.12,405 nm\nB2,0:00:30,OVRFLW,405 nm\nB2,60,0.90,405 nm\n")
    result, data = cli.json("read", path)
    assert result.exit_code == 0, result.output
    read = data["plates"][0]["reads"][0]
    assert read["kind"] == "kinetic" and read["wavelength_nm"] == 405
    assert read["times_s"] == [0.0, 30.0, 60.0]
    assert read["values"] == {"A1": [0.10, 0.35, 0.80], "B2": [0.12, None, 0.90]}
    assert {w: f for w, f in read["flags"].items() if f != "missing"} == {"B2": "saturated"}
    assert read["flags"]["A2"] == "missing"  # a well the list never names was not read


def test_long_table_bad_time_names_the_line(cli, workdir):
    path = workdir / "bad.csv"
    path.write_text("Well;Value;Time (s)\nA1;0,1;0\nA1;0,2;soon\n")
    result = cli("read", path)
    assert result.exit_code == 2
    assert "line 3" in result.stderr and "'soon' is neither seconds nor h:mm:ss" in result.stderr
