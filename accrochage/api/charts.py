"""Server-rendered SVG charts for the dashboard: no script, no library, works offline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2f6fb0", "#e07b39", "#3a9d5d", "#9b59b6", "#c0392b", "#16a085", "#7f8c8d")
WIDTH, HEIGHT = 720, 260
LEFT, BOTTOM, TOP = 48, 40, 16
LEGEND_STEP, LEGEND_LINE, LEGEND_CHAR = 120, 18, 8
FONT_PX = 11
"""The text size the layout is drawn for, carried by the chart itself (the dashboard's
stylesheet no longer says it a second time): without it a page without that stylesheet drew
16 px text, whose lines (19 px high in Chromium 156) ran into each other at `LEGEND_LINE`."""


def colour(index: int) -> str:
    """The series' own colour: the palette's, then hues spread by the golden angle. A trusted
    third party deposits for more certifiers than the palette has colours, and the eighth
    took the first's colour: two certifiers' bars could not be told apart."""
    if index < len(PALETTE):
        return PALETTE[index]
    return f"hsl({(50 + (index - len(PALETTE)) * 137.508) % 360:.0f},60%,{38 + 12 * (index % 2)}%)"


def _legend_places(names: Sequence[str]) -> list[tuple[int, int]]:
    """Where each legend entry goes: (x, lines below the first, in pixels). Entries flow left
    to right and wrap before the chart's edge, each as wide as its name needs (a certifier
    key may be 64 characters long): in one line, the sixth name on ran out of the chart."""
    places, x, y = [], LEFT, 0
    for name in names:
        step = max(LEGEND_STEP, 14 + LEGEND_CHAR * len(name) + 12)
        if x > LEFT and x + step > WIDTH:
            x, y = LEFT, y + LEGEND_LINE
        places.append((x, y))
        x += step
    return places


def stacked_bars(
    chart_id: str,
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[int]],
) -> str:
    """Bars per bucket, stacked by series (one colour each), with axis labels and a legend.

    Each bar segment is a `<rect class="bar">` carrying `data-series`, `data-bucket` and
    `data-count`, so the drawing can be checked as well as seen.
    """
    totals = [sum(values[i] for values in series.values()) for i in range(len(buckets))]
    top = max(totals, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    legend = _legend_places(list(series))
    height = HEIGHT + max((y for _, y in legend), default=0)
    slot = (WIDTH - LEFT - 10) / max(len(buckets), 1)
    bar_w = slot * 0.6
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" font-size="{FONT_PX}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 10}" y2="{TOP + plot_h}" '
        'stroke="#444" stroke-width="1"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y: float = TOP + plot_h
        for s, (name, values) in enumerate(series.items()):
            count = values[i]
            if count <= 0:
                continue
            h = max(plot_h * count / top, 1.0)
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour(s)}" data-series="{escape(name)}" '
                f'data-bucket="{escape(bucket)}" data-count="{count}">'
                f"<title>{escape(name)}: {count} ({escape(bucket)})</title></rect>"
            )
        if totals[i]:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                f'class="total">{totals[i]}</text>'
            )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
            f'class="axis">{escape(bucket)}</text>'
        )
    for s, (name, (x, dy)) in enumerate(zip(series, legend, strict=True)):
        parts.append(
            f'<rect x="{x}" y="{HEIGHT + dy - 14}" width="10" height="10" fill="{colour(s)}"/>'
            f'<text x="{x + 14}" y="{HEIGHT + dy - 5}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
