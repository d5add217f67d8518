"""The one local-time rule: which local day and clock hour an event time falls in.

Every stage (hourly, rhythm, scoring, evaluation) calls these functions, so a
participant-day means the same thing everywhere. Local time is UTC plus the
phone's ``utc_offset_min`` at that moment (absent = UTC). A day's hours are
the hours whose local start falls on that date, so an offset change
(daylight saving, travel) makes 23- or 25-hour local days rather than losing
or double-counting an hour.

>>> local_day_hour(1572138000.0, 60)   # 2019-10-27 01:00 UTC at UTC+1 → 02:00 local
(18196, 2)
>>> day_iso(18196)
'2019-10-27'
>>> local_weekday(18196)                # Sunday
6
"""

from __future__ import annotations

import datetime as dt
import math

__all__ = ["day_iso", "local_day_hour", "local_day_iso", "local_weekday"]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def local_day_hour(t: float, utc_offset_min: int | None) -> tuple[int, int]:
    """Local day (days since 1970-01-01) and local clock hour (0–23) of UTC epoch time ``t`` (s)."""
    local_s = t + 60.0 * (utc_offset_min or 0)
    day = math.floor(local_s / 86_400.0)
    hour = int((local_s - day * 86_400.0) // 3_600.0)
    return day, min(hour, 23)


def day_iso(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def local_day_iso(t: float, utc_offset_min: int | None) -> str:
    """``YYYY-MM-DD`` of the local day of UTC epoch time ``t`` (s)."""
    return day_iso(local_day_hour(t, utc_offset_min)[0])


def local_weekday(day: int) -> int:
    """Day of week of a day number, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return (day + 3) % 7
