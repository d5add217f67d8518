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

``--protocol adler`` runs the seed's Monte Carlo procedure on blocked splits
(whole weeks and whole NR30 episodes to one side, a 14-day gap between fitting
and test days, so no rhythm window spans both); see :func:`make_splits` and
:func:`run_protocol`.
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
    "BLOCK_DAYS",
    "GAP",
    "GUARD_DAYS",
    "HEALTHY",
    "RATE_HORIZON_DAYS",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "ProtocolResult",
    "day_blocks",
    "fitted_days",
    "SplitFractions",
    "make_splits",
    "run_protocol",
    "streaming_rates",
]

#: Days before relapse shown in the anomaly-rate plot (seed Figure 2d shows the NR30 window).
RATE_HORIZON_DAYS = 60

# --- Monte Carlo protocol --------------------------------------------------------------

TRAIN, HEALTHY, VALIDATION, TEST, GAP = 0, 1, 2, 3, 4


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


#: Rhythm windows span 14 days: day d summarises d−13 … d, so two days closer than
#: this share window days. The blocked splitter keeps fitting and test days apart by more.
GUARD_DAYS = 14
#: DRH days are assigned in calendar weeks (counted from the participant's first evaluated day).
BLOCK_DAYS = 7


def day_blocks(days: np.ndarray, days_before: np.ndarray, nr30: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block id of each of one participant's days, and whether each block is an NR30 episode.

    An NR30 episode (all NR30 days before the same relapse date) is one block;
    DRH days form blocks of whole weeks (:data:`BLOCK_DAYS`) counted from the
    first day. Block ids are 0 … n_blocks−1 in order of first appearance.
    """
    if days.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
    offset = (days - days[0]).astype(np.int64)
    relapse_day = offset + days_before  # the relapse each NR30 day precedes
    key = np.where(nr30, relapse_day * 2 + 1, (offset // BLOCK_DAYS) * 2)
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    block = rank[inv.ravel()]
    is_nr = np.zeros(first.size, dtype=bool)
    is_nr[block] = nr30
    return block, is_nr


def _guard(offset: np.ndarray, roles: np.ndarray, guard: int) -> None:
    """In place: fitting days within ``guard`` days of a test day become :data:`GAP`."""
    test = np.sort(offset[roles == TEST])
    if test.size == 0:
        return
    fit = np.flatnonzero(roles != TEST)
    o = offset[fit]
    j = np.searchsorted(test, o)
    last = test.size - 1
    left = np.abs(o - test[np.maximum(j - 1, 0)])
    right = np.abs(test[np.minimum(j, last)] - o)
    roles[fit[np.minimum(left, right) <= guard]] = GAP


def make_splits(
    cohort: CohortDays,
    iterations: int,
    seed: int,
    fractions: SplitFractions = SplitFractions(),
    guard: int = GUARD_DAYS,
) -> np.ndarray:
    """Role of every cohort day in every iteration: int8 array (iterations × days), blocked.

    Roles: 0 training, 1 healthy validation, 2 threshold validation, 3 test,
    4 gap (unused). Days are assigned in blocks (:func:`day_blocks`): whole DRH
    weeks by the DRH shares (the test share as one run of consecutive DRH
    weeks at a random position, the others shuffled), whole NR30 episodes by
    ``nr30_validation`` (a
    participant with one episode puts it in validation with that probability,
    else in test). Then every non-test day within ``guard`` days of a test day
    becomes a gap, so no rhythm window holds both a day τ (or a model) was
    fitted on and a day it is tested on. Each participant's random stream is
    seeded by (seed, CRC32 of its id), so its splits do not change when
    others join the cohort.
    """
    roles = np.empty((iterations, cohort.day.size), dtype=np.int8)
    nr30 = cohort.nr30
    drh_codes = np.array((TRAIN, HEALTHY, VALIDATION, TEST), dtype=np.int8)
    drh_shares = (fractions.train, fractions.healthy, fractions.validation)
    for p, pid in enumerate(cohort.participants):
        sl = cohort.slice(p)
        offset = (cohort.day[sl] - cohort.day[sl][:1]).astype(np.int64) if sl.stop > sl.start else np.empty(0, np.int64)
        block, is_nr = day_blocks(cohort.day[sl], cohort.days_before[sl], nr30[sl])
        rng = np.random.default_rng([seed, zlib.crc32(pid.encode())])
        drh_b, nr_b = np.flatnonzero(~is_nr), np.flatnonzero(is_nr)
        drh_counts = _counts(drh_b.size, drh_shares) if drh_b.size else [0, 0, 0, 0]
        fit_roles = np.repeat(drh_codes[:3], drh_counts[:3])
        n_test = drh_counts[3]
        if nr_b.size > 1:
            nr_roles = np.repeat(np.array((VALIDATION, TEST), np.int8), _counts(nr_b.size, (fractions.nr30_validation,)))
        block_role = np.empty(is_nr.size, dtype=np.int8)
        for it in range(iterations):
            if drh_b.size:
                # test weeks are one run of consecutive DRH weeks: scattered test weeks would
                # turn most fitting weeks into guard gaps
                start = int(rng.integers(0, drh_b.size - n_test + 1))
                test_run = np.zeros(drh_b.size, dtype=bool)
                test_run[start : start + n_test] = True
                block_role[drh_b[test_run]] = TEST
                rest = drh_b[~test_run]
                block_role[rest[rng.permutation(rest.size)]] = fit_roles
            if nr_b.size == 1:
                block_role[nr_b] = VALIDATION if rng.random() < fractions.nr30_validation else TEST
            elif nr_b.size:
                block_role[nr_b[rng.permutation(nr_b.size)]] = nr_roles
            r = block_role[block]
            _guard(offset, r, guard)
            roles[it, sl] = r
    return roles


def fitted_days(cohort: CohortDays, roles: np.ndarray) -> list[np.ndarray]:
    """Per participant: the days that were a fitting day (not test, not gap) in any iteration."""
    # roles is 2-D, so any(axis=0) is an array; numpy's stubs also allow a scalar (1-D input)
    used = np.asarray(np.isin(roles, (TRAIN, HEALTHY, VALIDATION)).any(axis=0))
    return [cohort.day[sl][used[sl]] for sl in map(cohort.slice, range(len(cohort.participants)))]


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
    validation scores (healthy and threshold-validation DRH days), where q* is
    the share of healthy-validation scores ≤ τ among the participants with a
    fitted τ (same iteration). Test counts are
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
            # blocked splits leave few healthy-validation days near a test episode: any
            # fitting-side DRH day that training did not see may place the quantile
            r, nr = roles[it, slices[p]], nr30_all[slices[p]]
            healthy = s_all[slices[p]][(r == HEALTHY) | ((r == VALIDATION) & ~nr)]
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
