"""Reports people can read: Markdown, a self-contained HTML page (inline SVG, no script,
no network) and CSV tables, for ``phenoflow evaluate`` and ``phenoflow audit``.

``report`` paths: a ``.html`` file (the Markdown and CSV files are written
beside it with the same stem) or a folder (``evaluation.html`` /
``audit.html`` inside it).
"""

from __future__ import annotations

import csv
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from phenoflow import report_plots as plots

if TYPE_CHECKING:
    from phenoflow.audit import AuditResult
    from phenoflow.evaluate import EvaluationResult
    from phenoflow.evaluate_metrics import Spread

# --- formatting -------------------------------------------------------------------------


def num(v: float | None, digits: int = 2) -> str:
    """n/a for undefined, ∞ for infinite, else fixed digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def pval(p: float) -> str:
    return "n/a" if p != p else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def spread(s: Spread) -> str:
    """``median [q1–q3]``."""
    if s.median is None:
        return "n/a"
    return f"{num(s.median)} [{num(s.q1)}–{num(s.q3)}]"


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(str(v))}</td>" for v in r) + "</tr>")
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2937;margin:0;background:#f8fafc;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:34px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h4{margin:16px 0 2px;font-size:14px}.sub{color:#4b5563;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:12px 16px;min-width:190px;flex:1}
.card .v{font-size:28px;font-weight:650}.card .l{color:#4b5563;font-size:13px}.card .d{color:#6b7280;font-size:12px}
.fig{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px;margin:10px 0}
.pair,.grid{display:flex;flex-wrap:wrap;gap:8px}.pair>svg{flex:1;min-width:300px}.grid>svg{flex:1 1 440px}
.tablewrap{overflow-x:auto}table{border-collapse:collapse;font-size:13px;background:#fff;width:100%}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 7px;text-align:right;white-space:nowrap}th{background:#f1f5f9;white-space:normal;vertical-align:bottom}
td:first-child,th:first-child{text-align:left}tr.alert td{background:#fee2e2}tr.watch td{background:#ffedd5}tr.off td{color:#9ca3af}
.note{color:#4b5563;font-size:13px}ul.notes li{margin:3px 0;font-size:13px;color:#374151}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600}
.b-alert{background:#fee2e2;color:#991b1b}.b-ok{background:#dcfce7;color:#166534}.b-watch{background:#ffedd5;color:#9a3412}
"""


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def _card(value: str, label: str, detail: str = "") -> str:
    return f'<div class="card"><div class="v">{escape(value)}</div><div class="l">{escape(label)}</div><div class="d">{escape(detail)}</div></div>'


def _paths(report: Path, stem: str) -> Path:
    html = report if report.suffix.lower() in (".html", ".htm") else report / f"{stem}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    return html


# --- evaluation --------------------------------------------------------------------------

DEFINITIONS = [
    "NR30 = the 30 days d−30 … d−1 before a relapse date d; every other evaluated day is a day of relative health (DRH), the relapse day included.",
    "A day is flagged when an anomaly event exists for it; calibrating days (no threshold yet) are not evaluated.",
    "Sensitivity (TPR) = flagged NR30 days / NR30 days; specificity = 1 − FPR = unflagged DRH days / DRH days; "
    "TPR/FPR = how many times more often near-relapse days are flagged (∞ without false positives). n/a = undefined, e.g. no NR30 days.",
]


def _protocol_line(r: EvaluationResult) -> str:
    if r.protocol == "adler":
        return (
            f"Adler et al. protocol: {r.iterations} Monte Carlo splits (seed {r.seed}); per-participant τ maximising TPR/FPR "
            "on validation days; counts are test days pooled over the splits"
        )
    return "Streaming: the published anomaly events on every evaluated day"


def _rate_bins(r: EvaluationResult) -> list[list[object]]:
    rows: list[list[object]] = []
    bins = [(a, a + 4) for a in range(1, 31, 5)] + [(31, r.rate_by_day.shape[0] - 1)]
    for a, b in bins:
        n, f = (int(x) for x in r.rate_by_day[a : b + 1].sum(axis=0))
        rows.append([f"{a}–{b}", n, f, num(f / n if n else None)])
    n, f = r.drh_rate
    rows.append(["all DRH days", n, f, num(f / n if n else None)])
    return rows


