"""Bootstrap intervals and the permutation null on constructed data with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phenoflow.evaluation.detection import Confusion, quantile
from phenoflow.evaluation.uncertainty import (
    bootstrap_intervals,
    confusion_arrays,
    median_rows,
    permutation_null,
    ratios,
    shifted_nr30,
)


def _cohort(n: int, days: int, seed: int, detector: str) -> tuple[list, np.ndarray]:
    """n participants, one relapse each at a random day ≥ 40; flags planted, random or none."""
    rng = np.random.default_rng(seed)
    per_p, counts = [], []
    for _ in range(n):
        off = np.arange(days)
        rel = np.array([rng.integers(40, days)])
        nr = shifted_nr30(off, rel, days + 30, 0)
        flag = nr.copy() if detector == "perfect" else rng.random(days) < 0.2
        per_p.append((off, flag, rel))
        tp, fp = int((flag & nr).sum()), int((flag & ~nr).sum())
        counts.append((tp, int(nr.sum()) - tp, fp, int((~nr).sum()) - fp))
    return per_p, np.array(counts)


def test_ratios_match_confusion_properties() -> None:
    confs = [Confusion(3, 27, 2, 23), Confusion(0, 0, 3, 7), Confusion(5, 5, 0, 10), Confusion(0, 4, 0, 9)]
    sens, spec, ratio = ratios(confusion_arrays(confs))
    for c, s, sp, r in zip(confs, sens, spec, ratio, strict=True):
        assert (None if math.isnan(s) else s) == c.sensitivity
        assert sp == pytest.approx(c.specificity)
        assert (None if math.isnan(r) else r) == c.tpr_fpr


def test_median_rows_equals_the_scalar_quantile_with_infinities() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((300, 7))
    x[rng.random(x.shape) < 0.2] = np.inf
    x[rng.random(x.shape) < 0.2] = np.nan
    got = median_rows(x)
    for row, m in zip(x, got, strict=True):
        v = row[~np.isnan(row)]
        want = quantile(v, 0.5) if v.size else math.nan
        assert (math.isnan(m) and math.isnan(want)) or m == want


def test_perfect_detector_has_a_degenerate_interval_and_p_near_zero() -> None:
    per_p, counts = _cohort(20, 120, seed=1, detector="perfect")
    iv = bootstrap_intervals(counts, resamples=1000, seed=0)
    assert (iv["sensitivity"].low, iv["sensitivity"].high) == (1.0, 1.0)
    assert (iv["specificity"].low, iv["specificity"].high) == (1.0, 1.0)
    null = permutation_null(per_p, counts, permutations=500, seed=0)
    assert null.observed == math.inf and null.p < 0.01  # p ≈ 1/501


def test_random_detector_interval_covers_one_and_null_is_calibrated() -> None:
    _, counts = _cohort(30, 120, seed=2, detector="random")
    iv = bootstrap_intervals(counts, resamples=1000, seed=0)
    assert iv["tpr_fpr"].covers(1.0) and iv["median_tpr_fpr"].covers(1.0)
    assert iv["sensitivity"].covers(0.2) and iv["specificity"].covers(0.8)  # the planted flag rate
    # under H0 p is (about) uniform: few of 20 random detectors reach p < 0.05
    ps = [permutation_null(*_cohort(12, 100, seed=s, detector="random"), permutations=200, seed=s).p for s in range(20)]
    assert sum(p < 0.05 for p in ps) <= 3 and max(ps) > 0.5


def test_bootstrap_is_seeded_and_resamples_participants() -> None:
    _, counts = _cohort(15, 100, seed=3, detector="random")
    a, b = bootstrap_intervals(counts, seed=4), bootstrap_intervals(counts, seed=4)
    assert a == b and a != bootstrap_intervals(counts, seed=5)
    same = np.repeat(counts[:1], 10, axis=0)  # identical participants: nothing to vary
    iv = bootstrap_intervals(same)
    assert iv["median_sensitivity"].low == iv["median_sensitivity"].high == iv["median_sensitivity"].value


def test_shift_keeps_the_spacing_of_relapses() -> None:
    off = np.arange(100)
    nr = shifted_nr30(off, np.array([50, 90]), 130, 7)
    # relapses at 57 and 97: NR30 = 27…56 and 67…96; 57 is the relapse day, 58…66 are > 30 days before 97
    assert np.flatnonzero(nr).tolist() == list(range(27, 57)) + list(range(67, 97))
    nr = shifted_nr30(off, np.array([50]), 130, 100)  # 150 mod 130 = 20 → NR30 = 0…19
    assert np.flatnonzero(nr).tolist() == list(range(0, 20))
