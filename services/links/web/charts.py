"""Charts drawn on the server as inline SVG: horizontal bars (funnels, rejections) and daily
lines. The pages must work offline and without JavaScript.

Our own small module rather than a charting library: the two chart kinds we need are ~200
lines of string building, while pygal (the PyPI library that renders SVG) adds a
dependency, wants its external tooltip script switched off, and produces SVG that is harder
to test and to style with the page's own CSS. Here every element carries a class and data
attributes, so tests can read counts and points back from the markup."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = "font-family:system-ui,sans-serif;font-size:12px"

Formatter = Callable[[float], str]


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> Markup:
    # role=img + <title>: screen readers read the title; the numbers are also in the page.
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'style="{FONT};max-width:{width}px" aria-label={quoteattr(title)}>'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _empty(width: int, height: int, title: str, message: str, css_class: str) -> Markup:
    height = min(height, 48)  # a line of text, not a blank plot
    body = [
        f'<text class="empty" x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" '
        f'fill="#666">{escape(message)}</text>'
    ]
    return _svg(width, height, title, body, css_class)


def hbars(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = 640,
    label_width: int = 140,
    bar_height: int = 22,
    gap: int = 8,
    fmt: Formatter = _plain,
    share_of_first: bool = False,
    notes: Sequence[str | None] | None = None,
    empty_message: str = "no data yet",
) -> Markup:
    """One horizontal bar per item, its length proportional to its count (the longest bar is
    the largest count), the label before it and the count after it. With
    ``share_of_first`` the count is followed by its share of the first item, which is what
    a funnel reader wants ("clicked 120 (40%)"); ``notes`` instead puts a note of the
    caller's after each count (e.g. the rate from the previous stage)."""
    if not items:
        return _empty(width, 60, title, empty_message, "hbars")
    count_width = 130 if share_of_first or notes else 70
    track = width - label_width - count_width - 10
    top = max(count for _, count in items)
    first = items[0][1]
    height = len(items) * (bar_height + gap) + gap
    body: list[str] = []
    for i, (label, count) in enumerate(items):
        y = gap + i * (bar_height + gap)
        length = track * count / top if top > 0 else 0.0
        colour = PALETTE[0]
        text = fmt(count)
        if share_of_first and first > 0:
            text += f" ({100 * count / first:.0f}%)"
        elif notes and i < len(notes) and notes[i]:
            text += f" ({notes[i]})"
        middle = y + bar_height / 2 + 4
        body.append(
            f'<g class="bar-row"><text class="label" x="{label_width - 6}" y="{middle:.1f}" '
            f'text-anchor="end" fill="#222">{escape(label)}</text>'
            f'<rect class="track" x="{label_width}" y="{y}" width="{track}" '
            f'height="{bar_height}" fill="#eef1f5" rx="3"/>'
            f'<rect class="bar" data-label={quoteattr(label)} data-count="{count}" '
            f'x="{label_width}" y="{y}" width="{length:.2f}" height="{bar_height}" '
            f'fill="{colour}" rx="3"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text class="count" x="{label_width + length + 6:.2f}" y="{middle:.1f}" '
            f'fill="#222">{escape(text)}</text></g>'
        )
    return _svg(width, height, title, body, "hbars")


