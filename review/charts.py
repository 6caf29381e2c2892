"""Server-rendered SVG charts: no JavaScript, no external files, every label escaped.

Charts use SVG presentation attributes (fill, x, y...) rather than inline styles,
so they pass the app's Content-Security-Policy. Each chart has a <title> and an
aria-label; the stats page also shows the numbers as a table.
"""
from __future__ import annotations

import math
from typing import Callable, List, Sequence, Tuple

from markupsafe import Markup, escape

BAR = "#2f6f9f"
ACCENT = "#b3261e"
AXIS = "#5f6b76"


def _nice_max(value: float) -> float:
    """A round number at or above value, for the top of the axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(points: Sequence[Tuple[str, float]], title: str, color: str = BAR,
              fmt: Callable[[float], str] = lambda v: f"{v:g}", width: int = 760,
              height: int = 220) -> Markup:
    """Vertical bars, one per point (label, value); labels thinned out to fit."""
    left, right, top, bottom = 44, 8, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((v for _, v in points), default=0.0))
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.75, 1.0)
    parts: List[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d9dee3" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="{AXIS}">{escape(fmt(value))}</text>')
    every = max(1, round(n / 10))
    for i, (label, value) in enumerate(points):
        h = plot_h * (value / top_value) if top_value else 0
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                     f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'font-size="11" fill="{AXIS}">{escape(label)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 f'stroke="{AXIS}" stroke-width="1"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(items: Sequence[Tuple[str, float]], title: str, color: str = BAR,
               width: int = 760) -> Markup:
    """Horizontal bars with their labels, for rankings such as top topics."""
    row_h, label_w, right = 24, 250, 60
    height = max(len(items), 1) * row_h + 8
    top_value = max((v for _, v in items), default=0.0) or 1.0
    parts: List[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        w = (width - label_w - right) * value / top_value
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12" '
                     f'fill="#1d2730">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12" '
                     f'fill="{AXIS}">{escape(f"{value:g}")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
