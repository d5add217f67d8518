"""Which sensor groups were really observed in each hour of a closing day (``features.hourly`` ``observed``).

Kept apart from the imputation rules (:mod:`.imputation`): those fill the model input,
this says what was measured, for every other consumer (docs/hourly.md, "Missing data").
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from phenoflow.operators.hourly.schema import EVENT_LOG_GROUPS, FEATURE_GROUPS, GROUP_SLICES

__all__ = ["observed_groups"]


def observed_groups(obs: NDArray[np.bool_], has_data: NDArray[np.bool_], h0: int, log_last: dict[str, int],
                    log_running_s: float) -> dict[str, NDArray[np.bool_]]:
    """Per feature group, the hours (h0, h0+1, …) of one local day in which it was observed.

    ``obs`` (hours × features) marks the features computed from readings in the hour;
    ``has_data`` the hours with any event. A group is observed where its sensor
    reported. An event log (screen, call, SMS) reports only when something happens,
    so its silence is a measured 0 while the log is observably running: in an hour
    with data, if the log reported within ``log_running_s`` before the hour's end or
    later on the same local day. Such hours are also marked in ``obs`` (their values
    are already 0), so the model input and the hour-of-day means take the 0 as a
    measurement. Sampling sensors (accelerometer, light, sound, voice, location) are
    never observed without a reading.

    ``log_last`` maps each event-log group to the last UTC hour index it reported in
    earlier (closed) days; it is updated with this day's.
    """
    n = obs.shape[0]
    seen: dict[str, NDArray[np.bool_]] = {g: np.any(obs[:, GROUP_SLICES[g]], axis=1) for g in FEATURE_GROUPS}
    back = math.ceil(log_running_s / 3600.0) - 1  # whole hours before the hour itself
    for g in EVENT_LOG_GROUPS:
        hit = np.flatnonzero(seen[g])
        last = log_last.get(g)
        if hit.size:
            running = np.ones(n, bool)  # the log reported within the hour or later this day
            log_last[g] = h0 + int(hit[-1])
        elif last is not None:
            running = last >= h0 + np.arange(n) - back
        else:
            continue
        fill = running & has_data & ~seen[g]
        obs[np.ix_(fill, np.arange(GROUP_SLICES[g].start, GROUP_SLICES[g].stop))] = True
        seen[g] = np.logical_or(seen[g], fill)
    return seen
