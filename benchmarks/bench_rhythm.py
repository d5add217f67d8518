"""Rhythm statistics: ms per participant-day (7 windows × 11 modalities), where the time
goes, and the same work done with plain library calls (nolds / antropy sample entropy
per window and scale, scipy.signal.periodogram per window), as ratios.

Every contender is timed on identical prepared inputs: the windows, the tolerance r
and, for the libraries (which do not handle missing hours), the gap-filled and
coarse-grained series are computed before the timers start, so a ratio compares the
entropy / periodogram work alone (ours still coarse-grains inside its timer).

Run: ``.venv/bin/python benchmarks/bench_rhythm.py [--days 30] [--repeat 3]``.
Single-threaded numpy is forced (set before numpy is imported) so figures are per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import importlib.util
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.signal

from phenoflow.operators.rhythm.entropy import (
    coarse_grain,
    multiscale_sample_entropy,
    window_multiscale_sampen,
)
from phenoflow.operators.rhythm.periodogram import (
    RHYTHM_PERIODS_H,
    periodogram_power_batch,
)
from phenoflow.operators.rhythm.statistics import (
    DEFAULT_MODALITIES,
    SAMPEN_TAUS,
    WINDOWS_DAYS,
    rhythm_features,
    window_stats,
)


def synthetic_participant(days: int, seed: int = 0, missing: float = 0.1) -> np.ndarray:
    """(days, 24, 11) hourly series with a daily rhythm, counts and ~10 % missing hours."""
    rng = np.random.default_rng(seed)
    h = np.arange(24)
    awake = ((h >= 7) & (h <= 22)).astype(float)
    shape = (days, 24)
    cols = [
        0.2 + 0.8 * awake * rng.gamma(2.0, 0.5, shape),  # accel_mean
        np.exp(rng.normal(2 + 3 * awake, 1.0, shape)),  # light_lux_mean
        35 + 20 * awake + rng.normal(0, 5, shape),  # sound_db_mean
        np.minimum(3600, awake * rng.exponential(600, shape)),  # screen_on_s
        rng.poisson(1 + 4 * awake, shape).astype(float),  # screen_unlocks
        rng.poisson(0.2 * awake, shape).astype(float),  # call_n
        rng.poisson(0.2 * awake, shape) * rng.exponential(120, shape),  # call_s
        rng.poisson(0.5 * awake, shape).astype(float),  # sms_n
        awake * rng.exponential(800, shape),  # distance_m
        np.clip(3600 - awake * rng.exponential(1500, shape), 0, 3600),  # place_primary_s
        awake * rng.exponential(300, shape),  # conversation_s
    ]
    arr = np.stack(cols, axis=-1)
    arr[rng.random(arr.shape[:2]) < missing] = np.nan  # whole hours missing
    return arr


def _nolds_measures():
    # nolds 0.6.3's package __init__ fails on Python 3.11.7; measures.py is self-contained.
    path = Path(sysconfig.get_paths()["purelib"]) / "nolds" / "measures.py"
    spec = importlib.util.spec_from_file_location("_nolds_measures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(fn, repeat: int) -> float:
    """Best-of-``repeat`` CPU time of ``fn()`` in seconds (this process; single-threaded work, so
    equal to wall time on an idle core, and not inflated by waiting for a core on a shared one)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=30, help="days of data; one participant-day per day ≥ 14")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = synthetic_participant(args.days)
    mods = DEFAULT_MODALITIES
    n_mod = len(mods)
    ends = list(range(13, args.days))  # participant-days with a full 14-day history
    windows_of = [data[d - 13 : d + 1] for d in ends]
    n_pd = len(ends)
    span = max(WINDOWS_DAYS)
    starts = [24 * (span - w) for w in WINDOWS_DAYS]

    def full() -> None:  # the whole stage: layout, r, all statistics, names
        for win in windows_of:
            rhythm_features(win, mods)

    def profile_part() -> None:
        for win in windows_of:
            series = win.transpose(2, 0, 1)
            for w in WINDOWS_DAYS:
                window_stats(series[:, span - w :, :])

    def periodogram_part() -> None:
        for win in windows_of:
            flat = win.transpose(2, 0, 1).reshape(n_mod, -1)
            for w, s in zip(WINDOWS_DAYS, starts, strict=True):
                periodogram_power_batch(flat[:, s:], tuple(p for p in RHYTHM_PERIODS_H if p <= 24 * w))

    # Every contender gets its inputs prepared before its timer starts: the (modality, hour)
    # rows and the tolerance r per window for ours; for the libraries, which do not handle
    # missing values, each window's series with missing hours filled by the window mean,
    # coarse-grained at every τ, and r — so only the entropy / periodogram work is timed.
    flat_of = [win.transpose(2, 0, 1).reshape(n_mod, -1) for win in windows_of]
    r_of = [np.array([[0.25 * np.nanstd(row[s:]) for s in starts] for row in flat]) for flat in flat_of]

    def sampen_part() -> None:
        for flat, r in zip(flat_of, r_of, strict=True):
            window_multiscale_sampen(flat, starts, r, SAMPEN_TAUS)

    def sampen_per_window() -> None:  # ours, without sharing one matrix across windows
        for flat in flat_of[:4]:
            for row in flat:
                for s in starts:
                    multiscale_sample_entropy(row[s:])

    # Baselines: the same windows with library calls. The libraries do not handle
    # missing values, so they get the series with missing hours filled by the window
    # mean (same sizes, same work).
    nolds = _nolds_measures()
    import antropy  # imported here: numba JIT start-up is not part of the figures

    def lib_inputs(flat: np.ndarray) -> list[tuple[np.ndarray, float]]:
        out = []
        for row in flat:
            for s in starts:
                x = row[s:]
                x = np.where(np.isnan(x), np.nanmean(x), x)
                out.append((x, 0.25 * float(np.std(x))))
        return out

    filled_of = [lib_inputs(flat) for flat in flat_of]
    grained_of = [[([coarse_grain(x, tau) for tau in SAMPEN_TAUS], r) for x, r in filled]
                  for filled in filled_of[:4]]

    def antropy_part() -> None:
        for grained in grained_of[:4]:
            for ys, r in grained:
                for y in ys:
                    antropy.sample_entropy(y, order=2, tolerance=r)

    def nolds_part() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for grained in grained_of[:1]:
                for ys, r in grained:
                    for y in ys:
                        nolds.sampen(y, emb_dim=2, tolerance=r, closed=False)

    def scipy_periodogram_part() -> None:
        for filled in filled_of:
            for x, _ in filled:
                scipy.signal.periodogram(x, fs=1.0, window="boxcar", detrend="constant", scaling="density")

    antropy.sample_entropy(np.random.default_rng(0).normal(size=100), order=2, tolerance=0.2)  # JIT
    full()  # warm caches (bases, layouts)
    per_pd = {
        "all rhythm features (rhythm_features)": timed(full, args.repeat) / n_pd,
        "  profile stats: M10/L5/RA/IS/IV/deviation": timed(profile_part, args.repeat) / n_pd,
        "  periodogram (15 exact periods)": timed(periodogram_part, args.repeat) / n_pd,
        "  multiscale sample entropy (τ 1–6)": timed(sampen_part, args.repeat) / n_pd,
    }
    parts = sum(v for k, v in per_pd.items() if k.startswith("  "))
    per_pd["  rest: layout, coverage, dict of ~2,000 names"] = max(0.0, per_pd["all rhythm features (rhythm_features)"] - parts)
    base = {
        "ours, sample entropy window by window (no shared matrix)": timed(sampen_per_window, 2) / 4,
        "antropy.sample_entropy (numba), 7 windows × 6 τ × 11": timed(antropy_part, args.repeat) / 4,
        "nolds.sampen(closed=False), 7 windows × 6 τ × 11": timed(nolds_part, 1) / 1,
        "scipy.signal.periodogram, 7 windows × 11": timed(scipy_periodogram_part, args.repeat) / n_pd,
    }
    print(f"rhythm statistics, {n_pd} participant-days ({n_mod} modalities × {len(WINDOWS_DAYS)} windows), "
          f"~10 % missing hours, one core, CPU time")
    print(f"{'':56s} {'ms / participant-day':>22s}")
    for name, sec in per_pd.items():
        print(f"{name:56s} {sec * 1e3:22.2f}")
    print("\nbaselines (same windows)")
    ours_se = per_pd["  multiscale sample entropy (τ 1–6)"]
    ours_pg = per_pd["  periodogram (15 exact periods)"]
    for name, sec in base.items():
        ref = ours_pg if "periodogram" in name else ours_se
        print(f"{name:56s} {sec * 1e3:22.2f}   ratio peer/ours {sec / ref:6.1f}")


if __name__ == "__main__":
    main()
