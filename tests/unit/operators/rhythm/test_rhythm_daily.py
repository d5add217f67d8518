"""RhythmState: the per-participant streaming state of the rhythm.daily stage."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pytest

from phenoflow.core.contract import (
    DeadLetter,
    HourlyFeatures,
    RhythmDaily,
    decode,
    encode,
)
from phenoflow.core.timebase import local_day_hour
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.operators.rhythm.statistics import DEFAULT_MODALITIES, rhythm_features

OFFSET = 120  # UTC+2: local midnight is 22:00 UTC the day before
START = dt.datetime(2024, 3, 1, tzinfo=dt.timezone(dt.timedelta(minutes=OFFSET)))
N_DAYS = 16
M = len(DEFAULT_MODALITIES)


def make_cohort(seed: int = 0) -> tuple[list[HourlyFeatures], np.ndarray]:
    """16 local days of hourly records and the (days, 24, M) array the stage should see
    (NaN for imputed, absent or None features)."""
    rng = np.random.default_rng(seed)
    truth = np.full((N_DAYS, 24, M), np.nan)
    records = []
    for d in range(N_DAYS):
        for h in range(24):
            local = START + dt.timedelta(days=d, hours=h)
            if d == 3 and h in (2, 3, 4):
                continue  # no record at all: missing hours
            values = 5 + 2 * np.sin(2 * np.pi * h / 24) + rng.gamma(1.0, 1.0, size=M)
            imputed = d == 9 or (d == 15 and h in (0, 1, 2, 3, 4, 5))
            feats: dict[str, float | None] = dict(zip(DEFAULT_MODALITIES, values.tolist(), strict=True))
            if d == 5 and h == 7:
                feats["accel_sd"] = None  # a feature reported missing
            if d == 6:
                del feats["sms_n"]  # a feature not reported
            feats["call_incoming_n"] = 1.0  # extra feature, not a modality: ignored
            if not imputed:
                truth[d, h] = [np.nan if feats.get(m) is None else feats[m] for m in DEFAULT_MODALITIES]
            records.append(
                HourlyFeatures(
                    participant="p01",
                    utc_offset_min=OFFSET,
                    hour_start=local.timestamp(),
                    local_hour=h,
                    weekday=local.weekday(),
                    features=feats,
                    filled=1.0 if imputed else 0.0,
                )
            )
    return records, truth


def expected_window(truth: np.ndarray, d: int) -> np.ndarray:
    window = np.full((14, 24, M), np.nan)
    lo = max(0, d - 13)
    window[14 - (d + 1 - lo) :] = truth[lo : d + 1]
    return window


def run(records: list[HourlyFeatures]) -> tuple[list[tuple[int, RhythmDaily]], RhythmState]:
    state = RhythmState("p01")
    out = []
    for i, rec in enumerate(records):
        out += [(i, o) for o in state.update(rec)]
    out += [(len(records), o) for o in state.flush()]
    return out, state


def test_local_day_and_hour_use_the_offset() -> None:
    ts = dt.datetime(2024, 3, 1, 23, 0, tzinfo=dt.timezone.utc).timestamp()
    day, hour = local_day_hour(ts, OFFSET)
    assert (dt.date(1970, 1, 1) + dt.timedelta(days=day), hour) == (dt.date(2024, 3, 2), 1)
    assert local_day_hour(ts, -330)[1] == 17  # UTC−5:30: 17:30 local, hour 17


def test_days_close_when_the_next_day_starts_and_flush_closes_the_last() -> None:
    records, _ = make_cohort()
    out, state = run(records)
    days = [o.day for _, o in out]
    # day 9 is entirely imputed: no data, no line
    assert days == [(START + dt.timedelta(days=d)).date().isoformat() for d in range(N_DAYS) if d != 9]
    for i, o in out[:-1]:
        rec = records[i]
        first_of_new_day = local_day_hour(rec.hour_start, OFFSET)[1] == 0
        assert first_of_new_day, "a day must close exactly at the first record of a later day"
        assert o.participant == "p01" and o.utc_offset_min == OFFSET
    assert out[-1][0] == len(records) and out[-1][1].day == "2024-03-16"
    assert state.flush() == []  # nothing new since
    assert state.late == 0


def test_features_equal_rhythm_features_on_the_same_window() -> None:
    records, truth = make_cohort()
    out, _ = run(records)
    by_day = {o.day: o for _, o in out}
    for d in (0, 5, 13, 15):
        o = by_day[(START + dt.timedelta(days=d)).date().isoformat()]
        feats, cov = rhythm_features(expected_window(truth, d), DEFAULT_MODALITIES)
        assert o.features == feats
        assert o.coverage == cov


def test_imputed_hours_count_as_missing_in_coverage() -> None:
    records, _ = make_cohort()
    out, _ = run(records)
    last = out[-1][1]
    # day 15 has 6 imputed hours, day 14 none: 42 of 48 hours present
    assert last.coverage["w2"] == pytest.approx(42 / 48)
    assert last.coverage["accel_sd.w2"] == pytest.approx(42 / 48)
    # the 14-day window also holds day 9 (24 imputed), day 3 (3 without record),
    # while day 6 lacks sms_n entirely and 2024-03-06 07:00 lacks accel_sd
    assert last.coverage["w14"] == pytest.approx((336 - 6 - 24 - 3) / 336)
    assert last.coverage["sms_n.w14"] == pytest.approx((336 - 6 - 24 - 3 - 24) / 336)
    assert last.coverage["accel_sd.w14"] == pytest.approx((336 - 6 - 24 - 3 - 1) / 336)


def test_output_meets_the_contract() -> None:
    records, _ = make_cohort()
    out, _ = run(records[: 24 * 3])
    assert out and all(isinstance(o, RhythmDaily) for _, o in out)
    for _, o in out:
        back = decode("rhythm.daily", b"p01", encode(o))
        assert not isinstance(back, DeadLetter), back
        assert back.features == o.features
    early = out[0][1]
    assert early.features["accel_sd.m10.w2"] is not None  # 24 of 48 hours: at the threshold
    assert early.features["accel_sd.m10.w4"] is None  # 24 of 96 hours
    assert early.coverage["w2"] == 0.5 and early.coverage["w14"] == pytest.approx(1 / 14)


def test_state_pickles_small_and_resumes_identically() -> None:
    records, _ = make_cohort()
    whole, _ = run(records)
    state = RhythmState("p01")
    out = []
    for rec in records[:200]:
        out += state.update(rec)
    blob = pickle.dumps(state)
    print(f"pickled RhythmState: {len(blob)} bytes")
    assert len(blob) < 40_000
    resumed = pickle.loads(blob)
    for rec in records[200:]:
        out += resumed.update(rec)
    out += resumed.flush()
    assert [o.day for o in out] == [o.day for _, o in whole]
    assert [o.features for o in out] == [o.features for _, o in whole]


def test_late_record_updates_later_windows_but_is_not_re_emitted() -> None:
    records, _ = make_cohort()
    state = RhythmState("p01")
    emitted = []
    for rec in records[:118]:  # through the first hour of day 5 (day 3 has 21 records)
        emitted += state.update(rec)
    assert [o.day for o in emitted] == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"]
    hole = START + dt.timedelta(days=3, hours=2)  # day 3 had no record at 02:00
    late = HourlyFeatures(participant="p01", utc_offset_min=OFFSET, hour_start=hole.timestamp(),
                          local_hour=2, weekday=hole.weekday(), features={"accel_sd": 1.0}, filled=0.0)  # fmt: skip
    assert state.update(late) == [] and state.late == 1
    older = HourlyFeatures(participant="p01", utc_offset_min=OFFSET, hour_start=hole.timestamp() - 30 * 86400,
                           local_hour=2, weekday=0, features={"accel_sd": 1.0}, filled=0.0)  # fmt: skip
    assert state.update(older) == [] and state.late == 2  # beyond the buffer: dropped
    for rec in records[118:142]:  # rest of day 5, then the first hour of day 6
        emitted += state.update(rec)
    day5 = emitted[-1]
    assert day5.day == "2024-03-06"
    # days 2–5: 3 hours without record on day 3 (one now filled late), accel_sd None
    # at day 5 07:00
    assert day5.coverage["accel_sd.w4"] == pytest.approx((96 - 3 + 1 - 1) / 96)
    assert day5.coverage["screen_on_s.w4"] == pytest.approx((96 - 3) / 96)


def test_gap_longer_than_the_buffer_resets_it() -> None:
    records, truth = make_cohort()
    state = RhythmState("p01")
    for rec in records[:48]:
        state.update(rec)
    shifted = [
        HourlyFeatures(participant="p01", utc_offset_min=OFFSET, hour_start=r.hour_start + 40 * 86400,
                       local_hour=r.local_hour, weekday=r.weekday, features=r.features, filled=r.filled)
        for r in records[:25]
    ]  # fmt: skip
    out = []
    for rec in shifted:
        out += state.update(rec)
    assert [o.day for o in out] == ["2024-03-02", "2024-04-10"]
    feats, _ = rhythm_features(expected_window(truth, 0), DEFAULT_MODALITIES)
    assert out[1].features == feats  # nothing of the old days left in the window
