"""Explanations (seed Figure 3) and trajectories (seed Figure 4a) for the evaluation report.

Adler et al. 2020 interpret anomalies by the features whose values on the
anomalous near-relapse days differ most from days of relative health, measured
by Cohen's d; and show, per participant, selected features over time with the
anomaly score and the flagged days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phenoflow.evaluation.detection import cohens_d
from phenoflow.evaluation.dumps import CohortDays, FeatureTable

__all__ = ["Explanation", "Trajectory", "daily_matrix", "explain", "trajectories"]


@dataclass
class Explanation:
    """Features that differ most between a participant's anomalous NR30 days and its DRH (seed Fig. 3)."""

    participant: str
    relapses: int
    anomalous_nr30: int
    drh_days: int
    top: list[tuple[str, float]]  # (feature, Cohen's d), largest |d| first


@dataclass
class Trajectory:
    """One participant's daily score, threshold, flags and selected features (seed Fig. 4a)."""

    participant: str
    day: np.ndarray
    score: np.ndarray
    threshold: np.ndarray
    flagged: np.ndarray
    relapses: np.ndarray
    features: dict[str, np.ndarray]


def daily_matrix(table: FeatureTable, n_days: int) -> np.ndarray:
    """Cohort days × features: the rhythm row, or the mean of the day's hourly rows (NaN if none)."""
    out = np.full((n_days, len(table.names)), np.nan)
    if table.X.size == 0:
        return out
    if table.kind == "rhythm":
        out[table.row_day] = table.X
        return out
    x = np.nan_to_num(table.X, nan=0.0).astype(float)
    cnt = np.zeros((n_days, x.shape[1]))
    tot = np.zeros((n_days, x.shape[1]))
    np.add.at(tot, table.row_day, x)
    np.add.at(cnt, table.row_day, ~np.isnan(table.X))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1), np.nan)


def explain(
    cohort: CohortDays, flagged: np.ndarray, daily: np.ndarray, names: list[str], *, top: int = 5, min_relapses: int = 2
) -> list[Explanation]:
    """Cohen's d (anomalous NR30 days vs all DRH days) for participants with ≥ ``min_relapses`` relapses."""
    out: list[Explanation] = []
    nr30 = cohort.nr30
    for p, pid in enumerate(cohort.participants):
        if cohort.relapses[pid].size < min_relapses:
            continue
        sl = cohort.slice(p)
        a = daily[sl][flagged[sl] & nr30[sl]]
        b = daily[sl][~nr30[sl]]
        d = cohens_d(a, b) if len(a) >= 2 and len(b) >= 2 else np.full(len(names), np.nan)
        order = [int(i) for i in np.argsort(-np.abs(np.nan_to_num(d, nan=0.0))) if not np.isnan(d[i])][:top]
        out.append(Explanation(pid, int(cohort.relapses[pid].size), len(a), len(b), [(names[i], float(d[i])) for i in order]))
    return out


def trajectories(
    cohort: CohortDays,
    flagged: np.ndarray,
    threshold: np.ndarray,
    daily: np.ndarray | None,
    names: list[str],
    explanations: list[Explanation],
    *,
    count: int = 3,
    features: int = 2,
) -> list[Trajectory]:
    """Up to ``count`` participants with the most relapses (then most flagged NR30 days).

    Their features are the top Cohen's d features when explained, otherwise the
    features with the largest |d| between NR30 and DRH days.
    """
    nr30 = cohort.nr30
    cands = [p for p, pid in enumerate(cohort.participants) if cohort.relapses[pid].size]
    cands.sort(key=lambda p: (-cohort.relapses[cohort.participants[p]].size, -int((flagged & nr30)[cohort.slice(p)].sum()), cohort.participants[p]))
    by_pid = {e.participant: e for e in explanations}
    out = []
    for p in cands[:count]:
        pid, sl = cohort.participants[p], cohort.slice(p)
        chosen: list[str] = []
        if daily is not None and names:
            chosen = [f for f, _ in by_pid[pid].top[:features]] if pid in by_pid else []
            if not chosen:
                d = cohens_d(daily[sl][nr30[sl]], daily[sl][~nr30[sl]])
                chosen = [names[int(i)] for i in np.argsort(-np.abs(np.nan_to_num(d, nan=0.0)))[:features]]
        col = {n: i for i, n in enumerate(names)}
        out.append(
            Trajectory(
                pid,
                cohort.day[sl],
                cohort.score[sl],
                threshold[sl],
                flagged[sl],
                cohort.relapses[pid],
                {f: daily[sl][:, col[f]] for f in chosen} if daily is not None else {},
            )
        )
    return out
