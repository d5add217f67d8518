"""Per-participant streaming state of the ``rhythm.daily`` stage.

:class:`RhythmState` keeps the last 14 local days of hourly feature vectors of one
participant and, when a local day closes, emits that day's rolling rhythm statistics
(:func:`phenoflow.operators.rhythm.statistics.rhythm_features`, the same function the offline
``phenoflow rhythm`` command uses). Pure Python/numpy: the Bytewax flow only wires it
(``stateful_map`` keyed by participant) and calls :meth:`RhythmState.flush` at the
end of a finite input.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from phenoflow.core.contract import HourlyFeatures, RhythmDaily
from phenoflow.core.state import PickleSnapshot
from phenoflow.core.timebase import day_iso, local_day_hour
from phenoflow.operators.hourly.schema import FEATURE_GROUPS

from .statistics import (
    CONTINUOUS_MODALITIES,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_MODALITIES,
    RHYTHM_PERIODS_H,
    SAMPEN_TAUS,
    WINDOWS_DAYS,
    rhythm_features,
)

__all__ = ["RhythmState", "observed_values"]

#: Hourly feature name → the sensor group whose observation it needs.
_GROUP_OF: dict[str, str] = {f: g for g, names in FEATURE_GROUPS.items() for f in names}


def observed_values(record: HourlyFeatures, modalities: Sequence[str]) -> np.ndarray:
    """The rhythm input of one hourly record: each modality's value, NaN unless really observed.

    A modality that is an hourly feature is present iff its group is in the record's
    ``observed`` list (docs/hourly.md, "Missing data"): type-1 zeros of a sensor
    that did not report, type-2 hour-of-day means and carried place time are
    imputations for the model, not data, so they never enter rhythm statistics.
    Records without ``observed`` (written before it existed) fall back to the former
    rule: a type-2 hour (``filled`` = 1) is missing, anything else is present.
    A value that is null or not finite is missing either way.
    """
    vals = np.full(len(modalities), np.nan)
    seen = record.observed
    if seen is None and record.filled >= 1.0:
        return vals
    feats = record.features
    for i, name in enumerate(modalities):
        group = _GROUP_OF.get(name)
        if seen is not None and group is not None and group not in seen:
            continue
        v = feats.get(name)
        if v is not None and math.isfinite(v):
            vals[i] = v
    return vals


class RhythmState(PickleSnapshot):
    """Rolling 14-day hourly buffer of one participant → :class:`RhythmDaily` per local day.

    * Buffer: ``float64`` array (days, 24, modalities), the last row being the open
      (newest) local day; NaN marks a missing hour of a modality — no record, a
      feature absent or ``None`` in the record, or its sensor group not in the
      record's ``observed`` list (:func:`observed_values`), so per-modality coverage
      counts only really observed hours. ~30 KB for the 11 default modalities.
    * A record's local day and hour: ``hour_start + utc_offset_min``.
    * :meth:`update` writes the record's hour; when a record of a later local day
      arrives, the open day closes and its statistics are returned (windows: that day
      and the w−1 days before it). :meth:`flush` closes the open day at end of input.
    * A day is emitted only if at least one modality had a present hour that day.
    * A record for an already closed day still inside the buffer is written (later
      windows see it) but that day is not re-emitted; older records are dropped. Both
      are counted in ``late``. A re-delivered hour (same ``hour_start``) overwrites
      the earlier value; the two UTC hours of a repeated local hour (clocks falling
      back: a 25-hour day) share their slot as the mean of both (:meth:`_write`).

    Two days with the screen on 10 min an hour from 08:00 to 22:00: the most active
    10 hours average 600 s, the least active 5 hours 0 s, relative amplitude 1.

    >>> from phenoflow.core.contract import HourlyFeatures
    >>> t0 = 1_717_200_000.0                  # 2024-06-01 00:00 UTC, a Saturday; UTC+0
    >>> state, days = RhythmState("p1", ["screen_on_s"], windows=[2]), []
    >>> for h in range(49):                   # two whole days and the first hour of a third
    ...     on = 600.0 if 8 <= h % 24 < 22 else 0.0
    ...     days += state.update(HourlyFeatures(participant="p1", utc_offset_min=0, hour_start=t0 + 3600 * h,
    ...                                         local_hour=h % 24, weekday=5, features={"screen_on_s": on}, filled=0.0))
    >>> [d.day for d in days]
    ['2024-06-01', '2024-06-02']
    >>> {k: days[-1].features[f"screen_on_s.{k}.w2"] for k in ("m10", "l5", "ra")}
    {'m10': 600.0, 'l5': 0.0, 'ra': 1.0}
    """

    #: 2: values from ``observed`` groups only; ``accel_sd`` replaces ``accel_mean``.
    STATE_VERSION = 2

    def __init__(
        self,
        participant: str,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        *,
        continuous: Collection[str] = CONTINUOUS_MODALITIES,
        windows: Sequence[int] = WINDOWS_DAYS,
        periods: Sequence[int] = RHYTHM_PERIODS_H,
        taus: Sequence[int] = SAMPEN_TAUS,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
    ) -> None:
        self.participant = participant
        self.modalities = tuple(modalities)
        self.continuous = tuple(m for m in self.modalities if m in set(continuous))
        self.windows = tuple(int(w) for w in windows)
        self.periods = tuple(periods)
        self.taus = tuple(taus)
        self.min_coverage = float(min_coverage)
        self.span = max(self.windows)
        self.buffer = np.full((self.span, 24, len(self.modalities)), np.nan)
        self.starts = np.full((self.span, 24), np.nan)  # hour_start written to each slot
        # Slots two UTC hours map to (the repeated local hour after a fall-back):
        # (day, local hour) → {hour_start: values}; the slot holds their mean.
        self.shared: dict[tuple[int, int], dict[float, np.ndarray]] = {}
        self.open_day: int | None = None
        self.utc_offset_min: int | None = None
        self.dirty = False  # the open day received a present value since its last emission
        self.late = 0

    def update(self, record: HourlyFeatures) -> list[RhythmDaily]:
        """Add one hourly record; return the day(s) this closes (0 or 1 items)."""
        day, hour = local_day_hour(record.hour_start, record.utc_offset_min)
        out: list[RhythmDaily] = []
        if self.open_day is None:
            self.open_day = day
        if day > self.open_day:
            out = self._close()
            self._advance(day - self.open_day)
            self.open_day = day
            self.utc_offset_min = None
        row = self.span - 1 - (self.open_day - day)
        if row < 0:
            self.late += 1
            return out
        if day < self.open_day:
            self.late += 1
        values = self._values(record)
        self._write(row, day, hour, record.hour_start, values)
        if row == self.span - 1:
            self.utc_offset_min = record.utc_offset_min
            if not np.isnan(values).all():
                self.dirty = True
        return out

    def update_batch(self, records: Iterable[HourlyFeatures], now: float | None = None) -> list[RhythmDaily]:
        """:meth:`update` for each record in order; the days they close."""
        return [day for record in records for day in self.update(record)]

    def flush(self) -> list[RhythmDaily]:
        """Close the open day at the end of input (emits it if it has data)."""
        return self._close()

    def _values(self, record: HourlyFeatures) -> np.ndarray:
        return observed_values(record, self.modalities)

    def _write(self, row: int, day: int, hour: int, start: float, values: np.ndarray) -> None:
        """Put one hour into its local slot without losing or double-counting an hour.

        The same ``hour_start`` again (a re-delivery) replaces the slot. A second UTC
        hour on the same local slot — the repeated hour of a 25-hour day — shares
        it: the slot holds the per-modality mean of the present values of both.
        """
        prev = self.starts[row, hour]
        key = (day, hour)
        if key not in self.shared and (np.isnan(prev) or prev == start):
            self.buffer[row, hour, :] = values
            self.starts[row, hour] = start
            return
        group = self.shared.setdefault(key, {float(prev): self.buffer[row, hour, :].copy()})
        group[float(start)] = values
        stack = np.stack(list(group.values()))
        n = (~np.isnan(stack)).sum(axis=0)
        total = np.where(np.isnan(stack), 0.0, stack).sum(axis=0)
        self.buffer[row, hour, :] = np.where(n > 0, total / np.maximum(n, 1), np.nan)

    def _advance(self, n_days: int) -> None:
        assert self.open_day is not None
        first = self.open_day + n_days - self.span + 1  # oldest day kept
        self.shared = {k: v for k, v in self.shared.items() if k[0] >= first}
        if n_days >= self.span:
            self.buffer.fill(np.nan)
            self.starts.fill(np.nan)
            return
        self.buffer[:-n_days] = self.buffer[n_days:]
        self.buffer[-n_days:] = np.nan
        self.starts[:-n_days] = self.starts[n_days:]
        self.starts[-n_days:] = np.nan

    def _close(self) -> list[RhythmDaily]:
        if self.open_day is None or not self.dirty:
            return []
        self.dirty = False
        features, coverage = rhythm_features(
            self.buffer,
            self.modalities,
            continuous=self.continuous,
            windows=self.windows,
            periods=self.periods,
            taus=self.taus,
            min_coverage=self.min_coverage,
        )
        return [
            RhythmDaily(
                participant=self.participant,
                utc_offset_min=self.utc_offset_min,
                day=day_iso(self.open_day),
                features=features,
                coverage=coverage,
            )
        ]
