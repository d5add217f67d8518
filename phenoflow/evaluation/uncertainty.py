"""Uncertainty of detection figures: participant-level bootstrap and a label-permutation null.

Bootstrap (Efron & Tibshirani 1993, percentile interval): participants — not
days — are resampled with replacement ``resamples`` times (default 1,000,
seeded), because a participant's days are dependent. For each resample the
cohort figures are recomputed: medians over participants of sensitivity,
specificity and TPR/FPR, and the pooled sensitivity, specificity and TPR/FPR
(sums of day counts). The 95 % interval is the 2.5 and 97.5 percentiles.
Vectorised over resamples: one (resamples × participants) index matrix.

Permutation null: each participant's relapse dates are moved together by one
random circular shift within the participant's evaluated days (plus the 30-day
NR30 horizon), so their number and spacing stay the same and the flags stay
untouched; the statistic (median TPR/FPR) is recomputed. p = (1 + #{null ≥
observed}) / (1 + permutations) (Phipson & Smyth 2010, never 0). Participants
without relapses contribute no TPR either way.

Pure numpy; medians treat TPR/FPR = ∞ (no false positive) as larger than any
finite value, and skip undefined values (n/a), as :class:`Spread` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "Interval",
    "NullResult",
    "bootstrap_intervals",
    "confusion_arrays",
    "draw_shifts",
    "median_rows",
    "permutation_null",
    "ratios",
    "shifted_nr30",
    "summarise_null",
]

RESAMPLES = 1000
PERMUTATIONS = 1000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % bootstrap percentile interval (None: undefined)."""

    value: float | None
    low: float | None
    high: float | None

    def covers(self, x: float) -> bool:
        """True when low ≤ x ≤ high."""
        return self.low is not None and self.high is not None and self.low <= x <= self.high


def confusion_arrays(confs: list) -> np.ndarray:
    """Participants × 4 int array of (tp, fn, fp, tn) from :class:`Confusion` objects."""
    return np.array([[c.tp, c.fn, c.fp, c.tn] for c in confs], dtype=np.int64).reshape(-1, 4)


