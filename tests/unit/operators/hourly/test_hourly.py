"""Hourly features: hand-computed values for every feature, missing-data rules, emission."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from phenoflow.core.contract import (
    Accelerometer,
    Ambient,
    Call,
    HourlyFeatures,
    Location,
    Screen,
    Sms,
    Survey,
)
from phenoflow.core.errors import UserError
from phenoflow.operators.hourly import pending as hourly_pending
from phenoflow.operators.hourly.aggregator import (
    FEATURE_NAMES,
    HourlyAggregator,
    HourlyConfig,
)

P = "p1"
KEY = b"unit-test-frame-key"  # the study secret that keys the private place frame
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday
A, B, C, D = (T0 + h * 3600.0 for h in (10, 11, 12, 13))  # UTC 10–13 h = local 11–14 h at +60 min
DEG_M = 6_371_008.8 * math.pi / 180.0  # metres per degree of latitude (R = 6371.0088 km)
HOME, WORK, FAR = (52.0, 13.0), (52.1, 13.0), (52.5, 13.0)

BRIEF_NAMES = (
    ["accel_mean", "accel_sd", "screen_unlocks", "screen_on_s", "screen_sessions"]
    + [f"call_{d}_{k}" for d in ("incoming", "outgoing", "missed", "rejected", "blocked") for k in ("n", "s")]
    + ["call_n", "call_s", "sms_incoming_n", "sms_outgoing_n", "sms_n", "place_primary_s",
       "place_secondary_s", "place_other_s", "distance_m", "light_lux_mean", "sound_db_mean",
       "conversation_n", "conversation_s", "sleep_onset_h", "sleep_wake_h", "sleep_duration_h"]
)


def acc(ts: list[float], x: list[float], y: list[float], z: list[float], off: int | None = 60) -> Accelerometer:
    return Accelerometer(participant=P, utc_offset_min=off, ts=ts, x=x, y=y, z=z)


def scr(ts: float, state: str) -> Screen:
    return Screen(participant=P, utc_offset_min=60, ts=ts, state=state)


def fix(ts: float, latlon: tuple[float, float]) -> Location:
    return Location(participant=P, utc_offset_min=60, ts=ts, lat=latlon[0], lon=latlon[1])


def amb(ts: float, **kw: object) -> Ambient:
    return Ambient(participant=P, utc_offset_min=60, ts=ts, **kw)


def scenario() -> list[object]:
    """Four UTC hours A–D; C has no data at all (type 2)."""
    return [
        acc([A + 10, A + 11, A + 12], [3, 0, 6], [4, 0, 8], [0, 9, 0]),  # ‖a‖ = 5, 9, 10
        acc([A + 3599, B + 0.5], [1, 0], [0, 2], [0, 0]),  # ‖a‖ = 1 (hour A), 2 (hour B)
        scr(A + 100, "on"), scr(A + 110, "unlock"), scr(A + 400, "off"),
        scr(A + 3500, "on"), scr(B + 200, "off"),  # session split at the hour boundary
        Call(participant=P, utc_offset_min=60, ts=A + 500, direction="incoming", duration_s=60),
        Call(participant=P, utc_offset_min=60, ts=A + 600, direction="outgoing", duration_s=120),
        Call(participant=P, utc_offset_min=60, ts=A + 700, direction="missed", duration_s=0),
        Call(participant=P, utc_offset_min=60, ts=A + 800, direction="incoming", duration_s=30.5),
        Sms(participant=P, utc_offset_min=60, ts=A + 900, direction="incoming"),
        Sms(participant=P, utc_offset_min=60, ts=A + 950, direction="incoming"),
        Sms(participant=P, utc_offset_min=60, ts=A + 1000, direction="outgoing"),
        fix(A, HOME), fix(A + 600, (52.0001, 13.0)), fix(A + 1200, HOME),  # 11 m step: jitter
        fix(A + 1800, WORK), fix(A + 2400, WORK), fix(A + 3000, FAR),
        fix(B + 600, HOME), fix(D + 1800, HOME),
        amb(A + 100, light_lux=10.0), amb(A + 200, light_lux=20.0), amb(A + 300, sound_db=40.0),
        amb(A + 1000, voice=True), amb(A + 1300, voice=True), amb(A + 1600, voice=False),
        amb(A + 2000, voice=True), amb(A + 3590, voice=True), amb(B + 100, voice=True),
        Sms(participant=P, utc_offset_min=60, ts=D + 100, direction="outgoing"),
        Survey(participant=P, ts=A + 5, instrument="who5", score=10),  # not an hourly input
    ]


def run(events: list[object], config: HourlyConfig | None = None) -> tuple[HourlyAggregator, list[HourlyFeatures]]:
    agg = HourlyAggregator(config=config, frame_key=KEY)
    out: list[HourlyFeatures] = []
    for ev in events:
        step = agg.update(ev)
        assert step.late == []
        out += step.records
    return agg, out + agg.flush()


def expected(**nonzero: float) -> dict[str, float]:
    vals = dict.fromkeys(FEATURE_NAMES, 0.0)
    vals.update(nonzero)
    return vals


def test_feature_names_are_the_contracted_list() -> None:
    assert FEATURE_NAMES == BRIEF_NAMES


def test_every_feature_hand_computed() -> None:
    agg, recs = run(sorted(scenario(), key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts),
                    HourlyConfig(place_min_samples=2))
    assert [r.hour_start for r in recs] == [A, B, C, D]
    assert [r.local_hour for r in recs] == [11, 12, 13, 14]
    assert {r.weekday for r in recs} == {0} and {r.utc_offset_min for r in recs} == {60}
    assert {r.participant for r in recs} == {P}
    a, b, c, d = (r.features for r in recs)
    assert set(a) == set(FEATURE_NAMES)

    # Hour A: everything but sleep observed (no rest episode ≥ 1 h exists).
    exp_a = expected(
        accel_mean=25 / 4, accel_sd=math.sqrt((25 + 81 + 100 + 1) / 4 - (25 / 4) ** 2),
        screen_unlocks=1, screen_on_s=300 + 100, screen_sessions=2,
        call_incoming_n=2, call_incoming_s=90.5, call_outgoing_n=1, call_outgoing_s=120,
        call_missed_n=1, call_n=4, call_s=210.5,
        sms_incoming_n=2, sms_outgoing_n=1, sms_n=3,
        place_primary_s=1800, place_secondary_s=1200, place_other_s=600,
        distance_m=0.5 * DEG_M,  # home→work 0.1°, work→far 0.4°; the 11-m wobble is jitter
        light_lux_mean=15, sound_db_mean=40, conversation_n=3, conversation_s=300,
    )
    assert a == pytest.approx(exp_a, rel=1e-9, abs=1e-6)
    assert recs[0].filled == pytest.approx(3 / 31)
    assert recs[0].observed == ["accel", "screen", "call", "sms", "location", "light", "sound", "voice"]

    # Hour B: accel, screen, location, voice seen; the rest 0-filled (type 1). The call and
    # SMS logs reported an hour earlier, so their 0 is measured (observed); light, sound and
    # sleep are imputed: 5 of 31.
    exp_b = expected(accel_mean=2, screen_on_s=200, place_other_s=600, place_primary_s=3000,
                     distance_m=0.5 * DEG_M, conversation_s=110)
    assert b == pytest.approx(exp_b, rel=1e-9, abs=1e-6)
    assert recs[1].filled == pytest.approx(5 / 31)
    assert recs[1].observed == ["accel", "screen", "call", "sms", "location", "voice"]

    # Hour C: no data (type 2), no hour-of-day history → 0, but stays at home (carried).
    assert c == pytest.approx(expected(place_primary_s=3600))
    assert recs[2].filled == 1.0 and recs[2].observed == []

    # Hour D: an SMS and a fix at home; home all hour.
    assert d == pytest.approx(expected(sms_outgoing_n=1, sms_n=1, place_primary_s=3600))
    # accel, light, sound, voice and sleep imputed; the screen and call logs still running.
    assert recs[3].filled == pytest.approx(9 / 31)
    assert recs[3].observed == ["screen", "call", "sms", "location"]
    assert agg.late_events == 0


def test_records_only_when_the_day_closes_and_watermark_rule() -> None:
    cfg = HourlyConfig()
    agg = HourlyAggregator(config=cfg, frame_key=KEY)
    day2 = T0 + 86400.0
    emitted_at: list[float] = []
    for k in range(0, 2 * 24 * 6):  # an accelerometer chunk every 10 min for two days
        ts = T0 + 600.0 * k
        step = agg.update(acc([ts], [0.0], [0.0], [9.81], off=0))
        if step.records:
            emitted_at.append(ts)
            assert len(step.records) == 24 and step.records[0].hour_start == T0
            assert [r.hour_start for r in step.records] == [T0 + 3600.0 * h for h in range(24)]
    # Day 1 closes with the first event that moves the watermark (max ts − 2 h) past midnight.
    assert emitted_at == [day2 + 2 * 3600.0]
    assert agg.watermark == T0 + 600.0 * (2 * 144 - 1) - 7200.0


def test_watermark_min_over_active_streams_and_idle_timeout() -> None:
    agg = HourlyAggregator(frame_key=KEY)
    agg.update(acc([T0 + 36_000.0], [0.0], [0.0], [9.8]))
    agg.update(fix(T0, HOME))
    assert agg.watermark == T0 - 7200.0  # the lagging location stream holds it back
    agg.update(acc([T0 + 48 * 3600.0], [0.0], [0.0], [9.8]))
    assert agg.watermark == T0 - 7200.0  # exactly 48 h behind: still active
    agg.update(acc([T0 + 48 * 3600.0 + 1], [0.0], [0.0], [9.8]))
    assert agg.watermark == T0 + 48 * 3600.0 + 1 - 7200.0  # idle now: ignored


def test_late_events_are_returned_and_counted() -> None:
    agg = HourlyAggregator(frame_key=KEY)
    day2 = T0 + 86400.0
    for k in range(0, 30 * 6):
        agg.update(acc([T0 + 600.0 * k], [0.0], [0.0], [9.81], off=0))
    late = Screen(participant=P, utc_offset_min=0, ts=T0 + 12 * 3600.0, state="on")
    step = agg.update(late)
    assert step.late == [late] and step.records == [] and agg.late_events == 1
    # A chunk straddling the emitted boundary: reported late, its on-time sample still counts.
    straddle = acc([day2 - 5.0, day2 + 5.0], [0.0, 0.0], [0.0, 0.0], [1.0, 7.0], off=0)
    step = agg.update(straddle)
    assert step.late == [straddle] and agg.late_events == 2
    recs = agg.flush()
    first = next(r for r in recs if r.hour_start == day2)
    # Six on-time chunks (00:00, 00:10, …) of 9.81 plus the straddling chunk's on-time 7.0.
    assert first.features["accel_mean"] == pytest.approx((6 * 9.81 + 7.0) / 7)


def test_exactly_one_record_per_hour_and_type2_uses_hour_of_day_mean() -> None:
    def sms(ts: float, d: str = "incoming") -> Sms:
        return Sms(participant=P, utc_offset_min=0, ts=ts, direction=d)

    h = 3600.0
    events = [sms(T0 + 8 * h + 60)]  # day 1 08:00 starts the data; 09:00 is type 2 (no history → 0)
    events += [sms(T0 + 86400 + 9 * h + 60 * k) for k in range(4)]  # day 2 09:00: 4 SMS
    events += [sms(T0 + 2 * 86400 + 10 * h + 60, "outgoing")]  # day 3 10:00; 09:00 is type 2
    _, recs = run(events)
    starts = [r.hour_start for r in recs]
    assert starts == [T0 + 8 * h + k * h for k in range(len(recs))]
    assert len(recs) == 16 + 24 + 11  # day 1 08:00 … day 3 10:00
    by = {r.hour_start: r for r in recs}
    d1_9, d2_9, d3_9 = (by[T0 + k * 86400 + 9 * h] for k in range(3))
    assert d1_9.filled == 1.0 and d1_9.features == expected()
    assert d2_9.features["sms_incoming_n"] == 4 and d2_9.filled == pytest.approx(28 / 31)
    # Mean over the non-type-2 09:00 hours only (day 2), not the imputed day-1 zero.
    assert d3_9.filled == 1.0 and d3_9.features == expected(sms_incoming_n=4, sms_n=4)
    d3_10 = by[T0 + 2 * 86400 + 10 * h]
    assert d3_10.features == expected(sms_outgoing_n=1, sms_n=1)
    assert sum(r.filled == 1.0 for r in recs) == 51 - 3


def test_missing_offset_defaults_to_utc_and_offset_sets_local_day() -> None:
    _, recs = run([acc([T0 + 3600.0 * 23 + 1], [0.0], [0.0], [9.8], off=None)])
    assert [(r.local_hour, r.weekday, r.utc_offset_min) for r in recs] == [(23, 0, 0)]
    # +120 min: UTC 23:00 Monday is local 01:00 Tuesday.
    _, recs = run([acc([T0 + 3600.0 * 23 + 1], [0.0], [0.0], [9.8], off=120)])
    assert [(r.local_hour, r.weekday, r.utc_offset_min) for r in recs] == [(1, 1, 120)]


def test_local_days_close_at_local_midnight() -> None:
    agg = HourlyAggregator(frame_key=KEY)
    days: list[list[HourlyFeatures]] = []
    for k in range(3 * 144):  # UTC+05:30, accel every 10 min for three days
        step = agg.update(acc([T0 + 600.0 * k], [0.0], [0.0], [9.8], off=330))
        if step.records:
            days.append(step.records)
    days.append(agg.flush())
    # UTC hours start at hh:30 local: the first day runs 05:30 … 23:30 (19 hours), later
    # days 00:30 … 23:30; the hour starting 23:30 ends at 00:30 and belongs to its start day.
    assert [len(d) for d in days] == [19, 24, 24, 5]
    assert days[0][0].local_hour == 5 and days[1][0].local_hour == 0
    for day in days[:-1]:
        assert day[-1].local_hour == 23 and len({r.weekday for r in day}) == 1
    assert days[1][0].weekday == 1 and days[1][0].hour_start == T0 + 19 * 3600.0


def test_config_validation() -> None:
    with pytest.raises(UserError, match="sleep_slot_s"):
        HourlyConfig(sleep_slot_s=700)
    with pytest.raises(UserError, match="negative"):
        HourlyConfig(allowed_lateness_s=-1)


def test_foreign_participant_is_a_programming_error() -> None:
    agg = HourlyAggregator("p1")
    with pytest.raises(ValueError):
        agg.update(Sms(participant="p2", ts=T0, direction="incoming"))


def test_wall_clock_keeps_delivering_streams_active() -> None:
    """Replay skew: the accelerometer lags days behind a topic read to its end, yet still delivers."""
    agg = HourlyAggregator(frame_key=KEY)
    wall = 1000.0
    agg.update(fix(T0 + 5 * 86400.0, HOME), now=wall)  # location read far ahead (sparse topic)
    # streams not delivered yet may hold older data (a topic read later that starts earlier): no hour closes
    assert agg.watermark == -math.inf
    step = agg.update(acc([T0 + 60.0], [0.0], [0.0], [9.8]), now=wall + 1)
    assert step.late == [] and step.records == []
    # 5 days behind the newest stream in event time, but delivered 1 s ago in wall time: it
    # holds, and the streams not seen yet still hold everything.
    assert agg.watermark == -math.inf
    # once the other streams have delivered too, the lagging accelerometer is what holds
    for ev in (Screen(participant=P, utc_offset_min=0, ts=T0 + 90.0, state="on"),):
        agg.update(ev, now=wall + 2)
    assert agg.watermark == -math.inf  # calls, SMS and ambient have not delivered yet
    # Without the wall clock the same lag makes the accelerometer idle (event-time rule only).
    pure = HourlyAggregator(frame_key=KEY)
    pure.update(fix(T0 + 5 * 86400.0, HOME))
    pure.update(acc([T0 + 60.0], [0.0], [0.0], [9.8]))
    assert pure.watermark == T0 + 5 * 86400.0 - 7200.0
    # Once the accelerometer has been silent past idle_wall_s, it stops holding.
    agg.update(fix(T0 + 5 * 86400.0 + 60.0, HOME), now=wall + 1 + 121.0)
    assert agg.watermark > T0 + 4 * 86400.0


@pytest.mark.parametrize("small", [0, 10**9], ids=["numpy", "python"])
def test_batch_with_a_chunk_straddling_the_cutoff(small: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one batch: on-time samples of a straddling chunk count, wholly-late chunks give none."""
    monkeypatch.setattr(hourly_pending, "_SMALL", small)  # which reducer adds the chunks
    day2 = T0 + 86400.0
    events = [acc([T0 + 600.0 * k], [0.0], [0.0], [9.81], off=0) for k in range(30 * 6)]
    straddle = acc([day2 - 5.0, day2 + 5.0], [0.0, 0.0], [0.0, 0.0], [1.0, 7.0], off=0)
    late_screen = Screen(participant=P, utc_offset_min=0, ts=day2 - 60.0, state="on")
    on_time = acc([day2 + 20.0], [0.0], [0.0], [2.0], off=0)
    wholly_late = acc([day2 - 100.0, day2 - 50.0], [0.0, 0.0], [3.0, 3.0], [4.0, 4.0], off=720)
    batch = [straddle, late_screen, on_time, wholly_late]
    results = []
    for feed in ("batch", "one by one"):
        agg = HourlyAggregator(frame_key=KEY)
        assert len(agg.update_batch(events).records) == 24  # day 1 closes: the cutoff is day 2 00:00
        if feed == "batch":
            late = agg.update_batch(batch).late
        else:
            late = [x for ev in batch for x in agg.update(ev).late]
        assert late == [straddle, late_screen, wholly_late]  # in batch order
        assert agg.late_events == 3
        recs = agg.flush()
        first = next(r for r in recs if r.hour_start == day2)
        mags = [9.81] * 6 + [7.0, 2.0]  # 00:00 … 00:50 chunks, the straddle's on-time sample, on_time
        assert first.features["accel_mean"] == pytest.approx(math.fsum(mags) / 8, rel=1e-15)
        assert first.features["accel_sd"] == pytest.approx(statistics.pstdev(mags), rel=1e-12)
        assert first.utc_offset_min == 0  # the wholly-late chunk did not vote
        results.append(recs)
    assert results[0] == results[1]


