"""Fairness audit of anomaly and step-up events (Buda et al., Front. Digit. Health 2022).

For every attribute column of ``participants.csv`` (age band, gender,
employment, …) and every group holding at least ``min_group_share`` of the
audited participants, the share of participants with ≥ 1 anomaly event and
with ≥ 1 step-up event is compared with the rest of the cohort by Fisher's
exact test (two-sided, :func:`scipy.stats.fisher_exact`) on the 2×2 table
[[group with, group without], [rest with, rest without]]. All p-values of one
audit form one family, corrected with Benjamini–Yekutieli
(:func:`scipy.stats.false_discovery_control`, ``method="by"``), which holds
under any dependence between the tests (a binary attribute's two groups give
the same test twice; keeping both is conservative).

Odds ratio = the sample odds ratio (a·d)/(b·c) that ``fisher_exact`` reports
(∞ or 0 with an empty cell); the 95 % interval is the exact conditional one
(:func:`scipy.stats.contingency.odds_ratio`). Warning levels: ``alert`` when
the corrected p < ``alpha``; ``watch`` when only the uncorrected p < ``alpha``;
``ok`` otherwise.

Audited participants: those listed in participants.csv, less those with no
``scores.daily`` record when that dump exists (never monitored, so they could
not have an event). A blank attribute value is its own group, ``(blank)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import false_discovery_control, fisher_exact
from scipy.stats.contingency import odds_ratio

from phenoflow.connectors.cohort import read_csv
from phenoflow.core.errors import UserError
from phenoflow.evaluation.dumps import (
    DumpStats,
    dump_path,
    iter_dump,
    read_dump,
    resolve_outputs,
)

__all__ = ["OUTCOMES", "BLANK", "AuditTest", "AuditResult", "group_test", "correct", "audit_dir"]

OUTCOMES: dict[str, str] = {"events.anomaly": "anomaly event", "events.stepup": "step-up"}
BLANK = "(blank)"


@dataclass
class AuditTest:
    """One group vs the rest for one outcome."""

    attribute: str
    group: str
    outcome: str
    n_group: int
    events_group: int
    n_rest: int
    events_rest: int
    odds_ratio: float
    ci_low: float
    ci_high: float
    p: float
    p_by: float = math.nan
    level: str = "ok"

    @property
    def rate_group(self) -> float:
        """Share of the group with the outcome."""
        return self.events_group / self.n_group

    @property
    def rate_rest(self) -> float:
        """Share of everyone outside the group with the outcome."""
        return self.events_rest / self.n_rest


@dataclass
class AuditResult:
    """Everything ``phenoflow audit`` reports; :mod:`phenoflow.reports.audit_report` renders it."""

    participants: int
    attributes: list[str]
    outcome_counts: dict[str, int]  # outcome → participants with ≥ 1 event
    tests: list[AuditTest]
    small_groups: list[tuple[str, str, int]]  # (attribute, group, size) below the share
    min_group_share: float
    alpha: float
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def alerts(self) -> list[AuditTest]:
        """The tests at level "alert"."""
        return [t for t in self.tests if t.level == "alert"]



def group_test(attribute: str, group: str, outcome: str, members: np.ndarray, has_event: np.ndarray) -> AuditTest:
    """Fisher's exact test of ``has_event`` between ``members`` and the rest (boolean arrays)."""
    a = int(np.sum(members & has_event))
    b = int(np.sum(members & ~has_event))
    c = int(np.sum(~members & has_event))
    d = int(np.sum(~members & ~has_event))
    res = fisher_exact([[a, b], [c, d]], alternative="two-sided")
    ci = odds_ratio([[a, b], [c, d]], kind="conditional").confidence_interval(0.95)
    return AuditTest(attribute, group, outcome, a + b, a, c + d, c, float(res.statistic), float(ci.low), float(ci.high), float(res.pvalue))


