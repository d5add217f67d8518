"""The Adler et al. (JMIR mHealth 2020) evaluation protocol: Monte Carlo splits, τ search, streaming rates.

Definitions (README "Evaluation", docs/evaluation.md):

- NR30 ("near relapse"): the 30 days d−30 … d−1 before a relapse date d. The
  relapse day itself is not NR30; like every other non-calibrating day with a
  score it is a day of relative health (DRH).
- A day is *flagged* when an ``events.anomaly`` exists for it (equivalently
  ``scores.daily`` score > threshold and not calibrating). Calibrating days are
  excluded: the scorer has no threshold for them yet.
- Per participant: sensitivity = TPR = flagged NR30 / NR30 days; specificity =
  1 − FPR = unflagged DRH / DRH days; TPR/FPR is the seed's headline ("108 %
  more anomalies near relapse" = 2.08). A participant without NR30 days has no
  TPR: it is reported as n/a, never 0.

``--protocol adler`` reproduces the seed's Monte Carlo procedure; see
:func:`make_splits` and :func:`run_protocol`.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from phenoflow.evaluation.detection import (
    Confusion,
    best_threshold,
    confusion,
    quantile,
)
from phenoflow.evaluation.dumps import CohortDays

__all__ = [
    "HEALTHY",
    "RATE_HORIZON_DAYS",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "ProtocolResult",
    "SplitFractions",
    "make_splits",
    "run_protocol",
    "streaming_rates",
]

#: Days before relapse shown in the anomaly-rate plot (seed Figure 2d shows the NR30 window).
RATE_HORIZON_DAYS = 60

# --- Monte Carlo protocol --------------------------------------------------------------

TRAIN, HEALTHY, VALIDATION, TEST = 0, 1, 2, 3


@dataclass(frozen=True)
class SplitFractions:
    """Shares of each participant's days per role in one Monte Carlo split.

    DRH days: training (models learn behaviour), healthy validation (the error
    distribution; here also the reference that maps τ to a quantile), threshold
    validation, rest = test. NR30 days: ``nr30_validation`` to threshold
    validation, rest = test. Training never sees NR30 days (Adler et al.).
    """

    train: float = 0.4
    healthy: float = 0.2
    validation: float = 0.2
    nr30_validation: float = 0.5


def _counts(n: int, shares: Sequence[float]) -> list[int]:
    """Split n items by shares (last share = remainder), each role ≥ 1 when n allows."""
    out = [int(round(n * s)) for s in shares]
    if n >= len(shares) + 1:
        out = [max(1, c) for c in out]
    while sum(out) > n - 1 and max(out) > 0:
        out[int(np.argmax(out))] -= 1
    return out + [n - sum(out)]


def make_splits(
    cohort: CohortDays, iterations: int, seed: int, fractions: SplitFractions = SplitFractions()
) -> np.ndarray:
    """Role of every cohort day in every iteration: int8 array (iterations × days).

    Roles: 0 training, 1 healthy validation, 2 threshold validation, 3 test. Each
    participant's random stream is seeded by (seed, CRC32 of its id), so a
    participant's splits do not change when others join the cohort. A
    participant with one NR30 day puts it in test.
    """
    roles = np.empty((iterations, cohort.day.size), dtype=np.int8)
    rows = np.arange(iterations)[:, None]
    nr30 = cohort.nr30
    for p, pid in enumerate(cohort.participants):
        sl = cohort.slice(p)
        idx = np.arange(sl.start, sl.stop)
        rng = np.random.default_rng([seed, zlib.crc32(pid.encode())])
        drh, nr = idx[~nr30[sl]], idx[nr30[sl]]
        for days, shares, codes in (
            (drh, (fractions.train, fractions.healthy, fractions.validation), (TRAIN, HEALTHY, VALIDATION, TEST)),
            (nr, (fractions.nr30_validation,), (VALIDATION, TEST)),
        ):
            if days.size == 0:
                continue
            counts = _counts(days.size, shares) if days.size > 1 else [0] * len(shares) + [1]
            by_rank = np.repeat(np.array(codes, dtype=np.int8), counts)
            perms = np.argsort(rng.random((iterations, days.size)), axis=1)
            roles[rows, days[perms]] = by_rank[None, :]
    return roles


@dataclass
class ProtocolResult:
    """Test-set results of the Monte Carlo protocol for one model."""

    confusion: list[Confusion]  # per participant, pooled over iterations
    taus: np.ndarray  # iterations × participants (nan: none fitted)
    fitted: np.ndarray  # participants: share of iterations τ came from the participant's own NR30
    rate_counts: np.ndarray  # (RATE_HORIZON_DAYS+1) × 2: [days, flagged] by days before relapse
    drh_rate: tuple[int, int]  # DRH test days, flagged
    iterations: int

    def thresholds(self) -> dict[int, float]:
        """Final τ per participant index: median over iterations (finite only)."""
        out: dict[int, float] = {}
        for p in range(self.taus.shape[1]):
            t = self.taus[:, p]
            t = t[~np.isnan(t)]
            if t.size:
                m = quantile(t, 0.5)
                if math.isfinite(m):
                    out[p] = m
        return out


def run_protocol(
    cohort: CohortDays,
    roles: np.ndarray,
    scores_for: Callable[[int], np.ndarray],
) -> ProtocolResult:
    """Adler et al.'s per-participant thresholding over Monte Carlo splits.

    For each iteration ``scores_for(i)`` gives one score per cohort day (nan =
    the model could not score it: never flagged). Per participant, τ maximises
    TPR/FPR on its validation days (:func:`best_threshold`) and is applied to
    its test days. Participants whose validation holds no NR30 day (no relapse)
    get the τ at the cohort's median quantile q* within their own healthy
    validation scores, where q* is the share of healthy-validation scores ≤ τ
    among the participants with a fitted τ (same iteration). Test counts are
    pooled over iterations (equal test sizes, so this is the mean rate).
    """
    n_it, n_p = roles.shape[0], len(cohort.participants)
    taus = np.full((n_it, n_p), np.nan)
    own = np.zeros(n_p)
    conf = [Confusion() for _ in range(n_p)]
    rate = np.zeros((RATE_HORIZON_DAYS + 1, 2), dtype=np.int64)
    drh = [0, 0]
    slices = [cohort.slice(p) for p in range(n_p)]
    nr30_all = cohort.nr30
    for it in range(n_it):
        s_all = np.nan_to_num(np.asarray(scores_for(it), dtype=float), nan=-np.inf)
        quants: list[float] = []
        pending: list[int] = []
        for p, sl in enumerate(slices):
            r, nr, s = roles[it, sl], nr30_all[sl], s_all[sl]
            choice = best_threshold(s[(r == VALIDATION) & nr], s[(r == VALIDATION) & ~nr])
            if choice is None:
                pending.append(p)
                continue
            taus[it, p] = choice.tau
            own[p] += 1
            healthy = s[r == HEALTHY]
            if healthy.size:
                quants.append(float(np.mean(healthy <= choice.tau)))
        q_star = quantile(quants, 0.5) if quants else math.nan
        for p in pending:
            healthy = s_all[slices[p]][roles[it, slices[p]] == HEALTHY]
            healthy = healthy[np.isfinite(healthy)]
            if healthy.size and not math.isnan(q_star):
                taus[it, p] = float(np.quantile(healthy, q_star))
        for p, sl in enumerate(slices):
            if math.isnan(taus[it, p]):
                continue
            test = roles[it, sl] == TEST
            flagged = s_all[sl][test] > taus[it, p]
            nr = nr30_all[sl][test]
            conf[p] = conf[p] + confusion(flagged, nr)
            before = cohort.days_before[sl][test]
            near = before <= RATE_HORIZON_DAYS
            np.add.at(rate[:, 0], before[near], 1)
            np.add.at(rate[:, 1], before[near], flagged[near].astype(np.int64))
            drh[0] += int(np.count_nonzero(~nr))
            drh[1] += int(np.count_nonzero(flagged & ~nr))
    return ProtocolResult(conf, taus, own / max(n_it, 1), rate, (drh[0], drh[1]), n_it)


def streaming_rates(cohort: CohortDays) -> tuple[list[Confusion], np.ndarray, tuple[int, int]]:
    """Per-participant confusion of the emitted flags over all evaluated days, and rate counts."""
    conf = [confusion(cohort.flagged[sl], cohort.nr30[sl]) for sl in map(cohort.slice, range(len(cohort.participants)))]
    rate = np.zeros((RATE_HORIZON_DAYS + 1, 2), dtype=np.int64)
    near = cohort.days_before <= RATE_HORIZON_DAYS
    np.add.at(rate[:, 0], cohort.days_before[near], 1)
    np.add.at(rate[:, 1], cohort.days_before[near], cohort.flagged[near].astype(np.int64))
    drh = ~cohort.nr30
    return conf, rate, (int(drh.sum()), int((cohort.flagged & drh).sum()))
