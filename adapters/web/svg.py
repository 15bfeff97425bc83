"""Inline SVG charts (no script, no style attributes): the incident's timeline chart and bar charts for stats.
Each chart has a <title> and a text table or list next to it, so a screen reader gets the numbers too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from html import escape

from bot.web.views import TimelineChart

PHASE_COLOURS = {"declared": "#b3261e", "acknowledged": "#c25e00", "mitigated": "#8a6d00", "resolved": "#1b6e3a"}
MARK_COLOURS = {"update": "#1a4f9c", "severity": "#6a1b9a", "nudge": "#6b6b6b", "escalation": "#b3261e",
                "public": "#00695c"}
MARK_ROWS = {"update": 0, "public": 0, "severity": 1, "nudge": 2, "escalation": 2}


def _h(value: object) -> str:
    return escape(str(value), quote=True)


def timeline_chart(chart: TimelineChart, tz: tzinfo, *, width: int = 720) -> str:
    left, right, top = 10, 10, 10
    span = width - left - right
    parts = [f'<svg class="chart" role="img" aria-labelledby="tlc-title" viewBox="0 0 {width} 120" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="tlc-title">Timeline chart: status phases, updates, '
             f'severity changes, nudges and escalations</title>']
    for phase in chart.phases:
        x = left + chart.position(phase.start) * span
        w = max(1.0, (chart.position(phase.end) - chart.position(phase.start)) * span)
        parts.append(f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="18" '
                     f'fill="{PHASE_COLOURS.get(phase.status, "#555")}"><title>{_h(phase.status)}</title></rect>')
    for mark in chart.marks:
        x = left + chart.position(mark.at) * span
        y = top + 34 + MARK_ROWS.get(mark.kind, 2) * 18
        parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="4" fill="{MARK_COLOURS.get(mark.kind, "#555")}">'
                     f'<title>{_h(mark.kind)}: {_h(mark.label)}</title></circle>')
    start, end = chart.start.astimezone(tz), chart.end.astimezone(tz)
    parts.append(f'<text x="{left}" y="115" font-size="11" fill="#222">{_h(start.strftime("%d %b %H:%M"))}</text>'
                 f'<text x="{width - right}" y="115" font-size="11" fill="#222" text-anchor="end">'
                 f'{_h(end.strftime("%d %b %H:%M"))}</text></svg>')
    legend = "".join(f'<li class="legend-{_h(k)}">{_h(k)}</li>' for k in (*PHASE_COLOURS, *MARK_COLOURS))
    return "".join(parts) + f'<ul class="legend" aria-label="Chart legend">{legend}</ul>'


def bar_chart(title: str, values: Sequence[tuple[str, float | None]], *, unit: str,
              maximum: float | None = None, width: int = 360) -> str:
    row = 24
    height = max(1, len(values)) * row + 10
    top = maximum or max((v for _, v in values if v is not None), default=0) or 1
    label_w, value_w = 70, 70
    span = width - label_w - value_w
    bars = []
    for index, (label, value) in enumerate(values):
        y = 5 + index * row
        shown = "n/a" if value is None else f"{value:.0f}{unit and ' ' + unit}"
        w = 0 if value is None else max(1.0, span * value / top)
        bars.append(f'<text x="0" y="{y + 15}" font-size="12" fill="#222">{_h(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" fill="#1a4f9c"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12" fill="#222">{_h(shown)}</text>')
    return (f'<figure class="bars"><figcaption>{_h(title)}</figcaption><svg role="img" aria-label="{_h(title)}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg></figure>')
