"""Profile-based rhythm metrics (M10, L5, RA, IS, IV, template deviation) and naming.

References are written here from the textbook formulas as plain loops
(``pip install pyActigraphy==1.2.2`` fails on Python 3.11: its dependency chain builds
an old package from source with numpy.distutils; see docs/rhythm.md for the convention
differences, e.g. pyActigraphy's ddof=1 variances).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phenoflow.operators.rhythm.statistics import (
    DEFAULT_MODALITIES,
    feature_names,
    rhythm_features,
    window_stats,
)

MODS = ["accel_sd", "screen_on_s"]  # one continuous, one count series


# --- independent loop references -------------------------------------------------------


def present(v: float) -> bool:
    return not math.isnan(v)


def ref_profile(x: list[float]) -> tuple[list[float], list[int]]:
    prof, cnt = [], []
    for h in range(24):
        vals = [x[i] for i in range(h, len(x), 24) if present(x[i])]
        prof.append(sum(vals) / len(vals) if vals else math.nan)
        cnt.append(len(vals))
    return prof, cnt


def ref_is(x: list[float]) -> float:
    """Textbook IS when complete; between-hour sum Σ n_h (p_h − x̄)² otherwise."""
    vals = [v for v in x if present(v)]
    xbar = sum(vals) / len(vals)
    prof, cnt = ref_profile(x)
    den = sum((v - xbar) ** 2 for v in vals)
    if len(vals) == len(x):  # the literal textbook formula
        return len(x) * sum((p - xbar) ** 2 for p in prof) / (24 * den)
    return sum(c * (p - xbar) ** 2 for p, c in zip(prof, cnt, strict=True) if c) / den


def ref_iv(x: list[float]) -> float:
    vals = [v for v in x if present(v)]
    n = len(vals)
    xbar = sum(vals) / n
    den = sum((v - xbar) ** 2 for v in vals)
    diffs = [(x[i] - x[i - 1]) ** 2 for i in range(1, len(x)) if present(x[i]) and present(x[i - 1])]
    if n == len(x):  # the literal textbook formula
        return n * sum(diffs) / ((n - 1) * den)
    return (sum(diffs) / len(diffs)) / (den / n)


def ref_run_extreme(prof: list[float], length: int, pick) -> float:
    means = []
    for s in range(24):
        run = [prof[(s + k) % 24] for k in range(length)]
        got = [v for v in run if present(v)]
        if len(got) >= math.ceil(length / 2):
            means.append(sum(got) / len(got))
    return pick(means)


def ref_day_devs(x: list[float], min_hours: float) -> list[float]:
    prof, _ = ref_profile(x)
    devs = []
    for d in range(len(x) // 24):
        day = x[24 * d : 24 * d + 24]
        diffs = [abs(v - prof[h]) for h, v in enumerate(day) if present(v)]
        devs.append(sum(diffs) / len(diffs) if len(diffs) >= min_hours else math.nan)
    return devs


def window(x: np.ndarray) -> np.ndarray:
    """1-D hourly series → (1, days, 24) for window_stats."""
    return np.asarray(x, dtype=float).reshape(1, -1, 24)


# --- known answers ---------------------------------------------------------------------


def test_perfectly_periodic_series_has_is_one_and_full_coverage() -> None:
    day = np.random.default_rng(1).normal(size=24)
    st_ = window_stats(window(np.tile(day, 7)))
    assert st_["is"][0] == pytest.approx(1.0, abs=1e-12)
    assert st_["coverage"][0] == 1.0


def test_iv_of_hourly_alternation_is_four_and_of_white_noise_about_two() -> None:
    # Alternating 0,1: every squared step is 1, the variance is 1/4, so
    # IV = n(n−1)/((n−1)·n/4) = 4 exactly (IV ≈ 2 is white noise, ≈ 0 a smooth wave).
    alt = np.tile([0.0, 1.0], 24 * 7)
    assert window_stats(window(alt))["iv"][0] == pytest.approx(4.0, abs=1e-12)
    noise = np.random.default_rng(2).normal(size=24 * 14)
    assert window_stats(window(noise))["iv"][0] == pytest.approx(2.0, abs=0.3)
    smooth = np.sin(2 * np.pi * np.arange(24 * 7) / 24)
    assert window_stats(window(smooth))["iv"][0] < 0.1


def test_square_wave_m10_l5_ra_by_hand_with_a_night_run_wrapping_midnight() -> None:
    # 10 on 08–17 h (exactly ten hours), 1 on 22–02 h (five hours across midnight), 4 else.
    day = np.full(24, 4.0)
    day[8:18] = 10.0
    day[[22, 23, 0, 1, 2]] = 1.0
    st_ = window_stats(window(np.tile(day, 4)))
    assert st_["m10"][0] == 10.0
    assert st_["l5"][0] == 1.0  # a non-cyclic L5 would be (1+1+1+4+4)/5 = 2.2
    assert st_["ra"][0] == pytest.approx(9.0 / 11.0, abs=1e-15)


def test_constant_series_gives_none_not_nan_for_variance_based_metrics() -> None:
    arr = np.full((14, 24, 2), 3.0)
    feats, cov = rhythm_features(arr, MODS)
    for w in (2, 14):
        assert feats[f"accel_sd.is.w{w}"] is None
        assert feats[f"accel_sd.iv.w{w}"] is None
        assert feats[f"accel_sd.sampen.tau1.w{w}"] is None
        assert feats[f"accel_sd.ra.w{w}"] == 0.0  # (c − c)/(c + c)
        assert feats[f"accel_sd.m10.w{w}"] == 3.0
        assert feats[f"accel_sd.dev.sd.w{w}"] == 0.0
        assert cov[f"w{w}"] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in feats.values())


# --- cross-checks against the loop references at 1e-9 ---------------------------------


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_profile_metrics_match_loop_reference(missing: float) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(14 * 24)
    x = 5 + 3 * np.sin(2 * np.pi * t / 24) + rng.gamma(2.0, 1.0, size=t.size)
    x[rng.random(t.size) < missing] = np.nan
    arr = np.stack([x, np.round(x)], axis=-1).reshape(14, 24, 2)
    feats, cov = rhythm_features(arr, MODS)
    for w in (2, 6, 14):
        xs = x[-24 * w :].tolist()
        prof, _ = ref_profile(xs)
        m10 = ref_run_extreme(prof, 10, max)
        l5 = ref_run_extreme(prof, 5, min)
        devs = [d for d in ref_day_devs(xs, 12) if present(d)]
        mean = sum(devs) / len(devs)
        expect = {
            "is": ref_is(xs),
            "iv": ref_iv(xs),
            "m10": m10,
            "l5": l5,
            "ra": (m10 - l5) / (m10 + l5),
            "dev.mean": mean,
            "dev.median": float(np.median(devs)),
            "dev.sd": math.sqrt(sum((d - mean) ** 2 for d in devs) / len(devs)),
            "dev.prev": ref_day_devs(xs, 12)[-2],
        }
        for metric, want in expect.items():
            got = feats[f"accel_sd.{metric}.w{w}"]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (metric, w)
        n_present = sum(present(v) for v in xs)
        assert cov[f"accel_sd.w{w}"] == pytest.approx(n_present / (24 * w), abs=1e-15)


def test_low_coverage_window_is_none_and_coverage_reported() -> None:
    rng = np.random.default_rng(3)
    arr = rng.normal(size=(14, 24, 2))
    arr[-3:, :, 0] = np.nan  # accel: last 3 days missing
    arr[-1, 12:, 1] = np.nan  # screen: half of the last day missing
    feats, cov = rhythm_features(arr, MODS, min_coverage=0.5)
    assert cov["accel_sd.w2"] == 0.0 and cov["accel_sd.w4"] == 0.25
    assert cov["accel_sd.w6"] == 0.5 and cov["w2"] == 0.75
    assert all(feats[f"accel_sd.{m}.w{w}"] is None for m in ("m10", "is", "power.p2", "dev.mean") for w in (2, 4))
    assert feats["accel_sd.m10.w6"] is not None  # exactly at the threshold counts
    assert feats["screen_on_s.m10.w2"] is not None
    assert feats["screen_on_s.dev.prev.w2"] is not None  # day d−1 complete
    assert cov["screen_on_s.w2"] == 0.75


def test_day_deviation_needs_half_a_day_and_sd_needs_two_days() -> None:
    arr = np.random.default_rng(4).normal(size=(14, 24, 1))
    arr[-2, 11:, 0] = np.nan  # day d−1 has 11 present hours: no deviation that day
    feats, _ = rhythm_features(arr, ["accel_sd"], windows=(2, 4), min_coverage=0.5)
    assert feats["accel_sd.dev.prev.w2"] is None
    assert feats["accel_sd.dev.sd.w2"] is None  # only day d left
    assert feats["accel_sd.dev.mean.w2"] == feats["accel_sd.dev.median.w2"]
    assert feats["accel_sd.dev.sd.w4"] is not None


def test_fewer_days_than_the_longest_window_are_missing_days() -> None:
    arr = np.random.default_rng(5).normal(size=(3, 24, 2))
    feats, cov = rhythm_features(arr, MODS)
    full = np.concatenate([np.full((11, 24, 2), np.nan), arr])
    assert (feats, cov) == rhythm_features(full, MODS)
    assert cov["w4"] == 0.75 and feats["accel_sd.m10.w4"] is not None
    assert cov["w8"] == 3 / 8 and feats["accel_sd.m10.w8"] is None


def test_feature_names_follow_the_contract_pattern() -> None:
    names = feature_names()
    for name in (
        "accel_sd.m10.w14",
        "accel_sd.sampen.tau3.w6",
        "accel_sd.power.p20.w4",
        "screen_on_s.dev.mean.w14",
        "light_lux_mean.iv.w2",
        "conversation_s.power.p256.w12",
    ):
        assert name in names
    assert "screen_on_s.is.w14" not in names  # IS/IV: continuous series only
    assert "accel_sd.power.p72.w2" not in names  # P > n = 48
    assert "accel_sd.power.p256.w10" not in names
    assert not any(".p512." in n or ".p24." in n for n in names)
    assert len(set(names)) == len(names)
    arr = np.random.default_rng(6).normal(size=(14, 24, len(DEFAULT_MODALITIES)))
    feats, _ = rhythm_features(arr, DEFAULT_MODALITIES)
    assert tuple(feats) == names


# --- properties ------------------------------------------------------------------------

series = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=48, max_size=48
)


@settings(max_examples=60, deadline=None)
@given(values=series, holes=st.lists(st.integers(0, 47), max_size=20), scale=st.floats(0.01, 100.0))
def test_is_in_unit_interval_and_scale_invariance(values: list[float], holes: list[int], scale: float) -> None:
    x = np.array(values)
    x[holes] = np.nan
    a = window_stats(window(x))
    b = window_stats(window(x * scale))
    for metric in ("is", "iv", "ra"):
        if np.isnan(a[metric][0]):
            assert np.isnan(b[metric][0])
        else:
            assert b[metric][0] == pytest.approx(a[metric][0], rel=1e-7, abs=1e-9)
    if not np.isnan(a["is"][0]):
        assert -1e-12 <= a["is"][0] <= 1 + 1e-12


@settings(max_examples=25, deadline=None)
@given(level=st.floats(-1e3, 1e3, allow_nan=False), holes=st.lists(st.integers(0, 335), max_size=50))
def test_constant_series_entropy_is_none_never_nan(level: float, holes: list[int]) -> None:
    x = np.full(14 * 24, level)
    x[holes] = np.nan
    feats, _ = rhythm_features(x.reshape(14, 24, 1), ["accel_sd"])
    ent = [v for k, v in feats.items() if ".sampen." in k]
    assert ent and all(v is None for v in ent)
