"""Inline SVG charts of the evaluation's uncertainty: interval error bars, the permutation null, alert burden.

Same hand-written :class:`~phenoflow.reports.plots.Chart` as the other report
charts (self-contained, no dependency). Infinite interval ends (TPR/FPR = ∞
without false positives) are drawn to the axis edge with an arrow and "∞".
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from phenoflow.evaluation.burden import BurdenRow
from phenoflow.evaluation.uncertainty import Interval
from phenoflow.reports.plots import BLUE, GREY, RED, Chart, fmt_num, nice_ticks

__all__ = ["burden_bars", "interval_bars", "null_histogram"]


def _whisker(c: Chart, i: float, lo: float, hi: float, value: float, color: str, title: str, x_max: float) -> None:
    """Error bar at row i from lo to hi with a dot at value; ends beyond x_max drawn as arrows."""
    a, b = min(lo, x_max), min(hi, x_max)
    y = c.y(i)
    c.add(f'<line x1="{c.x(a):.1f}" x2="{c.x(b):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')
    for end, real in ((a, lo), (b, hi)):
        c.add(f'<line x1="{c.x(end):.1f}" x2="{c.x(end):.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}" stroke="{color}" stroke-width="2"/>')
        if real > x_max:
            px = c.x(x_max)
            c.add(f'<path d="M{px:.1f},{y - 5:.1f} L{px + 7:.1f},{y:.1f} L{px:.1f},{y + 5:.1f} Z" fill="{color}"/>')
            c.text(px + 9, y + 4, "∞", size=12, color=color)
    c.dot(min(value, x_max), i, r=5, color=color, title=title)


def interval_bars(intervals: Mapping[str, Interval], resamples: int) -> str:
    """Point estimates with 95 % bootstrap intervals: rates on a 0–1 axis, TPR/FPR on its own axis with chance = 1."""
    rates = [("median_sensitivity", "median sensitivity", RED), ("sensitivity", "pooled sensitivity", RED),
             ("median_specificity", "median specificity", BLUE), ("specificity", "pooled specificity", BLUE)]
    ratio = [("median_tpr_fpr", "median TPR/FPR", RED), ("tpr_fpr", "pooled TPR/FPR", RED)]
    out = []
    x_max: float | None
    for rows, x_max, label in ((rates, 1.0, "rate"), (ratio, None, "TPR/FPR")):
        finite = [v for key, _, _ in rows if key in intervals
                  for v in (intervals[key].value, intervals[key].low, intervals[key].high)
                  if v is not None and math.isfinite(v)]
        hi = x_max if x_max is not None else max([2.0] + finite) * 1.1
        ticks = [0, 0.25, 0.5, 0.75, 1.0] if x_max is not None else nice_ticks(0, hi)
        hi = max(hi, ticks[-1])
        c = Chart(470, 56 + 34 * len(rows), f"{label}: estimate and 95 % interval ({resamples:,} participant-bootstrap resamples)",
                  margin=(30, 30, 36, 150))
        c.set_x(0, hi)
        c.set_y(len(rows) - 0.5, -0.5)
        c.axes([(t, fmt_num(t)) for t in ticks], None, xlabel=label, grid=False)
        c.text(c.left, 18, f"{label}: 95 % bootstrap interval", size=13, weight="600")
        if x_max is None:
            c.vline(1.0, color=GREY, dash="5 4")
            c.text(c.x(1.0) + 4, c.h - c.bottom - 4, "chance = 1", size=10, color="#6b7280")
        for i, (key, name, color) in enumerate(rows):
            c.text(c.left - 8, c.y(i) + 4, name, size=12, anchor="end")
            iv = intervals.get(key)
            if iv is None or iv.value is None or iv.low is None or iv.high is None:  # low and high are None together
                c.text(c.x(0) + 4, c.y(i) + 4, "n/a", size=11, color="#6b7280")
                continue
            v, lo, up = iv.value, iv.low, iv.high
            _whisker(c, i, lo, up, v, color, f"{name} {fmt_num(v)} (95 % CI {fmt_num(lo)}–{fmt_num(up)})", hi)
        out.append(c.render())
    return '<div class="pair">' + "".join(out) + "</div>"


def null_histogram(null: np.ndarray, observed: float | None, p: float) -> str:
    """Histogram of the permutation null of the median TPR/FPR with the observed value as a red line."""
    v = np.asarray(null, dtype=float)
    v = v[~np.isnan(v)]
    finite = v[np.isfinite(v)]
    obs_f = observed if observed is not None and math.isfinite(observed) else None
    top = max([1.0] + ([float(finite.max())] if finite.size else []) + ([obs_f] if obs_f is not None else [])) * 1.05
    edges = np.linspace(0, top, 31)
    counts, _ = np.histogram(np.minimum(finite, top), bins=edges)
    n_inf = int(np.isinf(v).sum())
    c = Chart(560, 260, "Permutation null of the median TPR/FPR", margin=(34, 20, 44, 52))
    c.set_x(0, top)
    c.set_y(0, max(1, int(counts.max()) if counts.size else 1) * 1.1)
    c.axes(nice_ticks(0, top), nice_ticks(0, max(1, int(counts.max()) if counts.size else 1)),
           xlabel="median TPR/FPR with relapse dates moved at random", ylabel="permutations")
    for k, n in enumerate(counts):
        if n:
            c.rect(edges[k], edges[k + 1], 0, n, color=GREY, opacity=0.8, title=f"{fmt_num(edges[k])}–{fmt_num(edges[k + 1])}: {n}")
    if obs_f is not None:
        c.vline(obs_f, color=RED, dash="", width=2)
    label = f"observed {fmt_num(observed) if observed is not None and math.isfinite(observed) else '∞' if observed else 'n/a'} · p = {p:.3g}"
    if n_inf:
        label += f" · {n_inf} null values = ∞ (not drawn)"
    c.legend([("box", GREY, "null"), ("line", RED, label)])
    return c.render()


def burden_bars(rows: Sequence[BurdenRow]) -> str:
    """Anomaly and step-up events per participant-month by group: median and 95 % bootstrap interval."""
    items = [(r, kind) for r in rows for kind in ("anomaly", "stepup")]
    vals = [v for r, k in items for v in (getattr(r, f"{k}_rate").low, getattr(r, f"{k}_rate").high) if v is not None]
    hi = max([1.0] + vals) * 1.1
    ticks = nice_ticks(0, hi)
    c = Chart(520, 60 + 30 * len(items), "Alert burden: events per participant-month", margin=(30, 24, 38, 190))
    c.set_x(0, max(hi, ticks[-1]))
    c.set_y(len(items) - 0.5, -0.5)
    c.axes([(t, fmt_num(t)) for t in ticks], None, xlabel="events per participant-month (median, 95 % interval)", grid=False)
    c.text(c.left, 18, "Events per participant-month", size=13, weight="600")
    for i, (r, k) in enumerate(items):
        iv = getattr(r, f"{k}_rate")
        name = f"{r.group} ({r.participants}): {'anomalies' if k == 'anomaly' else 'step-ups'}"
        c.text(c.left - 8, c.y(i) + 4, name, size=12, anchor="end")
        if iv.value is None:
            c.text(c.x(0) + 4, c.y(i) + 4, "n/a", size=11, color="#6b7280")
            continue
        _whisker(c, i, iv.low, iv.high, iv.value, RED if k == "anomaly" else BLUE,
                 f"{name}: {fmt_num(iv.value)} (95 % CI {fmt_num(iv.low)}–{fmt_num(iv.high)})", c.x_hi)
    return c.render()
