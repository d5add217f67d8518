"""Missing-data rules for hourly feature vectors (Adler et al. 2020; docs/hourly.md "Missing data").

* Type 1 — the hour has some data but a feature's sensor was not seen in it:
  the feature is 0-filled.
* Type 2 — the hour has no data at all: every feature takes that
  participant's mean for the same local hour of day over the earlier hours in
  which that feature was *observed* (:class:`HourOfDayMeans`; type-1 zeros and
  carried place time are not measurements and stay out of it). Before any such
  history the value is 0.
* Location — hours without a fix "stay at the last known place": the caller
  passes the carried-forward place seconds (and distance 0) as ``carried``;
  they replace both the 0-fill and the hour-of-day mean.

``filled`` is the fraction of features that were imputed by any of these
rules (carried-forward place time counts as imputed), so it is exactly 1.0 for
a type-2 hour.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["HourOfDayMeans", "impute_hour"]


class HourOfDayMeans:
    """Running per-local-hour-of-day means of observed feature values (24 × F sums and counts)."""

    def __init__(self, n_features: int) -> None:
        self.sum = np.zeros((24, n_features))
        self.n = np.zeros((24, n_features), np.int64)

    def update(self, local_hour: int, values: NDArray[np.float64], observed: NDArray[np.bool_]) -> None:
        """Add the observed features of one non-type-2 hour (``values`` where ``observed``)."""
        self.sum[local_hour] += np.where(observed, values, 0.0)
        self.n[local_hour] += observed

    def mean(self, local_hour: int) -> NDArray[np.float64]:
        """Mean vector for ``local_hour``; 0 for a feature never observed at that hour."""
        n = self.n[local_hour]
        return np.divide(self.sum[local_hour], n, out=np.zeros(self.sum.shape[1]), where=n > 0)


def impute_hour(
    values: NDArray[np.float64],
    observed: NDArray[np.bool_],
    carried: NDArray[np.float64],
    *,
    has_data: bool,
    means: HourOfDayMeans,
    local_hour: int,
) -> tuple[NDArray[np.float64], float]:
    """Apply the type-1 / type-2 / location rules; return (filled vector, ``filled``).

    ``values``: computed features (ignored where not ``observed``);
    ``observed``: which features' sensors were seen in the hour;
    ``carried``: location carry-forward values, NaN where there is none;
    ``has_data``: False for a type-2 hour (no event of any sensor in it).
    """
    if has_data:
        out = np.where(observed, values, 0.0)
        imputed = ~observed
    else:
        out = means.mean(local_hour).copy()
        imputed = np.ones(values.shape, bool)
    carry = ~np.isnan(carried) & imputed
    out[carry] = carried[carry]
    return out, float(imputed.sum()) / float(values.size)
