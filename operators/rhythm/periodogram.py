"""Periodogram power at exact periods (Tseng et al. 2020 rhythm features), vectorised.

For an hourly window x_0 … x_{n−1} (t in hours) and a period P (hours), f = 1/P:

    power(P) = c · |Σ_t (x_t − x̄) e^{−2πift}|² / n,   c = 2, except c = 1 at f = 0.5 for even n.

This is ``scipy.signal.periodogram(x, fs=1, window="boxcar", detrend="constant",
scaling="density")`` at the bins where n is a multiple of P; at other periods the
nearest FFT bin is a different period, hence the exact-frequency sum (units: x² · h).

Missing hours (NaN): the sum runs over the present hours only, x̄ is the mean of the
present hours and n is their count — a Lomb–Scargle-style exact sum over the valid t
(the classical Lomb–Scargle periodogram additionally fits a per-frequency phase τ and
normalises cos and sin parts separately; with no missing hours and n a multiple of P
it is exactly half this value, elsewhere it differs slightly). The Nyquist rule (c = 1
at f = 0.5) follows the window length n, which is always even for whole days.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["RHYTHM_PERIODS_H", "periodogram_power", "periodogram_power_batch"]

#: Periods (hours) of the seed's rhythm features (Tseng et al. 2020).
RHYTHM_PERIODS_H: tuple[int, ...] = (2, 4, 8, 16, 20, 22, 27, 28, 32, 36, 64, 72, 128, 256, 512)


@lru_cache(maxsize=128)
def _basis(n: int, periods: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Basis ``[cos | sin](2π t / P)`` for t = 0…n−1, shape (n, 2K), and c per period."""
    t = np.arange(n, dtype=float)[:, None]
    f = 1.0 / np.asarray(periods, dtype=float)[None, :]
    phase = 2.0 * np.pi * f * t
    basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1)
    c = np.where((np.asarray(periods, dtype=float) == 2.0) & (n % 2 == 0), 1.0, 2.0)
    basis.setflags(write=False)
    c.setflags(write=False)
    return basis, c


def periodogram_power_batch(x: np.ndarray, periods: tuple[float, ...]) -> np.ndarray:
    """Power at each period for a batch of windows.

    ``x``: (S, n) series (NaN = missing hour); returns (S, len(periods)) in units of
    x²·h: ``c · |Σ_{t valid}(x_t − x̄) e^{−2πit/P}|² / n_valid`` (see module docstring).
    NaN where a series has fewer than 2 present values.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    basis, c = _basis(n, tuple(float(p) for p in periods))
    valid = ~np.isnan(x)
    n_valid = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_valid > 0, np.nansum(x, axis=-1) / np.maximum(n_valid, 1), np.nan)
    centred = np.where(valid, x - mean[:, None], 0.0)
    proj = centred @ basis  # (S, 2·K): Σ x cos, Σ x sin
    k = len(periods)
    power = c * (proj[:, :k] ** 2 + proj[:, k:] ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = power / n_valid[:, None]
    power[n_valid < 2] = np.nan
    return power


def periodogram_power(
    x: np.ndarray, periods: tuple[float, ...] = RHYTHM_PERIODS_H
) -> dict[float, float | None]:
    """Periodogram power of one hourly series at the given periods (hours).

    Only periods with P ≤ n (n = len(x), the window length) are returned; value
    ``c · |Σ_t (x_t − x̄) e^{−2πit/P}|² / n`` over the present hours (module
    docstring), ``None`` when fewer than 2 hours are present.
    """
    x = np.asarray(x, dtype=float)
    kept = tuple(p for p in periods if p <= x.size)
    if not kept:
        return {}
    row = periodogram_power_batch(x[None, :], kept)[0]
    return {p: (None if np.isnan(v) else float(v)) for p, v in zip(kept, row, strict=True)}
