"""Daily sleep episode from screen-off + stillness + dark + quiet (Adler et al. 2020).

Time is cut into slots of ``slot_s`` seconds (default 600 s = 10 min, aligned
to UTC and therefore to every whole-hour or half-hour local offset). Each slot
gets one of three states:

* ``ACTIVE`` — any sign of wakefulness: the screen was on or unlocked during
  the slot, or accelerometer samples have SD of ‖a‖ above ``still_sd``
  (default 0.2 m/s²), or the mean ambient light is above ``dark_lux``
  (default 10 lux), or the mean sound level is above ``quiet_db`` (default
  40 dB);
* ``REST`` — not active and at least one accelerometer, light or sound
  reading in the slot (a screen that stays off is no evidence by itself: a
  phone that is switched off reports nothing);
* ``UNKNOWN`` — no readings at all.

A rest episode is a maximal run of consecutive non-``ACTIVE`` slots with the
``UNKNOWN`` slots at either end trimmed off (unknown slots inside the run are
kept: duty-cycled sensors and phones switched off leave holes in a night).
Brief interruptions — at most ``max_interruption_s`` (default 20 min) of
``ACTIVE`` slots between two non-active stretches, e.g. turning over or a
glance at the phone — do not end an episode and count towards its length.
Day d's sleep is the
longest episode inside the local window [d−1 18:00, d 18:00) — so the night
that *ends* on the morning of d belongs to d, and a whole day never needs to
look past its own end. Ties go to the later episode; an episode shorter than
``min_s`` (default 1 h) is not sleep, and the day then has no sleep values.

Outputs are local clock hours relative to midnight that starts day d:
``onset_h`` ∈ [−6, 18) (−1.5 = 22:30 the evening before), ``wake_h`` the
end of the episode on the same scale, and ``duration_h`` elapsed hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SleepEpisode", "rest_states", "longest_rest_episode"]

ACTIVE, UNKNOWN, REST = 0, 1, 2


@dataclass(frozen=True)
class SleepEpisode:
    """The day's longest rest episode, hours relative to local midnight of the day."""

    onset_h: float
    wake_h: float
    duration_h: float


def rest_states(
    *,
    screen_active: NDArray[np.bool_],
    accel_n: NDArray[np.int64],
    accel_sd: NDArray[np.float64],
    light_n: NDArray[np.int64],
    light_mean: NDArray[np.float64],
    sound_n: NDArray[np.int64],
    sound_mean: NDArray[np.float64],
    still_sd: float,
    dark_lux: float,
    quiet_db: float,
) -> NDArray[np.int8]:
    """Slot states (ACTIVE/UNKNOWN/REST) from per-slot summaries; arrays of equal length."""
    active = (
        screen_active
        | ((accel_n > 0) & (accel_sd > still_sd))
        | ((light_n > 0) & (light_mean > dark_lux))
        | ((sound_n > 0) & (sound_mean > quiet_db))
    )
    evidence = (accel_n > 0) | (light_n > 0) | (sound_n > 0)
    out = np.full(active.shape, UNKNOWN, np.int8)
    out[evidence] = REST
    out[active] = ACTIVE
    return out


def longest_rest_episode(
    slot_utc: NDArray[np.float64],
    slot_local: NDArray[np.float64],
    state: NDArray[np.int8],
    *,
    day: int,
    slot_s: float = 600.0,
    window_start_h: float = -6.0,
    min_s: float = 3600.0,
    max_interruption_s: float = 1200.0,
) -> SleepEpisode | None:
    """Day ``day``'s sleep episode, or None when no rest episode lasts ``min_s``.

    ``slot_utc``: slot starts (UTC epoch s, ascending); ``slot_local``: the
    same instants in local time (UTC + offset); ``day``: local day number
    (days since 1970-01-01 in local time). Only slots starting inside
    [day + window_start_h, day + window_start_h + 24 h) local are considered.
    """
    midnight = day * 86400.0
    lo = midnight + window_start_h * 3600.0
    sel = (slot_local >= lo) & (slot_local < lo + 86400.0)
    t, loc, st = slot_utc[sel], slot_local[sel], _bridge(slot_utc[sel], state[sel], slot_s, max_interruption_s)
    best: tuple[int, int] | None = None  # (first, last) slot index, inclusive
    i, n = 0, t.size
    while i < n:
        if st[i] == ACTIVE:
            i += 1
            continue
        j = i
        while j + 1 < n and st[j + 1] != ACTIVE and t[j + 1] - t[j] == slot_s:
            j += 1
        a, b = i, j
        while a <= b and st[a] == UNKNOWN:
            a += 1
        while b >= a and st[b] == UNKNOWN:
            b -= 1
        # ">=" keeps the later of equally long episodes.
        if a <= b and (best is None or b - a >= best[1] - best[0]):
            best = (a, b)
        i = j + 1
    if best is None:
        return None
    a, b = best
    duration = t[b] + slot_s - t[a]
    if duration < min_s:
        return None
    return SleepEpisode(
        onset_h=(loc[a] - midnight) / 3600.0,
        wake_h=(loc[b] + slot_s - midnight) / 3600.0,
        duration_h=duration / 3600.0,
    )


def _bridge(t: NDArray[np.float64], st: NDArray[np.int8], slot_s: float, max_s: float) -> NDArray[np.int8]:
    """Mark short ACTIVE runs between non-active slots as UNKNOWN (kept inside, trimmed at ends)."""
    out = st.copy()
    k = int(max_s // slot_s)
    n, i = st.size, 0
    while k > 0 and i < n:
        if st[i] != ACTIVE:
            i += 1
            continue
        j = i
        while j + 1 < n and st[j + 1] == ACTIVE and t[j + 1] - t[j] == slot_s:
            j += 1
        inside = i > 0 and j + 1 < n and st[i - 1] != ACTIVE and st[j + 1] != ACTIVE
        if inside and j - i + 1 <= k and t[i] - t[i - 1] == slot_s and t[j + 1] - t[j] == slot_s:
            out[i : j + 1] = UNKNOWN
        i = j + 1
    return out
