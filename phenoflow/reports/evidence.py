"""Report sections on how much the evaluation can be trusted: intervals, null, provenance, adherence, burden.

Used by :mod:`phenoflow.reports.evaluation_report` for both the Markdown and
the HTML page. Definitions: docs/evaluation.md.
"""

from __future__ import annotations

from html import escape

from phenoflow.evaluation.evaluate import EvaluationResult
from phenoflow.evaluation.uncertainty import Interval
from phenoflow.reports import evidence_plots
from phenoflow.reports.layout import html_table, md_table, num, pval

__all__ = ["ci", "evidence_html", "evidence_markdown", "in_sample_line", "summary_lines", "top_html"]

_FIGURES = [
    ("median_sensitivity", "median sensitivity (per participant)"),
    ("median_specificity", "median specificity (per participant)"),
    ("median_tpr_fpr", "median TPR/FPR (per participant)"),
    ("sensitivity", "pooled sensitivity"),
    ("specificity", "pooled specificity"),
    ("tpr_fpr", "pooled TPR/FPR"),
]


def ci(r: EvaluationResult, key: str) -> str:
    """``95 % CI lo–hi · `` for a card, or "" without an interval."""
    iv = r.intervals.get(key)
    if iv is None or iv.low is None:
        return ""
    return f"95 % CI {num(iv.low)}–{num(iv.high)} · "


def in_sample_line(r: EvaluationResult) -> str | None:
    """The warning when thresholds were fitted on this cohort's labels, else None."""
    if not r.in_sample:
        return None
    n = len(r.provenance.participants) if r.provenance else 0
    return (f"IN-SAMPLE: the thresholds of {n} participant(s) were fitted on this cohort's own labels "
            "(--allow-in-sample); every figure below overstates how the model would do on new participants.")


def summary_lines(r: EvaluationResult) -> list[str]:
    """The plain-words lines at the top: chance, and the median TPR/FPR with its interval."""
    out = []
    if r.null is not None:
        out.append(r.null.sentence()[0].upper() + r.null.sentence()[1:] + ".")
    iv = r.intervals.get("median_tpr_fpr")
    if iv is not None and iv.value is not None:
        out.append(f"Median TPR/FPR {num(iv.value)} (95 % interval {num(iv.low)}–{num(iv.high)}, "
                   f"{r.resamples:,} participant-bootstrap resamples).")
    return out


def _interval_rows(r: EvaluationResult) -> list[list[object]]:
    return [[label, num(iv.value), num(iv.low), num(iv.high)]
            for key, label in _FIGURES if (iv := r.intervals.get(key)) is not None]


def _null_rows(r: EvaluationResult) -> list[list[object]]:
    n = r.null
    if n is None:
        return []
    import numpy as np

    v = n.null[~np.isnan(n.null)]
    q = (lambda x: num(float(np.quantile(v, x, method="lower")))) if v.size else (lambda x: "n/a")
    return [[num(n.observed), v.size, q(0.5), q(0.95), num(n.share_at_or_above, 3), pval(n.p)]]


_NULL_HEADER = ["observed median TPR/FPR", "permutations", "null median", "null 95th pct", "share ≥ observed", "p"]
_ADH_HEADER = ["participant", "relapsing", "span days", "eligible days", "scored", "share scored",
               "unscored NR30", "NR30 days", "unscored DRH", "DRH days"]
_BURDEN_HEADER = ["group", "participants", "participant-months", "anomaly events", "anomalies / p-month (pooled)",
                  "median [95 % CI]", "step-ups", "step-ups / p-month (pooled)", "median [95 % CI]"]


def _adh_rows(r: EvaluationResult) -> list[list[object]]:
    if r.adherence is None:
        return []
    return [[a.participant, "yes" if a.relapsing else "no", a.span_days, a.eligible, a.scored, num(a.share_scored),
             a.unscored_nr30, a.nr30_days, a.unscored_drh, a.drh_days] for a in r.adherence.participants]


def _adh_summary(r: EvaluationResult) -> list[str]:
    a = r.adherence
    if a is None:
        return []
    nr, drh = a.pooled_unscored
    lines = [f"Unscored (disengaged) days: {num(nr)} of NR30 days vs {num(drh)} of DRH days, pooled; "
             f"one-sided Mann–Whitney (NR30 > DRH, per participant): p = {pval(a.mwu_p) if a.mwu_p is not None else 'n/a'}."]
    if a.type2 is not None:
        t = a.type2
        ci = f" (95 % CI {num(a.odds_ci[0])}–{num(a.odds_ci[1])})" if a.odds_ci else ""
        lines.append(f"Type-2 hours (no sensor data): {t[0]:,} of {t[0] + t[1]:,} hours on anomalous days vs "
                     f"{t[2]:,} of {t[2] + t[3]:,} on other scored days; odds ratio {num(a.odds_ratio)}{ci}.")
    else:
        lines.append("No features.hourly dump: type-2 hours not counted.")
    return lines


