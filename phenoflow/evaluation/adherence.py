"""Adherence and missing data, as Adler et al. (JMIR mHealth 2020) reported them.

From the ``scores.daily`` dump (every record, also unscored ones) and, when
present, ``features.hourly``:

- A participant's **span** is its first to last day with any scores.daily
  record; **eligible** days are span days that are not calibrating. A day is
  **scored** when it has a non-null, non-calibrating score; every other
  eligible day (no record at all, or a null score: too little data) is
  **unscored** — disengagement, counted, never dropped from a denominator.
- Per participant: share of eligible days scored; share of NR30 days unscored
  and of DRH days unscored. Across relapsing participants Adler's one-sided
  Mann–Whitney U test asks whether NR30 days are more often unscored than DRH
  days (``scipy.stats.mannwhitneyu(nr30, drh, alternative="greater")``).
- Type-2 hours (no event of any sensor, ``filled`` = 1, or no hourly record)
  on flagged (anomalous) days versus other scored days: the odds ratio of a
  type-2 hour on an anomalous day, with its 95 % CI
  (``scipy.stats.contingency.odds_ratio``, conditional MLE).
- Disengagement as its own signal: the share of unscored days in NR30 versus
  DRH, pooled over relapsing participants (``unscored_nr30`` / ``unscored_drh``).

Also collects the ``threshold_source`` of every scored record (for
:mod:`phenoflow.evaluation.provenance`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu
from scipy.stats.contingency import odds_ratio

from phenoflow.core.contract import HourlyFeatures, ScoreDaily
from phenoflow.core.timebase import local_day_hour
from phenoflow.evaluation.dumps import NR30_DAYS, CohortDays, DumpStats, days_before_relapse, dump_path, iter_dump
from phenoflow.evaluation.provenance import UNRECORDED

__all__ = ["AdherenceResult", "ParticipantAdherence", "ScoreRecords", "adherence", "read_score_records"]


@dataclass
class ScoreRecords:
    """Per participant: every day with a scores.daily record, which were calibrating, and τ sources."""

    days: dict[str, set[np.datetime64]] = field(default_factory=dict)
    calibrating: dict[str, set[np.datetime64]] = field(default_factory=dict)
    sources: Counter[str] = field(default_factory=Counter)
    source_participants: dict[str, set[str]] = field(default_factory=dict)


def read_score_records(out: Path) -> ScoreRecords:
    """One pass over the scores.daily dump (lines failing the contract are skipped; load_cohort notes them)."""
    rec = ScoreRecords()
    path = dump_path(out, "scores.daily")
    if path is None:
        return rec
    last: dict[tuple[str, str], ScoreDaily] = {}
    for ev in iter_dump(path, "scores.daily", DumpStats()):
        if isinstance(ev, ScoreDaily):  # always: the scores.daily decoder yields nothing else
            last[(ev.participant, ev.day)] = ev
    for (pid, day), ev in last.items():
        d = np.datetime64(day, "D")
        rec.days.setdefault(pid, set()).add(d)
        if ev.calibrating:
            rec.calibrating.setdefault(pid, set()).add(d)
        elif ev.score is not None:
            src = ev.threshold_source or UNRECORDED
            rec.sources[src] += 1
            rec.source_participants.setdefault(src, set()).add(pid)
    return rec


@dataclass
class ParticipantAdherence:
    """One participant's adherence (see module doc); shares are None without days to share."""

    participant: str
    relapsing: bool
    span_days: int
    eligible: int
    scored: int
    unscored_nr30: int
    nr30_days: int
    unscored_drh: int
    drh_days: int

    @property
    def share_scored(self) -> float | None:
        """Scored / eligible days."""
        return self.scored / self.eligible if self.eligible else None

    @property
    def share_unscored_nr30(self) -> float | None:
        """Unscored / eligible NR30 days."""
        return self.unscored_nr30 / self.nr30_days if self.nr30_days else None

    @property
    def share_unscored_drh(self) -> float | None:
        """Unscored / eligible DRH days."""
        return self.unscored_drh / self.drh_days if self.drh_days else None


