"""Alert burden: anomaly and step-up events per participant-month, healthy versus relapsing.

What a clinic has to staff for at the shipped settings. Events come from the
``events.anomaly`` and ``events.stepup`` dumps, deduplicated by ``event_id``
(the at-least-once topics repeat events after a restart). A participant's
observation time is its span in scores.daily (first to last day with any
record, calibration included: the phone was enrolled) in months of 30.44
days. Groups: *relapsing* = at least one relapse date in labels.csv,
*healthy* = none. Per group: pooled rate (events / months) and the median of
the participants' rates with a 95 % participant-bootstrap interval.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phenoflow.core.contract import AnomalyEvent, StepUpEvent
from phenoflow.evaluation.adherence import ScoreRecords
from phenoflow.evaluation.dumps import CohortDays, DumpStats, dump_path, iter_dump
from phenoflow.evaluation.uncertainty import RESAMPLES, Interval

__all__ = ["DAYS_PER_MONTH", "BurdenRow", "alert_burden"]

#: Mean Gregorian month in days.
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class BurdenRow:
    """One group's events per participant-month."""

    group: str  # "healthy" / "relapsing" / "all"
    participants: int
    months: float
    anomalies: int
    stepups: int
    anomaly_rate: Interval  # median over participants, 95 % bootstrap interval
    stepup_rate: Interval

    @property
    def pooled_anomaly_rate(self) -> float | None:
        """Anomaly events / participant-months of the group."""
        return self.anomalies / self.months if self.months else None

    @property
    def pooled_stepup_rate(self) -> float | None:
        """Step-up events / participant-months of the group."""
        return self.stepups / self.months if self.months else None


def _events(out: Path, topic: str, wanted: set[str]) -> Counter[str]:
    path = dump_path(out, topic)
    n: Counter[str] = Counter()
    if path is None:
        return n
    seen: set[str] = set()
    for ev in iter_dump(path, topic, DumpStats(), wanted):
        # ev is always one of the two (topic is events.anomaly or events.stepup); the check tells mypy
        if not isinstance(ev, (AnomalyEvent, StepUpEvent)) or ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        n[ev.participant] += 1
    return n


def _median_interval(rates: np.ndarray, resamples: int, seed: int) -> Interval:
    if rates.size == 0:
        return Interval(None, None, None)
    rng = np.random.default_rng([seed, 0xB0D])
    boot = np.median(rates[rng.integers(0, rates.size, size=(resamples, rates.size))], axis=1)
    return Interval(float(np.median(rates)), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))


def alert_burden(
    out: Path, cohort: CohortDays, records: ScoreRecords, resamples: int = RESAMPLES, seed: int = 0
) -> list[BurdenRow]:
    """Rows for healthy, relapsing and all participants of the evaluated cohort (module doc)."""
    wanted = set(cohort.participants)
    anomalies = _events(out, "events.anomaly", wanted)
    stepups = _events(out, "events.stepup", wanted)
    months: dict[str, float] = {}
    for p, pid in enumerate(cohort.participants):
        days = set(records.days.get(pid, set())) | set(cohort.day[cohort.slice(p)])
        span = int((max(days) - min(days)).astype(np.int64)) + 1
        months[pid] = span / DAYS_PER_MONTH
    rows = []
    for group, members in (
        ("healthy", [p for p in cohort.participants if cohort.relapses[p].size == 0]),
        ("relapsing", [p for p in cohort.participants if cohort.relapses[p].size > 0]),
        ("all", list(cohort.participants)),
    ):
        m = np.array([months[p] for p in members])
        a = np.array([anomalies[p] for p in members], dtype=float)
        s = np.array([stepups[p] for p in members], dtype=float)
        rows.append(BurdenRow(
            group, len(members), float(m.sum()), int(a.sum()), int(s.sum()),
            _median_interval(a / m if m.size else a, resamples, seed),
            _median_interval(s / m if m.size else s, resamples, seed),
        ))
    return rows