def correct(tests: list[AuditTest], alpha: float) -> None:
    """Benjamini–Yekutieli over all tests (in place) and the warning level of each."""
    if not tests:
        return
    p_by = false_discovery_control([t.p for t in tests], method="by")
    for t, q in zip(tests, p_by, strict=True):
        t.p_by = float(q)
        t.level = "alert" if q < alpha else "watch" if t.p < alpha else "ok"


def _participants_with_events(out: Path, topic: str, notes: list[str]) -> set[str] | None:
    path = dump_path(out, topic)
    if path is None:
        return None
    return {ev.participant for ev in read_dump(path, topic, notes)}


def audit_dir(
    dir: Path,
    *,
    outputs: Path | None = None,
    min_group_share: float = 0.1,
    alpha: float = 0.05,
) -> AuditResult:
    """Audit ``DIR/participants.csv`` against the event dumps in ``outputs`` (see module doc).

    """
    if not 0 < min_group_share < 1:
        raise UserError(f"min group share {min_group_share} must be between 0 and 1 — e.g. 0.1 for 10 %")
    out = resolve_outputs(dir, outputs)
    columns, rows = read_csv(
        Path(dir) / "participants.csv",
        ("participant",),
        "write participants.csv with a participant column and one column per attribute (age_band, gender, …)",
    )
    # timezone (IANA name, for local time) is a setting, not a demographic attribute.
    attributes = [c for c in columns if c not in ("participant", "timezone")]
    if not attributes:
        raise UserError(f"{Path(dir) / 'participants.csv'} has no attribute column — add e.g. age_band, gender, employment")
    notes: list[str] = []
    seen: dict[str, dict[str, str]] = {}
    for n, row in enumerate(rows, start=2):
        if not row["participant"]:
            raise UserError(f"participants.csv line {n}: empty participant — fill it in or delete the line")
        if row["participant"] in seen:
            raise UserError(f"participants.csv line {n}: participant {row['participant']!r} listed twice — keep one line")
        seen[row["participant"]] = row
    scores = dump_path(out, "scores.daily")
    if scores is not None:
        stats = DumpStats()
        monitored = {ev.participant for ev in iter_dump(scores, "scores.daily", stats)}
        dropped = [p for p in seen if p not in monitored]
        if dropped:
            notes.append(f"{len(dropped)} participant(s) have no scores.daily record (never monitored) and are not audited")
            for p in dropped:
                del seen[p]
    events = {topic: _participants_with_events(out, topic, notes) for topic in OUTCOMES}
    if all(v is None for v in events.values()):
        raise UserError(
            f"no events.anomaly or events.stepup dump in {out} — write them with `phenoflow subscribe "
            f"events.anomaly --from-beginning --out {out}/events.anomaly.jsonl` (and events.stepup) or pass --outputs"
        )
    for topic, who in events.items():
        if who is None:
            notes.append(f"no {topic} dump: the {OUTCOMES[topic]} outcome is not audited")
        elif who - set(seen):
            notes.append(f"{len(who - set(seen))} participant(s) with {topic} are not in participants.csv (left out)")
    pids = sorted(seen)
    if not pids:
        raise UserError("no participant to audit — participants.csv and the dumps share no participant id")
    tests: list[AuditTest] = []
    small: list[tuple[str, str, int]] = []
    for attr in attributes:
        values = np.array([seen[p].get(attr, "") or BLANK for p in pids])
        groups = sorted(set(values.tolist()))
        if len(groups) < 2:
            notes.append(f"attribute {attr!r} has a single group; nothing to compare")
            continue
        for g in groups:
            members = values == g
            if members.sum() < min_group_share * len(pids):
                small.append((attr, g, int(members.sum())))
                continue
            for topic, who in events.items():
                if who is not None:
                    has = np.array([p in who for p in pids])
                    tests.append(group_test(attr, g, OUTCOMES[topic], members, has))
    correct(tests, alpha)
    result = AuditResult(
        participants=len(pids),
        attributes=attributes,
        outcome_counts={OUTCOMES[t]: len(w & set(pids)) for t, w in events.items() if w is not None},
        tests=tests,
        small_groups=small,
        min_group_share=min_group_share,
        alpha=alpha,
        notes=notes,
    )
    return result
