"""Multiscale sample entropy (Richman & Moorman 2000; Costa et al. 2002), vectorised.

Conventions (docs/rhythm.md, "Definitions and conventions"; identical to
``nolds.sampen(x, emb_dim=m, tolerance=r, closed=False)`` and
``antropy.sample_entropy(x, order=m, tolerance=r)`` for series under 5,000 points):

* coarse-graining at scale τ: ``y_j = mean(x[jτ:(j+1)τ])``, the remainder dropped;
* templates of length m and m+1, Chebyshev distance, a match iff distance ``< r``
  (strict), self-matches excluded;
* the same N−m template starts (those with an (m+1)-long run) for both lengths, so
  ``B`` = matching pairs of m-templates, ``A`` = matching pairs of (m+1)-templates;
* ``SampEn = −ln(A / B)``; undefined when ``A = 0``, ``B = 0`` or ``r <= 0`` → ``NaN``
  here (callers turn it into ``None``), never 0 and never ±inf.

Missing values (NaN): a coarse block with any missing value is missing; a template
start is used only if its whole (m+1)-run is present, and it then counts towards both
``B`` and ``A`` — the N−m convention applied to each run of present values, with
pairs across runs allowed. With no missing values this is exactly the textbook value.

Algorithm (why not sklearn's KDTree: ``query_radius`` counts ``distance <= r``, which
is the closed convention, and antropy uses it only for long series): for n ≤ a few
hundred the full pairwise Chebyshev matrix is cheapest. The distance matrix of one
series is computed once and shared by several *suffixes* of that series, each with
its own tolerance — the rhythm windows (2…14 days ending on the same day) are
suffixes of the 14-day buffer, so one matrix per scale serves all seven windows.
Pairs are kept in row-major upper-triangle order so that a suffix is one contiguous
slice of the pair array.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

__all__ = [
    "coarse_grain",
    "tolerance",
    "sampen_suffix_counts",
    "sample_entropy",
    "multiscale_sample_entropy",
    "window_multiscale_sampen",
]


def coarse_grain(x: np.ndarray, tau: int) -> np.ndarray:
    """Coarse-grain along the last axis: ``y_j = (1/τ) Σ_{i=jτ}^{(j+1)τ−1} x_i``.

    The ``n mod τ`` trailing values are dropped (Costa et al. 2002). A block with
    any NaN is NaN. Units: those of ``x``.
    """
    if tau < 1:
        raise ValueError("tau must be >= 1")
    if tau == 1:
        return np.asarray(x, dtype=float)
    n = x.shape[-1] // tau * tau
    return x[..., :n].reshape(*x.shape[:-1], n // tau, tau).mean(axis=-1)


_local = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A reusable per-thread work array. Fresh multi-MB arrays cost page faults on
    every call (several times the arithmetic itself); Bytewax may run workers as
    threads and numpy releases the GIL, hence one set of buffers per thread."""
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    pool: dict = _local.__dict__.setdefault("pool", {})
    buf = pool.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        pool[key] = buf
    return buf[:size].reshape(shape)


