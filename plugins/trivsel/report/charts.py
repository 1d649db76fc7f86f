"""Inline SVG bar charts for the report: geometry here, markup in templates/report/chart.svg.j2.

Why the rules: an evaluator reads a chart printed full width. So the axes have titles, the answer labels are
written out in full (wrapped onto lines that fit their group, never rotated or cut), and a suppressed value
is drawn as a hatched grey band with its own legend entry, never as a bar of height 0 that reads as 0 %.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

#: viewBox width; the SVG scales to the page's width (CSS `width: 100%`).
WIDTH = 1000
LEFT, RIGHT, TOP = 64, 16, 34
PLOT_H = 170
LINE_H = 13
#: average advance of the 11 px sans-serif label font, generous so a wrapped line fits its box
CHAR_W = 6.6
SUPPRESSED = ("undertrykt", "suppressed")


@dataclass
class Bar:
    x: float
    width: float
    y: float
    height: float
    colour: str
    value: float | None
    label: str

    @property
    def suppressed(self) -> bool:
        return self.value is None


@dataclass
class Category:
    cx: float
    box_width: float
    lines: list[str]
    text: str


@dataclass
class Chart:
    title: str
    width: int
    height: int
    plot_top: float
    plot_bottom: float
    left: float
    right: float
    y_title: str
    x_title: str
    ticks: list[tuple[int, float]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    legend: list[tuple[str, str, float]] = field(default_factory=list)
    legend_y: float = 0
    x_title_y: float = 0
    has_suppressed: bool = False
    css_class: str = "chart"
    uid: str = "c0"


def wrap(label: str, box_width: float) -> list[str]:
    """The label in full, on as many lines as it needs to fit box_width (a word longer than a line stays
    whole on its own line: textwrap never cuts words here)."""
    chars = max(int(box_width / CHAR_W), 4)
    return textwrap.wrap(label, width=chars, break_long_words=False, break_on_hyphens=False) or [""]


def layout(title: str, categories: list[str], series: list[tuple[str, str, list[float | None]]],
           y_title: str = "Andel af svarene, % (share of answers)",
           x_title: str = "Svarmulighed (answer)", css_class: str = "chart", uid: str = "c0") -> Chart:
    """Grouped vertical bars, one group per category and one bar per series; values are shares 0–1."""
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    plot_w = WIDTH - LEFT - RIGHT
    group_w = plot_w / n_cat
    bar_w = min(36.0, (group_w - 14) / n_ser)
    cats = [Category(cx=LEFT + (i + 0.5) * group_w, box_width=group_w - 6, lines=wrap(c, group_w - 6), text=c)
            for i, c in enumerate(categories)]
    n_lines = max((len(c.lines) for c in cats), default=1)
    bottom = TOP + PLOT_H
    chart = Chart(title=title, width=WIDTH, height=0, plot_top=TOP, plot_bottom=bottom, left=LEFT,
                  right=WIDTH - RIGHT, y_title=y_title, x_title=x_title, categories=cats, css_class=css_class, uid=uid)
    chart.ticks = [(t, TOP + PLOT_H * (1 - t / 100)) for t in (0, 25, 50, 75, 100)]
    for ci, cat in enumerate(cats):
        start = cat.cx - bar_w * n_ser / 2
        for si, (_, colour, values) in enumerate(series):
            v = values[ci] if ci < len(values) else None
            x = start + si * bar_w + 1
            if v is None:
                chart.has_suppressed = True
                chart.bars.append(Bar(x, bar_w - 2, TOP, PLOT_H, colour, None, cat.text))
            else:
                # a published 0 is a visible line on the axis (never mistaken for a missing bar)
                h = max(1.5, PLOT_H * max(0.0, min(1.0, float(v))))
                chart.bars.append(Bar(x, bar_w - 2, bottom - h, h, colour, float(v), cat.text))
    chart.x_title_y = bottom + 14 + n_lines * LINE_H + 6
    chart.legend_y = chart.x_title_y + 14
    lx = float(LEFT)
    entries = [(name, colour) for name, colour, _ in series]
    if chart.has_suppressed:
        entries.append((f"{SUPPRESSED[0]} ({SUPPRESSED[1]})", f"url(#hatch-{uid})"))
    for name, colour in entries:
        chart.legend.append((name, colour, lx))
        lx += 18 + CHAR_W * len(name) + 16
    chart.height = int(chart.legend_y + 16)
    return chart