def ratios(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensitivity, specificity, TPR/FPR along the last axis of (…, 4) counts; NaN = undefined.

    TPR/FPR = ∞ when FPR = 0 < TPR, NaN when both are 0 or either is undefined
    (as :func:`~phenoflow.evaluation.detection.tpr_fpr_ratio`).
    """
    tp, fn, fp, tn = (counts[..., i].astype(float) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        fpr = np.where(fp + tn > 0, fp / (fp + tn), np.nan)
        ratio = np.where(fpr > 0, sens / fpr, np.where(sens > 0, np.inf, np.nan))
    ratio = np.where(np.isnan(sens) | np.isnan(fpr), np.nan, ratio)
    return sens, 1.0 - fpr, ratio


def median_rows(x: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN, exact with ±∞ (NaN for a row without values).

    numpy's nanmedian interpolates ∞ with ∞ to NaN; here the midpoint of a
    finite and an infinite middle pair is that infinity, as in
    :func:`~phenoflow.evaluation.detection.quantile`.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    s = np.sort(x, axis=1)  # NaN sort last
    n = np.sum(~np.isnan(x), axis=1)
    lo = np.clip((n - 1) // 2, 0, None)
    hi = np.clip(n // 2, 0, None)
    rows = np.arange(x.shape[0])
    a, b = s[rows, np.minimum(lo, x.shape[1] - 1)], s[rows, np.minimum(hi, x.shape[1] - 1)]
    with np.errstate(invalid="ignore"):
        mid = np.where(a == b, a, np.where(np.isinf(a), a, np.where(np.isinf(b), b, (a + b) / 2)))
    return np.where(n > 0, mid, np.nan)


def _interval(point: float, draws: np.ndarray) -> Interval:
    def f(v: float) -> float | None:
        return None if np.isnan(v) else float(v)

    d = draws[~np.isnan(draws)]
    if np.isnan(point) or d.size == 0:
        return Interval(f(point), None, None)
    # "lower"/"higher" percentiles: interpolating toward ∞ would give NaN
    return Interval(float(point), float(np.quantile(d, 0.025, method="lower")),
                    float(np.quantile(d, 0.975, method="higher")))


def bootstrap_intervals(counts: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Interval]:
    """95 % participant-bootstrap intervals of the cohort figures from per-participant counts.

    ``counts``: participants × 4 (tp, fn, fp, tn). Keys: ``median_sensitivity``,
    ``median_specificity``, ``median_tpr_fpr``, ``sensitivity``, ``specificity``,
    ``tpr_fpr`` (the last three pooled over participants).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
    n = counts.shape[0]
    if n == 0:
        return {}
    rng = np.random.default_rng([seed, 0xB007])
    idx = rng.integers(0, n, size=(resamples, n))
    sens, spec, ratio = ratios(counts)
    pooled = ratios(counts.sum(axis=0))
    boot_pooled = ratios(counts[idx].sum(axis=1))
    out: dict[str, Interval] = {}
    for name, per_p in (("sensitivity", sens), ("specificity", spec), ("tpr_fpr", ratio)):
        out[f"median_{name}"] = _interval(float(median_rows(per_p[None, :])[0]), median_rows(per_p[idx]))
    for k, name in enumerate(("sensitivity", "specificity", "tpr_fpr")):
        out[name] = _interval(float(pooled[k]), boot_pooled[k])
    return out


@dataclass(frozen=True)
class NullResult:
    """The permutation null of the median TPR/FPR."""

    observed: float | None
    null: np.ndarray  # one median TPR/FPR per permutation (NaN: undefined)
    share_at_or_above: float
    p: float

    @property
    def distinguishable(self) -> bool:
        """p < 0.05."""
        return self.p < 0.05

    def sentence(self) -> str:
        """The plain-words line ``phenoflow evaluate`` prints."""
        word = "is" if self.distinguishable else "is not"
        return f"separation {word} distinguishable from chance on this cohort (p = {self.p:.3g})"


def shifted_nr30(
    offsets: np.ndarray, relapse_offsets: np.ndarray, span: int, shift: int, horizon: int = 30
) -> np.ndarray:
    """NR30 mask of days at ``offsets`` when the relapses move by ``shift`` (circularly within ``span``).

    A day is NR30 when a (shifted) relapse lies 1 … ``horizon`` days after it.
    """
    rel = np.sort((relapse_offsets + shift) % span)
    nxt = np.searchsorted(rel, offsets, side="right")
    has = nxt < rel.size
    gap = np.full(offsets.size, np.iinfo(np.int64).max)
    gap[has] = rel[nxt[has]] - offsets[has]
    return gap <= horizon


def permutation_null(
    per_participant: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    observed_counts: np.ndarray,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    statistic: Callable[[np.ndarray], float] | None = None,
    horizon: int = 30,
) -> NullResult:
    """Median TPR/FPR under circularly shifted relapse dates (see module doc).

    ``per_participant``: for each participant (day offsets from its first day,
    flagged mask, relapse offsets). ``observed_counts``: participants × 4 counts
    of the real labels. ``statistic`` maps a participants × 4 count array to the
    figure (default: median TPR/FPR).
    """
    stat = statistic or (lambda c: float(median_rows(ratios(c)[2][None, :])[0]))
    obs = stat(np.asarray(observed_counts).reshape(-1, 4))
    null = np.empty(permutations)
    spans = [int(o[-1]) + 1 + horizon if o.size else 1 for o, _, _ in per_participant]
    shifts = draw_shifts(spans, permutations, seed)
    counts = np.zeros((len(per_participant), 4), dtype=np.int64)
    for k in range(permutations):
        for p, (off, flag, rel) in enumerate(per_participant):
            if rel.size == 0:
                nr = np.zeros(off.size, dtype=bool)
            else:
                nr = shifted_nr30(off, rel, spans[p], int(shifts[k, p]), horizon)
            tp = int(np.count_nonzero(flag & nr))
            fp = int(np.count_nonzero(flag & ~nr))
            counts[p] = (tp, int(nr.sum()) - tp, fp, int((~nr).sum()) - fp)
        null[k] = stat(counts)
    return summarise_null(obs, null)


def summarise_null(observed: float, null: np.ndarray) -> NullResult:
    """Share of null values ≥ observed and p = (1 + hits) / (1 + permutations); NaN nulls count as below."""
    null = np.asarray(null, dtype=float)
    if np.isnan(observed):
        return NullResult(None, null, float("nan"), 1.0)
    hits = int(np.count_nonzero(null >= observed))
    return NullResult(float(observed), null, hits / max(null.size, 1), (1 + hits) / (1 + null.size))


def draw_shifts(spans: list[int], permutations: int, seed: int) -> np.ndarray:
    """Permutations × participants random circular shifts, shift of participant p in [0, spans[p])."""
    rng = np.random.default_rng([seed, 0x9E11])
    if not spans:
        return np.zeros((permutations, 0), dtype=np.int64)
    return np.stack([rng.integers(0, s, size=permutations) for s in spans], axis=1)
