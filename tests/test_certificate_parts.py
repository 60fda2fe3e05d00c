"""The certificate's parts built in Python for speed give what the plain versions they replaced gave: the plate
map's rows as the template loop rendered them, numbers as formatted before, the same flag legend."""

import math
import random
from decimal import Decimal

import numpy as np
import pytest

from assayrunner import certificate
from assayrunner.plate import well_name

#: The plate map's rows as certificate.html rendered them with a Jinja loop per cell.
JINJA_ROWS = """\
  <tr><th></th>{% for c in range(map.columns) %}<th>{{ c + 1 }}</th>{% endfor %}</tr>
  {% for r in map.row_labels %}
  <tr><th>{{ r }}</th>
    {% for c in range(map.columns) %}{% set cell = map.cells.get(r ~ (c + 1)) %}
    {% if cell %}
    <td style="background: rgba(178, 34, 34, {{ '%.2f' % (0.08 + 0.6 * cell.shade) }})" class="{{ 'flagged' if cell.flag else '' }}{{ ' interference' if cell.interference else '' }}">
      <span class="role">{{ cell.group_name or "" }}{% if cell.interference %} ∅{% endif %}</span>{{ cell.value | num(3) }}{% if cell.flag %}<span class="flag">{{ cell.flag }}</span>{% endif %}</td>
    {% else %}<td class="empty"></td>{% endif %}
    {% endfor %}
  </tr>
  {% endfor %}
{% if map.cells.values() | selectattr("interference") | list %}interference{% endif %}"""


def _format_number(value, digits: int = 4) -> str:
    """format_number as it was written first."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (bool, int)) or not isinstance(value, float):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}" if magnitude < 6 else f"{value:.{digits - 1}e}"


def _flag_legend(results, extra=None):
    """flag_legend as it was written first: every key tried, longest first."""
    legend = {**certificate.FLAG_LEGEND, **(extra or {})}
    keys = sorted(legend, key=len, reverse=True)
    seen = {}
    for r in results:
        for flag in r["flags"]:
            key = next((k for k in keys if flag == k or flag.startswith(k + " ") or flag.startswith(k + ":")), None)
            if key and key not in seen:
                seen[key] = legend[key]
    return list(seen.items())


def _wells(rng: random.Random, shape: tuple[int, int], reads: list[str], plates: list) -> list[dict]:
    texts = ["CAL1", "blank", "S1 10 µg/mL", 'a "q" <b>&amp;', "it's", "", None]
    flags = [None, None, None, "saturated", "masked", "<over> & 'x'", ""]
    rows = []
    for plate in plates:
        for read in reads:
            for r in range(shape[0]):
                for c in range(shape[1]):
                    if rng.random() < 0.1:
                        continue  # a well without a row: an empty cell
                    value = rng.choice([None, 0.0, -0.0, 1e-9, 12345678.9, float("nan"), rng.uniform(-1, 4),
                                        rng.uniform(0, 1), 3, -2, np.float64(rng.uniform(0, 2))])
                    row = {"run_id": 1, "read": read, "well": well_name(r, c), "time_s": None, "value": value,
                           "flag": rng.choice(flags), "role": rng.choice(["blank", "sample", None, None]),
                           "group_name": rng.choice(texts)}
                    if plate is not None:
                        row["plate"] = plate
                    rows.append(row)
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize("seed", range(12))
def test_plate_map_rows_are_what_the_template_loop_rendered(seed):
    rng = random.Random(seed)
    shape = rng.choice([(8, 12), (16, 24), (2, 3), (32, 48)])
    plates = rng.choice([[None], [1, 2], [3]])
    wells = _wells(rng, shape, rng.choice([["540"], ["540", "Read 2 <x>"]]), plates)
    maps = certificate.plate_maps(wells, None, {1: "P1 <a>", 3: "third"})
    env = certificate.environment([])
    loop = env.from_string(JINJA_ROWS)
    assert maps
    for grid in maps:
        interference = rng.random() < 0.5
        for cell in grid["cells"].values():  # as a protocol's interference wells would mark them
            cell["interference"] = interference and rng.random() < 0.3
        grid["any_interference"] = any(cell["interference"] for cell in grid["cells"].values())
        expected = loop.render(map=grid)
        rows = certificate.plate_map_rows(grid)
        assert rows + ("interference" if grid["any_interference"] else "") == expected


def test_format_number_is_as_before():
    rng = random.Random(7)
    values = [None, True, False, 0, 7, -3, 10**20, 0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-320,
              5e-324, 1.7976931348623157e308, 999999.9, 1e6, 999999.99999, 0.99995, 9.9995, 0.0001, 1e-5, -1e-5,
              123.456, -123.456, 0.5, 1.0, 100.0, np.float64(0.123456), np.float64(-2.5e7), np.float32(1.5),
              np.int64(3), Decimal("1.25"), "text", "<b>"]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 12) for _ in range(20000)]
    values += [round(rng.uniform(0, 10), rng.randint(0, 6)) * 10 ** rng.randint(-8, 8) for _ in range(5000)]
    for value in values:
        for digits in range(1, 8):
            assert certificate.format_number(value, digits) == _format_number(value, digits), (value, digits)
        assert certificate.format_number(value) == _format_number(value)


def test_flag_legend_is_as_before():
    rng = random.Random(3)
    extra = {"fit without": "left out", "plugin flag": "a plugin's", "a:b": "colon key", "x y z": "spaces",
             "saturated extra": "longer than saturated"}
    keys = list(certificate.FLAG_LEGEND) + list(extra)
    tails = ["", " ", ":", " 3 wells", ": 2 of 3", "-not", "s", " extra", " extra: x", "::", "  "]
    flags = [rng.choice(keys) + rng.choice(tails) for _ in range(3000)] + ["", " ", ":", "unknown flag", "fit", "a"]
    for n in range(200):
        results = [{"flags": rng.sample(flags, rng.randint(0, 6))} for _ in range(rng.randint(0, 12))]
        for legend in (None, extra):
            assert certificate.flag_legend(results, legend) == _flag_legend(results, legend)


def test_nums_is_the_loop_it_replaced():
    env = certificate.environment([])
    loop = env.from_string("{% for v in xs %}{{ v | num(d) }}{% if not loop.last %}, {% endif %}{% endfor %}")
    nums = env.from_string("{{ xs | nums(d) }}")
    rng = random.Random(5)
    pool = [None, 0.0, 1, True, float("nan"), -2.5e7, 0.000123456, "<b>&'\"", "a, b", np.float64(3.14159)]
    for _ in range(300):
        xs = [rng.choice(pool + [rng.uniform(-1e4, 1e4)]) for _ in range(rng.randint(0, 6))]
        for d in (2, 3, 4):
            assert nums.render(xs=xs, d=d) == loop.render(xs=xs, d=d)