def _participant_rows(r: EvaluationResult) -> list[list[object]]:
    out = []
    for p in r.participants:
        c = p.conf
        out.append(
            [p.participant, p.relapses, p.days, c.tp + c.fn, c.tp, c.fp + c.tn, c.fp, num(c.sensitivity), num(c.specificity), num(c.tpr_fpr)]
            + ([num(p.threshold, 3), p.threshold_source] if r.protocol == "adler" else [])
        )
    return out


def _participant_header(r: EvaluationResult) -> list[str]:
    pooled = " (test)" if r.protocol == "adler" else ""
    h = ["participant", "relapses", "days", f"NR30{pooled}", "flagged NR30", f"DRH{pooled}", "flagged DRH", "sensitivity", "specificity", "TPR/FPR"]
    return h + (["τ", "τ from"] if r.protocol == "adler" else [])


_MODEL_HEADER = ["model", "sensitivity", "specificity", "TPR/FPR", "pooled TPR/FPR", "splits", "time (s)", "status"]
_MODEL_NOTE = "Per-participant median [IQR]; pooled = all participants' test days together."


def _model_rows(r: EvaluationResult) -> list[list[object]]:
    return [
        [m.label, spread(m.sensitivity), spread(m.specificity), spread(m.tpr_fpr), num(m.pooled.tpr_fpr), m.iterations, f"{m.seconds:.1f}", m.status]
        for m in r.comparison
    ]


def _headline(r: EvaluationResult) -> list[str]:
    n_rel = sum(1 for p in r.participants if p.relapses)
    return [
        f"Model: {r.model} · {_protocol_line(r)}.",
        f"Participants: {len(r.participants)} ({n_rel} with relapses) · evaluated days: {r.days:,} · calibrating days excluded: {r.excluded_calibrating:,}.",
    ]


