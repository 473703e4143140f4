"""Charts as inline SVG, written by hand: no library, no script, nothing fetched.

Every bar is a `<rect class="bar ..." data-period=... data-value=...>` whose height is its
value times the chart's scale (a zero is a bar of height 0), with a `<title>` tooltip, so a
test (or a screen reader) can read exactly what is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from account_engagement_cards.data import Period

WIDTH = 720
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 24
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Series:
    key: str  # css class suffix and data-series value, e.g. "emails-to"
    label: str  # legend, e.g. "to the account"
    attribute: str  # Period attribute, e.g. "emails_to"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k (k >= 0) at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _fmt(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _period_label(start: date, weekly: bool) -> str:
    return f"week of {start.isoformat()}" if weekly else f"{MONTHS[start.month - 1]} {start.year}"


def bar_chart(
    periods: Sequence[Period], series: Sequence[Series], *, title: str, unit: str,
    weekly: bool,
) -> str:
    """Grouped bars, one group per period, one bar per series; y from 0 to a round maximum."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top_value = max((getattr(p, s.attribute) for p in periods for s in series), default=0)
    y_max = nice_ceiling(top_value)
    scale = plot_h / y_max
    band = plot_w / max(len(periods), 1)
    bar_w = band * 0.84 / max(len(series), 1)
    gap = band * 0.08
    baseline = TOP + plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-y-max="{y_max}" data-scale="{_fmt(scale)}" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    step = y_max // 5 if y_max % 5 == 0 else y_max // 2 if y_max % 2 == 0 else y_max
    for tick in range(0, y_max + 1, step):
        y = baseline - tick * scale
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end">'
            f"{tick}</text>"
        )
    previous_month = None
    for index, period in enumerate(periods):
        x0 = LEFT + index * band
        label = _period_label(period.start, weekly)
        for number, item in enumerate(series):
            value = int(getattr(period, item.attribute))
            height = value * scale
            parts.append(
                f'<rect class="bar bar-{item.key}" data-series="{item.key}" '
                f'data-period="{period.start.isoformat()}" data-value="{value}" '
                f'x="{_fmt(x0 + gap + number * bar_w)}" y="{_fmt(baseline - height)}" '
                f'width="{_fmt(bar_w)}" height="{_fmt(height)}">'
                f"<title>{escape(label)}: {value} {escape(unit)} {escape(item.label)}</title>"
                "</rect>"
            )
        # x labels: every month; on the weekly chart at the first week of each month
        month = (period.start.year, period.start.month)
        if month != previous_month:
            previous_month = month
            text = MONTHS[period.start.month - 1]
            if period.start.month == 1 or index == 0:
                text += f" {period.start.year % 100:02d}"
            anchor_x = x0 + (band / 2 if not weekly else 0)
            parts.append(
                f'<text class="axis" x="{_fmt(anchor_x)}" y="{HEIGHT - 8}" '
                f'text-anchor="{"middle" if not weekly else "start"}">{text}</text>'
            )
    parts.append(
        f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{_fmt(baseline)}" y2="{_fmt(baseline)}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(periods: Sequence[Period], *, title: str) -> str:
    """Weekly EngagementScore (0-100) as a small line with a dot per week."""
    width, height, pad = 240, 56, 5
    if not periods:
        return ""
    step = (width - 2 * pad) / max(len(periods) - 1, 1)
    points = [
        (pad + i * step, pad + (100 - p.score) / 100 * (height - 2 * pad))
        for i, p in enumerate(periods)
    ]
    path = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
    dots = "".join(
        f'<circle class="spark-dot" data-period="{p.start.isoformat()}" data-value="{p.score}" '
        f'cx="{_fmt(x)}" cy="{_fmt(y)}" r="2.5"><title>week of {p.start.isoformat()}: '
        f"{p.score}</title></circle>"
        for p, (x, y) in zip(periods, points, strict=True)
    )
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<line class="grid" x1="{pad}" x2="{width - pad}" y1="{height - pad}" '
        f'y2="{height - pad}"/>'
        f'<polyline class="spark-line" points="{path}"/>{dots}</svg>'
    )
