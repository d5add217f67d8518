"""Inline SVG charts for the evaluation and audit reports.

Written by hand rather than with matplotlib: the charts are few and simple
(bars, lines, dots with whiskers), inline SVG keeps the HTML self-contained,
small, sharp at any zoom and inspectable (tests count ``<svg>`` elements), and
it adds no dependency. Every chart has a ``<title>`` and ``aria-label``.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # for annotations only: the evaluation layer hands its results to the charts
    from phenoflow.evaluation.audit import AuditTest
    from phenoflow.evaluation.compare import ModelRow
    from phenoflow.evaluation.evaluate import ParticipantRow
    from phenoflow.evaluation.explain import Explanation, Trajectory

__all__ = [
    "NR30_FILL", "FONT", "nice_ticks", "fmt_num", "Chart", "date_ticks", "rate_by_days_before", "model_intervals",
    "participant_map", "cohens_d_panel", "trajectory", "forest"
]

BLUE, RED, ORANGE, GREEN, GREY, INK = "#2563eb", "#dc2626", "#ea580c", "#16a34a", "#9ca3af", "#1f2937"
NR30_FILL = "#fde68a"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (steps 1, 2, 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    return [round(start + i * step, 12) for i in range(int((hi - start) / step + 1e-9) + 1)]


def fmt_num(v: float) -> str:
    """A short axis label for ``v`` (two decimals, or two significant digits when tiny or large)."""
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


class Chart:
    """One SVG canvas with a plotting area, linear (or log-x) scales and primitive shapes."""

    def __init__(
        self,
        width: int,
        height: int,
        title: str,
        *,
        margin: tuple[int, int, int, int] = (36, 20, 40, 60),
    ) -> None:
        self.w, self.h, self.title = width, height, title
        self.top, self.right, self.bottom, self.left = margin
        self.parts: list[str] = []
        self.set_x(0, 1)
        self.set_y(0, 1)

    # scales
    def set_x(self, lo: float, hi: float, log: bool = False) -> None:
        """Set the x range in data units (``log`` for a log10 axis)."""
        self.x_lo, self.x_hi, self.x_log = lo, hi if hi != lo else lo + 1, log

    def set_y(self, lo: float, hi: float) -> None:
        """Set the y range in data units."""
        self.y_lo, self.y_hi = lo, hi if hi != lo else lo + 1

    def x(self, v: float) -> float:
        """Pixel x of data value ``v``."""
        f = math.log10
        a, b, v = (f(self.x_lo), f(self.x_hi), f(v)) if self.x_log else (self.x_lo, self.x_hi, v)
        return self.left + (v - a) / (b - a) * (self.w - self.left - self.right)

    def y(self, v: float) -> float:
        """Pixel y of data value ``v``."""
        return self.h - self.bottom - (v - self.y_lo) / (self.y_hi - self.y_lo) * (self.h - self.top - self.bottom)

    # shapes
    def add(self, svg: str) -> None:
        """Append raw SVG markup."""
        self.parts.append(svg)

    def text(self, x: float, y: float, s: str, *, size: int = 12, anchor: str = "start", color: str = INK, weight: str = "normal", rotate: float = 0) -> None:
        """Text at pixel position (x, y)."""
        tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
            f'font-weight="{weight}"{tr}>{escape(s)}</text>'
        )

    def line(self, xs: Sequence[float], ys: Sequence[float], *, color: str = BLUE, width: float = 1.5, dash: str = "") -> None:
        """A polyline in data units; NaN values break the line."""
        segs: list[list[str]] = [[]]
        for a, b in zip(xs, ys, strict=True):
            if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                segs.append([])
                continue
            segs[-1].append(f"{self.x(a):.1f},{self.y(b):.1f}")
        d = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in segs:
            if len(seg) > 1:
                self.add(f'<polyline fill="none" stroke="{color}" stroke-width="{width}"{d} points="{" ".join(seg)}"/>')
            elif len(seg) == 1:
                px, py = seg[0].split(",")
                self.add(f'<circle cx="{px}" cy="{py}" r="1.2" fill="{color}"/>')

    def dot(self, x: float, y: float, *, r: float = 3.5, color: str = BLUE, title: str = "", stroke: str = "white") -> None:
        """A dot at data position (x, y), with an optional hover title."""
        t = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<circle cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="{r}" fill="{color}" stroke="{stroke}" stroke-width="0.8">{t}</circle>')

    def rect(self, x0: float, x1: float, y0: float, y1: float, *, color: str, opacity: float = 1.0, title: str = "") -> None:
        """Rectangle in data units."""
        px0, px1 = sorted((self.x(x0), self.x(x1)))
        py0, py1 = sorted((self.y(y0), self.y(y1)))
        t = f"<title>{escape(title)}</title>" if title else ""
        self.add(
            f'<rect x="{px0:.1f}" y="{py0:.1f}" width="{max(px1 - px0, 0.5):.1f}" height="{max(py1 - py0, 0):.1f}" '
            f'fill="{color}" fill-opacity="{opacity}">{t}</rect>'
        )

    def band(self, x0: float, x1: float, *, color: str = NR30_FILL, opacity: float = 0.6) -> None:
        """Vertical band over the full plotting height."""
        self.rect(x0, x1, self.y_lo, self.y_hi, color=color, opacity=opacity)

    def vline(self, x: float, *, color: str = RED, dash: str = "4 3", width: float = 1.2) -> None:
        """A dashed vertical line at data x."""
        px = self.x(x)
        self.add(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{self.top}" y2="{self.h - self.bottom}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>')

    def hline(self, y: float, *, color: str = GREY, dash: str = "5 4", width: float = 1.2) -> None:
        """A dashed horizontal line at data y."""
        py = self.y(y)
        self.add(f'<line x1="{self.left}" x2="{self.w - self.right}" y1="{py:.1f}" y2="{py:.1f}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>')

    def axes(
        self,
        xticks: Sequence[float] | Sequence[tuple[float, str]] | None,
        yticks: Sequence[float] | None,
        *,
        xlabel: str = "",
        ylabel: str = "",
        yfmt: Callable[[float], str] = fmt_num,
        grid: bool = True,
    ) -> None:
        """Draw the axes, ticks, grid and labels."""
        base = self.h - self.bottom
        if yticks is not None:
            for t in yticks:
                py = self.y(t)
                if grid:
                    self.add(f'<line x1="{self.left}" x2="{self.w - self.right}" y1="{py:.1f}" y2="{py:.1f}" stroke="#e5e7eb"/>')
                self.text(self.left - 6, py + 4, yfmt(t), size=11, anchor="end", color="#4b5563")
        self.add(f'<line x1="{self.left}" x2="{self.w - self.right}" y1="{base}" y2="{base}" stroke="#6b7280"/>')
        for tick in xticks or []:
            v, label = tick if isinstance(tick, tuple) else (tick, fmt_num(tick))
            px = self.x(v)
            self.add(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{base}" y2="{base + 4}" stroke="#6b7280"/>')
            self.text(px, base + 16, label, size=11, anchor="middle", color="#4b5563")
        if xlabel:
            self.text((self.left + self.w - self.right) / 2, self.h - 6, xlabel, size=12, anchor="middle", color="#374151")
        if ylabel:
            self.text(14, (self.top + base) / 2, ylabel, size=12, anchor="middle", color="#374151", rotate=-90)

    def legend(self, items: Sequence[tuple[str, str, str]], x: float | None = None, y: float = 14) -> None:
        """Items (kind ∈ {line, dash, dot, box}, color, label) in a row at the top."""
        px = self.left if x is None else x
        for kind, color, label in items:
            if kind in ("line", "dash"):
                d = ' stroke-dasharray="5 4"' if kind == "dash" else ""
                self.add(f'<line x1="{px}" x2="{px + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2"{d}/>')
            elif kind == "dot":
                self.add(f'<circle cx="{px + 9}" cy="{y - 4}" r="4" fill="{color}"/>')
            else:
                self.add(f'<rect x="{px}" y="{y - 10}" width="18" height="11" fill="{color}" fill-opacity="0.8"/>')
            self.text(px + 23, y, label, size=12)
            px += 23 + 7.2 * len(label) + 18

    def render(self) -> str:
        """The chart as an SVG string."""
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" width="100%" '
            f'style="max-width:{self.w}px;{FONT}" role="img" aria-label="{escape(self.title)}">'
            f"<title>{escape(self.title)}</title>"
        )
        return head + "".join(self.parts) + "</svg>"


def date_ticks(d0: np.datetime64, d1: np.datetime64, n: int = 8) -> list[tuple[float, str]]:
    """Month starts between two days (thinned to about ``n``), as (day number, "Mon YYYY")."""
    months = np.arange(d0.astype("datetime64[M]") + 1, d1.astype("datetime64[M]") + 1, dtype="datetime64[M]")
    step = max(1, math.ceil(len(months) / n))
    out = []
    for m in months[::step]:
        day = m.astype("datetime64[D]")
        label = m.astype(object).strftime("%b %Y")
        out.append((float(day.astype(np.int64)), label))
    return out


# --- the report's charts ------------------------------------------------------------------


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def rate_by_days_before(rate: np.ndarray, drh: tuple[int, int]) -> str:
    """Share of flagged days k = 1…H days before a relapse, NR30 shaded, DRH rate dashed (seed Fig. 2d)."""
    horizon = rate.shape[0] - 1
    c = Chart(960, 300, "Anomaly rate by days before relapse", margin=(34, 20, 44, 56))
    rates = [(k, rate[k, 1] / rate[k, 0], int(rate[k, 0]), int(rate[k, 1])) for k in range(1, horizon + 1) if rate[k, 0]]
    base = drh[1] / drh[0] if drh[0] else math.nan
    top = max([r for _, r, _, _ in rates] + [base if math.isfinite(base) else 0, 0.05]) * 1.15
    c.set_x(-horizon - 0.5, -0.5)
    c.set_y(0, min(1.0, top) if top <= 1 else top)
    c.band(-30.5, -0.5)
    c.axes([(-k, str(k)) for k in range(horizon, 0, -5)] + [(-1, "1")], nice_ticks(0, c.y_hi, 5), xlabel="days before relapse", ylabel="days flagged", yfmt=_pct)
    for k, r, n, f in rates:
        c.rect(-k - 0.38, -k + 0.38, 0, r, color=RED if k <= 30 else BLUE, opacity=0.85, title=f"{k} days before: {f} of {n} days flagged")
    if math.isfinite(base):
        c.hline(base, color=INK)
    c.legend([("box", RED, "NR30 day"), ("box", BLUE, "earlier day (DRH)"), ("dash", INK, f"all DRH days: {_pct(base) if math.isfinite(base) else 'n/a'}")])
    if not rates:
        c.text(c.w / 2, c.h / 2, "no evaluated day within the horizon before a relapse", anchor="middle", color="#6b7280")
    return c.render()


def model_intervals(rows: Sequence[ModelRow]) -> str:
    """Median (dot) and IQR (bar) of per-participant sensitivity and specificity for each model."""
    out = []
    for metric, color in (("sensitivity", RED), ("specificity", BLUE)):
        c = Chart(470, 48 + 30 * len(rows), f"{metric.capitalize()} by model (median, IQR)", margin=(30, 16, 36, 210))
        c.set_y(len(rows) - 0.5, -0.5)
        c.axes([0, 0.25, 0.5, 0.75, 1.0], None, xlabel=f"{metric} per participant", grid=False)
        for t in (0.25, 0.5, 0.75, 1.0):
            c.add(f'<line x1="{c.x(t):.1f}" x2="{c.x(t):.1f}" y1="{c.top}" y2="{c.h - c.bottom}" stroke="#eef0f3"/>')
        c.text(c.left, 18, metric.capitalize(), size=13, weight="600")
        for i, row in enumerate(rows):
            label = row.label if len(row.label) <= 32 else row.label[:31] + "…"
            c.text(c.left - 8, c.y(i) + 4, label, size=12, anchor="end")
            sp = getattr(row, metric)
            if row.status != "ok" or sp.median is None:
                c.text(c.x(0.02), c.y(i) + 4, "not available" if row.status != "ok" else "n/a", size=11, color="#6b7280")
                continue
            c.add(f'<line x1="{c.x(sp.q1):.1f}" x2="{c.x(sp.q3):.1f}" y1="{c.y(i):.1f}" y2="{c.y(i):.1f}" stroke="{color}" stroke-width="5" stroke-opacity="0.35" stroke-linecap="round"/>')
            c.dot(sp.median, i, r=5, color=color, title=f"median {sp.median:.2f} (IQR {sp.q1:.2f}–{sp.q3:.2f}, n={sp.n})")
        out.append(c.render())
    return '<div class="pair">' + "".join(out) + "</div>"


def participant_map(rows: Sequence[ParticipantRow]) -> str:
    """Each participant's TPR against FPR; the diagonal is chance. Participants without NR30 days in a strip below."""
    c = Chart(520, 420, "Participants: sensitivity (TPR) against false-positive rate", margin=(30, 20, 50, 56))
    c.set_x(0, 1)
    c.set_y(-0.14, 1.02)
    c.axes([0, 0.2, 0.4, 0.6, 0.8, 1.0], [0, 0.2, 0.4, 0.6, 0.8, 1.0], xlabel="false-positive rate (1 − specificity)", ylabel="sensitivity (TPR)")
    c.line([0, 1], [0, 1], color=GREY, dash="5 4", width=1)
    c.add(f'<line x1="{c.left}" x2="{c.w - c.right}" y1="{c.y(-0.045):.1f}" y2="{c.y(-0.045):.1f}" stroke="#e5e7eb"/>')
    c.text(c.x(1), c.y(-0.1) + 4, "no NR30 days (TPR n/a)", size=10, anchor="end", color="#6b7280")
    for r in rows:
        conf = r.conf
        if conf.fpr is None:
            continue
        if conf.sensitivity is None:
            c.dot(conf.fpr, -0.1, r=3, color=GREY, title=f"{r.participant}: FPR {conf.fpr:.2f}")
        else:
            c.dot(conf.fpr, conf.sensitivity, r=5, color=RED, title=f"{r.participant}: TPR {conf.sensitivity:.2f}, FPR {conf.fpr:.2f}")
    c.legend([("dot", RED, "participant with relapse"), ("dash", GREY, "chance (TPR = FPR)")])
    return c.render()


