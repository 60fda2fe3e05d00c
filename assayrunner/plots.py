"""Small inline-SVG plots for certificates (vector graphics, no plotting library).

Styling is in presentation attributes, not CSS classes: WeasyPrint does not apply the page's
CSS inside inline SVG.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

W, H, LEFT, RIGHT, TOP, BOTTOM = 520, 300, 62, 16, 14, 44


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        hi = lo + 1 if math.isfinite(lo) else 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.floor(lo / step) * step
    return [round(first + i * step, 12) for i in range(int(math.ceil((hi - first) / step)) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (both > 0)."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return [10.0 ** k for k in range(first, max(last, first + 1) + 1)]


def curve_plot(points: list[tuple[float, float]], line: list[tuple[float, float]], x_label: str, y_label: str,
               highlighted: list[tuple[float, float]] = (), log_x: bool = False, mark: dict | None = None) -> str:
    """Points with a fitted line, axes and ticks, as an <svg> element (linear axes; log_x: x on a log scale,
    points at x <= 0 left out); mark: a labelled point with its CI bar (see _mark)."""
    if log_x:
        points, line, highlighted = ([p for p in ps if p[0] > 0] for ps in (points, line, highlighted))
    xs = [p[0] for p in (*points, *line, *highlighted)]
    ys = [p[1] for p in (*points, *line, *highlighted)]
    xt = log_ticks(min(xs), max(xs)) if log_x else nice_ticks(min(0.0, *xs), max(xs))
    yt = nice_ticks(min(0.0, *ys), max(ys))
    scale = math.log10 if log_x else float
    x0, x1, y0, y1 = scale(xt[0]), scale(xt[-1]), yt[0], yt[-1]

    def sx(x):
        return LEFT + (scale(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(y):
        return H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    out = _axes(W, W - RIGHT, xt, yt, sx, sy)
    if line:
        out.append(f'<path d="{_path(line, sx, sy)}" fill="none" stroke="#1f4e9c" stroke-width="1.6"/>')
    for x, y in points:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.2" fill="#b22222"/>')
    for x, y in highlighted:
        out.append(f'<rect x="{sx(x) - 3.5:.1f}" y="{sy(y) - 3.5:.1f}" width="7" height="7" fill="none" stroke="#136f2d" stroke-width="1.4"/>')
    if mark:
        out += _mark(mark, points, (xt[0], xt[-1]), sx, sy)
    out.append(_labels(W - RIGHT, x_label, y_label))
    return "".join(out)


def _mark(mark: dict, points, x_range: tuple[float, float], sx, sy) -> list[str]:
    """An IC50/HC50: a dashed drop line, a diamond at (x, y) and its CI (lower-upper, cut to the axis) as a
    horizontal bar, when given; its label in the upper corner the points leave free (a falling curve's right)."""
    out = []
    if mark.get("x") is not None:
        x, y = sx(mark["x"]), sy(mark["y"])
        if mark.get("lower") is not None and mark.get("upper") is not None:
            lo, hi = (sx(min(max(v, x_range[0]), x_range[1])) for v in (mark["lower"], mark["upper"]))
            out.append(f'<path d="M{lo:.1f},{y:.1f} H{hi:.1f} M{lo:.1f},{y - 4:.1f} V{y + 4:.1f} '
                       f'M{hi:.1f},{y - 4:.1f} V{y + 4:.1f}" stroke="#136f2d" stroke-width="1.6" fill="none"/>')
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{H - BOTTOM}" stroke="#136f2d" '
                   f'stroke-dasharray="4 3"/><path d="M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y:.1f} L{x:.1f},{y + 5:.1f} '
                   f'L{x - 5:.1f},{y:.1f} Z" fill="#136f2d"/>')
    xs = sorted(p[0] for p in points)
    middle = xs[len(xs) // 2] if xs else 0.0
    low, high = ([p[1] for p in points if (p[0] < middle) == side] for side in (True, False))
    falls = bool(low and high) and sum(low) / len(low) > sum(high) / len(high)
    at, anchor = (W - RIGHT - 6, "end") if falls else (LEFT + 6, "start")
    out.append(f'<text x="{at}" y="{TOP + 14}" text-anchor="{anchor}" font-size="10.5" fill="#136f2d" '
               f'font-weight="bold">{escape(mark["label"])}</text>')
    return out


def _axes(width: float, right: float, xt: list[float], yt: list[float], sx, sy) -> list[str]:
    """The <svg> opening, grid lines with their tick labels, and the frame of the plot area."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {H}" class="plot" role="img">']
    for t in xt:
        out.append(f'<line x1="{sx(t):.1f}" y1="{TOP}" x2="{sx(t):.1f}" y2="{H - BOTTOM}" stroke="#e4e4e4"/>'
                   f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" font-size="10">{t:g}</text>')
    for t in yt:
        out.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{right}" y2="{sy(t):.1f}" stroke="#e4e4e4"/>'
                   f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" font-size="10">{t:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{H - TOP - BOTTOM}" '
               'fill="none" stroke="#888"/>')
    return out


def _labels(right: float, x_label: str, y_label: str) -> str:
    """The axis titles and the closing tag."""
    return (f'<text x="{(LEFT + right) / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{escape(x_label)}</text>'
            f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" font-size="11" '
            f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text></svg>')


def _path(points, sx, sy) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points))


def line_through(predict, x_min: float, x_max: float, n: int = 60) -> list[tuple[float, float]]:
    """n points of a fitted curve between x_min and x_max."""
    xs = np.linspace(x_min, x_max, n)
    return list(zip(xs.tolist(), np.asarray(predict(xs), dtype=float).tolist()))


def kinetic_plot(curves: list[dict], x_label: str, y_label: str, mark_label: str = "",
                 x_max: float | None = None) -> str:
    """Time courses as lines, each with an optional marked point (e.g. its clot time), and a legend.

    curves: [{"label", "color", "points": [(x, y), ...], "mark": (x, y) or None}]; curves that
    share a label share a legend entry. Linear axes from 0; x_max cuts the time axis short.
    """
    width, legend_w = W + 120, 150
    right = width - legend_w
    if x_max is None:
        x_max = max((x for c in curves for x, _ in c["points"]), default=1.0)
    xt = nice_ticks(0.0, x_max)
    curves = [{**c, "points": [(x, y) for x, y in c["points"] if x <= xt[-1]]} for c in curves]
    ys = [y for c in curves for _, y in c["points"]]
    yt = nice_ticks(min([0.0, *ys]), max(ys, default=1.0))

    def sx(x):
        return LEFT + (x - xt[0]) / (xt[-1] - xt[0]) * (right - LEFT)

    def sy(y):
        return H - BOTTOM - (y - yt[0]) / (yt[-1] - yt[0]) * (H - TOP - BOTTOM)

    out = _axes(width, right, xt, yt, sx, sy)
    for c in curves:
        out.append(f'<path d="{_path(c["points"], sx, sy)}" fill="none" stroke="{escape(c["color"])}" stroke-width="1.2" '
                   'opacity="0.85"/>')
    for c in curves:
        if c.get("mark"):
            x, y = c["mark"]
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{escape(c["color"])}" '
                       'stroke="#fff" stroke-width="0.8"/>')
    legend = list(dict.fromkeys((c["label"], c["color"]) for c in curves))
    for k, (label, color) in enumerate(legend):
        y = TOP + 8 + 15 * k
        text = label if len(label) <= 22 else label[:21] + "…"
        out.append(f'<line x1="{right + 10}" y1="{y}" x2="{right + 26}" y2="{y}" stroke="{escape(color)}" '
                   f'stroke-width="2"/><text x="{right + 31}" y="{y + 4}" font-size="10">{escape(text)}</text>')
    if mark_label:
        y = TOP + 8 + 15 * len(legend)
        out.append(f'<circle cx="{right + 18}" cy="{y}" r="3" fill="#333"/>'
                   f'<text x="{right + 31}" y="{y + 4}" font-size="10">{escape(mark_label)}</text>')
    out.append(_labels(right, x_label, y_label))
    return "".join(out)
