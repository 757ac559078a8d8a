"""Small inline-SVG charts for the run report: line charts, heat maps, a scatter and a colour legend.

Every function returns an `<svg>` element as a string; no scripts, no external references. Text that
reaches an SVG (labels, tooltips) is HTML-escaped here, so callers may pass any string.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# viridis, sampled at ten points: perceptually even and readable by colour-blind people
_VIRIDIS = (
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37),
)  # fmt: skip
EMPTY_COLOUR = "#e6e6e6"
_INK, _GRID, _MUTED = "#2b2d31", "#e3e3e3", "#6b6f76"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 14, 26, 42

Range = tuple[float, float]


@dataclass(frozen=True)
class ColourScale:
    """Maps [lo, hi] onto viridis; a degenerate range maps everything to its top colour."""

    lo: float
    hi: float

    def colour(self, value: float) -> str:
        t = 1.0 if self.hi <= self.lo else min(1.0, max(0.0, (value - self.lo) / (self.hi - self.lo)))
        position = t * (len(_VIRIDIS) - 1)
        i = min(int(position), len(_VIRIDIS) - 2)
        f = position - i
        rgb = (round(a + (b - a) * f) for a, b in zip(_VIRIDIS[i], _VIRIDIS[i + 1], strict=True))
        return "#" + "".join(f"{c:02x}" for c in rgb)

    def legend(self, label: str, *, width: int = 300) -> str:
        """A horizontal colour bar with the minimum and maximum written under its ends."""
        steps = 24
        bar = "".join(
            f'<rect x="{10 + i * (width - 20) / steps:.1f}" y="16" width="{(width - 20) / steps + 0.5:.1f}" '
            f'height="12" fill="{self.colour(self.lo + (self.hi - self.lo) * (i + 0.5) / steps)}"/>'
            for i in range(steps)
        )
        return (
            f'<svg class="chart" width="{width}" height="46" viewBox="0 0 {width} 46" {_FONT} role="img" '
            f'aria-label="{html.escape(label)} colour scale">'
            f'<text x="10" y="11" fill="{_MUTED}">{html.escape(label)}</text>{bar}'
            f'<text x="10" y="42" fill="{_INK}">{self.lo:.3g}</text>'
            f'<text x="{width - 10}" y="42" text-anchor="end" fill="{_INK}">{self.hi:.3g}</text>'
            f'<rect x="{width / 2 - 14}" y="32" width="10" height="10" fill="{EMPTY_COLOUR}"/>'
            f'<text x="{width / 2}" y="41" fill="{_MUTED}">empty</text></svg>'
        )


@dataclass(frozen=True)
class Series:
    """One line of a line chart; a None y leaves a gap."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    colour: str


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) whose ends enclose [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        pad = max(abs(lo) * 0.1, 0.5)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start, stop = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(start, stop + 1)]


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    """Just enough decimals to tell ticks apart; thousands and millions as k and M, to stay narrow."""
    largest = max(abs(t) for t in ticks)
    divisor, suffix = (1e6, "M") if largest >= 1e6 else (1e3, "k") if largest >= 1e4 else (1.0, "")
    step = (abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0) / divisor
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value / divisor:,.{decimals}f}{suffix}"