def cohens_d_panel(e: Explanation) -> str:
    """Horizontal bars of Cohen's d for one participant's top features (seed Fig. 3)."""
    top = e.top
    c = Chart(470, 60 + 26 * max(len(top), 1), f"Cohen's d for {e.participant}", margin=(44, 20, 30, 210))
    lim = max([abs(d) for _, d in top] + [1.0]) * 1.1
    c.set_x(-lim, lim)
    c.set_y(max(len(top), 1) - 0.5, -0.5)
    c.text(8, 16, f"{e.participant}", size=13, weight="600")
    c.text(8, 32, f"{e.relapses} relapses · {e.anomalous_nr30} anomalous NR30 days vs {e.drh_days} DRH days", size=11, color="#4b5563")
    ticks = nice_ticks(-lim, lim, 4)
    c.axes(ticks, None, grid=False)
    c.vline(0, color="#6b7280", dash="", width=1)
    if not top:
        c.text(c.x(0), c.y(0) + 4, "too few anomalous NR30 days", anchor="middle", size=11, color="#6b7280")
    for i, (name, d) in enumerate(top):
        label = name if len(name) <= 32 else name[:31] + "…"
        c.text(c.left - 8, c.y(i) + 4, label, size=11, anchor="end")
        c.rect(0, d, i - 0.32, i + 0.32, color=RED if d > 0 else BLUE, opacity=0.85, title=f"{name}: d = {d:.2f}")
    return c.render()


