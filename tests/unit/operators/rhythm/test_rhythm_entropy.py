"""Multiscale sample entropy against nolds and antropy (1e-9) and a brute-force loop.

nolds 0.6.3 cannot be imported as a package on Python 3.11.7: its ``datasets``
module calls ``importlib.resources.files(__name__)`` on a module at import time
(TypeError). ``nolds/measures.py`` itself is self-contained, so it is loaded from
its file here.
"""

from __future__ import annotations

import importlib.util
import math
import sysconfig
import warnings
from pathlib import Path

import antropy
import numpy as np
import pytest

from phenoflow.operators.rhythm.entropy import (
    coarse_grain,
    multiscale_sample_entropy,
    sample_entropy,
    tolerance,
    window_multiscale_sampen,
)
from phenoflow.operators.rhythm.statistics import rhythm_features


def _load_nolds_measures():
    path = Path(sysconfig.get_paths()["purelib"]) / "nolds" / "measures.py"
    spec = importlib.util.spec_from_file_location("_nolds_measures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOLDS = _load_nolds_measures()


def nolds_sampen(y: np.ndarray, r: float) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nolds warns on undefined
        v = NOLDS.sampen(np.asarray(y), emb_dim=2, tolerance=r, closed=False)
    return float(v) if np.isfinite(v) else None


def antropy_sampen(y: np.ndarray, r: float) -> float | None:
    v = antropy.sample_entropy(np.asarray(y, dtype=float), order=2, tolerance=float(r))
    return float(v) if np.isfinite(v) else None


def brute_sampen(y: list[float], r: float, m: int = 2) -> float | None:
    """Loop over template pairs; a start needs its whole (m+1)-run present."""
    starts = [
        i for i in range(len(y) - m) if all(not math.isnan(y[i + k]) for k in range(m + 1))
    ]
    b = a = 0
    for p, i in enumerate(starts):
        for j in starts[p + 1 :]:
            dm = max(abs(y[i + k] - y[j + k]) for k in range(m))
            if dm < r:
                b += 1
                if max(dm, abs(y[i + m] - y[j + m])) < r:
                    a += 1
    if a == 0 or b == 0 or r <= 0:
        return None
    return -math.log(a / b)


def rhythmic(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 3 * np.sin(2 * np.pi * t / 24) + rng.normal(size=n)


def close(got: float | None, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


@pytest.mark.parametrize("n", [48, 150, 336])
def test_multiscale_matches_nolds_and_antropy_with_scale1_tolerance(n: int) -> None:
    x = rhythmic(n, n)
    r = 0.25 * float(np.std(x))  # ddof = 0, of the ORIGINAL series, same at every scale
    ours = multiscale_sample_entropy(x)
    assert sum(v is not None for v in ours.values()) >= 2
    for tau, got in ours.items():
        y = coarse_grain(x, tau)
        assert close(got, nolds_sampen(y, r)), tau
        assert close(got, antropy_sampen(y, r)), tau


@pytest.mark.parametrize("m", [1, 3])
def test_other_embedding_dimensions_match_nolds(m: int) -> None:
    x = rhythmic(120, 5)
    r = 0.25 * float(np.std(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = float(NOLDS.sampen(x, emb_dim=m, tolerance=r, closed=False))
    assert close(sample_entropy(x, r, m=m), want)


def test_match_is_strict_less_than_r() -> None:
    # Integer data with r = 1: pairs at distance exactly 1 must not match.
    x = np.random.default_rng(9).integers(0, 4, size=200).astype(float)
    got = sample_entropy(x, r=1.0)
    assert close(got, nolds_sampen(x, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        closed = NOLDS.sampen(x, emb_dim=2, tolerance=1.0, closed=True)
    assert abs(got - closed) > 1e-3  # the closed convention gives a different value


def test_every_rhythm_window_and_scale_matches_nolds() -> None:
    x = rhythmic(14 * 24, 11)
    feats, _ = rhythm_features(x.reshape(14, 24, 1), ["accel_sd"])
    defined = 0
    for w in (2, 4, 6, 8, 10, 12, 14):
        xw = x[-24 * w :]
        r = 0.25 * float(np.std(xw))
        for tau in range(1, 7):
            want = nolds_sampen(coarse_grain(xw, tau), r)
            got = feats[f"accel_sd.sampen.tau{tau}.w{w}"]
            assert close(got, want), (w, tau, got, want)
            defined += want is not None
    assert defined >= 30  # the comparison is not vacuous


def test_shared_distance_matrix_equals_separate_windows_for_every_alignment() -> None:
    # τ = 5 does not divide the 48-h offsets between windows: five alignment groups.
    rng = np.random.default_rng(12)
    series = rng.normal(size=(3, 336))
    starts = [0, 48, 96, 100, 205, 288]
    r = rng.uniform(0.1, 0.5, size=(3, len(starts)))
    got = window_multiscale_sampen(series, starts, r, (1, 5, 6))
    for s in range(3):
        for k, start in enumerate(starts):
            for ti, tau in enumerate((1, 5, 6)):
                want = nolds_sampen(coarse_grain(series[s, start:], tau), r[s, k])
                v = got[s, k, ti]
                assert close(None if np.isnan(v) else float(v), want)


def test_missing_values_use_only_complete_template_runs() -> None:
    x = rhythmic(200, 13)
    x[[5, 6, 50, 51, 52, 120, 199]] = np.nan
    r = tolerance(x)
    assert r == pytest.approx(0.25 * float(np.nanstd(x)), rel=1e-14)
    got = sample_entropy(x, r)
    assert got is not None and close(got, brute_sampen(x.tolist(), r))
    # coarse blocks with a missing hour are missing
    y = coarse_grain(x, 3)
    assert np.isnan(y[[1, 2, 16, 17, 40]]).all() and np.isnan(y).sum() == 5
    assert close(sample_entropy(y, r), brute_sampen(y.tolist(), r))


def test_undefined_entropy_is_none_never_zero_or_nan() -> None:
    assert sample_entropy(np.full(100, 2.5)) is None  # r = 0
    assert tolerance(np.full(100, 0.1)) == 0.0  # np.std would leave a rounding residue
    assert sample_entropy(np.arange(50.0), r=0.5) is None  # no m-matches at all
    assert sample_entropy(np.array([1.0, 2.0])) is None  # too short
    assert sample_entropy(np.full(10, np.nan)) is None
    ms = multiscale_sample_entropy(np.full(336, 7.0))
    assert ms == {t: None for t in range(1, 7)}
