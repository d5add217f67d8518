"""Exact-frequency periodogram against scipy.signal.periodogram, a direct DFT loop and
scipy.signal.lombscargle (1e-9)."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import scipy.signal

from phenoflow.operators.rhythm.periodogram import (
    RHYTHM_PERIODS_H,
    periodogram_power,
    periodogram_power_batch,
)
from phenoflow.operators.rhythm.statistics import rhythm_features


def direct_power(x: list[float], period: float, n_window: int) -> float:
    """c·|Σ_{t present}(x_t − x̄) e^{−2πit/P}|² / n_present, as a plain loop."""
    pts = [(t, v) for t, v in enumerate(x) if not math.isnan(v)]
    mean = sum(v for _, v in pts) / len(pts)
    acc = sum((v - mean) * cmath.exp(-2j * math.pi * t / period) for t, v in pts)
    c = 1.0 if (period == 2 and n_window % 2 == 0) else 2.0
    return c * abs(acc) ** 2 / len(pts)


def test_pure_24h_sinusoid_peaks_at_24h_among_the_tested_periods() -> None:
    t = np.arange(14 * 24)
    x = 5 + np.sin(2 * np.pi * t / 24)
    periods = tuple(sorted(RHYTHM_PERIODS_H + (24,)))
    got = periodogram_power(x, periods)
    assert max(got, key=lambda p: got[p] or 0.0) == 24
    assert got[24] == pytest.approx(len(t) / 2, rel=1e-12)  # c·(n/2)²/n with c = 2
    assert got[22] < got[24] and got[27] < got[24]  # the seed's neighbours of 24 h
    assert 512 not in got  # only P ≤ n


@pytest.mark.parametrize("n", [48, 96, 336])
def test_equals_scipy_periodogram_where_n_is_a_multiple_of_p(n: int) -> None:
    x = np.random.default_rng(n).gamma(2.0, 3.0, size=n)
    freqs, pxx = scipy.signal.periodogram(
        x, fs=1.0, window="boxcar", detrend="constant", scaling="density"
    )
    got = periodogram_power(x)
    checked = 0
    for p, v in got.items():
        if n % p == 0:
            k = n // p
            assert freqs[k] == pytest.approx(1 / p)
            assert v == pytest.approx(pxx[k], rel=1e-9)  # incl. the Nyquist bin at P = 2
            checked += 1
    assert checked >= 4


def test_equals_direct_dft_at_every_period_with_and_without_missing_hours() -> None:
    rng = np.random.default_rng(21)
    x = 10 + 4 * np.sin(2 * np.pi * np.arange(240) / 27) + rng.normal(size=240)
    holes = x.copy()
    holes[rng.random(240) < 0.25] = np.nan
    for series in (x, holes):
        got = periodogram_power(series)
        assert set(got) == {p for p in RHYTHM_PERIODS_H if p <= 240}
        for p, v in got.items():
            assert v == pytest.approx(direct_power(series.tolist(), p, 240), rel=1e-9), p


def test_lomb_scargle_is_half_where_n_is_a_multiple_of_p() -> None:
    x = np.random.default_rng(22).normal(size=192)
    t = np.arange(192, dtype=float)
    periods = (2, 4, 8, 16, 32, 64)
    ls = scipy.signal.lombscargle(t, x - x.mean(), 2 * np.pi / np.array(periods, float))
    ours = periodogram_power_batch(x[None, :], periods)[0]
    np.testing.assert_allclose(ls, ours / 2, rtol=1e-9)
    # At P = 27 (not a bin) Lomb–Scargle's per-frequency normalisation differs slightly.
    ls27 = float(np.ravel(scipy.signal.lombscargle(t, x - x.mean(), np.array([2 * np.pi / 27])))[0])
    ours27 = periodogram_power_batch(x[None, :], (27,))[0, 0]
    assert ls27 == pytest.approx(ours27 / 2, rel=0.2) and ls27 != pytest.approx(ours27 / 2, rel=1e-9)


def test_rhythm_windows_use_their_own_series() -> None:
    rng = np.random.default_rng(23)
    arr = rng.normal(size=(14, 24, 1))
    flat = arr[:, :, 0].reshape(-1)
    feats, _ = rhythm_features(arr, ["accel_sd"])
    for w in (2, 8, 14):
        xw = flat[-24 * w :].tolist()
        for p in RHYTHM_PERIODS_H:
            key = f"accel_sd.power.p{p}.w{w}"
            if p > 24 * w:
                assert key not in feats
            else:
                assert feats[key] == pytest.approx(direct_power(xw, p, 24 * w), rel=1e-9)


def test_too_few_present_hours_gives_none() -> None:
    x = np.full(48, np.nan)
    x[3] = 1.0
    assert periodogram_power(x) == {p: None for p in RHYTHM_PERIODS_H if p <= 48}