def _with_gaps(days: np.ndarray, values: np.ndarray) -> tuple[list[float], list[float]]:
    """Day numbers and values with NaN inserted where days are missing, so lines break there."""
    xs: list[float] = []
    ys: list[float] = []
    dn = days.astype(np.int64)
    for i, (d, v) in enumerate(zip(dn.tolist(), np.asarray(values, dtype=float).tolist(), strict=True)):
        if i and d - dn[i - 1] > 1:
            xs.append(math.nan)
            ys.append(math.nan)
        xs.append(float(d))
        ys.append(v)
    return xs, ys


def trajectory(t: Trajectory) -> str:
    """Score with threshold and flagged days, then selected features, NR30 shaded, relapses marked (seed Fig. 4a)."""
    days = t.day
    if days.size == 0:
        return ""
    d0, d1 = days[0], days[-1]
    lo, hi = float(d0.astype(np.int64)) - 1, float(d1.astype(np.int64)) + 1
    ticks = date_ticks(d0, d1)
    rel = [float(r.astype(np.int64)) for r in t.relapses]
    panels = [("anomaly score", np.asarray(t.score, dtype=float), True)] + [(n, v, False) for n, v in t.features.items()]
    out = [f'<h4>{escape(t.participant)}</h4>']
    flagged = np.asarray(t.flagged, dtype=bool)
    for name, values, is_score in panels:
        c = Chart(960, 190 if is_score else 130, f"{t.participant}: {name} over time", margin=(28 if is_score else 12, 20, 26, 64))
        finite = values[np.isfinite(values)]
        thr = np.asarray(t.threshold, dtype=float)
        extra = thr[np.isfinite(thr)] if is_score else np.array([])
        both = np.concatenate([finite, extra])
        ylo, yhi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        pad = (yhi - ylo) * 0.08 or 1.0
        c.set_x(lo, hi)
        c.set_y(ylo - pad, yhi + pad)
        for r in rel:
            if r - 30.5 < hi and r > lo:
                c.band(max(r - 30.5, lo), min(r - 0.5, hi))
        c.axes(ticks, nice_ticks(c.y_lo, c.y_hi, 4), ylabel="")
        c.text(c.left + 4, c.top + 12, name, size=12, weight="600")
        for r in rel:
            if lo <= r <= hi:
                c.vline(r)
        xs, ys = _with_gaps(days, values)
        c.line(xs, ys, color=BLUE if is_score else "#374151", width=1.4)
        if is_score:
            tx, ty = _with_gaps(days, thr)
            c.line(tx, ty, color=INK, dash="5 4", width=1.2)
        for d, v in zip(days[flagged].astype(np.int64).tolist(), values[flagged].tolist(), strict=True):
            if math.isfinite(v):
                c.dot(float(d), v, r=3.6, color=RED, title=f"flagged {np.datetime64(d, 'D')}")
        if is_score:
            c.legend([("line", BLUE, "daily score"), ("dash", INK, "threshold"), ("dot", RED, "flagged day"), ("box", NR30_FILL, "NR30"), ("dash", RED, "relapse")], x=c.left + 140, y=16)
        out.append(c.render())
    return '<div class="traj">' + "".join(out) + "</div>"


