"""Evaluation of anomaly flags against relapse labels (Adler et al., JMIR mHealth 2020).

Definitions (DESIGN.md, "Evaluation"):

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
:func:`make_splits` and :func:`run_protocol`. Reading the cohort directory is
:mod:`phenoflow.evaluate_io`; the command entry point is :func:`evaluate_dir`.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from phenoflow.evaluate_io import CohortDays
from phenoflow.errors import UserError

NR30_DAYS = 30
#: Days before relapse shown in the anomaly-rate plot (seed Figure 2d shows the NR30 window).
RATE_HORIZON_DAYS = 60

# --- metrics ---------------------------------------------------------------------------


def tpr_fpr_ratio(tpr: float | None, fpr: float | None) -> float | None:
    """TPR/FPR; ``inf`` when FPR = 0 < TPR; None when undefined (either missing, or 0/0)."""
    if tpr is None or fpr is None:
        return None
    if fpr == 0:
        return math.inf if tpr > 0 else None
    return tpr / fpr


@dataclass(frozen=True)
class Confusion:
    """Day counts: NR30 flagged (tp) / not (fn), DRH flagged (fp) / not (tn)."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp, self.tn + other.tn)

    @property
    def sensitivity(self) -> float | None:
        """TPR: share of NR30 days flagged; None without NR30 days."""
        n = self.tp + self.fn
        return self.tp / n if n else None

    @property
    def specificity(self) -> float | None:
        """1 − FPR: share of DRH days not flagged; None without DRH days."""
        n = self.fp + self.tn
        return self.tn / n if n else None

    @property
    def fpr(self) -> float | None:
        n = self.fp + self.tn
        return self.fp / n if n else None

    @property
    def tpr_fpr(self) -> float | None:
        return tpr_fpr_ratio(self.sensitivity, self.fpr)


def confusion(flagged: np.ndarray, nr30: np.ndarray) -> Confusion:
    """Count flagged/unflagged NR30 and DRH days (boolean arrays of equal length)."""
    flagged = np.asarray(flagged, dtype=bool)
    nr30 = np.asarray(nr30, dtype=bool)
    tp = int(np.count_nonzero(flagged & nr30))
    fp = int(np.count_nonzero(flagged & ~nr30))
    return Confusion(tp, int(np.count_nonzero(nr30)) - tp, fp, int(np.count_nonzero(~nr30)) - fp)


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) that also accepts ±inf.

    numpy returns nan when interpolating between inf values; TPR/FPR is inf for
    participants without false positives, so the cohort median must handle it.
    """
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return math.nan
    h = (v.size - 1) * q
    lo, hi = int(math.floor(h)), int(math.ceil(h))
    a, b = float(v[lo]), float(v[hi])
    if lo == hi or a == b:
        return a
    if math.isinf(a):  # −inf below: any positive weight on it stays −inf
        return a
    if math.isinf(b):
        return b
    return a + (b - a) * (h - lo)


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range over participants with a defined value."""

    median: float | None
    q1: float | None
    q3: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread:
        v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
        if not v:
            return cls(None, None, None, 0)
        return cls(quantile(v, 0.5), quantile(v, 0.25), quantile(v, 0.75), len(v))


# --- threshold search ------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold τ (flag iff score > τ) and its validation TPR, FPR and TPR/FPR."""

    tau: float
    tpr: float
    fpr: float
    ratio: float | None


def best_threshold(nr30_scores: np.ndarray, drh_scores: np.ndarray) -> ThresholdChoice | None:
    """The τ maximising TPR/FPR on validation days (Adler et al. 2020), flag iff score > τ.

    Candidates are −∞ and every distinct validation score, so the optimum is
    exact (TPR and FPR only change at observed scores). Ties in TPR/FPR go to
    the larger TPR; FPR = 0 < TPR counts as +∞ (then the most sensitive such τ
    wins, i.e. τ = the largest DRH score); 0/0 ranks below every defined ratio.
    Returns None when either set is empty. Vectorised: O((n+m) log(n+m)).
    """
    pos = np.sort(np.asarray(nr30_scores, dtype=float))
    neg = np.sort(np.asarray(drh_scores, dtype=float))
    if pos.size == 0 or neg.size == 0:
        return None
    cand = np.unique(np.concatenate(([-np.inf], pos, neg)))
    tpr = (pos.size - np.searchsorted(pos, cand, side="right")) / pos.size
    fpr = (neg.size - np.searchsorted(neg, cand, side="right")) / neg.size
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(fpr > 0, tpr / np.where(fpr > 0, fpr, 1.0), np.where(tpr > 0, np.inf, -1.0))
    best = np.lexsort((tpr, ratio))[-1]  # primary key ratio, then TPR
    r = float(ratio[best])
    return ThresholdChoice(float(cand[best]), float(tpr[best]), float(fpr[best]), None if r < 0 else r)


# --- Cohen's d -------------------------------------------------------------------------


def cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's d of each column, (mean_a − mean_b) / pooled SD (ddof = 1), NaNs ignored.

    Pooled SD = √(((n_a−1)s_a² + (n_b−1)s_b²) / (n_a+n_b−2)). A column with
    fewer than 2 values on either side or zero pooled SD gives NaN.
    Accepts 1-D arrays (one feature) or 2-D (days × features).
    """
    a2 = np.asarray(a, dtype=float).reshape(len(a), -1)
    b2 = np.asarray(b, dtype=float).reshape(len(b), -1)
    na, nb = np.sum(~np.isnan(a2), axis=0), np.sum(~np.isnan(b2), axis=0)
    ok = (na >= 2) & (nb >= 2)
    out = np.full(a2.shape[1], np.nan)
    if not ok.any():
        return out if np.ndim(a) > 1 else out[0]
    a2, b2, na, nb = a2[:, ok], b2[:, ok], na[ok], nb[ok]
    ma, mb = np.nanmean(a2, axis=0), np.nanmean(b2, axis=0)
    va, vb = np.nanvar(a2, axis=0, ddof=1), np.nanvar(b2, axis=0, ddof=1)
    sd = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[ok] = np.where(sd > 0, (ma - mb) / sd, np.nan)
    return out if np.ndim(a) > 1 else out[0]


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