def test_accel_sums_keep_the_sd_of_a_still_phone() -> None:
    """Fixed-point sums vs exact rational statistics: a still phone (SD ≈ 0.01 m/s² on 9.81)."""
    rng = random.Random(5)
    ts = [A + 5.0 * k for k in range(900)]  # hour A and a quarter of hour B
    x = [rng.gauss(0.0, 0.01) for _ in ts]
    y = [rng.gauss(0.0, 0.01) for _ in ts]
    z = [9.81 + rng.gauss(0.0, 0.01) for _ in ts]
    chunks = [acc(ts[i:i + 9], x[i:i + 9], y[i:i + 9], z[i:i + 9]) for i in range(0, 900, 9)]
    _, recs = run(chunks)
    mags = [math.sqrt(a * a + b * b + c * c) for a, b, c in zip(x, y, z, strict=True)]
    by = {r.hour_start: r.features for r in recs}
    in_a = [m for t, m in zip(ts, mags, strict=True) if t < B]
    in_b = [m for t, m in zip(ts, mags, strict=True) if t >= B]
    for start, ms in ((A, in_a), (B, in_b)):
        assert by[start]["accel_mean"] == pytest.approx(math.fsum(ms) / len(ms), rel=1e-15)
        assert by[start]["accel_sd"] == pytest.approx(statistics.pstdev(ms), rel=1e-9)


def test_accel_outside_the_contract_is_a_programming_error() -> None:
    """decode() bounds each axis to 500 m/s²; far beyond, the int64 fixed-point sums could overflow."""
    with pytest.raises(ValueError, match="contract"):
        HourlyAggregator().update(acc([A], [2000.0], [0.0], [0.0]))
