"""Issue 13: what was really observed travels with the features, and only that reaches rhythm.

Hand-built hours check the ``observed`` groups, the model input (Adler's rules) and the
rhythm input side by side; a property test checks that rhythm statistics ignore every
value of an hour in which a modality was unobserved; a hand-built daylight-saving
change checks that a 25-hour local day goes through hourly → rhythm whole.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phenoflow.core.contract import Accelerometer, Call, HourlyFeatures, Screen
from phenoflow.operators.hourly.aggregator import FEATURE_NAMES, HourlyAggregator, HourlyConfig
from phenoflow.operators.rhythm.rolling import RhythmState, observed_values
from phenoflow.operators.rhythm.statistics import DEFAULT_MODALITIES

P = "p1"
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC (offset 0 throughout unless stated)


def acc(ts: float, *mags: float, off: int = 0) -> Accelerometer:
    """A chunk of samples along z with the given ‖a‖, one per second from ts."""
    n = len(mags)
    return Accelerometer(participant=P, utc_offset_min=off, ts=[ts + i for i in range(n)], x=[0.0] * n,
                         y=[0.0] * n, z=list(mags))


def scr(ts: float, state: str, off: int = 0) -> Screen:
    return Screen(participant=P, utc_offset_min=off, ts=ts, state=state)


def run(events: list[object], config: HourlyConfig | None = None) -> list[HourlyFeatures]:
    agg = HourlyAggregator(config=config)
    out = list(agg.update_batch(sorted(events, key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts)
                                ).records)
    return out + agg.flush()


def by_hour(records: list[HourlyFeatures]) -> dict[float, HourlyFeatures]:
    return {r.hour_start: r for r in records}


def test_screen_hour_without_accelerometer_and_accelerometer_hour_without_calls() -> None:
    h = lambda k: T0 + 3600.0 * k
    events = [
        acc(h(0) + 10, 9.81, 9.90, 9.70),              # hour 0: accelerometer only
        scr(h(1) + 100, "on"), scr(h(1) + 400, "off"),  # hour 1: screen only
        acc(h(2) + 5, 9.81),                           # hour 2: accelerometer only again
    ]
    recs = by_hour(run(events))
    r0, r1, r2 = recs[h(0)], recs[h(1)], recs[h(2)]
    # Observation per group. The screen log reported on this day, so its silence in hours 0
    # and 2 is a measured 0; a rest episode (still phone) gives the day's sleep values.
    assert r0.observed == ["accel", "screen", "sleep"]
    assert r1.observed == ["screen", "sleep"]               # no accelerometer in hour 1
    assert r2.observed == ["accel", "screen", "sleep"]
    # The model input keeps Adler's type-1 rule: unobserved features are 0 in a data hour.
    assert r1.features["accel_mean"] == 0.0 and r1.features["accel_sd"] == 0.0
    assert r0.features["call_n"] == 0.0 and r2.features["call_n"] == 0.0
    assert r0.features["accel_mean"] == (9.81 + 9.90 + 9.70) / 3
    # The rhythm input: an unobserved modality is missing, never 0.
    mods = ("accel_sd", "screen_on_s", "call_n")
    v0, v1, v2 = (observed_values(r, mods) for r in (r0, r1, r2))
    assert math.isnan(v1[0]) and v1[1] == 300.0            # no accel value in the screen hour
    assert math.isnan(v0[2]) and math.isnan(v2[2])         # calls never observed: missing, not 0
    assert v0[0] > 0 and v0[1] == 0.0 and v2[1] == 0.0
    # filled counts what the model input imputed: hour 1 lacks accel (2), call (12), sms (3),
    # location (4), light, sound (2), voice (2) = 25 of 31.
    assert r1.filled == 25 / 31 and len(FEATURE_NAMES) == 31


def test_call_log_silence_is_a_zero_only_while_the_log_is_running() -> None:
    cfg = HourlyConfig()
    h = lambda k: T0 + 3600.0 * k
    call = Call(participant=P, utc_offset_min=0, ts=h(30) + 60, direction="incoming", duration_s=30)
    events = [acc(h(k) + 1, 9.81) for k in range(0, 96)] + [call]  # 4 days of accelerometer hours
    recs = by_hour(run(events, cfg))
    window = int(cfg.log_running_s // 3600)
    for k in range(96):
        seen = "call" in recs[h(k)].observed
        # day 1 (hours 24–47) has the call: its whole day counts the log as running; after it,
        # the log runs for log_running_s (48 h) past the call's hour.
        assert seen == (24 <= k < 48 or 30 <= k < 30 + window), k
    assert recs[h(30)].features["call_n"] == 1.0
    assert recs[h(10)].features["call_n"] == 0.0 and "call" not in recs[h(10)].observed  # model 0, rhythm missing
    assert recs[h(60)].features["call_n"] == 0.0 and "call" in recs[h(60)].observed  # a measured 0


def test_type2_hour_of_day_means_use_observed_values_only() -> None:
    day = 86_400.0
    events = [
        acc(T0 + 10 * 3600 + 1, 9.0, 11.0),                   # day 0, 10:00: accel observed, mean 10
        scr(T0 + day + 10 * 3600 + 5, "unlock"),              # day 1, 10:00: screen only (accel 0-filled)
        acc(T0 + 2 * day + 9 * 3600, 9.81),                   # day 2, 09:00 and 11:00 have data,
        acc(T0 + 2 * day + 11 * 3600, 9.81),                  # so 10:00 is a type-2 hour
    ]
    recs = by_hour(run(events))
    hole = recs[T0 + 2 * day + 10 * 3600]
    assert hole.filled == 1.0 and hole.observed == []
    # The mean of the observed 10:00 values (10.0), not of 10.0 and the type-1 zero (5.0).
    assert hole.features["accel_mean"] == 10.0
    assert hole.features["screen_unlocks"] == 1.0  # observed once at 10:00 (day 1)
    assert hole.features["light_lux_mean"] == 0.0  # never observed: 0 as before


def test_accelerometer_coverage_below_screen_coverage() -> None:
    """Screen in every hour of two days, the accelerometer only 08–19: per-modality coverage."""
    events = []
    for k in range(48):
        t = T0 + 3600.0 * k
        events += [scr(t + 60, "on"), scr(t + 120, "off")]
        if 8 <= k % 24 < 20:
            events.append(acc(t + 300, 9.7, 9.9))
    recs = run(events)
    assert len(recs) == 48
    state = RhythmState(P)
    days = [d for r in recs for d in state.update(r)] + state.flush()
    last = days[-1]
    assert last.coverage["screen_on_s.w2"] == 1.0
    assert last.coverage["accel_sd.w2"] == 24 / 48
    assert last.coverage["call_n.w2"] == 0.0  # no call ever: never a measured zero
    assert last.coverage["w2"] == 1.0
    assert last.features["accel_sd.m10.w2"] is not None  # at the 0.5 threshold
    assert last.features["call_n.m10.w2"] is None


def _records(values: np.ndarray, seen: np.ndarray, junk: np.ndarray) -> list[HourlyFeatures]:
    """Hourly records of (hours, M) values; where unobserved the feature holds ``junk``."""
    out = []
    groups = {"accel_sd": "accel", "light_lux_mean": "light", "sound_db_mean": "sound", "screen_on_s": "screen",
              "screen_unlocks": "screen", "call_n": "call", "call_s": "call", "sms_n": "sms",
              "distance_m": "location", "place_primary_s": "location", "conversation_s": "voice"}
    for k in range(values.shape[0]):
        obs = sorted({groups[m] for j, m in enumerate(DEFAULT_MODALITIES) if seen[k, j]})
        feats = {m: float(values[k, j] if groups[m] in obs else junk[k, j]) for j, m in enumerate(DEFAULT_MODALITIES)}
        out.append(HourlyFeatures(participant=P, utc_offset_min=0, hour_start=T0 + 3600.0 * k, local_hour=k % 24,
                                  weekday=0, features=feats, filled=0.0, observed=obs))
    return out


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), junk_scale=st.sampled_from([0.0, 1.0, -1e6, 1e9]))
def test_rhythm_ignores_any_value_in_unobserved_hours(seed: int, junk_scale: float) -> None:
    """Rhythm statistics do not change when the model input's unobserved hours hold any value."""
    rng = np.random.default_rng(seed)
    n_hours, m = 24 * 4, len(DEFAULT_MODALITIES)
    values = rng.gamma(2.0, 1.0, (n_hours, m))
    # Observation per group: a modality's hour is seen iff its group is; 10–40 % of hours unseen.
    seen_group = {g: rng.random(n_hours) > rng.uniform(0.1, 0.4)
                  for g in ("accel", "light", "sound", "screen", "call", "sms", "location", "voice")}
    groups = ["accel", "light", "sound", "screen", "screen", "call", "call", "sms", "location", "location", "voice"]
    seen = np.stack([seen_group[g] for g in groups], axis=1)
    outs = []
    for junk in (np.full((n_hours, m), 0.0), junk_scale * rng.standard_normal((n_hours, m))):
        state = RhythmState(P)
        recs = _records(values, seen, junk)
        outs.append([d for r in recs for d in state.update(r)] + state.flush())
    assert [o.day for o in outs[0]] == [o.day for o in outs[1]]
    assert [o.features for o in outs[0]] == [o.features for o in outs[1]]
    assert [o.coverage for o in outs[0]] == [o.coverage for o in outs[1]]
    # and the statistics really depend on the observed values: change one, something moves
    values2 = values.copy()
    values2[seen[:, 0], 0] *= 2.0
    state = RhythmState(P)
    moved = [d for r in _records(values2, seen, np.zeros_like(values)) for d in state.update(r)] + state.flush()
    before, after = outs[0][-1].features["accel_sd.m10.w4"], moved[-1].features["accel_sd.m10.w4"]
    assert before is not None and after is not None and abs(after - 2.0 * before) <= 1e-9 * abs(after)


