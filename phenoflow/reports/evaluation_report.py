"""The ``phenoflow evaluate`` report: Markdown, a self-contained HTML page (inline SVG) and CSV tables.

``report`` paths: a ``.html`` file (the Markdown and CSV files are written
beside it with the same stem) or a folder (``evaluation.html`` inside it).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from phenoflow.evaluation.evaluate import EvaluationResult
from phenoflow.reports import plots
from phenoflow.reports.layout import (
    card,
    html_table,
    md_table,
    num,
    page,
    report_path,
    spread,
    write_csv,
)

__all__ = ["evaluation_html", "evaluation_markdown", "write_evaluation_report"]


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
    """The evaluation report as a self-contained HTML page."""
    pooled = r.pooled
    sens, spec, ratio = r.sensitivity, r.specificity, r.tpr_fpr
    body = ["<h1>Relapse early-warning evaluation</h1>"] + [f'<p class="sub">{escape(line)}</p>' for line in _headline(r)]
    body.append(
        '<div class="cards">'
        + card(num(sens.median), "median sensitivity (TPR)", f"IQR {num(sens.q1)}–{num(sens.q3)} · {sens.n} participants with relapse")
        + card(num(spec.median), "median specificity", f"IQR {num(spec.q1)}–{num(spec.q3)} · {spec.n} participants")
        + card(num(ratio.median), "median TPR/FPR", f"pooled: {num(pooled.tpr_fpr)} · >1 = more flags near relapse")
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
    html = report_path(report, "evaluation")
    files = [html, html.with_suffix(".md"), html.with_name(html.stem + "_participants.csv")]
    html.write_text(evaluation_html(r), encoding="utf-8")
    write_csv(files[2], _participant_header(r), _participant_rows(r))
    if r.comparison:
        files.append(html.with_name(html.stem + "_models.csv"))
        write_csv(
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