@lru_cache(maxsize=64)
def _triu_layout(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat row-major indices of the strict upper triangle of a t×t matrix, and the
    offset in that flat order where row i starts (so rows i ≥ s are ``[offset[s]:]``)."""
    rows, cols = np.triu_indices(t, 1)
    flat = rows * t + cols
    i = np.arange(t + 1)
    offsets = i * (t - 1) - i * (i - 1) // 2
    flat.setflags(write=False)
    offsets.setflags(write=False)
    return flat, offsets


def sampen_suffix_counts(
    y: np.ndarray, starts: list[int], r: np.ndarray, m: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Matching-pair counts ``(B, A)`` of sample entropy for suffixes of series.

    ``y``: (S, E) series (NaN = missing), all ending at the same point;
    ``starts``: K suffix starts (index into the last axis); ``r``: (S, K)
    tolerances, one per series and suffix. The suffix ``y[:, s:]`` uses the
    template starts i ≥ s with i ≤ E−m−1 and a fully present run ``y[i..i+m]``.
    ``B[i, k]`` (series i, suffix k) counts unordered pairs i < j with ``max_{l<m} |y_{i+l} − y_{j+l}| < r``,
    ``A[s, k]`` the same over l ≤ m. Returns two (S, K) int arrays.
    """
    if m < 1:
        raise ValueError("m must be >= 1")
    y = np.asarray(y, dtype=float)
    n_series, length = y.shape
    n_t = length - m
    b_counts = np.zeros((n_series, len(starts)), dtype=np.int64)
    a_counts = np.zeros_like(b_counts)
    if n_t < 2 or n_series == 0:
        return b_counts, a_counts
    r = np.asarray(r, dtype=float).reshape(n_series, len(starts))
    flat, offsets = _triu_layout(n_t)
    lo = [int(offsets[min(max(s, 0), n_t)]) for s in starts]
    diff = _scratch("diff", (length, length), float)
    dm = _scratch("dm", (n_t, n_t), float)
    # One series at a time: its matrices (≤ 0.9 MB at n = 336) stay in cache, which
    # measured ~2x faster than one (S, n, n) batch.
    for i in range(n_series):
        if not (r[i] > 0).any():
            continue  # r = 0 or NaN everywhere: undefined, nothing to count
        yi = y[i]
        np.subtract.outer(yi, yi, out=diff)
        np.abs(diff, out=diff)
        if m == 1:
            np.copyto(dm, diff[:n_t, :n_t])
        else:
            np.maximum(diff[:n_t, :n_t], diff[1 : 1 + n_t, 1 : 1 + n_t], out=dm)
        for lag in range(2, m):
            np.maximum(dm, diff[lag : lag + n_t, lag : lag + n_t], out=dm)
        # np.take without out= is its fast path (~3x faster than with out=).
        pm = np.take(dm.reshape(-1), flat)
        np.maximum(dm, diff[m : m + n_t, m : m + n_t], out=dm)
        pm1 = np.take(dm.reshape(-1), flat)
        if np.isnan(yi).any():
            # pm1 is NaN exactly when a start's (m+1)-run is incomplete; such starts
            # are no templates for B either (the N−m convention, per run).
            np.copyto(pm, np.nan, where=np.isnan(pm1))
        for k in range(len(starts)):
            if not r[i, k] > 0:
                continue
            # 1-D count_nonzero is a fast popcount (the axis= form is a slow sum).
            b_counts[i, k] = np.count_nonzero(pm[lo[k] :] < r[i, k])
            a_counts[i, k] = np.count_nonzero(pm1[lo[k] :] < r[i, k])
    return b_counts, a_counts


def _sampen_from_counts(b: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``−ln(A/B)``, NaN where undefined (A = 0, B = 0, or r not > 0)."""
    out = np.full(np.shape(b), np.nan)
    ok = (a > 0) & (b > 0) & (np.asarray(r) > 0)
    out[ok] = -np.log(a[ok] / b[ok])
    return out


def tolerance(x: np.ndarray, r_factor: float = 0.25) -> float:
    """``r = r_factor · SD(x, ddof=0)`` over the present (non-NaN) values; exactly 0
    for a constant or empty series (np.std of equal floats can be a rounding residue)."""
    present = np.asarray(x, dtype=float)
    present = present[~np.isnan(present)]
    if present.size == 0 or present.max() == present.min():
        return 0.0
    return r_factor * float(np.std(present))


def sample_entropy(x: np.ndarray, r: float | None = None, m: int = 2) -> float | None:
    """Sample entropy ``SampEn(m, r) = −ln(A/B)`` of one series (Richman & Moorman 2000).

    ``r`` defaults to ``0.25 · SD(x, ddof=0)`` over the present values. Chebyshev
    distance, strict ``< r``, N−m templates for lengths m and m+1, no self-matches.
    Returns ``None`` when undefined (no m- or (m+1)-matches, or r = 0, e.g. a
    constant series). NaN values are missing (see module docstring).
    """
    x = np.asarray(x, dtype=float)
    if r is None:
        r = tolerance(x, 0.25)
    rr = np.array([[r]], dtype=float)
    b, a = sampen_suffix_counts(x[None, :], [0], rr, m)
    v = _sampen_from_counts(b, a, rr)[0, 0]
    return None if np.isnan(v) else float(v)


def multiscale_sample_entropy(
    x: np.ndarray, taus: tuple[int, ...] = (1, 2, 3, 4, 5, 6), r_factor: float = 0.25, m: int = 2
) -> dict[int, float | None]:
    """Multiscale sample entropy (Costa et al. 2002): SampEn of ``coarse_grain(x, τ)``.

    ``r = r_factor · SD(x, ddof=0)`` of the ORIGINAL scale-1 series (present values),
    the same r at every scale. Returns {τ: SampEn or None}.
    """
    x = np.asarray(x, dtype=float)
    r = tolerance(x, r_factor)
    return {tau: sample_entropy(coarse_grain(x, tau), r, m) for tau in taus}


def window_multiscale_sampen(
    series: np.ndarray,
    window_starts: list[int],
    r: np.ndarray,
    taus: tuple[int, ...],
    m: int = 2,
) -> np.ndarray:
    """Multiscale SampEn of several suffix windows of several series at once.

    ``series``: (S, n) hourly series (NaN = missing), all windows end at n;
    ``window_starts``: K start indices (hours); ``r``: (S, K) tolerances (already
    ``r_factor · SD`` of each window's scale-1 values). Each window is coarse-grained
    from its own start. Returns (S, K, len(taus)) SampEn, NaN where undefined.

    Windows whose starts are congruent modulo τ share one coarse-grained series and
    one distance matrix (they end on the same coarse block, because the remainder is
    dropped at the end); all other work is a comparison on a contiguous slice.
    """
    n_series, n = series.shape
    out = np.full((n_series, len(window_starts), len(taus)), np.nan)
    r = np.asarray(r, dtype=float)
    for ti, tau in enumerate(taus):
        groups: dict[int, list[int]] = {}
        for k, s in enumerate(window_starts):
            groups.setdefault(s % tau, []).append(k)
        for ks in groups.values():
            s0 = min(window_starts[k] for k in ks)
            y = coarse_grain(series[:, s0:], tau)
            starts = [(window_starts[k] - s0) // tau for k in ks]
            b, a = sampen_suffix_counts(y, starts, r[:, ks], m)
            out[:, ks, ti] = _sampen_from_counts(b, a, r[:, ks])
    return out

