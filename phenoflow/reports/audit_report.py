"""The ``phenoflow audit`` report: Markdown and a self-contained HTML page."""

from __future__ import annotations

from html import escape
from pathlib import Path

from phenoflow.evaluation.audit import AuditResult
from phenoflow.reports import plots
from phenoflow.reports.layout import (
    card,
    html_table,
    md_table,
    num,
    page,
    pval,
    report_path,
    write_csv,
)

__all__ = ["audit_html", "audit_markdown", "write_audit_report"]

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
    """The audit report as Markdown."""
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
    """The audit report as a self-contained HTML page."""
    alerts = a.alerts
    badge = f'<span class="badge b-alert">{len(alerts)} alert(s)</span>' if alerts else '<span class="badge b-ok">no alert</span>'
    body = ["<h1>Fairness audit " + badge + "</h1>"] + [f'<p class="sub">{escape(s)}</p>' for s in _audit_summary(a)]
    body.append('<div class="cards">' + "".join(card(f"{v}/{a.participants}", f"participants with ≥ 1 {k}") for k, v in a.outcome_counts.items()) + card(str(len(a.tests)), "tests", f"{len(alerts)} alert(s), {sum(t.level == 'watch' for t in a.tests)} to watch") + "</div>")
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
    """Write the HTML, Markdown and per-test CSV audit reports; return their paths."""
    html = report_path(report, "audit")
    files = [html, html.with_suffix(".md"), html.with_name(html.stem + "_tests.csv")]
    html.write_text(audit_html(a), encoding="utf-8")
    files[1].write_text(audit_markdown(a), encoding="utf-8")
    write_csv(
        files[2],
        ["attribute", "group", "outcome", "n_group", "events_group", "n_rest", "events_rest", "odds_ratio", "ci_low", "ci_high", "p", "p_by", "level"],
        [[t.attribute, t.group, t.outcome, t.n_group, t.events_group, t.n_rest, t.events_rest, t.odds_ratio, t.ci_low, t.ci_high, t.p, t.p_by, t.level] for t in a.tests],
    )
    return files

