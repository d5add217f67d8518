"""Order independence within the lateness bound, and late events beyond it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phenoflow.contract import Accelerometer, Ambient, Call, HourlyFeatures, Location, Screen, Sms
from phenoflow.operators.hourly import HourlyAggregator, HourlyConfig

P = "p7"
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
    agg = HourlyAggregator(config=config)
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
    order = np.argsort([first_ts(e) + d for e, d in zip(events, delay)], kind="stable")
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
    agg = HourlyAggregator()
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
