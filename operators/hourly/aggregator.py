"""Per-participant streaming aggregator of hourly behaviour features (Adler et al. 2020).

One :class:`HourlyAggregator` per participant turns decoded raw events
(:mod:`phenoflow.core.contract`) into :class:`~phenoflow.core.contract.HourlyFeatures`
records: exactly one per UTC hour from the participant's first to last hour of
data, emitted a whole local day at a time once the day is closed by the
event-time watermark. Feature definitions, units and policies: docs/hourly.md.

Watermark: per sensor stream the largest event time seen; the participant's
watermark is the minimum over *active* streams (those within
``idle_timeout_s`` of the newest stream, or — when the caller passes the wall
clock ``now`` — that delivered within ``idle_wall_s``; a stream not seen yet
counts from the participant's first event) minus ``allowed_lateness_s``. A local
day closes when the watermark passes its last hour's end. An event whose hour
was already emitted is *late*: returned in :class:`HourlyStep` and counted,
never silently dropped.

Order independence: per-hour state holds exact sums — accelerometer slots as
fixed-point integers (:data:`~phenoflow.operators.hourly.pending.ACCEL_Q1`),
ambient slots as Shewchuk expansions (the algorithm behind ``math.fsum``) —
and event lists that are sorted before use, so any arrival order within the
lateness bound and any batching of the input yield bit-identical records.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Iterable

import numpy as np
from numpy.typing import NDArray

from phenoflow.core.contract import Accelerometer, Ambient, Call, HourlyFeatures, Location, Screen, Sms
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import salt_id
from phenoflow.core.state import PickleSnapshot
from phenoflow.core.timebase import local_day_hour, local_weekday
from phenoflow.operators.hourly.imputation import HourOfDayMeans, impute_hour
from phenoflow.operators.hourly.observation import observed_groups
from phenoflow.operators.hourly.pending import ACCEL_Q1, ACCEL_Q2, DISCRETE, PendingHour, add_accel_batch, sd
from phenoflow.operators.hourly.schema import (
    CALL_DIRECTIONS,
    FEATURE_GROUPS,
    FEATURE_NAMES,
    GROUP_SLICES,
    SCREEN_STATES,
    HourlyConfig,
)
from phenoflow.operators.hourly.sleep import longest_rest_episode, rest_states
from phenoflow.operators.places.clusters import OTHER, PRIMARY, SECONDARY, PlaceModel, PlaceTracker
from phenoflow.operators.places.frame import PrivateFrame

# The schema's names are re-exported: they are the stage's public names.
__all__ = ["SLOT_SENSORS", "STREAMS", "HourlyStep", "HourlyAggregator",
           "CALL_DIRECTIONS", "FEATURE_GROUPS", "FEATURE_NAMES", "GROUP_SLICES", "SCREEN_STATES", "HourlyConfig"]

#: Sensors summarised per rest-state slot (``sleep_slot_s``) for the sleep features.
SLOT_SENSORS = ("accel", "light", "sound")
#: Sensor stream of each input type (the watermark is kept per stream).
STREAMS: dict[type, str] = {Accelerometer: "accelerometer", Screen: "screen", Call: "call", Sms: "sms",
                             Location: "location", Ambient: "ambient"}


@dataclass
class HourlyStep:
    """What one :meth:`HourlyAggregator.update` produced."""

    records: list[HourlyFeatures] = field(default_factory=list)  #: closed hours, in hour order
    late: list[object] = field(default_factory=list)  #: events whose hour was already emitted


_EMPTY = PendingHour()


class HourlyAggregator(PickleSnapshot):
    """Streaming hourly features of one participant (picklable; ~0.2 MiB at steady state).

    ``update(event)`` accepts Accelerometer, Screen, Call, Sms, Location and
    Ambient events in any order and returns the records of every local day the
    watermark closed plus the late events; other event types are ignored.
    ``flush()`` closes everything up to the last hour of data (end of input).

    GPS fixes are rotated into the participant's private frame
    (:class:`~phenoflow.operators.places.frame.PrivateFrame`) as they arrive, so no
    raw coordinate is ever part of this state or of a recovery snapshot. The frame
    is keyed with ``frame_key`` (the study's pseudonym secret), which is never
    pickled: a restored state gets it back through :meth:`attach_frame_key`. A fix
    arriving without a key is a :class:`~phenoflow.core.errors.UserError`.

    >>> from phenoflow.core.contract import Call, Screen
    >>> t0 = 1_717_200_000.0                  # 2024-06-01 00:00 UTC; the phone is at UTC+1
    >>> agg = HourlyAggregator("p1")
    >>> step = agg.update_batch([
    ...     Screen(participant="p1", utc_offset_min=60, ts=t0 + 600, state="on"),
    ...     Screen(participant="p1", utc_offset_min=60, ts=t0 + 1500, state="off"),
    ...     Call(participant="p1", utc_offset_min=60, ts=t0 + 4000, direction="outgoing", duration_s=90.0)])
    >>> step.records                          # the local day is still open
    []
    >>> [(h.local_hour, h.features["screen_on_s"], h.features["call_s"]) for h in agg.flush()]
    [(1, 900.0, 0.0), (2, 0.0, 90.0)]
    """

    #: 2: ``observed`` per hour, event-log running hours, observed-only hour-of-day means,
    #: location state in the private frame. 3: that frame keyed with the study's secret, whose
    #: salt id is kept (``_frame_salt``) so a restart under another key is refused.
    STATE_VERSION = 3

    def __init__(self, participant: str | None = None, config: HourlyConfig | None = None,
                 frame_key: bytes | None = None) -> None:
        c = self.config = config or HourlyConfig()
        self.participant = participant
        self.late_events = 0
        self._stream_max: dict[str, float] = {}
        self._stream_wall: dict[str, float] = {}  # wall clock of each stream's last delivery
        self._first: tuple[float, float] | None = None  # (earliest event time, wall clock of first event)
        self._now: float | None = None  # wall clock of the latest update that passed one
        self._hours: dict[int, PendingHour] = {}
        self._first_hour: int | None = None
        self._last_hour: int | None = None
        self._next_hour: int | None = None  # first hour not emitted yet (None before any emission)
        self._day: int | None = None  # local day number of the last closed day
        self._offset = 0  # UTC offset (min) of the last emitted hour; 0 before any is known
        self._walk_key: tuple[int, int] | None = None  # (watermark hour, next hour) of a failed close
        self._screen_on_since: float | None = None
        self._conv_last_true: float | None = None
        self._places = PlaceModel(c.place_eps_m, c.place_min_samples, c.place_history_days,
                                  c.place_history_bin_s, c.place_refit_days, c.place_swap_margin)
        self._tracker = PlaceTracker()
        self._means = HourOfDayMeans(len(FEATURE_NAMES))
        self._log_last: dict[str, int] = {}  # event-log group → last UTC hour (index) it reported, closed days
        self._frame: PrivateFrame | None = None  # derived from the key; never pickled
        self._frame_key = frame_key  # the study's secret; never pickled
        self._frame_salt: str | None = None  # salt id of the key the location state is in (once a fix came)
        self._rest = (np.empty(0), np.empty(0), np.empty(0, np.int8))  # slot utc, local, state

    @property
    def watermark(self) -> float:
        """Event time (UTC s) up to which this participant's input is taken as complete.

        A stream holds the watermark while it is active in event time (its max
        within ``idle_timeout_s`` of the newest stream's) or, when the caller
        passes the wall clock, in wall time (delivered within ``idle_wall_s``).
        Why both: in a fast replay the source reads topics with skew — a sparse
        topic (SMS) can be read to its end while the accelerometer is days behind
        in event time; the lagging stream is still delivering, so it must keep
        holding. With the wall clock, a stream not seen yet holds everything for
        ``idle_wall_s`` after the participant's first event: the first topic read
        cannot close hours that a topic read later still has data for.
        """
        if not self._stream_max:
            return -math.inf
        c = self.config
        newest = max(self._stream_max.values())
        maxes = dict(self._stream_max)
        if self._now is not None and self._first is not None:
            # A stream not delivered yet may still be behind everything seen so far (a topic
            # read later whose data starts earlier): it holds the watermark completely, until
            # ``idle_wall_s`` after the participant's first event shows it has nothing to give.
            for stream in STREAMS.values():
                maxes.setdefault(stream, -math.inf)
        active = []
        for stream, t in maxes.items():
            if t >= newest - c.idle_timeout_s:
                active.append(t)
            elif self._now is not None:
                wall = self._stream_wall.get(stream, self._first[1] if self._first else -math.inf)
                if self._now - wall < c.idle_wall_s:
                    active.append(t)
        return min(active) - c.allowed_lateness_s

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state["_frame"] = state["_frame_key"] = None  # the secret and what derives from it stay in memory
        return state

    @property
    def frame_salt(self) -> str | None:
        """Salt id of the key whose private frame the location state is in (None before the first fix)."""
        return self._frame_salt

    def frame_key_matches(self, key: bytes) -> bool:
        """Whether ``key`` is the key whose private frame the location state is in (True before any fix)."""
        return self._frame_salt is None or salt_id(key) == self._frame_salt

    def attach_frame_key(self, key: bytes) -> None:
        """Give a state restored from a snapshot its place-frame key back (the flow does this on resume).

        Raises :class:`~phenoflow.core.errors.UserError` when the state's fixes are
        in the frame of another key: continuing would mix two frames and give
        wrong places without any error.
        """
        if not self.frame_key_matches(key):
            raise UserError(f"recovery state of {self.participant} was written under the pseudonym secret with "
                            f"salt id {self._frame_salt}, this run's has {salt_id(key)} — configure that "
                            "study's pseudonym_secret / pseudonym_key_file, or reset recovery "
                            "(docs/deploy.md, \"Reset recovery\")")
        self._frame_key, self._frame = key, None

    @property
    def pending_hours(self) -> int:
        """Hours holding partial aggregates (not yet emitted)."""
        return len(self._hours)

    def update(self, event: object, now: float | None = None) -> HourlyStep:
        """Add one raw event; return the records of newly closed days and any late event.

        ``now`` is the wall clock (s, any monotonic origin); streaming callers pass
        it so that streams still delivering hold the watermark (see :attr:`watermark`).
        Without it the watermark is a pure function of the events seen.
        """
        return self.update_batch((event,), now)

    def update_batch(self, events: Iterable[object], now: float | None = None) -> HourlyStep:
        """Add several raw events, then close what the watermark allows (once per batch).

        Equivalent to calling :meth:`update` per event except that days close
        only after the whole batch, so an event later in the batch is never late
        because of one earlier in it. The flows feed Bytewax batches through here.
        Discrete events are added one by one, accelerometer chunks all together
        (:func:`~phenoflow.operators.hourly.pending.add_accel_batch`); records do
        not depend on how the input is cut into batches.
        """
        step = HourlyStep()
        cutoff = -math.inf if self._next_hour is None else self._next_hour * 3600.0
        newest: dict[str, float] = {}  # stream → newest event time added in this batch
        late: list[tuple[int, object]] = []  # (position in the batch, event)
        chunks: list[Accelerometer] = []
        where: list[int] = []  # position of each chunk in the batch
        hours, pid, slot_s = self._hours, self.participant, self.config.sleep_slot_s
        oldest, h_lo, h_hi, ninf = math.inf, math.inf, -math.inf, -math.inf
        for i, ev in enumerate(events):
            kind = type(ev)
            disc = DISCRETE.get(kind)
            if disc is None and kind is not Accelerometer:
                continue
            if ev.participant != pid:  # type: ignore[attr-defined]  # all input types have it
                if pid is not None:
                    raise ValueError("event of another participant sent to this aggregator")
                pid = self.participant = ev.participant  # type: ignore[attr-defined]  # as above
            if disc is None:
                chunks.append(ev)  # type: ignore[arg-type]  # disc is None here only for Accelerometer
                where.append(i)
                continue
            ts = float(ev.ts)  # type: ignore[attr-defined]  # every DISCRETE type has a scalar ts
            if ts < cutoff:
                late.append((i, ev))
                continue
            # The pending hour holding ts; the event votes for the hour's UTC offset.
            h = math.floor(ts / 3600.0)
            hr = hours.get(h)
            if hr is None:
                hr = hours[h] = PendingHour()
            hr.n_ev += 1
            off = ev.utc_offset_min  # type: ignore[attr-defined]  # every contract event has it
            if off is not None:
                vote = hr.vote
                if vote is None or ts > vote[0] or (ts == vote[0] and off > vote[1]):
                    if vote is None or vote[1] != off:
                        self._walk_key = None  # day boundaries may have moved
                    hr.vote = (ts, off)
            stream, add = disc
            if kind is Location:  # into the private frame before anything keeps it
                frame = self._frame
                if frame is None:
                    frame = self._frame = self._new_frame(pid or "")
                hr.fixes.append((ts, *frame.rotate(ev.lat, ev.lon)))  # type: ignore[attr-defined]
            else:
                add(hr, ev, ts, slot_s)
            if h < h_lo:
                h_lo = h
            if h > h_hi:
                h_hi = h
            if ts < oldest:
                oldest = ts
            if ts > newest.get(stream, ninf):
                newest[stream] = ts
        if chunks:
            late_chunks, got, revote = add_accel_batch(hours, chunks, cutoff, slot_s)
            if revote:
                self._walk_key = None  # day boundaries may have moved
            late += [(where[j], chunks[j]) for j in late_chunks]
            if got is not None:
                oldest, newest["accelerometer"] = min(oldest, got[0]), got[1]
                h_lo, h_hi = min(h_lo, got[2]), max(h_hi, got[3])
        if late:
            late.sort(key=lambda t: t[0])  # batch order, as if added one by one
            step.late = [ev for _, ev in late]
            self.late_events += len(late)
        if newest:
            if self._first_hour is None or h_lo < self._first_hour:
                self._first_hour = h_lo  # type: ignore[assignment]  # an int hour once an event was added
            if self._last_hour is None or h_hi > self._last_hour:
                self._last_hour = h_hi  # type: ignore[assignment]  # an int hour once an event was added
            for stream, t in newest.items():
                if t > self._stream_max.get(stream, -math.inf):
                    self._stream_max[stream] = t
                if now is not None:
                    self._stream_wall[stream] = now
            if now is not None:
                self._now = now
                # Unseen streams are held at the earliest event time seen so far.
                self._first = (oldest, now) if self._first is None else (min(self._first[0], oldest), self._first[1])
            step.records = self._advance(self.watermark, final=False)
        return step

    def _new_frame(self, participant: str) -> PrivateFrame:
        key = self._frame_key
        if not key:
            raise UserError("a GPS fix reached the hourly stage without the place-frame key — pass the study's "
                            "pseudonym secret (frame_key; the flow attaches it from pseudonym_secret / "
                            "pseudonym_key_file)")
        if self._frame_salt is None:
            self._frame_salt = salt_id(key)
        return PrivateFrame(participant, key)

    def flush(self) -> list[HourlyFeatures]:
        """End of input: emit every remaining hour up to the last hour of data."""
        return self._advance(math.inf, final=True)

    def _advance(self, wm: float, final: bool) -> list[HourlyFeatures]:
        out: list[HourlyFeatures] = []
        while self._first_hour is not None and self._last_hour is not None:
            h0 = self._first_hour if self._next_hour is None else self._next_hour
            if h0 > self._last_hour:
                break
            if not final:
                if wm < (h0 + 1) * 3600.0 or self._walk_key == (math.floor(wm / 3600.0), h0):
                    break
            span = self._day_end(h0, wm, final)
            if span is None:
                self._walk_key = (math.floor(wm / 3600.0), h0)
                break
            out.extend(self._close(h0, *span))
            self._next_hour = span[0] + 1
        return out

    def _day_end(self, h0: int, wm: float, final: bool) -> tuple[int, int] | None:
        """(last hour, local day number) of the local day starting at ``h0`` if it can close now.

        A day's hours are the UTC hours whose local start falls on it (local
        days never go backwards, e.g. after a DST fall-back); it ends with the
        hour whose local end reaches midnight, or before an hour that starts a
        later local day (offset jump). ``final`` closes the last, partial day.
        """
        off, day, h = self._offset, None, h0
        assert self._last_hour is not None
        while True:
            hr = self._hours.get(h)
            if hr is not None and hr.vote is not None:
                off = hr.vote[1]
            d = local_day_hour(h * 3600.0, off)[0]
            if day is None:
                day = d if self._day is None else max(d, self._day + 1)
            elif d > day:
                return (h - 1, day) if final or wm >= (h + 1) * 3600.0 else None
            if not final and wm < (h + 1) * 3600.0:
                return None
            if local_day_hour(h * 3600.0 + 3600.0, off)[0] > day or (final and h >= self._last_hour):
                return h, day
            h += 1

    def _close(self, h0: int, h1: int, day: int) -> list[HourlyFeatures]:
        """Compute, impute and emit the hours h0 … h1 (one local day)."""
        c = self.config
        n, per = h1 - h0 + 1, 3600 // c.sleep_slot_s
        ns, lo, hi = n * per, h0 * 3600.0, (h1 + 1) * 3600.0
        hrs = [self._hours.pop(h, _EMPTY) for h in range(h0, h1 + 1)]
        offs = []
        for hr in hrs:
            self._offset = hr.vote[1] if hr.vote is not None else self._offset
            offs.append(self._offset)
        rows: dict[str, tuple[list[int], list[list[float]]]] = {g: ([], []) for g in FEATURE_GROUPS}

        def put(i: int, group: str, values: list[float]) -> None:
            rows[group][0].append(i)
            rows[group][1].append(values)

        for i, hr in enumerate(hrs):
            if hr.calls:
                dur: list[list[float]]
                cnt, dur = [0] * 5, [[] for _ in range(5)]
                for _, d, s in hr.calls:
                    cnt[d] += 1
                    dur[d].append(s)
                row = [x for d in range(5) for x in (cnt[d], math.fsum(dur[d]))]
                put(i, "call", row + [sum(cnt), math.fsum([s for ds in dur for s in ds])])
            if hr.sms != [0, 0]:
                put(i, "sms", [hr.sms[0], hr.sms[1], hr.sms[0] + hr.sms[1]])
        slot_n, slot_v = self._slot_stats(hrs, per, put)

        edges = lo + c.sleep_slot_s * np.arange(ns + 1, dtype=np.float64)
        on_slot, active_slot, begun = self._screen(hrs, edges, hi)
        on_hour = on_slot.reshape(n, per).sum(axis=1).tolist()
        for i, hr in enumerate(hrs):
            if hr.screen or on_hour[i] > 0:
                put(i, "screen", [sum(1 for _, r in hr.screen if r == 1), on_hour[i], begun.get(h0 + i, 0)])
        car = np.full((n, len(FEATURE_NAMES)), np.nan)
        self._places_and_distance(hrs, h0, n, hi, put, car)
        self._conversations(hrs, h0, put)

        slot_local = edges[:-1] + np.repeat(np.asarray(offs, np.float64) * 60.0, per)
        state = rest_states(
            screen_active=active_slot,
            accel_n=slot_n["accel"], accel_sd=slot_v["accel"], light_n=slot_n["light"],
            light_mean=slot_v["light"], sound_n=slot_n["sound"], sound_mean=slot_v["sound"],
            still_sd=c.sleep_still_sd, dark_lux=c.sleep_dark_lux, quiet_db=c.sleep_quiet_db,
        )
        keep = self._rest[0] >= hi - 36 * 3600.0
        self._rest = (np.concatenate([self._rest[0][keep], edges[:-1]]),
                      np.concatenate([self._rest[1][keep], slot_local]),
                      np.concatenate([self._rest[2][keep], state]))
        ep = longest_rest_episode(*self._rest, day=day, slot_s=float(c.sleep_slot_s),
                                  window_start_h=c.sleep_window_start_h, min_s=c.sleep_min_s,
                                  max_interruption_s=c.sleep_max_interruption_s)
        if ep is not None:
            rows["sleep"] = (list(range(n)), [[ep.onset_h, ep.wake_h, ep.duration_h]] * n)
        val, obs = np.zeros(car.shape), np.zeros(car.shape, bool)
        for group, (ix, values) in rows.items():  # one fancy assignment per group, not per hour
            if ix:
                val[ix, GROUP_SLICES[group]], obs[ix, GROUP_SLICES[group]] = values, True
        has = np.fromiter((hr.n_ev > 0 for hr in hrs), bool, n)
        seen = observed_groups(obs, has, h0, self._log_last, self.config.log_running_s)

        out, pid = [], self.participant or ""
        for i, hr in enumerate(hrs):
            lday, lh = local_day_hour((h0 + i) * 3600.0, offs[i])
            wd = local_weekday(lday)
            vec, filled = impute_hour(val[i], obs[i], car[i], has_data=hr.n_ev > 0,
                                      means=self._means, local_hour=lh)
            if hr.n_ev > 0:
                self._means.update(lh, val[i], obs[i])
            out.append(HourlyFeatures(
                participant=pid, utc_offset_min=offs[i], hour_start=float((h0 + i) * 3600), local_hour=lh,
                weekday=wd, features=dict(zip(FEATURE_NAMES, vec.tolist(), strict=True)), filled=filled,
                observed=[g for g in FEATURE_GROUPS if seen[g][i]] if hr.n_ev > 0 else [],
            ))
        self._day = day
        return out

    @staticmethod
    def _slot_stats(hrs: list[PendingHour], per: int, put: Callable[[int, str, list[float]], None]
                    ) -> tuple[dict[str, NDArray[np.int64]], dict[str, NDArray[np.float64]]]:
        """Per rest-state slot of the day: n and value (accel: SD of ‖a‖; light, sound: mean).

        Also puts each hour's accelerometer mean and SD and light and sound means.
        """
        slot_n, slot_v = {}, {}
        for name in SLOT_SENSORS:
            slot_n[name], slot_v[name] = np.zeros(len(hrs) * per, np.int64), np.zeros(len(hrs) * per)
            cells = [(i * per + k, v) for i, hr in enumerate(hrs) for k, v in getattr(hr, name).items()]
            if not cells:
                continue
            ix, sums = zip(*cells, strict=True)
            n = np.array([v[0] for v in sums], np.int64)
            slot_n[name][list(ix)] = n
            if name == "accel":  # elementwise IEEE ops: the same bits as sd() per slot
                mean = np.array([v[1] / ACCEL_Q1 for v in sums]) / n
                s2 = np.array([v[2] / ACCEL_Q2 for v in sums])
                slot_v[name][list(ix)] = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
            else:
                slot_v[name][list(ix)] = [math.fsum(q) / k for k, q in sums]
            for i, hr in enumerate(hrs):
                acc = getattr(hr, name)
                if acc and name == "accel":
                    k, t1, t2 = map(sum, zip(*acc.values(), strict=True))
                    put(i, name, [t1 / ACCEL_Q1 / k, sd(k, t1 / ACCEL_Q1, t2 / ACCEL_Q2)])
                elif acc:
                    ks, parts = zip(*acc.values(), strict=True)
                    put(i, name, [math.fsum(chain.from_iterable(parts)) / sum(ks)])
        return slot_n, slot_v

    def _screen(self, hrs: list[PendingHour], edges: NDArray[np.float64], hi: float
                ) -> tuple[NDArray[np.float64], NDArray[np.bool_], Counter[int]]:
        """Screen sessions → (on-seconds per slot, slot active, sessions started per hour).

        A session starts at "on" (or at "unlock" while off, the "on" being
        lost) and ends at "off"; one without "off" ends ``screen_session_max_s``
        after it began. Sessions open at the day's end continue into the next day.
        """
        mx = self.config.screen_session_max_s
        since = self._screen_on_since
        starts, ends, unlocks, begun = [], [], [], []
        for ts, r in sorted(e for hr in hrs for e in hr.screen):
            if r == 2:
                if since is not None:
                    starts.append(since)
                    ends.append(min(ts, since + mx))
                    since = None
                continue
            if r == 1:
                unlocks.append(ts)
            if since is not None and ts - since > mx:
                starts.append(since)
                ends.append(since + mx)
                since = None
            if since is None:
                since = ts
                begun.append(ts)
        if since is not None:
            starts.append(since)
            ends.append(min(hi, since + mx))
        self._screen_on_since = since
        s, e = np.asarray(starts).reshape(-1, 1), np.asarray(ends).reshape(-1, 1)
        on = np.clip(np.minimum(e, edges[None, 1:]) - np.maximum(s, edges[None, :-1]), 0.0, None).sum(axis=0)
        slot_s, lo = self.config.sleep_slot_s, edges[0]
        unl = np.bincount(((np.asarray(unlocks) - lo) // slot_s).astype(np.int64), minlength=on.size)
        return on, (on > 0) | (unl > 0), Counter(math.floor(ts / 3600.0) for ts in begun)

    def _places_and_distance(self, hrs: list[PendingHour], h0: int, n: int, hi: float,
                             put, car) -> None:
        c = self.config
        fx = np.asarray(sorted(f for hr in hrs for f in hr.fixes), np.float64).reshape(-1, 3)
        ts, lat, lon = fx[:, 0], fx[:, 1], fx[:, 2]
        self._places.add(ts, lat, lon, now=hi)
        self._places.day_closed()
        labels = self._places.label(lat, lon)
        place_s, dist = self._tracker.attribute(h0, n, ts, lat, lon, labels, c.place_carry_max_s,
                                                c.distance_jitter_m)
        table = np.stack([place_s[PRIMARY], place_s[SECONDARY], place_s[OTHER], dist], axis=1)
        carried = (place_s.sum(axis=0) > 0).tolist()
        sl = GROUP_SLICES["location"]
        for i, hr in enumerate(hrs):
            if hr.fixes:
                put(i, "location", table[i])
            elif carried[i]:
                car[i, sl] = table[i]  # stay at the last known place; distance 0

    def _conversations(self, hrs: list[PendingHour], h0: int, put) -> None:
        """Episodes of voice=true readings ≤ gap apart with no voice=false between them.

        Count goes to the hour of the episode's first reading; the time between
        consecutive readings of an episode goes to the hour of the later one.
        """
        gap, last = self.config.conversation_gap_s, self._conv_last_true
        n_: Counter[int] = Counter()
        s_: defaultdict[int, float] = defaultdict(float)
        for ts, v in sorted(x for hr in hrs for x in hr.voice):
            if v and last is not None and ts - last <= gap:
                s_[math.floor(ts / 3600.0)] += ts - last
            elif v:
                n_[math.floor(ts / 3600.0)] += 1
            last = ts if v else None
        self._conv_last_true = last
        for i, hr in enumerate(hrs):
            if hr.voice:
                put(i, "voice", [n_.get(h0 + i, 0), s_.get(h0 + i, 0.0)])