def nice_step(top: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) covering ``top`` in <= ``ticks`` steps."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def lines(
    days: Sequence[date],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    width: int = 640,
    height: int = 260,
    fmt: Formatter = _plain,
    day_label: Callable[[date], str] = lambda d: d.strftime("%d %b"),
    empty_message: str = "no data yet",
) -> Markup:
    """Daily line chart: one line per series over ``days``, a dot on every point (so a single
    day still shows), y ticks at round numbers including 0, a few day labels, and a legend.
    A None value (e.g. an NPS on a day without answers) leaves a gap in its line."""
    for name, values in series.items():
        if len(values) != len(days):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(days)} days")
    known = [v for values in series.values() for v in values if v is not None]
    if not days or not series or not known:
        return _empty(width, height, title, empty_message, "lines")
    left, right, top_pad, bottom = 48, 16, 12, 46
    legend_rows = math.ceil(len(series) / 4)
    plot_w = width - left - right
    plot_h = height - top_pad - bottom - 18 * (legend_rows - 1)
    high, low = max(0.0, *known), min(0.0, *known)
    step = nice_step(high - low)
    y_max = step * max(1 if low == 0 else 0, math.ceil(high / step))
    y_min = step * math.floor(low / step)
    n = len(days)

    def x_of(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_of(v: float) -> float:
        return top_pad + plot_h * (y_max - v) / (y_max - y_min)

    body: list[str] = ['<g class="y-axis">']
    for k in range(round(y_min / step), round(y_max / step) + 1):
        value = step * k
        y = y_of(value)
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#9aa3ad" if k == 0 else "#e3e6ea"}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end" fill="#555">{escape(fmt(value))}</text>'
        )
    body.append('</g><g class="x-axis">')
    label_every = max(1, math.ceil(n / 6))
    for i, day in enumerate(days):
        last = i == n - 1
        # Every label_every-th day and the last one, but none crowding the last one.
        if not last and (i % label_every or n - 1 - i < label_every):
            continue
        # The first and last labels align with the plot's edges so that none is cut off.
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        body.append(
            f'<text class="tick" x="{x_of(i):.1f}" y="{top_pad + plot_h + 16:.1f}" '
            f'text-anchor="{anchor}" fill="#555">{escape(day_label(day))}</text>'
        )
    body.append("</g>")
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        body.append(f'<g class="series" data-series={quoteattr(name)}>')
        for run in _runs(values):
            points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in run)
            body.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for i, v in enumerate(values):
            if v is None:
                continue
            body.append(
                f'<circle class="point" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5" '
                f'fill="{colour}" data-value="{v}"><title>{escape(name)} '
                f"{escape(day_label(days[i]))}: {escape(fmt(v))}</title></circle>"
            )
        body.append("</g>")
    body.append('<g class="legend">')
    legend_y = top_pad + plot_h + 34
    for index, name in enumerate(series):
        row, col = divmod(index, 4)
        x = left + col * (plot_w / 4)
        y = legend_y + row * 18
        body.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="4" '
            f'fill="{PALETTE[index % len(PALETTE)]}"/>'
            f'<text class="legend-item" x="{x + 16:.1f}" y="{y - 4:.1f}" '
            f'fill="#222">{escape(name)}</text>'
        )
    body.append("</g>")
    return _svg(width, height, title, body, "lines")


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive known values, each drawn as one polyline."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if run]


def intervals(
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    *,
    title: str,
    width: int = 640,
    label_width: int = 90,
    row_height: int = 26,
    fmt: Formatter = lambda v: f"{100 * v:.1f}%",
    empty_message: str = "no data yet",
) -> Markup:
    """Estimates with their confidence intervals, one row each (label, estimate, low, high),
    on a common 0..max scale, so overlapping intervals are seen at a glance."""
    drawn = [r for r in rows if r[1] is not None]
    if not drawn:
        return _empty(width, 60, title, empty_message, "intervals")
    top = max(max(v for v in (r[1], r[3]) if v is not None) for r in drawn)
    step = nice_step(top if top > 0 else 1.0, ticks=4)
    scale_max = step * max(1, math.ceil(top / step))
    track = width - label_width - 20
    axis_y = len(rows) * row_height + 8
    height = axis_y + 22

    def x_of(v: float) -> float:
        return label_width + track * v / scale_max

    body: list[str] = []
    for k in range(round(scale_max / step) + 1):
        x = x_of(step * k)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{axis_y}" stroke="#e3e6ea"/>'
            f'<text class="tick" x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" '
            f'fill="#555">{escape(fmt(step * k))}</text>'
        )
    for i, (label, estimate, low, high) in enumerate(rows):
        y = 8 + i * row_height + row_height / 2
        body.append(
            f'<g class="interval" data-label={quoteattr(label)}>'
            f'<text x="{label_width - 8}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="#222">{escape(label)}</text>'
        )
        if estimate is not None and low is not None and high is not None:
            body.append(
                f'<line class="ci" x1="{x_of(low):.1f}" x2="{x_of(high):.1f}" y1="{y:.1f}" '
                f'y2="{y:.1f}" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="3"/>'
                f'<circle class="estimate" cx="{x_of(estimate):.1f}" cy="{y:.1f}" r="4" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: '
                f"{escape(fmt(estimate))} ({escape(fmt(low))} to {escape(fmt(high))})"
                "</title></circle>"
            )
        body.append("</g>")
    return _svg(width, height, title, body, "intervals")