def test_25_hour_local_day_through_hourly_and_rhythm() -> None:
    """UK clocks go back at 2019-10-27 01:00 UTC (UTC+1 → UTC+0): local day 2019-10-27 has 25 hours."""
    start = 1_572_044_400.0  # 2019-10-25 23:00 UTC = 2019-10-26 00:00 BST
    change = 1_572_138_000.0  # 2019-10-27 01:00 UTC
    events = []
    t = start
    while t < start + 3 * 86_400.0:
        off = 60 if t < change else 0
        events += [acc(t + 30, 9.7 + (t % 7200) / 7200, 9.81, off=off), scr(t + 60, "unlock", off=off)]
        t += 3600.0
    recs = run(events)
    by_day: dict[str, list[HourlyFeatures]] = {}
    for r in recs:
        local = r.hour_start + 60 * (r.utc_offset_min or 0)
        by_day.setdefault(str(np.datetime64(int(local // 86_400), "D")), []).append(r)
    assert {d: len(v) for d, v in by_day.items()} == {"2019-10-26": 24, "2019-10-27": 25, "2019-10-28": 23}
    assert [r.local_hour for r in by_day["2019-10-27"]] == [0, 1, 1] + list(range(2, 24))
    assert sum(len(v) for v in by_day.values()) == len(recs) == 72  # no hour lost or counted twice
    state = RhythmState(P)
    out = [d for r in recs for d in state.update(r)] + state.flush()
    assert [o.day for o in out] == ["2019-10-26", "2019-10-27", "2019-10-28"]
    day27 = out[1]
    assert day27.coverage["accel_sd.w2"] == 1.0  # 24 local slots of 10-26 and 10-27, all observed
    # The repeated 01:00 slot holds the mean of both UTC hours' values.
    rep = [r for r in by_day["2019-10-27"] if r.local_hour == 1]
    i = DEFAULT_MODALITIES.index("accel_sd")
    both = [observed_values(r, DEFAULT_MODALITIES)[i] for r in rep]
    slot = state.buffer[-2, 1, i]  # day 2019-10-27 is the row before the last
    assert both[0] != both[1] and slot == (both[0] + both[1]) / 2
