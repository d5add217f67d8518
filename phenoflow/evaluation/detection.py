"""Day-level metrics of relapse prediction (Adler et al., JMIR mHealth 2020).

Confusion counts of NR30 (near relapse) and DRH (relative health) days,
sensitivity/specificity and TPR/FPR, medians with IQR that tolerate infinite
ratios, the per-participant threshold search maximising TPR/FPR, and Cohen's d.
Pure numpy; see :mod:`phenoflow.evaluation.evaluate` for the definitions in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "tpr_fpr_ratio", "Confusion", "confusion", "quantile", "Spread", "ThresholdChoice", "best_threshold",
    "cohens_d"
]

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
        """False-positive rate FP / (FP + TN); None without negatives."""
        n = self.fp + self.tn
        return self.fp / n if n else None

    @property
    def tpr_fpr(self) -> float | None:
        """TPR / FPR (see :func:`tpr_fpr_ratio`)."""
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
        """Median and quartiles of the finite values (None and NaN left out)."""
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
