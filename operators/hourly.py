"""Per-participant streaming aggregator of hourly behaviour features (Adler et al. 2020).

One :class:`HourlyAggregator` per participant turns decoded raw events
(:mod:`phenoflow.contract`) into :class:`~phenoflow.contract.HourlyFeatures`
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

Order independence: per-hour state holds exact partial sums (Shewchuk
expansions, the algorithm behind ``math.fsum``) and event lists that are sorted
before use, so any arrival order within the lateness bound yields bit-identical
records.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from numpy.typing import NDArray

from phenoflow.contract import Accelerometer, Ambient, Call, HourlyFeatures, Location, Screen, Sms
from phenoflow.operators.hourly_schema import (  # noqa: F401 - re-exported: the stage's public names
    _SLICE,
    CALL_DIRECTIONS,
    FEATURE_GROUPS,
    FEATURE_NAMES,
    SCREEN_STATES,
    HourlyConfig,
)
from phenoflow.operators.imputation import HourOfDayMeans, impute_hour
from phenoflow.operators.places import OTHER, PRIMARY, SECONDARY, PlaceModel, PlaceTracker
from phenoflow.operators.sleep import longest_rest_episode, rest_states

#: Sensor stream of each input type (the watermark is kept per stream).
STREAMS: dict[type, str] = {Accelerometer: "accelerometer", Screen: "screen", Call: "call", Sms: "sms",
                             Location: "location", Ambient: "ambient"}


@dataclass
class HourlyStep:
    """What one :meth:`HourlyAggregator.update` produced."""

    records: list[HourlyFeatures] = field(default_factory=list)  #: closed hours, in hour order
    late: list[object] = field(default_factory=list)  #: events whose hour was already emitted


def _msum_add(partials: list[float], x: float) -> None:
    """Add x to an exact Shewchuk expansion (Python's ``msum`` recipe; ``math.fsum`` rounds it).

    Hand-written because numpy has no exact incremental sum; exactness makes
    the hourly sums independent of arrival order.
    """
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def _sd(n: int, s1: float, s2: float) -> float:
    """Population SD (ddof = 0) from count, sum and sum of squares."""
    mean = s1 / n
    return math.sqrt(max(s2 / n - mean * mean, 0.0))


class _Hour:
    """Partial aggregates of one UTC hour that is not yet emitted."""

    __slots__ = ("n_ev", "vote", "accel", "light", "sound", "screen", "calls", "sms", "fixes", "voice")

    def __init__(self) -> None:
        self.n_ev = 0  # events (accelerometer: chunk pieces) seen in the hour
        self.vote: tuple[float, int] | None = None  # (ts, utc_offset_min) of the newest event with an offset
        self.accel: dict[int, list] = {}  # slot in hour → [n, Σ‖a‖ partials, Σ‖a‖² partials]
        self.light: dict[int, list] = {}  # slot in hour → [n, Σ lux partials]
        self.sound: dict[int, list] = {}  # slot in hour → [n, Σ dB partials]
        self.screen: list[tuple[float, int]] = []  # (ts, index in SCREEN_STATES)
        self.calls: list[tuple[float, int, float]] = []  # (ts, direction index, duration s)
        self.sms = [0, 0]  # incoming, outgoing
        self.fixes: list[tuple[float, float, float]] = []  # (ts, lat, lon) — never leaves this stage
        self.voice: list[tuple[float, bool]] = []


_EMPTY = _Hour()


class HourlyAggregator:
    """Streaming hourly features of one participant (picklable; ~0.2 MiB at steady state).

    ``update(event)`` accepts Accelerometer, Screen, Call, Sms, Location and
    Ambient events in any order and returns the records of every local day the
    watermark closed plus the late events; other event types are ignored.
    ``flush()`` closes everything up to the last hour of data (end of input).
    """

    def __init__(self, participant: str | None = None, config: HourlyConfig | None = None) -> None:
        c = self.config = config or HourlyConfig()
        self.participant = participant
        self.late_events = 0
        self._stream_max: dict[str, float] = {}
        self._stream_wall: dict[str, float] = {}  # wall clock of each stream's last delivery
        self._first: tuple[float, float] | None = None  # (earliest event time, wall clock of first event)
        self._now: float | None = None  # wall clock of the latest update that passed one
        self._hours: dict[int, _Hour] = {}
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
        holding. With the wall clock, streams not seen yet count as seen at the
        participant's earliest event, so the first topic read cannot close days
        alone.
        """
        if not self._stream_max:
            return -math.inf
        c = self.config
        newest = max(self._stream_max.values())
        maxes = dict(self._stream_max)
        if self._now is not None and self._first is not None:
            for stream in STREAMS.values():
                maxes.setdefault(stream, self._first[0])
        active = []
        for stream, t in maxes.items():
            if t >= newest - c.idle_timeout_s:
                active.append(t)
            elif self._now is not None:
                wall = self._stream_wall.get(stream, self._first[1] if self._first else -math.inf)
                if self._now - wall < c.idle_wall_s:
                    active.append(t)
        return min(active) - c.allowed_lateness_s

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
        """
        step = HourlyStep()
        moved = False
        for event in events:
            stream = STREAMS.get(type(event))
            if stream is None:
                continue
            if self.participant is None:
                self.participant = event.participant  # type: ignore[attr-defined]
            elif event.participant != self.participant:  # type: ignore[attr-defined]
                raise ValueError("event of another participant sent to this aggregator")
            cutoff = -math.inf if self._next_hour is None else self._next_hour * 3600.0
            got = self._add_accel(event, cutoff) if isinstance(event, Accelerometer) else self._add(event, cutoff)
            if got is None or got[1]:
                # Wholly late, or an accelerometer chunk straddling the emitted boundary
                # (its on-time samples were used): reported either way.
                step.late.append(event)
                self.late_events += 1
            if got is not None:
                moved = True
                self._stream_max[stream] = max(self._stream_max.get(stream, -math.inf), got[0])
                if now is not None:
                    self._now = now
                    self._stream_wall[stream] = now
                    # Unseen streams are held at the earliest event time seen so far.
                    self._first = (got[0], now) if self._first is None else (min(self._first[0], got[0]), self._first[1])
        if moved:
            step.records = self._advance(self.watermark, final=False)
        return step

    def flush(self) -> list[HourlyFeatures]:
        """End of input: emit every remaining hour up to the last hour of data."""
        return self._advance(math.inf, final=True)

    def _touch(self, ts: float, offset: int | None, vote_ts: float | None = None) -> _Hour:
        """The pending hour holding ``ts``; the event votes for the hour's UTC offset."""
        h = math.floor(ts / 3600.0)
        hr = self._hours.get(h)
        if hr is None:
            hr = self._hours[h] = _Hour()
        hr.n_ev += 1
        key = (ts if vote_ts is None else vote_ts, offset)
        if offset is not None and (hr.vote is None or key > hr.vote):
            if hr.vote is None or hr.vote[1] != offset:
                self._walk_key = None  # day boundaries may have moved
            hr.vote = key  # type: ignore[assignment]
        if self._first_hour is None or h < self._first_hour:
            self._first_hour = h
        if self._last_hour is None or h > self._last_hour:
            self._last_hour = h
        return hr

    def _add(self, ev: object, cutoff: float) -> tuple[float, bool] | None:
        ts = float(ev.ts)  # type: ignore[attr-defined]
        if ts < cutoff:
            return None
        hr = self._touch(ts, ev.utc_offset_min)  # type: ignore[attr-defined]
        if isinstance(ev, Screen):
            hr.screen.append((ts, SCREEN_STATES.index(ev.state)))
        elif isinstance(ev, Call):
            hr.calls.append((ts, CALL_DIRECTIONS.index(ev.direction), float(ev.duration_s)))
        elif isinstance(ev, Sms):
            hr.sms[0 if ev.direction == "incoming" else 1] += 1
        elif isinstance(ev, Location):
            hr.fixes.append((ts, float(ev.lat), float(ev.lon)))
        elif isinstance(ev, Ambient):
            slot = int((ts % 3600.0) // self.config.sleep_slot_s)
            for acc, v in ((hr.light, ev.light_lux), (hr.sound, ev.sound_db)):
                if v is not None:
                    a = acc.setdefault(slot, [0, []])
                    a[0] += 1
                    _msum_add(a[1], float(v))
            if ev.voice is not None:
                hr.voice.append((ts, bool(ev.voice)))
        return ts, False

    def _add_accel(self, ev: Accelerometer, cutoff: float) -> tuple[float, bool] | None:
        """Vectorised: per-slot n, Σ‖a‖, Σ‖a‖² of the chunk via bincount; samples before ``cutoff`` are late."""
        ts = np.asarray(ev.ts, np.float64)
        mag = np.sqrt(np.square(ev.x, dtype=np.float64) + np.square(ev.y, dtype=np.float64)
                      + np.square(ev.z, dtype=np.float64))
        keep = ts >= cutoff
        late = not bool(keep.all())
        if late:
            ts, mag = ts[keep], mag[keep]
            if ts.size == 0:
                return None
        slot_s = self.config.sleep_slot_s
        slots = np.floor(ts / slot_s).astype(np.int64)
        newest = float(ts.max())
        if slots.min() == slots.max():
            parts = [(int(slots[0]), ts.size, float(mag.sum()), float(np.dot(mag, mag)))]
        else:
            uniq, inv = np.unique(slots, return_inverse=True)
            n, s1, s2 = np.bincount(inv), np.bincount(inv, weights=mag), np.bincount(inv, weights=mag * mag)
            parts = [(int(u), int(k), float(a), float(b)) for u, k, a, b in zip(uniq, n, s1, s2)]
        per_hour = 3600 // slot_s
        for slot, n_s, s1_s, s2_s in parts:
            # Every piece of a chunk votes with the chunk's newest sample time.
            hr = self._touch(float(slot * slot_s), ev.utc_offset_min, vote_ts=newest)
            acc = hr.accel.setdefault(slot % per_hour, [0, [], []])
            acc[0] += n_s
            _msum_add(acc[1], s1_s)
            _msum_add(acc[2], s2_s)
        return newest, late

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
            start = h * 3600.0 + off * 60.0
            d = math.floor(start / 86400.0)
            if day is None:
                day = d if self._day is None else max(d, self._day + 1)
            elif d > day:
                return (h - 1, day) if final or wm >= (h + 1) * 3600.0 else None
            if not final and wm < (h + 1) * 3600.0:
                return None
            if math.floor((start + 3600.0) / 86400.0) > day or (final and h >= self._last_hour):
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
        shape = (n, len(FEATURE_NAMES))
        val, obs, car = np.zeros(shape), np.zeros(shape, bool), np.full(shape, np.nan)

        def put(i: int, group: str, values: list[float] | NDArray[np.float64]) -> None:
            val[i, _SLICE[group]] = values
            obs[i, _SLICE[group]] = True

        slot_n = {k: np.zeros(ns, np.int64) for k in ("accel", "light", "sound")}
        slot_v = {k: np.zeros(ns) for k in ("accel", "light", "sound")}  # accel: SD, others: mean
        for i, hr in enumerate(hrs):
            if hr.accel:
                tot, p1, p2 = 0, [], []
                for k, (cnt, q1, q2) in hr.accel.items():
                    slot_n["accel"][i * per + k] = cnt
                    slot_v["accel"][i * per + k] = _sd(cnt, math.fsum(q1), math.fsum(q2))
                    tot, p1, p2 = tot + cnt, p1 + q1, p2 + q2
                s1, s2 = math.fsum(p1), math.fsum(p2)
                put(i, "accel", [s1 / tot, _sd(tot, s1, s2)])
            for name in ("light", "sound"):
                acc = getattr(hr, name)
                if acc:
                    for k, (cnt, q) in acc.items():
                        slot_n[name][i * per + k], slot_v[name][i * per + k] = cnt, math.fsum(q) / cnt
                    put(i, name, [math.fsum([x for _, q in acc.values() for x in q])
                                  / sum(cnt for cnt, _ in acc.values())])
            if hr.calls:
                cnt, dur = [0] * 5, [[] for _ in range(5)]
                for _, d, s in hr.calls:
                    cnt[d] += 1
                    dur[d].append(s)
                row = [x for d in range(5) for x in (cnt[d], math.fsum(dur[d]))]
                put(i, "call", row + [sum(cnt), math.fsum([s for ds in dur for s in ds])])
            if hr.sms != [0, 0]:
                put(i, "sms", [hr.sms[0], hr.sms[1], hr.sms[0] + hr.sms[1]])

        edges = lo + c.sleep_slot_s * np.arange(ns + 1, dtype=np.float64)
        on_slot, active_slot, begun = self._screen(hrs, edges, hi)
        on_hour = on_slot.reshape(n, per).sum(axis=1)
        for i, hr in enumerate(hrs):
            if hr.screen or on_hour[i] > 0:
                unl = sum(1 for _, r in hr.screen if r == 1)
                put(i, "screen", [unl, on_hour[i], begun.get(h0 + i, 0)])
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
            for i in range(n):
                put(i, "sleep", [ep.onset_h, ep.wake_h, ep.duration_h])

        out = []
        for i, hr in enumerate(hrs):
            local = (h0 + i) * 3600 + offs[i] * 60
            lh, wd = int(local // 3600) % 24, (int(local // 86400) + 3) % 7  # 1970-01-01: Thursday
            vec, filled = impute_hour(val[i], obs[i], car[i], has_data=hr.n_ev > 0,
                                      means=self._means, local_hour=lh)
            if hr.n_ev > 0:
                self._means.update(lh, vec)
            out.append(HourlyFeatures(
                participant=self.participant or "", utc_offset_min=offs[i],
                hour_start=float((h0 + i) * 3600), local_hour=lh, weekday=wd,
                features={k: float(v) for k, v in zip(FEATURE_NAMES, vec)}, filled=filled,
            ))
        self._day = day
        return out

    def _screen(self, hrs: list[_Hour], edges: NDArray[np.float64], hi: float
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
                    starts.append(since), ends.append(min(ts, since + mx))
                    since = None
                continue
            if r == 1:
                unlocks.append(ts)
            if since is not None and ts - since > mx:
                starts.append(since), ends.append(since + mx)
                since = None
            if since is None:
                since = ts
                begun.append(ts)
        if since is not None:
            starts.append(since), ends.append(min(hi, since + mx))
        self._screen_on_since = since
        s, e = np.asarray(starts).reshape(-1, 1), np.asarray(ends).reshape(-1, 1)
        on = np.clip(np.minimum(e, edges[None, 1:]) - np.maximum(s, edges[None, :-1]), 0.0, None).sum(axis=0)
        slot_s, lo = self.config.sleep_slot_s, edges[0]
        unl = np.bincount(((np.asarray(unlocks) - lo) // slot_s).astype(np.int64), minlength=on.size)
        return on, (on > 0) | (unl > 0), Counter(math.floor(ts / 3600.0) for ts in begun)

    def _places_and_distance(self, hrs: list[_Hour], h0: int, n: int, hi: float, put, car) -> None:  # noqa: ANN001
        c = self.config
        fx = np.asarray(sorted(f for hr in hrs for f in hr.fixes), np.float64).reshape(-1, 3)
        ts, lat, lon = fx[:, 0], fx[:, 1], fx[:, 2]
        self._places.add(ts, lat, lon, now=hi)
        self._places.day_closed()
        labels = self._places.label(lat, lon)
        place_s, dist = self._tracker.attribute(h0, n, ts, lat, lon, labels, c.place_carry_max_s,
                                                c.distance_jitter_m)
        sl = _SLICE["location"]
        for i, hr in enumerate(hrs):
            row = [place_s[PRIMARY, i], place_s[SECONDARY, i], place_s[OTHER, i], dist[i]]
            if hr.fixes:
                put(i, "location", row)
            elif place_s[:, i].sum() > 0:
                car[i, sl] = row  # stay at the last known place; distance 0

    def _conversations(self, hrs: list[_Hour], h0: int, put) -> None:  # noqa: ANN001
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