def _top_feature_summary(r: EvaluationResult) -> str:
    """Features most often among the participants' largest |d| (cohort view of seed Fig. 3)."""
    counts: dict[str, int] = {}
    for e in r.explanations:
        for f, _ in e.top:
            counts[f] = counts.get(f, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    n = len(r.explanations)
    return "Most frequent among the top features: " + (", ".join(f"{f} ({c} of {n})" for f, c in ranked) or "none") + "."


def evaluation_markdown(r: EvaluationResult) -> str:
    """The evaluation as Markdown (what the CLI prints)."""
    pooled = r.pooled
    parts = ["# phenoflow evaluation", "", *_headline(r), ""]
    parts += [
        md_table(
            ["per participant", "median", "IQR", "participants"],
            [[name, num(s.median), f"{num(s.q1)}–{num(s.q3)}", s.n] for name, s in (("sensitivity (TPR)", r.sensitivity), ("specificity", r.specificity), ("TPR/FPR", r.tpr_fpr))],
        ),
        "",
        f"All participants pooled: TPR {num(pooled.sensitivity)}, FPR {num(pooled.fpr)}, TPR/FPR {num(pooled.tpr_fpr)}.",
    ]
    if r.comparison:
        its = max((m.iterations for m in r.comparison), default=0)
        parts += ["", f"## Model comparison (same {its} Monte Carlo splits)", "", _MODEL_NOTE, "", md_table(_MODEL_HEADER, _model_rows(r))]
    parts += ["", "## Anomaly rate by days before relapse", "", md_table(["days before relapse", "days", "flagged", "rate"], _rate_bins(r))]
    if r.explanations:
        parts += [
            "",
            "## Features that differ on anomalous near-relapse days (Cohen's d vs DRH)",
            "",
            md_table(
                ["participant", "relapses", "anomalous NR30 days", "DRH days", "largest |d|"],
                [[e.participant, e.relapses, e.anomalous_nr30, e.drh_days, ", ".join(f"{f} ({d:+.2f})" for f, d in e.top) or "too few anomalous NR30 days"] for e in r.explanations],
            ),
        ]
        parts += ["", _top_feature_summary(r)]
    parts += ["", "## Per participant", "", md_table(_participant_header(r), _participant_rows(r))]
    parts += ["", "## Definitions and notes", ""] + [f"- {n}" for n in DEFINITIONS + r.notes]
    if r.files:
        parts += ["", "Written: " + ", ".join(str(f) for f in r.files)]
    return "\n".join(parts) + "\n"


def evaluation_html(r: EvaluationResult) -> str:
    pooled = r.pooled
    sens, spec, ratio = r.sensitivity, r.specificity, r.tpr_fpr
    body = ["<h1>Relapse early-warning evaluation</h1>"] + [f'<p class="sub">{escape(line)}</p>' for line in _headline(r)]
    body.append(
        '<div class="cards">'
        + _card(num(sens.median), "median sensitivity (TPR)", f"IQR {num(sens.q1)}–{num(sens.q3)} · {sens.n} participants with relapse")
        + _card(num(spec.median), "median specificity", f"IQR {num(spec.q1)}–{num(spec.q3)} · {spec.n} participants")
        + _card(num(ratio.median), "median TPR/FPR", f"pooled: {num(pooled.tpr_fpr)} · >1 = more flags near relapse")
        + "</div>"
    )
    if r.comparison:
        its = max((m.iterations for m in r.comparison), default=0)
        body += [
            f"<h2>Model comparison</h2><p class='note'>Same cohort, same {its} Monte Carlo splits. {_MODEL_NOTE}</p>",
            f'<div class="fig">{plots.model_intervals(r.comparison)}</div>',
            html_table(_MODEL_HEADER, _model_rows(r), classes=["" if m.status == "ok" else "off" for m in r.comparison]),
        ]
    body += [
        "<h2>Anomaly rate by days before relapse</h2>",
        "<p class='note'>Share of evaluated days flagged, by distance to the next relapse; the shaded part is the NR30 window, the dashed line the rate on all days of relative health.</p>",
        f'<div class="fig">{plots.rate_by_days_before(r.rate_by_day, r.drh_rate)}</div>',
        "<h2>Participants</h2>",
        f'<div class="fig">{plots.participant_map(r.participants)}</div>',
    ]
    if r.trajectories:
        body += [
            "<h2>Trajectories</h2>",
            "<p class='note'>Daily anomaly score with its threshold, flagged days (red dots), the 30 days before each relapse (shaded) and the relapse (red dashed line); below, the features that differ most on anomalous near-relapse days.</p>",
        ] + [f'<div class="fig">{plots.trajectory(t)}</div>' for t in r.trajectories]
    if r.explanations:
        body += [
            "<h2>What differs on anomalous near-relapse days</h2>",
            "<p class='note'>Cohen's d of each feature between the participant's flagged NR30 days and its days of relative health; red = higher before relapse, blue = lower. Participants with two or more relapses. "
            + escape(_top_feature_summary(r))
            + "</p>",
            '<div class="fig grid">' + "".join(plots.cohens_d_panel(e) for e in r.explanations) + "</div>",
        ]
    body += ["<h2>Per participant</h2>", html_table(_participant_header(r), _participant_rows(r))]
    body += ["<h2>Definitions and notes</h2><ul class='notes'>" + "".join(f"<li>{escape(n)}</li>" for n in DEFINITIONS + r.notes) + "</ul>"]
    return page("phenoflow evaluation", "".join(body))


def write_evaluation_report(r: EvaluationResult, report: Path) -> list[Path]:
    """HTML, Markdown, per-participant CSV and (with a comparison) model CSV."""
    html = _paths(report, "evaluation")
    files = [html, html.with_suffix(".md"), html.with_name(html.stem + "_participants.csv")]
    html.write_text(evaluation_html(r), encoding="utf-8")
    _write_csv(files[2], _participant_header(r), _participant_rows(r))
    if r.comparison:
        files.append(html.with_name(html.stem + "_models.csv"))
        _write_csv(
            files[-1],
            ["model", "label", "status", "splits", "seconds", "sens_median", "sens_q1", "sens_q3", "spec_median", "spec_q1", "spec_q3", "ratio_median", "ratio_q1", "ratio_q3", "pooled_ratio"],
            [
                [m.model, m.label, m.status, m.iterations, f"{m.seconds:.3f}"]
                + [num(getattr(getattr(m, k), a), 4) for k in ("sensitivity", "specificity", "tpr_fpr") for a in ("median", "q1", "q3")]
                + [num(m.pooled.tpr_fpr, 4)]
                for m in r.comparison
            ],
        )
    r.files += files  # so the Markdown lists them
    files[1].write_text(evaluation_markdown(r), encoding="utf-8")
    del r.files[-len(files) :]
    return files


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


# --- audit -------------------------------------------------------------------------------

_AUDIT_HEADER = ["attribute", "group", "n", "outcome", "rate in group", "rate in rest", "odds ratio (95% CI)", "p", "p (BY)", "level"]


def _audit_rows(a: AuditResult) -> list[list[object]]:
    return [
        [
            t.attribute, t.group, t.n_group, t.outcome, f"{t.events_group}/{t.n_group} ({100 * t.rate_group:.0f}%)",
            f"{t.events_rest}/{t.n_rest} ({100 * t.rate_rest:.0f}%)", f"{num(t.odds_ratio)} ({num(t.ci_low)}–{num(t.ci_high)})",
            pval(t.p), pval(t.p_by), t.level,
        ]
        for t in a.tests
    ]


def _audit_summary(a: AuditResult) -> list[str]:
    counts = ", ".join(f"with ≥ 1 {k}: {v} ({100 * v / a.participants:.0f}%)" for k, v in a.outcome_counts.items())
    return [
        f"Participants audited: {a.participants} · {counts}.",
        f"{len(a.tests)} tests (each attribute group holding ≥ {100 * a.min_group_share:.0f}% of participants vs the rest, per outcome); "
        f"Fisher's exact test, Benjamini–Yekutieli correction over all tests, α = {a.alpha}.",
    ]


def audit_markdown(a: AuditResult) -> str:
    alerts = a.alerts
    parts = ["# phenoflow fairness audit", "", *_audit_summary(a), ""]
    parts.append(
        "**Alerts:** " + "; ".join(f"{t.attribute} = {t.group}: {t.outcome} rate {100 * t.rate_group:.0f}% vs {100 * t.rate_rest:.0f}% (OR {num(t.odds_ratio)}, p_BY {pval(t.p_by)})" for t in alerts)
        if alerts
        else "**No alert:** no group differs from the rest after correction."
    )
    parts += ["", md_table(_AUDIT_HEADER, _audit_rows(a))]
    if a.small_groups:
        parts += ["", "Groups below the share threshold (not tested): " + ", ".join(f"{g[0]} = {g[1]} (n={g[2]})" for g in a.small_groups)]
    if a.notes:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in a.notes]
    return "\n".join(parts) + "\n"