def forest(tests: Sequence[AuditTest], outcome: str) -> str:
    """Odds ratio (group vs rest) with exact 95 % CI on a log axis, coloured by warning level."""
    rows = [t for t in tests if t.outcome == outcome]
    c = Chart(960, 60 + 26 * max(len(rows), 1), f"Odds ratio of having ≥ 1 {outcome}, group vs rest", margin=(36, 170, 36, 240))
    c.set_x(0.01, 100, log=True)
    c.set_y(max(len(rows), 1) - 0.5, -0.5)
    c.text(8, 18, f"≥ 1 {outcome}: odds ratio, group vs rest (95% CI)", size=13, weight="600")
    c.axes([(v, fmt_num(v)) for v in (0.01, 0.1, 0.5, 1, 2, 10, 100)], None, xlabel="odds ratio (log scale)", grid=False)
    c.vline(1, color="#6b7280", dash="", width=1)
    clip = lambda v: min(max(v, 0.01), 100) if math.isfinite(v) or v > 0 else 100
    colors = {"alert": RED, "watch": ORANGE, "ok": GREY}
    for i, t in enumerate(rows):
        c.text(c.left - 8, c.y(i) + 4, f"{t.attribute} = {t.group}", size=12, anchor="end")
        lo, hi = clip(t.ci_low if t.ci_low > 0 else 0.01), clip(t.ci_high)
        col = colors.get(t.level, GREY)
        c.add(f'<line x1="{c.x(lo):.1f}" x2="{c.x(hi):.1f}" y1="{c.y(i):.1f}" y2="{c.y(i):.1f}" stroke="{col}" stroke-width="2"/>')
        if math.isfinite(t.odds_ratio):
            c.dot(clip(t.odds_ratio) if t.odds_ratio > 0 else 0.01, i, r=5, color=col, title=f"OR {t.odds_ratio:.2f}")
        elif t.odds_ratio > 0:
            c.dot(100, i, r=5, color=col, title="OR ∞ (no event outside the group's complement cell)")
        c.text(c.w - c.right + 8, c.y(i) + 4, f"{_pct(t.rate_group)} vs {_pct(t.rate_rest)} · BY p {t.p_by:.2g}", size=11, color="#374151")
    c.legend([("dot", RED, "alert: BY p < α"), ("dot", ORANGE, "watch: p < α"), ("dot", GREY, "ok")], x=c.left + 300, y=18)
    return c.render()
