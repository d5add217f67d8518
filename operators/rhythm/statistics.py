"""Rolling rhythm statistics of hourly behaviour series (Tseng et al., npj Digit. Med. 2020).

For a local day d and a window of w days (day d and the w−1 days before it, i.e.
n = 24·w hourly values x_0 … x_{n−1} on local clock hours), each modality gets:

* ``m10``, ``l5``, ``ra`` — from the 24-h profile p_h (mean of hour-of-day h over the
  window), the largest mean of 10 and the smallest mean of 5 consecutive hours,
  cyclic (runs wrap past midnight, as pyActigraphy); RA = (M10 − L5)/(M10 + L5).
* ``is``, ``iv`` (continuous series only) — interdaily stability and intradaily
  variability, textbook population sums (Witting 1990, van Someren 1999):
  IS = n·Σ_h (p_h − x̄)² / (24·Σ_i (x_i − x̄)²),
  IV = n·Σ_{i≥1} (x_i − x_{i−1})² / ((n−1)·Σ_i (x_i − x̄)²).
* ``sampen.tau<τ>`` — multiscale sample entropy, τ = 1…6 (see :mod:`.entropy`).
* ``power.p<P>`` — periodogram power at period P hours, for P ≤ n (see :mod:`.periodogram`).
* ``dev.mean``, ``dev.median``, ``dev.sd``, ``dev.prev`` — deviation from the 24-h
  template. A day's deviation is D_k = (1/|H_k|) Σ_{h∈H_k} |x_{k,h} − p_h|, the mean
  absolute difference between day k's present hourly values and the window's
  profile at the same hours (H_k = the day's present hours; defined only when
  |H_k| ≥ min_coverage·24). ``dev.mean``/``dev.median``/``dev.sd`` (population SD,
  ddof = 0, needs ≥ 2 days) summarise D_k over the window's days with a defined
  deviation; ``dev.prev`` is D of day d−1, the day before the window's last day.

Missing hours are NaN (imputed type-2 hours must be passed as NaN). Every statistic
uses the present hours only, and a (modality, window) whose coverage — present
hours / n — is below ``min_coverage`` (default 0.5) gets ``None`` for every metric:

* profile p_h: mean of the present values of hour h; IS uses the between-hour sum
  Σ_h n_h (p_h − x̄)² with n_h present values of hour h and x̄, Σ(x_i − x̄)² over the
  present values (identical to the textbook formula when nothing is missing, and
  never above 1);
* IV: squared differences only over consecutive pairs with both hours present,
  divided by the number of such pairs (n − 1 when complete), over Σ(x_i − x̄)²/n_present;
* M10/L5: a run's mean is the mean of its present profile hours; a run with fewer
  than half of its hours present in the profile is not eligible;
* periodogram: exact sum over the present hours (Lomb–Scargle-style), centred on
  their mean, divided by their count;
* sample entropy: a coarse block with a missing hour is missing; templates only
  from runs without missing values; r from the present scale-1 values.

Undefined values (zero variance, no matches, …) are ``None``, never 0 or NaN.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .entropy import window_multiscale_sampen
from .periodogram import RHYTHM_PERIODS_H, periodogram_power_batch

__all__ = [
    "CONTINUOUS_MODALITIES",
    "COUNT_MODALITIES",
    "DEFAULT_MODALITIES",
    "WINDOWS_DAYS",
    "SAMPEN_TAUS",
    "DEFAULT_MIN_COVERAGE",
    "RHYTHM_PERIODS_H",
    "window_stats",
    "rhythm_features",
    "feature_names",
]

#: Continuous hourly series: IS and IV apply. Activity is ``accel_sd`` (SD of ‖a‖ in the
#: hour), not ``accel_mean``: the mean of ‖a‖ is ≈ g = 9.81 m/s² whether the person walks
#: or sleeps, so it carries almost no rhythm (docs/rhythm.md, "Activity").
CONTINUOUS_MODALITIES: tuple[str, ...] = ("accel_sd", "light_lux_mean", "sound_db_mean")
#: Count / duration hourly series: no IS/IV (call_n, call_s, sms_n are totals over directions).
COUNT_MODALITIES: tuple[str, ...] = (
    "screen_on_s",
    "screen_unlocks",
    "call_n",
    "call_s",
    "sms_n",
    "distance_m",
    "place_primary_s",
    "conversation_s",
)
DEFAULT_MODALITIES: tuple[str, ...] = CONTINUOUS_MODALITIES + COUNT_MODALITIES
#: Window lengths, days (Tseng et al. 2020).
WINDOWS_DAYS: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14)
#: Sample-entropy scales τ.
SAMPEN_TAUS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
#: Least fraction of present hours for a window's statistics (and of a day's hours
#: for that day's template deviation); below it the value is None.
DEFAULT_MIN_COVERAGE: float = 0.5

#: Column order of the per-window metric array built by :func:`rhythm_features`.
_BASE_METRICS: tuple[str, ...] = (
    "m10", "l5", "ra", "is", "iv", "dev.mean", "dev.median", "dev.sd", "dev.prev",
)  # fmt: skip


def _cyclic_run_means(profile: np.ndarray, length: int) -> np.ndarray:
    """Means of ``length`` consecutive profile hours for each of the 24 cyclic starts.

    (S, 24) → (S, 24); NaN where fewer than ⌈length/2⌉ of the run's hours are present.
    """
    ext = np.concatenate([profile, profile[:, : length - 1]], axis=1)
    present = ~np.isnan(ext)
    sums = sliding_window_view(np.where(present, ext, 0.0), length, axis=1).sum(axis=-1)
    counts = sliding_window_view(present, length, axis=1).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts >= (length + 1) // 2, sums / counts, np.nan)


def window_stats(xw: np.ndarray, min_coverage: float = DEFAULT_MIN_COVERAGE) -> dict[str, np.ndarray]:
    """Profile statistics of one window for S series at once.

    ``xw``: (S, w, 24) hourly values, day-major (NaN = missing). Returns a dict of
    (S,) float arrays: ``m10``, ``l5``, ``ra``, ``is``, ``iv``, ``dev.mean``,
    ``dev.median``, ``dev.sd``, ``dev.prev`` (formulas in the module docstring;
    NaN = undefined, not yet gated by coverage), plus ``coverage`` (present hours /
    24w), ``n`` (present hours) and ``sd`` (population SD of the present values).
    """
    xw = np.asarray(xw, dtype=float)
    n_series, n_days, _ = xw.shape
    valid = ~np.isnan(xw)
    filled = np.where(valid, xw, 0.0)
    cnt_h = valid.sum(axis=1)  # (S, 24)
    sum_h = filled.sum(axis=1)
    n_valid = cnt_h.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = sum_h / cnt_h  # NaN for hours never present
        mean = sum_h.sum(axis=1) / n_valid
        centred = np.where(valid, xw - mean[:, None, None], 0.0)
        ss = np.einsum("swh,swh->s", centred, centred)
        # A constant series can leave a rounding residue in ss (the mean of n equal
        # floats is not always that float), so test constancy on the values.
        hi = np.where(valid, xw, -np.inf).max(axis=(1, 2))
        lo = np.where(valid, xw, np.inf).min(axis=(1, 2))
        ss = np.where((hi > lo) & (ss > 0), ss, np.nan)  # zero variance: IS, IV undefined
        prof_dev = np.where(cnt_h > 0, profile - mean[:, None], 0.0)
        out["is"] = (cnt_h * prof_dev**2).sum(axis=1) / ss

        steps = np.diff(xw.reshape(n_series, -1), axis=1)
        step_ok = ~np.isnan(steps)
        n_pairs = step_ok.sum(axis=1)
        sq_steps = np.where(step_ok, steps, 0.0) ** 2
        iv = (sq_steps.sum(axis=1) / n_pairs) / (ss / n_valid)
        out["iv"] = np.where(n_pairs > 0, iv, np.nan)

        m10 = np.fmax.reduce(_cyclic_run_means(profile, 10), axis=1)
        l5 = np.fmin.reduce(_cyclic_run_means(profile, 5), axis=1)
        total = m10 + l5
        out["m10"], out["l5"] = m10, l5
        out["ra"] = np.where(total != 0, (m10 - l5) / total, np.nan)

        # Template deviation per day: mean |x − p_h| over the day's present hours.
        absdev = np.where(valid, np.abs(xw - profile[:, None, :]), 0.0)
        day_n = valid.sum(axis=2)  # (S, w)
        day_dev = np.where(day_n >= min_coverage * 24, absdev.sum(axis=2) / day_n, np.nan)
        have = ~np.isnan(day_dev)
        n_dd = have.sum(axis=1)
        dd0 = np.where(have, day_dev, 0.0)
        dmean = dd0.sum(axis=1) / n_dd
        dvar = (np.where(have, day_dev - dmean[:, None], 0.0) ** 2).sum(axis=1) / n_dd
        ordered = np.sort(day_dev, axis=1)  # NaN sort last
        rows = np.arange(n_series)
        lo_i = np.maximum((n_dd - 1) // 2, 0)
        hi_i = np.minimum(n_dd // 2, n_days - 1)
        median = 0.5 * (ordered[rows, lo_i] + ordered[rows, hi_i])
        out["dev.mean"] = np.where(n_dd > 0, dmean, np.nan)
        out["dev.median"] = np.where(n_dd > 0, median, np.nan)
        out["dev.sd"] = np.where(n_dd >= 2, np.sqrt(dvar), np.nan)
        out["dev.prev"] = day_dev[:, -2] if n_days >= 2 else np.full(n_series, np.nan)

        out["coverage"] = n_valid / (24.0 * n_days)
        out["n"] = n_valid.astype(float)
        out["sd"] = np.sqrt(np.where(n_valid > 0, np.nan_to_num(ss) / n_valid, np.nan))
    return out


@dataclass(frozen=True)
class _Layout:
    """Feature names in output order and their positions in the (M, W, K) value array."""

    keys: tuple[str, ...]
    index: np.ndarray
    n_metrics: int
    sampen_cols: slice
    power_cols: slice


@lru_cache(maxsize=32)
def _layout(
    modalities: tuple[str, ...],
    continuous: frozenset[str],
    windows: tuple[int, ...],
    periods: tuple[int, ...],
    taus: tuple[int, ...],
) -> _Layout:
    metrics = (
        list(_BASE_METRICS)
        + [f"sampen.tau{t}" for t in taus]
        + [f"power.p{_fmt_period(p)}" for p in periods]
    )
    n_base = len(_BASE_METRICS)
    k = len(metrics)
    keys: list[str] = []
    index: list[int] = []
    for mi, mod in enumerate(modalities):
        for wi, w in enumerate(windows):
            for ki, metric in enumerate(metrics):
                if metric in ("is", "iv") and mod not in continuous:
                    continue
                if ki >= n_base + len(taus) and periods[ki - n_base - len(taus)] > 24 * w:
                    continue
                keys.append(f"{mod}.{metric}.w{w}")
                index.append((mi * len(windows) + wi) * k + ki)
    idx = np.asarray(index, dtype=np.intp)
    idx.setflags(write=False)
    return _Layout(
        keys=tuple(keys),
        index=idx,
        n_metrics=k,
        sampen_cols=slice(n_base, n_base + len(taus)),
        power_cols=slice(n_base + len(taus), k),
    )


def _fmt_period(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


def feature_names(
    modalities: Sequence[str] = DEFAULT_MODALITIES,
    *,
    continuous: Collection[str] = CONTINUOUS_MODALITIES,
    windows: Sequence[int] = WINDOWS_DAYS,
    periods: Sequence[int] = RHYTHM_PERIODS_H,
    taus: Sequence[int] = SAMPEN_TAUS,
) -> tuple[str, ...]:
    """All feature names :func:`rhythm_features` emits, in order:
    ``<modality>.<metric>[.<param>].w<days>``."""
    return _layout(
        tuple(modalities), frozenset(continuous), tuple(windows), tuple(periods), tuple(taus)
    ).keys


def rhythm_features(
    window_hours: np.ndarray,
    modalities: Sequence[str],
    *,
    continuous: Collection[str] = CONTINUOUS_MODALITIES,
    windows: Sequence[int] = WINDOWS_DAYS,
    periods: Sequence[int] = RHYTHM_PERIODS_H,
    taus: Sequence[int] = SAMPEN_TAUS,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    r_factor: float = 0.25,
) -> tuple[dict[str, float | None], dict[str, float]]:
    """All rhythm features of one participant-day — the single code path of the
    ``rhythm.daily`` stage and of ``phenoflow rhythm``.

    ``window_hours``: (days, 24, M) hourly values on local clock hours, the last day
    being day d (NaN = missing, imputed hours included); fewer days than the longest
    window are treated as missing days. Returns ``(features, coverage)``:
    ``features`` maps ``<modality>.<metric>[.<param>].w<days>`` to a float or None
    (module docstring); ``coverage`` maps ``w<days>`` to the fraction of the window's
    hours where any modality is present and ``<modality>.w<days>`` to that
    modality's fraction. Metrics of a (modality, window) with coverage below
    ``min_coverage`` are None.
    """
    arr = np.asarray(window_hours, dtype=float)
    mods = tuple(modalities)
    if arr.ndim != 3 or arr.shape[1] != 24 or arr.shape[2] != len(mods):
        raise ValueError(f"window_hours must be (days, 24, {len(mods)}), got {arr.shape}")
    wins = tuple(int(w) for w in windows)
    span = max(wins)
    if arr.shape[0] < span:
        pad = np.full((span - arr.shape[0], 24, len(mods)), np.nan)
        arr = np.concatenate([pad, arr], axis=0)
    arr = arr[-span:]
    layout = _layout(mods, frozenset(continuous), wins, tuple(periods), tuple(taus))
    series = np.ascontiguousarray(arr.transpose(2, 0, 1))  # (M, span, 24)
    n_mod = len(mods)
    values = np.full((n_mod, len(wins), layout.n_metrics), np.nan)
    r = np.full((n_mod, len(wins)), np.nan)
    ok = np.zeros((n_mod, len(wins)), dtype=bool)
    coverage: dict[str, float] = {}
    any_present = ~np.isnan(series).all(axis=0)  # (span, 24)
    for wi, w in enumerate(wins):
        xw = series[:, span - w :, :]
        st = window_stats(xw, min_coverage)
        for ci, metric in enumerate(_BASE_METRICS):
            values[:, wi, ci] = st[metric]
        ok[:, wi] = (st["coverage"] >= min_coverage) & (st["n"] >= 2)
        r[:, wi] = r_factor * st["sd"]
        kept = tuple(p for p in periods if p <= 24 * w)
        if kept:
            cols = layout.power_cols.start + np.arange(len(kept))
            values[:, wi, cols] = periodogram_power_batch(xw.reshape(n_mod, -1), kept)
        coverage[f"w{w}"] = float(any_present[span - w :].mean())
        for mi, mod in enumerate(mods):
            coverage[f"{mod}.w{w}"] = float(st["coverage"][mi])
    rows = np.flatnonzero(ok.any(axis=1))
    if rows.size and taus:
        starts = [24 * (span - w) for w in wins]
        r_rows = np.where(ok[rows], r[rows], np.nan)  # skip windows that will be None
        flat = series[rows].reshape(rows.size, -1)
        values[rows, :, layout.sampen_cols] = window_multiscale_sampen(
            flat, starts, r_rows, tuple(taus)
        )
    values[~ok] = np.nan
    flat_values = values.reshape(-1)[layout.index].tolist()
    features = {k: (None if v != v else v) for k, v in zip(layout.keys, flat_values, strict=True)}
    return features, coverage