def _ci(iv: Interval) -> str:
    if iv.value is None:
        return "n/a"
    return f"{num(iv.value)} [{num(iv.low)}–{num(iv.high)}]"


def _burden_rows(r: EvaluationResult) -> list[list[object]]:
    return [[b.group, b.participants, f"{b.months:.1f}", b.anomalies, num(b.pooled_anomaly_rate), _ci(b.anomaly_rate),
             b.stepups, num(b.pooled_stepup_rate), _ci(b.stepup_rate)] for b in r.burden]


def _provenance_line(r: EvaluationResult) -> str:
    p = r.provenance
    if p is None or not p.sources:
        return "Threshold source: not recorded in scores.daily (old dump)."
    parts = [f"{k} ({v:,} scored days)" for k, v in sorted(p.sources.items())]
    return "Threshold source in scores.daily: " + ", ".join(parts) + "."


def evidence_markdown(r: EvaluationResult) -> list[str]:
    """Markdown sections: intervals, null, alert burden, adherence, provenance."""
    parts = ["", f"## 95 % intervals (participant bootstrap, {r.resamples:,} resamples)", "",
             md_table(["figure", "estimate", "2.5 %", "97.5 %"], _interval_rows(r))]
    if r.null is not None:
        parts += ["", "## Null: relapse dates moved at random (same spacing)", "", md_table(_NULL_HEADER, _null_rows(r))]
    if r.burden:
        parts += ["", "## Alert burden (events per participant-month)", "", md_table(_BURDEN_HEADER, _burden_rows(r))]
    if r.adherence is not None:
        parts += ["", "## Adherence and missing data", "", *_adh_summary(r), "", md_table(_ADH_HEADER, _adh_rows(r))]
    parts += ["", _provenance_line(r)]
    return parts


def evidence_html(r: EvaluationResult) -> list[str]:
    """HTML sections with error bars, the null histogram and the burden chart."""
    body = [f"<h2>How certain: 95 % intervals</h2><p class='note'>Participants resampled with replacement "
            f"{r.resamples:,} times (seeded); percentile intervals.</p>",
            f'<div class="fig">{evidence_plots.interval_bars(r.intervals, r.resamples)}</div>',
            html_table(["figure", "estimate", "2.5 %", "97.5 %"], _interval_rows(r))]
    if r.null is not None:
        how = ("the whole protocol (blocked splits, τ search) re-run on the moved dates; the observed value is "
               "recomputed with the same, smaller number of splits per run, so it can differ from the headline"
               if r.protocol == "adler" else "the published flags unchanged")
        body += ["<h2>Compared with chance</h2><p class='note'>Each participant's relapse dates moved together "
                 f"by a random circular shift (same number and spacing); {how}. "
                 "p = (1 + permutations ≥ observed) / (1 + permutations).</p>",
                 f'<div class="fig">{evidence_plots.null_histogram(r.null.null, r.null.observed, r.null.p)}</div>',
                 html_table(_NULL_HEADER, _null_rows(r))]
    if r.burden:
        body += ["<h2>Alert burden</h2><p class='note'>Events per participant-month at the shipped settings "
                 "(events deduplicated by id; months = each participant's span in scores.daily / 30.44 days). "
                 "This is what a clinic has to staff for.</p>",
                 f'<div class="fig">{evidence_plots.burden_bars(r.burden)}</div>',
                 html_table(_BURDEN_HEADER, _burden_rows(r))]
    if r.adherence is not None:
        body += ["<h2>Adherence and missing data</h2>"] + [f"<p class='note'>{escape(x)}</p>" for x in _adh_summary(r)]
        body.append(html_table(_ADH_HEADER, _adh_rows(r)))
    body.append(f"<p class='note'>{escape(_provenance_line(r))}</p>")
    return body


def top_html(r: EvaluationResult) -> str:
    """The in-sample warning (red) and the plain-words lines, for the top of the page."""
    out = ""
    warn = in_sample_line(r)
    if warn:
        out += ('<p class="insample" style="color:#b91c1c;background:#fee2e2;border:1px solid #fca5a5;'
                f'padding:8px 12px;border-radius:6px;font-weight:600">{escape(warn)}</p>')
    out += "".join(f'<p class="verdict"><strong>{escape(x)}</strong></p>' for x in summary_lines(r))
    return out
