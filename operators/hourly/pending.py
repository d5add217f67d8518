"""What a not-yet-emitted hour keeps, and how raw input reduces into it.

:class:`PendingHour` is the per-hour state of :class:`~phenoflow.operators.hourly.aggregator.HourlyAggregator`.
Discrete events are added one at a time (:data:`DISCRETE`); accelerometer
chunks a batch at a time in numpy into exact fixed-point slot sums
(:func:`add_accel_batch`), so the features do not depend on arrival order or
on how the input is cut into batches.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from phenoflow.core.contract import ACCEL_MAX, Accelerometer, Ambient, Call, Location, Screen, Sms
from phenoflow.operators.hourly.schema import CALL_DIRECTIONS, SCREEN_STATES

__all__ = ["ACCEL_Q1", "ACCEL_Q2", "PendingHour", "msum_add", "sd", "DISCRETE", "add_accel_batch"]

#: Fixed-point scales of the accelerometer slot sums: per sample q1 = rint(‖a‖·2⁵²) and
#: q2 = rint(‖a‖²·2⁴²); per slot Python ints n, Σq1, Σq2. Integer sums are exact and
#: associative, so the features depend neither on arrival order nor on how the input is cut
#: into batches (float sums over a Bytewax batch would, and batches differ between runs and
#: after recovery). Resolution 2⁻⁵² ≈ 2.2e-16 m/s² (exact for ‖a‖ ≥ 1) and 2⁻⁴² ≈ 2.3e-13
#: m²/s⁴: fine enough that the SD of a still phone (≈ 0.01 m/s², where Σ‖a‖²/n − mean²
#: cancels ~6 digits) keeps ~1e-9 relative accuracy; scales of 2³², 2²² cost up to 5e-5.
#: Overflow: the contract bounds each axis to ACCEL_MAX = 500 m/s², so ‖a‖ ≤ 866 < 2¹⁰ and
#: q1, q2 < 2⁶² fit int64; numpy sums them as 31-bit limbs (hi = q >> 31, lo = q & (2³¹−1))
#: over at most 2²⁰ samples per pass, so a limb sum stays < 2⁵¹.
ACCEL_Q1, ACCEL_Q2 = 2.0 ** 52, 2.0 ** 42
_MAG_MAX, _PASS, _LIMB = 1024.0, 1 << 20, 31  # ‖a‖ bound of the int64 path, samples per pass, limb bits
_SMALL = 96  # up to this many samples plain Python (~0.45 µs a sample) beats numpy (~40 µs a pass)
_LOW = (1 << _LIMB) - 1
assert math.sqrt(3.0) * ACCEL_MAX < _MAG_MAX
_SCREEN_IDX = {s: i for i, s in enumerate(SCREEN_STATES)}
_CALL_IDX = {d: i for i, d in enumerate(CALL_DIRECTIONS)}


class PendingHour:
    """Partial aggregates of one UTC hour that is not yet emitted."""

    __slots__ = ("n_ev", "vote", "accel", "light", "sound", "screen", "calls", "sms", "fixes", "voice")

    def __init__(self) -> None:
        self.n_ev = 0  # events (accelerometer: chunk pieces per slot) seen in the hour; > 0 = has data
        self.vote: tuple[float, int] | None = None  # (ts, utc_offset_min) of the newest event with an offset
        self.accel: dict[int, list[int]] = {}  # slot in hour → [n, Σq1, Σq2] (fixed point, ACCEL_Q1/Q2)
        self.light: dict[int, list] = {}  # slot in hour → [n, Σ lux partials]
        self.sound: dict[int, list] = {}  # slot in hour → [n, Σ dB partials]
        self.screen: list[tuple[float, int]] = []  # (ts, index in SCREEN_STATES)
        self.calls: list[tuple[float, int, float]] = []  # (ts, direction index, duration s)
        self.sms = [0, 0]  # incoming, outgoing
        self.fixes: list[tuple[float, float, float]] = []  # (ts, lat, lon) — never leaves the hourly stage
        self.voice: list[tuple[float, bool]] = []


def msum_add(partials: list[float], x: float) -> None:
    """Add x to an exact Shewchuk expansion (Python's ``msum`` recipe; ``math.fsum`` rounds it).

    Hand-written because numpy has no exact incremental sum; exactness makes
    the hourly sums independent of arrival order. Used for light and sound,
    which have no upper bound (so no fixed point).
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


def sd(n: int, s1: float, s2: float) -> float:
    """Population SD (ddof = 0) from count, sum and sum of squares."""
    mean = s1 / n
    return math.sqrt(max(s2 / n - mean * mean, 0.0))


def _ambient(hr: PendingHour, ev: Ambient, ts: float, slot_s: int) -> None:
    slot = int((ts % 3600.0) // slot_s)
    for acc, v in ((hr.light, ev.light_lux), (hr.sound, ev.sound_db)):
        if v is not None:
            a = acc.get(slot)
            if a is None:
                acc[slot] = [1, [float(v)]]
            else:
                a[0] += 1
                msum_add(a[1], float(v))
    if ev.voice is not None:
        hr.voice.append((ts, bool(ev.voice)))


def _screen(hr: PendingHour, ev: Screen, ts: float, slot_s: int) -> None:
    hr.screen.append((ts, _SCREEN_IDX[ev.state]))


def _call(hr: PendingHour, ev: Call, ts: float, slot_s: int) -> None:
    hr.calls.append((ts, _CALL_IDX[ev.direction], float(ev.duration_s)))


def _sms(hr: PendingHour, ev: Sms, ts: float, slot_s: int) -> None:
    hr.sms[ev.direction != "incoming"] += 1


def _location(hr: PendingHour, ev: Location, ts: float, slot_s: int) -> None:
    hr.fixes.append((ts, float(ev.lat), float(ev.lon)))


#: Discrete (one-time-stamp) input type → (sensor stream, function adding one event at
#: ``ts`` to its pending hour; ``slot_s`` = ``HourlyConfig.sleep_slot_s``). The aggregator
#: dispatches through this dict instead of an isinstance chain per event.
DISCRETE: dict[type, tuple[str, Callable[[PendingHour, Any, float, int], None]]] = {
    Screen: ("screen", _screen), Call: ("call", _call), Sms: ("sms", _sms), Location: ("location", _location),
    Ambient: ("ambient", _ambient)}


def add_accel_batch(hours: dict[int, PendingHour], chunks: list[Accelerometer], cutoff: float, slot_s: int
                    ) -> tuple[list[int], tuple[float, float, int, int] | None, bool]:
    """Add accelerometer chunks to the pending ``hours`` in numpy passes of ≤ 2²⁰ samples.

    Returns the positions of the late chunks (a sample before ``cutoff``; their
    on-time samples are still added), (oldest, newest chunk time, first, last
    hour touched) or None if no sample was added — a chunk's time is its newest
    sample's — and whether an hour's voted UTC offset changed.
    """
    lens = [len(c.ts) for c in chunks]
    ends = list(accumulate(lens))
    late: list[int] = []
    spans: list[tuple[float, float, int, int]] = []
    revote, a = False, 0
    while a < len(chunks):  # a chunk has ≤ MAX_CHUNK = 10,000 samples, so every pass takes one
        b = bisect_right(ends, (ends[a - 1] if a else 0) + _PASS)
        late_ab, span, changed = _accel_pass(hours, chunks[a:b], lens[a:b], cutoff, slot_s)
        late += [a + j for j in late_ab]
        spans += [span] if span is not None else []
        revote, a = revote or changed, b
    if not spans:
        return late, None, revote
    old, new, first, last = zip(*spans, strict=True)
    return late, (min(old), max(new), min(first), max(last)), revote


def _accel_pass(hours: dict[int, PendingHour], chunks: list[Accelerometer], lens: list[int],
                cutoff: float, slot_s: int) -> tuple[list[int], tuple[float, float, int, int] | None, bool]:
    """One pass of :func:`add_accel_batch`: reduce the samples, then merge per distinct hour and slot.

    Per slot: n, Σq1, Σq2 (:data:`ACCEL_Q1`). Per hour: ``n_ev`` += its chunk
    pieces (a piece: one chunk's samples in one slot) and the offset vote —
    each piece votes (its chunk's newest sample time, the chunk's offset), the
    largest vote wins — all as if the pieces were added one by one.
    """
    if sum(lens) <= _SMALL:
        late, used, pieces, votes, sums = _reduce_python(chunks, cutoff, slot_s)
    else:
        late, used, pieces, votes, sums = _reduce_numpy(chunks, np.array(lens, np.int64), cutoff, slot_s)
    if not used:
        return late, None, False
    revote = False
    for h, k in pieces:
        hr = hours.get(h)
        if hr is None:
            hr = hours[h] = PendingHour()
        hr.n_ev += k
        v = votes.get(h)
        if v is not None and (hr.vote is None or v > hr.vote):
            revote = revote or hr.vote is None or hr.vote[1] != v[1]
            hr.vote = v
    per = 3600 // slot_s
    for s, k, a, b in sums:
        acc = hours[s // per].accel
        tot = acc.get(s % per)
        if tot is None:
            acc[s % per] = [k, a, b]
        else:
            tot[0] += k
            tot[1] += a
            tot[2] += b
    first, last = min(h for h, _ in pieces), max(h for h, _ in pieces)
    return late, (min(used), max(used), first, last), revote


#: What a reducer returns: late chunk positions, newest sample time of every chunk with an
#: on-time sample, (hour, pieces), hour → best vote, (slot number, n, Σq1, Σq2).
_Reduced = tuple[list[int], list[float], list[tuple[int, int]], dict[int, tuple[float, int]],
                 list[tuple[int, int, int, int]]]
_OUTSIDE = f"accelerometer sample outside the contract (|axis| ≤ {ACCEL_MAX:g} m/s²)"


def _reduce_numpy(chunks: list[Accelerometer], lens: NDArray[np.int64], cutoff: float, slot_s: int) -> _Reduced:
    """Reduce all samples in one numpy pass: sorted by slot, summed with ``reduceat``."""
    n, m, per = int(lens.sum()), len(chunks), 3600 // slot_s

    def cat(name: str) -> NDArray[np.float64]:
        return np.fromiter(chain.from_iterable(map(attrgetter(name), chunks)), np.float64, count=n)

    ts = cat("ts")
    mag = np.sqrt(np.square(cat("x")) + np.square(cat("y")) + np.square(cat("z")))
    if not mag.max() < _MAG_MAX:  # decode() guarantees the bound; a hand-built event may break it
        raise ValueError(_OUTSIDE)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    newest = np.maximum.reduceat(ts, starts)  # = the newest on-time sample whenever one is on time
    cid = np.repeat(np.arange(m), lens)
    late: list[int] = []
    used = np.ones(m, bool)
    if ts.min() < cutoff:
        keep = ts >= cutoff
        n_keep = np.add.reduceat(keep, starts, dtype=np.int64)
        late, used = np.flatnonzero(n_keep < lens).tolist(), n_keep > 0
        if not used.any():
            return late, [], [], {}, []
        ts, mag, cid = ts[keep], mag[keep], cid[keep]
    slot = np.floor(ts / slot_s).astype(np.int64)
    if (slot[1:] < slot[:-1]).any():
        order = np.argsort(slot, kind="stable")  # stable: within a slot, samples stay grouped by chunk
        slot, mag, cid = slot[order], mag[order], cid[order]
    s_new = np.concatenate(([True], slot[1:] != slot[:-1]))
    s_at = np.flatnonzero(s_new)
    p_at = np.flatnonzero(s_new | np.concatenate(([True], cid[1:] != cid[:-1])))  # piece starts
    p_hour, p_cid = slot[p_at] // per, cid[p_at]
    h_at = np.flatnonzero(np.concatenate(([True], p_hour[1:] != p_hour[:-1])))
    pieces = list(zip(p_hour[h_at].tolist(), np.diff(np.append(h_at, p_at.size)).tolist(), strict=True))
    sums = []
    for x, scale in ((mag, ACCEL_Q1), (np.square(mag), ACCEL_Q2)):
        q = np.rint(x * scale).astype(np.int64)
        hi, lo = np.add.reduceat(q >> _LIMB, s_at).tolist(), np.add.reduceat(q & _LOW, s_at).tolist()
        sums.append([(h << _LIMB) + low for h, low in zip(hi, lo, strict=True)])
    counts = np.diff(np.append(s_at, slot.size)).tolist()
    return (late, newest[used].tolist(), pieces, _votes(chunks, p_hour, newest[p_cid], p_cid),
            list(zip(slot[s_at].tolist(), counts, *sums, strict=True)))


def _votes(chunks: list[Accelerometer], p_hour: NDArray[np.int64], p_ts: NDArray[np.float64],
           p_cid: NDArray[np.int64]) -> dict[int, tuple[float, int]]:
    """Hour → largest (ts, offset) vote of its pieces whose chunk has an offset."""
    offs = np.array([c.utc_offset_min for c in chunks], np.float64)[p_cid]  # None → NaN
    ok = np.flatnonzero(~np.isnan(offs))
    if ok.size == 0:
        return {}
    ok = ok[np.lexsort((offs[ok], p_ts[ok], p_hour[ok]))]
    best = ok[np.append(p_hour[ok][1:] != p_hour[ok][:-1], True)]  # the last is the largest vote of its hour
    return {h: (t, int(o)) for h, t, o in zip(p_hour[best].tolist(), p_ts[best].tolist(), offs[best].tolist(), strict=True)}


def _reduce_python(chunks: list[Accelerometer], cutoff: float, slot_s: int) -> _Reduced:
    """:func:`_reduce_numpy` sample by sample, for inputs too small to pay numpy's per-call cost.

    The same IEEE operations and round-half-even rounding give the same
    integers, so which reducer ran never shows in the records.
    """
    per = 3600 // slot_s
    late: list[int] = []
    used: list[float] = []
    sums: dict[int, list[int]] = {}
    pieces: dict[int, int] = {}
    votes: dict[int, tuple[float, int]] = {}
    for j, c in enumerate(chunks):
        slots, kept = set(), 0
        for t, x, y, z in zip(c.ts, c.x, c.y, c.z, strict=True):
            m = math.sqrt(x * x + y * y + z * z)
            if not m < _MAG_MAX:
                raise ValueError(_OUTSIDE)
            if t < cutoff:
                continue
            s, q1, q2, kept = math.floor(t / slot_s), round(m * ACCEL_Q1), round(m * m * ACCEL_Q2), kept + 1
            a = sums.get(s)
            if a is None:
                sums[s] = [1, q1, q2]
            else:
                a[0], a[1], a[2] = a[0] + 1, a[1] + q1, a[2] + q2
            slots.add(s)
        if kept < len(c.ts):
            late.append(j)
        if kept:
            newest = float(max(c.ts))
            used.append(newest)
            for h in (s // per for s in slots):
                pieces[h] = pieces.get(h, 0) + 1
                v = (newest, c.utc_offset_min)
                if c.utc_offset_min is not None and (h not in votes or v > votes[h]):
                    votes[h] = v  # type: ignore[assignment]  # v's offset is not None: checked just above
    return late, used, list(pieces.items()), votes, [(s, a[0], a[1], a[2]) for s, a in sums.items()]