@dataclass
class AdherenceResult:
    """Adherence per participant, the Mann–Whitney test and the type-2 odds ratio."""

    participants: list[ParticipantAdherence]
    mwu_p: float | None  # one-sided: NR30 unscored share > DRH unscored share
    type2: tuple[int, int, int, int] | None  # (type-2, other) hours on anomalous days, then other days
    odds_ratio: float | None
    odds_ci: tuple[float, float] | None

    @property
    def pooled_unscored(self) -> tuple[float | None, float | None]:
        """Unscored share of NR30 and of DRH days, pooled over participants (disengagement signal)."""
        nu = sum(p.unscored_nr30 for p in self.participants)
        nn = sum(p.nr30_days for p in self.participants)
        du = sum(p.unscored_drh for p in self.participants)
        dn = sum(p.drh_days for p in self.participants)
        return (nu / nn if nn else None, du / dn if dn else None)


def _type2_hours(out: Path, cohort: CohortDays) -> dict[tuple[str, np.datetime64], int] | None:
    """Type-2 hours per (participant, local day) from the features.hourly dump; None if absent."""
    path = dump_path(out, "features.hourly")
    if path is None:
        return None
    seen: dict[tuple[str, np.datetime64], set[int]] = {}
    type2: Counter[tuple[str, np.datetime64]] = Counter()
    for ev in iter_dump(path, "features.hourly", DumpStats(), set(cohort.participants)):
        if not isinstance(ev, HourlyFeatures):  # never: the features.hourly decoder yields nothing else
            continue
        day, hour = local_day_hour(ev.hour_start, ev.utc_offset_min)
        key = (ev.participant, np.datetime64(day, "D"))
        hours = seen.setdefault(key, set())
        if hour in hours:
            continue
        hours.add(hour)
        if ev.filled >= 1.0:
            type2[key] += 1
    return {k: type2[k] + max(0, 24 - len(h)) for k, h in seen.items()}


def adherence(out: Path, cohort: CohortDays, records: ScoreRecords) -> AdherenceResult:
    """Adherence and missing-data statistics of the evaluated cohort (module doc)."""
    rows: list[ParticipantAdherence] = []
    for p, pid in enumerate(cohort.participants):
        sl = cohort.slice(p)
        days = set(records.days.get(pid, set())) | set(cohort.day[sl])
        if not days:
            continue
        first, last = min(days), max(days)
        span = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
        calib = records.calibrating.get(pid, set())
        eligible = span[~np.isin(span, np.array(sorted(calib), dtype="datetime64[D]"))]
        scored = np.isin(eligible, cohort.day[sl])
        nr = days_before_relapse(eligible, cohort.relapses[pid]) <= NR30_DAYS
        rows.append(ParticipantAdherence(
            pid, bool(cohort.relapses[pid].size), int(span.size), int(eligible.size), int(scored.sum()),
            int((nr & ~scored).sum()), int(nr.sum()), int((~nr & ~scored).sum()), int((~nr).sum()),
        ))
    nr_share = [r.share_unscored_nr30 for r in rows if r.share_unscored_nr30 is not None]
    drh_share = [r.share_unscored_drh for r in rows if r.relapsing and r.share_unscored_drh is not None]
    mwu = None
    if len(nr_share) >= 2 and len(drh_share) >= 2 and len(set(nr_share) | set(drh_share)) > 1:
        mwu = float(mannwhitneyu(nr_share, drh_share, alternative="greater").pvalue)
    t2 = _type2_hours(out, cohort)
    table = ratio = ci = None
    if t2 is not None:
        a = b = c = d = 0
        for i, (pid, day) in enumerate(zip(np.repeat(cohort.participants, np.diff(cohort.starts)), cohort.day, strict=True)):
            if (pid, day) not in t2:
                continue
            n2 = min(t2[(pid, day)], 24)
            if cohort.flagged[i]:
                a, b = a + n2, b + 24 - n2
            else:
                c, d = c + n2, d + 24 - n2
        table = (a, b, c, d)
        if min(a + b, c + d) > 0 and min(a + c, b + d) > 0:
            res = odds_ratio([[a, b], [c, d]])
            ratio = float(res.statistic)
            lo, hi = res.confidence_interval(0.95)
            ci = (float(lo), float(hi))
    return AdherenceResult(rows, mwu, table, ratio, ci)