@dataclass(frozen=True)
class _Axes:
    """A plot area of `width` x `height` pixels at (left, top), showing x_range by y_range (y up)."""

    x_range: Range
    y_range: Range
    left: float
    top: float
    width: float
    height: float

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (value - lo) / (hi - lo) * self.width

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return self.top + self.height - (value - lo) / (hi - lo) * self.height

    def frame(
        self,
        x_ticks: Sequence[float],
        y_ticks: Sequence[float],
        labels: tuple[str, str],
        *,
        grid: bool = True,
    ) -> str:
        """Tick marks and labels, horizontal grid lines (unless `grid` is False) and axis titles."""
        border = (f'<rect x="{self.left}" y="{self.top}" width="{self.width}" height="{self.height}" '
                  f'fill="none" stroke="{_GRID}"/>')  # fmt: skip
        return border + self._x_axis(x_ticks, labels[0]) + self._y_axis(y_ticks, labels[1], grid)

    def _x_axis(self, ticks: Sequence[float], label: str) -> str:
        bottom = self.top + self.height
        parts = [
            _stroke((self.x(t), bottom), (self.x(t), bottom + 4), _MUTED)
            + _text((self.x(t), bottom + 15), _tick_label(t, ticks), "middle")
            for t in ticks
        ]
        parts.append(_text((self.left + self.width / 2, bottom + 33), label, "middle", _MUTED))
        return "".join(parts)

    def _y_axis(self, ticks: Sequence[float], label: str, grid: bool) -> str:
        x1, colour = (self.left + self.width, _GRID) if grid else (self.left - 4, _MUTED)
        parts = [
            _stroke((x1, self.y(t)), (self.left, self.y(t)), colour)
            + _text((self.left - 6, self.y(t) + 4), _tick_label(t, ticks), "end")
            for t in ticks
        ]
        middle = self.top + self.height / 2
        parts.append(f'<g transform="translate(13 {middle:.1f}) rotate(-90)">')
        parts.append(_text((0, 0), label, "middle", _MUTED) + "</g>")
        return "".join(parts)


def _stroke(a: tuple[float, float], b: tuple[float, float], colour: str) -> str:
    return f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" stroke="{colour}"/>'


def _text(at: tuple[float, float], text: str, anchor: str = "start", colour: str = _INK) -> str:
    return (f'<text x="{at[0]:.1f}" y="{at[1]:.1f}" text-anchor="{anchor}" fill="{colour}">'
            f"{html.escape(text)}</text>")  # fmt: skip


def _svg(width: float, height: float, label: str, body: str) -> str:
    w, h = f"{width:.0f}", f"{height:.0f}"
    return (
        f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" {_FONT} fill="{_INK}" '
        f'role="img" aria-label="{html.escape(label)}">{body}</svg>'
    )


def _axes(x_range: Range, y_range: Range, width: float, height: float) -> _Axes:
    plot_w = width - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = height - _MARGIN_TOP - _MARGIN_BOTTOM
    return _Axes(x_range, y_range, _MARGIN_LEFT, _MARGIN_TOP, plot_w, plot_h)


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    x_label: str,
    y_label: str,
    y_include: Sequence[float] = (),
    size: tuple[int, int] = (460, 260),
) -> str:
    """Lines over a shared x axis, with a legend when there is more than one series."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if y is not None] + list(y_include)
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
    axes = _axes((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]), *size)
    body = [axes.frame(x_ticks, y_ticks, (x_label, y_label))]
    body += [_line(axes, s) for s in series]
    if len(series) > 1:
        body.append(_legend(series, axes))
    return _svg(*size, label, "".join(body))


def _line(axes: _Axes, series: Series) -> str:
    """Polylines through consecutive known points; a lone point gets a dot."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(series.xs, series.ys, strict=True):
        if y is None or not math.isfinite(y):
            runs.append([])
        else:
            runs[-1].append((axes.x(x), axes.y(y)))
    parts = []
    for run in filter(None, runs):
        if len(run) == 1:
            parts.append(
                f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2.5" fill="{series.colour}"/>'
            )
        else:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{series.colour}" '
                         f'stroke-width="2" stroke-linejoin="round"/>')  # fmt: skip
    return "".join(parts)


def _legend(series: Sequence[Series], axes: _Axes) -> str:
    parts, x = [], axes.left
    for s in series:
        parts.append(f'<line x1="{x}" y1="12" x2="{x + 16}" y2="12" stroke="{s.colour}" stroke-width="3"/>')
        parts.append(f'<text x="{x + 20}" y="16">{html.escape(s.label)}</text>')
        x += 30 + 6.5 * len(s.label)
    return "".join(parts)


@dataclass(frozen=True)
class Axis:
    """A named span cut into `bins` equal bins (a grid archive's descriptor)."""

    name: str
    span: Range
    bins: int

    def bin(self, i: int) -> Range:
        step = (self.span[1] - self.span[0]) / self.bins
        return self.span[0] + i * step, self.span[0] + (i + 1) * step

    def describe(self, i: int) -> str:
        lo, hi = self.bin(i)
        return f"{self.name} {lo:.3g}–{hi:.3g}"


