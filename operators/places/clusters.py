"""Significant places and time-at-place / distance from GPS fixes (Adler et al. 2020).

Per participant, DBSCAN (scikit-learn, haversine metric on radians; seed
ε = 1 km, min 10 samples) over a rolling, down-sampled location history; the
two largest clusters are the *primary* and *secondary* place, everything else
is *other*.

* History: at most one fix per ``bin_s`` (default 300 s, the earliest fix of
  each bin) over the last ``history_days`` (default 14) days — at most
  14·288 = 4 032 points, so the state stays small.
* Refit policy: when a local day closes its fixes join the history and the
  model is refitted every ``refit_days``-th close (default 1: every day).
  Between refits fixes are labelled with the previous fit.
* Approximation — snapping to a grid relative to ε: before clustering, fixes
  are snapped to a grid of step ``GRID_FRACTION``·ε = ε/30 (33 m for
  ε = 1 km, about the median accuracy of a phone fix) in degrees of latitude
  and of longitude, and DBSCAN runs on the occupied cells with the fixes per
  cell as ``sample_weight`` (exactly DBSCAN on the snapped fixes). Why: the
  neighbourhood search grows with the pairs of points within ε of each other;
  a 14-day history of ~1 500 fixes with ~30 m GPS jitter occupies ~370 cells
  of the former fixed 1e-4° grid but ~130 cells of ε/30, a ~2.5× cheaper fit.
  Bound: a fix moves by at most half a cell diagonal, (ε/30)/√2 ≈ 2.4 % of ε
  (less east–west away from the equator, where a degree of longitude is
  shorter), so a pairwise distance changes by at most ≈ 4.7 % of ε; only
  pairs whose true distance lies within that band around ε can change
  neighbour (and so core) status. Measured on simulated cohorts, the
  primary/secondary/other labels equal those of unsnapped DBSCAN for
  99.9–99.99 % of fixes (tests/unit/test_places.py). ε/20 was rejected:
  in ~1 history in 30 it merged two places joined by a trail of fixes near
  ε (97.9 % agreement on a 10-person cohort).
* Labelling: a fix belongs to the primary/secondary place iff it lies within
  ε of one of that cluster's core cells (DBSCAN's own rule for border
  points); the nearest core cell wins when both qualify. The ball tree of core
  cells is built once per fit and reused until the next fit; it is not
  pickled (rebuilt lazily from the stored roles after a restore).
* Stable labels: clusters are ranked by size, but when the new top two are
  the old two places in swapped order (each new centroid within ε of the
  other's old centroid) the old roles are kept unless the new primary is more
  than ``swap_margin`` (default 1.2×) larger — two places of similar size do
  not flip labels from day to day.

Raw coordinates live only inside this state; callers get labels, seconds and
metres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sklearn
from numpy.typing import NDArray
from sklearn.cluster import DBSCAN
from sklearn.neighbors import BallTree

from phenoflow.core.state import VERSION_KEY, check_state_version
from phenoflow.operators.places.geo import (
    EARTH_RADIUS_M,
    haversine1_m,
    haversine_m,
    metres_to_radians,
    spherical_centroid,
    to_radians,
)

__all__ = ["PLACE_NAMES", "GRID_FRACTION", "grid_step_deg", "PlaceModel", "PlaceTracker"]

OTHER, PRIMARY, SECONDARY = 0, 1, 2
#: Index order of the place rows returned by :meth:`PlaceTracker.attribute`.
PLACE_NAMES: tuple[str, str, str] = ("other", "primary", "secondary")

#: Snapping grid step as a fraction of ε (see the module docstring for the bound).
GRID_FRACTION = 1.0 / 30.0
#: Smallest grid step, degrees (≈ 0.11 m): keeps the int64 cell keys from overflowing.
_MIN_STEP_DEG = 1e-6
_METRES_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
# Cell key = (i + _I0)·_NJ + (j + _J0) for the grid indices i (lat), j (lon);
# sized for the smallest step so one 1-D np.unique replaces the slow row-wise
# np.unique(axis=0).
_I0 = math.ceil(90.0 / _MIN_STEP_DEG) + 1
_J0 = math.ceil(180.0 / _MIN_STEP_DEG) + 1
_NJ = 2 * _J0 + 1

#: (ball tree of the core cells, role per core cell); tree None when there are none.
_Index = tuple["BallTree | None", NDArray[np.int8]]


def grid_step_deg(eps_m: float) -> float:
    """Snapping grid step, degrees: ``GRID_FRACTION``·ε converted at 1° = R·π/180 m."""
    return max(float(eps_m) * GRID_FRACTION / _METRES_PER_DEG, _MIN_STEP_DEG)


def _cell_keys(lat: NDArray[np.float64], lon: NDArray[np.float64], step: float) -> NDArray[np.int64]:
    """One int64 per fix naming its grid cell; sorting keys sorts cells by (lat, lon) index."""
    i = np.rint(np.asarray(lat, np.float64) / step).astype(np.int64)
    j = np.rint(np.asarray(lon, np.float64) / step).astype(np.int64)
    return (i + _I0) * _NJ + (j + _J0)


def _cell_radians(keys: NDArray[np.int64], step: float) -> NDArray[np.float64]:
    """(n, 2) [lat, lon] radians of the cell centres named by ``keys``."""
    i, j = np.divmod(keys, _NJ)
    return to_radians((i - _I0) * step, (j - _J0) * step)


def _index(cells: NDArray[np.float64], roles: NDArray[np.int8]) -> _Index:
    return (BallTree(cells, metric="haversine") if roles.size else None), roles


class PlaceModel:
    """Rolling location history + DBSCAN roles of one participant (picklable, ≤ ~150 kB)."""

    def __init__(
        self,
        eps_m: float = 1000.0,
        min_samples: int = 10,
        history_days: float = 14.0,
        bin_s: float = 300.0,
        refit_days: int = 1,
        swap_margin: float = 1.2,
    ) -> None:
        self.eps_m = float(eps_m)
        self.min_samples = int(min_samples)
        self.history_s = float(history_days) * 86400.0
        self.bin_s = float(bin_s)
        self.refit_days = max(1, int(refit_days))
        self.swap_margin = float(swap_margin)
        self.ts = np.empty(0, np.float64)
        self.lat = np.empty(0, np.float64)
        self.lon = np.empty(0, np.float64)
        #: 1/2 = core sample of the primary/secondary cluster in the last fit, else 0.
        self.role = np.empty(0, np.int8)
        self.centroids: dict[int, tuple[float, float]] = {}
        self.fits = 0
        self._closes_since_fit = 0
        self._index: _Index | None = None  # derived from role; None = rebuild on next label

    #: Layout version of the pickled state (recovery snapshots); bump on incompatible changes.
    #: 2: history in the participant's private frame (``lat``/``lon`` rotated, see :mod:`.frame`).
    STATE_VERSION = 2

    def __getstate__(self) -> dict[str, Any]:
        # The ball tree is derived data (rebuilt in ~0.1 ms): snapshots keep only the history and roles.
        state = self.__dict__.copy()
        del state["_index"]
        state[VERSION_KEY] = self.STATE_VERSION
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        check_state_version(type(self), state)
        state.pop(VERSION_KEY, None)
        self.__dict__.update(state)
        self._index = None

    def __len__(self) -> int:
        return int(self.ts.size)

    def add(self, ts: NDArray[np.float64], lat: NDArray[np.float64], lon: NDArray[np.float64], now: float) -> None:
        """Add fixes sorted by time (down-sampled to one per bin) and drop those older than the window."""
        if ts.size:
            bins = np.floor(ts / self.bin_s)
            _, first = np.unique(bins, return_index=True)
            keep = first
            if self.ts.size:
                # A day's first bin may already hold the previous day's last fix.
                keep = keep[bins[keep] > math.floor(self.ts[-1] / self.bin_s)]
            self.ts = np.concatenate([self.ts, ts[keep]])
            self.lat = np.concatenate([self.lat, lat[keep]])
            self.lon = np.concatenate([self.lon, lon[keep]])
            self.role = np.concatenate([self.role, np.zeros(keep.size, np.int8)])
        old = self.ts < now - self.history_s
        if old.any():
            if (self.role[old] > 0).any():
                self._index = None  # a core cell may have left with them
            live = ~old
            self.ts, self.lat, self.lon, self.role = (
                self.ts[live], self.lat[live], self.lon[live], self.role[live]
            )

    def day_closed(self) -> bool:
        """Apply the refit policy after a day's fixes were added; True if refitted."""
        self._closes_since_fit += 1
        if self.fits == 0 or self._closes_since_fit >= self.refit_days:
            self.refit()
            return True
        return False

    def refit(self) -> None:
        """DBSCAN over the whole history; set primary/secondary roles and centroids.

        Fixes are merged into grid cells of ``GRID_FRACTION``·ε and clustered
        with the cell counts as ``sample_weight`` — exactly DBSCAN on the
        snapped fixes (bounded approximation: see the module docstring).
        """
        self.fits += 1
        self._closes_since_fit = 0
        self.role = np.zeros(self.ts.size, np.int8)
        self._index = _index(np.empty((0, 2)), np.empty(0, np.int8))
        if self.ts.size < self.min_samples:
            return
        step = grid_step_deg(self.eps_m)
        keys, point_cell, weight = np.unique(_cell_keys(self.lat, self.lon, step), return_inverse=True,
                                             return_counts=True)
        cells = _cell_radians(keys, step)
        # Inputs are finite degrees and fixed-type parameters: skip sklearn's
        # per-call validation (~20 % of a fit on ~130 cells).
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            db = DBSCAN(
                eps=metres_to_radians(self.eps_m),
                min_samples=self.min_samples,
                metric="haversine",
                algorithm="ball_tree",
            ).fit(cells, sample_weight=weight)
        labels = db.labels_[point_cell]  # per history point
        sizes = np.bincount(labels[labels >= 0])
        if sizes.size == 0:
            return
        # Largest first; equal sizes → lower cluster id.
        ranked = sorted(range(sizes.size), key=lambda c: (-sizes[c], c))[:2]
        cents = {c: spherical_centroid(self.lat[labels == c], self.lon[labels == c]) for c in ranked}
        roles = {ranked[0]: PRIMARY}
        if len(ranked) == 2:
            a, b = ranked
            roles[b] = SECONDARY
            old_p, old_s = self.centroids.get(PRIMARY), self.centroids.get(SECONDARY)
            if (
                old_p is not None
                and old_s is not None
                and self._near(cents[a], old_s)
                and self._near(cents[b], old_p)
                and sizes[a] <= self.swap_margin * sizes[b]
            ):
                roles = {a: SECONDARY, b: PRIMARY}
        core_cell = np.zeros(keys.size, bool)
        core_cell[db.core_sample_indices_] = True
        cell_role = np.zeros(keys.size, np.int8)
        for c, r in roles.items():
            cell_role[core_cell & (db.labels_ == c)] = r
        self.role = cell_role[point_cell]
        self.centroids = {r: cents[c] for c, r in roles.items()}
        has = cell_role > 0
        self._index = _index(cells[has], cell_role[has])

    def _near(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        return float(haversine_m(a[0], a[1], b[0], b[1])) <= self.eps_m

    def _label_index(self) -> _Index:
        """The core-cell tree of the last fit, rebuilt from ``role`` if missing (same cells, same order)."""
        if self._index is None:
            cores = self.role > 0
            step = grid_step_deg(self.eps_m)
            keys, first = np.unique(_cell_keys(self.lat[cores], self.lon[cores], step), return_index=True)
            self._index = _index(_cell_radians(keys, step), self.role[cores][first])
        return self._index

    def label(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.int8]:
        """PRIMARY/SECONDARY/OTHER for each fix (within ε of that place's core cells)."""
        out = np.zeros(np.asarray(lat).size, np.int8)
        if out.size == 0:
            return out
        tree, roles = self._label_index()
        if tree is None:
            return out
        dist, idx = tree.query(to_radians(lat, lon), k=1)
        hit = dist[:, 0] <= metres_to_radians(self.eps_m)
        out[hit] = roles[idx[hit, 0]]
        return out


class PlaceTracker:
    """Carry-over state for time-at-place and distance across closed days.

    * Time at place: the interval from a fix to the next fix is attributed to
      the place of the earlier fix, capped at ``carry_max_s`` after the fix
      ("stay at the last known place" while location is missing, but not for
      ever). Intervals are split at hour boundaries.
    * Distance: a jitter filter on the haversine sum — a fix further than
      ``jitter_m`` from the current anchor adds the anchor→fix distance to the
      hour of that fix and becomes the new anchor; closer fixes are GPS noise
      around a stay and add nothing. With fixes more than ``jitter_m`` apart
      this is exactly the sum over consecutive fixes.
    """

    def __init__(self) -> None:
        self.last_ts: float | None = None
        self.last_label: int = OTHER
        self._anchor: tuple[float, float] | None = None

    def attribute(
        self,
        h0: int,
        n_hours: int,
        ts: NDArray[np.float64],
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        labels: NDArray[np.int8],
        carry_max_s: float,
        jitter_m: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Seconds at (other, primary, secondary) and metres travelled for hours h0 … h0+n−1.

        ``ts`` (sorted), ``lat``, ``lon``, ``labels`` are the fixes of those
        hours; the carried last fix of earlier hours continues into them.
        Returns ``place_s`` of shape (3, n_hours) and ``distance_m`` (n_hours,).
        """
        lo = h0 * 3600.0
        starts = ts
        labs = labels.astype(np.int64)
        if self.last_ts is not None:
            starts = np.concatenate([[self.last_ts], ts])
            labs = np.concatenate([[self.last_label], labs])
        place_s = np.zeros((3, n_hours))
        if starts.size:
            nxt = np.append(starts[1:], np.inf)
            ends = np.minimum(nxt, starts + carry_max_s)
            edges = lo + 3600.0 * np.arange(n_hours + 1)
            ov = np.minimum(ends[:, None], edges[None, 1:]) - np.maximum(starts[:, None], edges[None, :-1])
            ov = np.clip(ov, 0.0, None)
            for r in range(3):
                place_s[r] = ov[labs == r].sum(axis=0)
        distance = np.zeros(n_hours)
        if ts.size:
            hours = (np.floor(ts / 3600.0) - h0).astype(np.int64)
            # Sequential by nature (the anchor moves), but runs once per fix, not per sample.
            for i, (la, lo_) in enumerate(zip(lat.tolist(), lon.tolist(), strict=True)):
                if self._anchor is None:
                    self._anchor = (la, lo_)
                    continue
                d = haversine1_m(self._anchor[0], self._anchor[1], la, lo_)
                if d >= jitter_m:
                    distance[hours[i]] += d
                    self._anchor = (la, lo_)
            self.last_ts, self.last_label = float(ts[-1]), int(labels[-1])
        return place_s, distance
