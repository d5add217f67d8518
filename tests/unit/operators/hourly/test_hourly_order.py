"""Order independence within the lateness bound, and late events beyond it."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phenoflow.core.contract import (
    Accelerometer,
    Ambient,
    Call,
    HourlyFeatures,
    Location,
    Screen,
    Sms,
)
from phenoflow.operators.hourly.aggregator import HourlyAggregator, HourlyConfig
from phenoflow.operators.hourly.pending import _reduce_numpy, _reduce_python

P = "p7"
KEY = b"unit-test-frame-key"  # the study secret that keys the private place frame
T0 = 1_704_067_200.0 + 5 * 3600.0  # 2024-01-01 05:00 UTC
LATENESS = HourlyConfig().allowed_lateness_s
CHUNK_SPAN = 60.0  # no chunk spans more than this


def first_ts(ev: object) -> float:
    return ev.ts[0] if isinstance(ev, Accelerometer) else ev.ts  # type: ignore[attr-defined]


def make_events(rng: np.random.Generator, days: float = 2.5) -> list[object]:
    """A busy participant: every sensor, two places, an offset change (DST-like) on day 2."""
    end = T0 + days * 86400.0
    ev: list[object] = []

    def off(ts: float) -> int:
        return 60 if ts < T0 + 1.4 * 86400.0 else 120

    for t in np.arange(T0, end, 600.0) + rng.uniform(0, 30):
        n = int(rng.integers(1, 20))
        ts = (t + np.sort(rng.uniform(0, CHUNK_SPAN, n))).tolist()
        xyz = rng.normal(0, 3, (3, n)).tolist()
        ev.append(Accelerometer(participant=P, utc_offset_min=off(t), ts=ts, x=xyz[0], y=xyz[1], z=xyz[2]))
    for t in np.arange(T0, end, 2400.0) + rng.uniform(0, 600):
        for dt, state in ((0.0, "on"), (5.0, "unlock"), (float(rng.uniform(10, 900)), "off")):
            ev.append(Screen(participant=P, utc_offset_min=off(t), ts=t + dt, state=state))
    for t in rng.uniform(T0, end, 12):
        d = ["incoming", "outgoing", "missed", "rejected", "blocked"][int(rng.integers(5))]
        ev.append(Call(participant=P, utc_offset_min=off(t), ts=t, direction=d,
                       duration_s=float(rng.uniform(0, 600))))
    for t in rng.uniform(T0, end, 25):
        ev.append(Sms(participant=P, utc_offset_min=off(t), ts=t,
                      direction="incoming" if rng.random() < 0.5 else "outgoing"))
    for t in np.arange(T0, end, 300.0) + rng.uniform(0, 20):
        hour = ((t - T0) / 3600.0) % 24
        base = (52.0, 13.0) if hour < 8 or hour > 17 else (52.1, 13.05)
        if rng.random() < 0.1:
            base = (52.0 + rng.uniform(-0.3, 0.3), 13.0 + rng.uniform(-0.3, 0.3))
        ev.append(Location(participant=P, utc_offset_min=off(t), ts=t,
                           lat=base[0] + rng.normal(0, 2e-4), lon=base[1] + rng.normal(0, 2e-4)))
    for t in np.arange(T0, end, 300.0) + rng.uniform(0, 20):
        ev.append(Ambient(participant=P, utc_offset_min=off(t), ts=t, light_lux=float(rng.uniform(0, 50)),
                          sound_db=float(rng.uniform(25, 60)), voice=bool(rng.random() < 0.3)))
    return ev


EVENTS = make_events(np.random.default_rng(42))


def run(events: list[object], config: HourlyConfig | None = None) -> tuple[list[HourlyFeatures], list[object]]:
    agg = HourlyAggregator(config=config, frame_key=KEY)
    recs: list[HourlyFeatures] = []
    late: list[object] = []
    for e in events:
        step = agg.update(e)
        recs += step.records
        late += step.late
    assert agg.late_events == len(late)
    return recs + agg.flush(), late


REFERENCE, _ = run(sorted(EVENTS, key=first_ts))


def arrival_order(events: list[object], seed: int, max_delay: float) -> list[object]:
    """Each event arrives up to ``max_delay`` after its first sample (phones upload in bursts)."""
    delay = np.random.default_rng(seed).uniform(0.0, max_delay, len(events))
    order = np.argsort([first_ts(e) + d for e, d in zip(events, delay, strict=True)], kind="stable")
    return [events[i] for i in order]


def test_reference_is_complete() -> None:
    hours = [r.hour_start for r in REFERENCE]
    assert hours == sorted(hours) and len(hours) == len(set(hours))
    assert hours[-1] - hours[0] == 3600.0 * (len(hours) - 1)
    assert any(r.features["place_secondary_s"] > 0 for r in REFERENCE)
    assert {r.utc_offset_min for r in REFERENCE} == {60, 120}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_shuffles_within_the_lateness_bound_give_identical_records(seed: int) -> None:
    recs, late = run(arrival_order(EVENTS, seed, LATENESS - CHUNK_SPAN))
    assert late == []
    assert recs == REFERENCE  # bit-identical, not approximately equal


@settings(max_examples=25, deadline=None)
@given(perm=st.permutations(list(range(60))))
def test_any_permutation_with_unbounded_lateness_is_identical(perm: list[int]) -> None:
    cfg = HourlyConfig(allowed_lateness_s=1e9)
    events = sorted(EVENTS, key=first_ts)[:60]
    assert run([events[i] for i in perm], cfg)[0] == run(events, cfg)[0]


def test_events_beyond_the_bound_come_back_late_never_dropped() -> None:
    events = arrival_order(EVENTS, 7, 6 * LATENESS)
    agg = HourlyAggregator(frame_key=KEY)
    emitted_until = -np.inf
    late: list[object] = []
    hours: list[float] = []
    for e in events:
        step = agg.update(e)
        for x in step.late:
            assert first_ts(x) < emitted_until  # its hour had been emitted before it came
        late += step.late
        hours += [r.hour_start for r in step.records]
        if step.records:
            emitted_until = step.records[-1].hour_start + 3600.0
    hours += [r.hour_start for r in agg.flush()]
    assert len(late) > 0 and agg.late_events == len(late)
    # Still exactly one record per hour, none repeated for the late events.
    assert hours == [hours[0] + 3600.0 * k for k in range(len(hours))]


def run_batched(events: list[object], cuts: list[int]) -> tuple[list[HourlyFeatures], list[object]]:
    """Feed ``events`` through ``update_batch`` cut at the positions ``cuts``."""
    agg = HourlyAggregator(frame_key=KEY)
    recs: list[HourlyFeatures] = []
    late: list[object] = []
    for a, b in zip([0] + cuts, cuts + [len(events)], strict=True):
        step = agg.update_batch(events[a:b])
        recs += step.records
        late += step.late
    assert agg.late_events == len(late)
    return recs + agg.flush(), late


def awkward_chunks() -> list[Accelerometer]:
    """Chunks that straddle slot and hour boundaries, lack an offset, or tie on the vote time."""
    h = T0 + 7 * 3600.0  # an hour boundary
    mk = lambda ts, off, z: Accelerometer(participant=P, utc_offset_min=off, ts=ts,
                                          x=[0.3] * len(ts), y=[-0.1] * len(ts), z=z)
    return [
        mk([h - 20.0, h - 10.0, h + 10.0, h + 30.0], 60, [9.7, 9.9, 9.8, 9.6]),  # hour (and slot) straddle
        mk([h + 590.0, h + 610.0], None, [9.81, 9.82]),  # slot straddle, no offset: no vote
        mk([h + 1000.0, h + 1200.0], 60, [5.0, 12.0]),  # the same newest time as the next chunk…
        mk([h + 1100.0, h + 1200.0], 120, [7.0, 8.0]),  # …with a larger offset: it wins the tie
    ]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_any_batching_gives_identical_records(seed: int) -> None:
    """Fixed-point accelerometer sums: one big batch, one by one, or random cuts — bit for bit."""
    rng = np.random.default_rng(seed)
    events = arrival_order(EVENTS + awkward_chunks(), seed, LATENESS - CHUNK_SPAN)
    one_by_one = run(events)
    assert one_by_one[1] == []
    cuts = sorted(rng.choice(np.arange(1, len(events)), int(rng.integers(1, 60)), replace=False).tolist())
    assert run_batched(events, cuts) == one_by_one
    assert run_batched(events, []) == one_by_one  # everything in a single batch
    assert run_batched(events, list(range(3, len(events), 250))) == one_by_one  # flow-like batches


def test_tied_vote_takes_the_larger_offset_in_any_batching() -> None:
    chunks = awkward_chunks()
    for cuts in ([], [1, 2, 3]):
        recs, _ = run_batched(chunks, cuts)
        by = {r.hour_start: r for r in recs}
        assert by[T0 + 7 * 3600.0].utc_offset_min == 120
        assert by[T0 + 6 * 3600.0].utc_offset_min == 60


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_numpy_and_python_reducers_agree(seed: int) -> None:
    """The two accelerometer reducers (large vs small passes) give the same integers and votes."""
    rng = np.random.default_rng(seed)
    chunks = []
    for _ in range(int(rng.integers(1, 30))):
        n = int(rng.integers(1, 40))
        ts = (T0 + rng.uniform(0, 4 * 3600.0) + np.sort(rng.uniform(0, 900.0, n))).tolist()
        xyz = rng.normal(0, 4, (3, n)).tolist()
        off = [None, 0, 60, 120][int(rng.integers(4))]
        chunks.append(Accelerometer(participant=P, utc_offset_min=off, ts=ts, x=xyz[0], y=xyz[1], z=xyz[2]))
    cutoff = float(rng.choice([-np.inf, T0 + rng.uniform(0, 4 * 3600.0)]))
    lens = np.array([len(c.ts) for c in chunks], np.int64)
    late_n, used_n, pieces_n, votes_n, sums_n = _reduce_numpy(chunks, lens, cutoff, 600)
    late_p, used_p, pieces_p, votes_p, sums_p = _reduce_python(chunks, cutoff, 600)
    assert late_n == late_p and used_n == used_p and votes_n == votes_p
    assert sorted(pieces_n) == sorted(pieces_p) and sorted(sums_n) == sorted(sums_p)
    # Independent check of the sums: exact rational sums of the per-sample magnitudes.
    for s, k, q1, _ in sums_n:
        mags = [math.sqrt(x * x + y * y + z * z) for c in chunks for t, x, y, z in zip(c.ts, c.x, c.y, c.z, strict=True)
                if t >= cutoff and math.floor(t / 600) == s]
        assert k == len(mags) and abs(Fraction(q1, 2**52) - sum(map(Fraction, mags))) <= Fraction(k, 2**53)