def heat_map(
    values: np.ndarray,
    scale: ColourScale,
    *,
    x: Axis,
    y: Axis,
    label: str,
    cell_px: float = 24,
    bare: bool = False,
) -> str:
    """`values[y bin, x bin]` as coloured cells, y bin 0 at the bottom; NaN is an empty (grey) cell.

    Each cell's tooltip names its bins and value; a `bare` map has no axes (for small multiples).
    """
    rows, cols = values.shape
    if bare:
        axes = _Axes((0, cols), (0, rows), 1, 1, cols * cell_px, rows * cell_px)
        frame, width, height = "", cols * cell_px + 2, rows * cell_px + 2
    else:
        width, height = _MARGIN_LEFT + cols * cell_px + _MARGIN_RIGHT, 8 + rows * cell_px + _MARGIN_BOTTOM
        axes = _Axes(x.span, y.span, _MARGIN_LEFT, 8, cols * cell_px, rows * cell_px)
        frame = axes.frame(_ticks_within(x.span), _ticks_within(y.span), (x.name, y.name), grid=False)
    cells = []
    for r, c in np.ndindex(rows, cols):
        value = float(values[r, c])
        tip = f"{y.describe(r)}, {x.describe(c)}: " + ("empty" if math.isnan(value) else f"{value:+.3f}")
        cells.append(_cell(value, scale, axes, (r, c), (rows, cols), tip))
    return _svg(width, height, label, "".join(cells) + frame)


def small_multiples(values: np.ndarray, scale: ColourScale, *, x: Axis, y: Axis, z: Axis) -> str:
    """One bare heat map per z bin of `values[y bin, x bin, z bin]`, captioned with the bin and its count."""
    cell_px = max(4.0, 96 / max(values.shape[:2]))
    figures = []
    for k in range(values.shape[2]):
        layer = values[:, :, k]
        svg = heat_map(layer, scale, x=x, y=y, label=z.describe(k), cell_px=cell_px, bare=True)
        filled = int(np.count_nonzero(~np.isnan(layer)))
        caption = f"{html.escape(z.describe(k))}<br>{filled} filled"
        figures.append(f"<figure>{svg}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="multiples">{"".join(figures)}</div>'


def running_mean(values: Sequence[float], window: int) -> list[float | None]:
    """The mean of each value and up to `window - 1` values before it."""
    sums = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=np.float64))])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - max(1, window))
    return [float(v) for v in (sums[ends] - sums[starts]) / (ends - starts)]


def _ticks_within(span: Range) -> list[float]:
    lo, hi = span
    return [t for t in nice_ticks(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]


def _cell(
    value: float, scale: ColourScale, axes: _Axes, at: tuple[int, int], shape: tuple[int, int], tip: str
) -> str:
    (r, c), (rows, cols) = at, shape
    w, h = axes.width / cols, axes.height / rows
    x, y = axes.left + c * w, axes.top + (rows - 1 - r) * h
    fill = EMPTY_COLOUR if math.isnan(value) else scale.colour(value)
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" stroke="#fff" '
            f'stroke-width="{0.5 if w < 12 else 1}"><title>{html.escape(tip)}</title></rect>')  # fmt: skip


def scatter(
    points: Sequence[tuple[float, float, float]],
    scale: ColourScale,
    *,
    label: str,
    ranges: tuple[Range, Range],
    axis_labels: tuple[str, str],
    tooltips: Sequence[str] = (),
    size: tuple[int, int] = (460, 420),
) -> str:
    """(x, y, value) points coloured by value; the best are drawn last, on top."""
    x_ticks, y_ticks = nice_ticks(*ranges[0]), nice_ticks(*ranges[1])
    axes = _axes((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]), *size)
    body = [axes.frame(x_ticks, y_ticks, axis_labels)]
    titles = list(tooltips) + [""] * (len(points) - len(tooltips))
    for (x, y, v), title in sorted(zip(points, titles, strict=True), key=lambda p: p[0][2]):
        tip = f"<title>{html.escape(title)}</title>" if title else ""
        body.append(f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="4" fill="{scale.colour(v)}" '
                    f'stroke="#fff" stroke-width="0.5">{tip}</circle>')  # fmt: skip
    return _svg(*size, label, "".join(body))