def audit_html(a: AuditResult) -> str:
    alerts = a.alerts
    badge = f'<span class="badge b-alert">{len(alerts)} alert(s)</span>' if alerts else '<span class="badge b-ok">no alert</span>'
    body = ["<h1>Fairness audit " + badge + "</h1>"] + [f'<p class="sub">{escape(s)}</p>' for s in _audit_summary(a)]
    body.append('<div class="cards">' + "".join(_card(f"{v}/{a.participants}", f"participants with ≥ 1 {k}") for k, v in a.outcome_counts.items()) + _card(str(len(a.tests)), "tests", f"{len(alerts)} alert(s), {sum(t.level == 'watch' for t in a.tests)} to watch") + "</div>")
    for outcome in a.outcome_counts:
        body.append(f'<div class="fig">{plots.forest(a.tests, outcome)}</div>')
    body += ["<h2>All tests</h2>", html_table(_AUDIT_HEADER, _audit_rows(a), classes=[t.level if t.level != "ok" else "" for t in a.tests])]
    if a.small_groups:
        body.append("<p class='note'>Not tested (below the share threshold): " + escape(", ".join(f"{g[0]} = {g[1]} (n={g[2]})" for g in a.small_groups)) + "</p>")
    notes = [
        "Odds ratio = (a·d)/(b·c) of the 2×2 table group/rest × with/without event; the interval is the exact conditional 95% CI.",
        "alert: corrected p < α · watch: only the uncorrected p < α · ok: neither. Rates ignore how long each participant was monitored.",
    ] + a.notes
    body.append("<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return page("phenoflow fairness audit", "".join(body))


def write_audit_report(a: AuditResult, report: Path) -> list[Path]:
    html = _paths(report, "audit")
    files = [html, html.with_suffix(".md"), html.with_name(html.stem + "_tests.csv")]
    html.write_text(audit_html(a), encoding="utf-8")
    files[1].write_text(audit_markdown(a), encoding="utf-8")
    _write_csv(
        files[2],
        ["attribute", "group", "outcome", "n_group", "events_group", "n_rest", "events_rest", "odds_ratio", "ci_low", "ci_high", "p", "p_by", "level"],
        [[t.attribute, t.group, t.outcome, t.n_group, t.events_group, t.n_rest, t.events_rest, t.odds_ratio, t.ci_low, t.ci_high, t.p, t.p_by, t.level] for t in a.tests],
    )
    return files


__all__ = ["evaluation_markdown", "evaluation_html", "write_evaluation_report", "audit_markdown", "audit_html", "write_audit_report"]
