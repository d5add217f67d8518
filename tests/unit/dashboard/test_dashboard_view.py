"""The dashboard's bounded in-memory view (phenoflow/dashboard/view.py), on hand-computed cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from phenoflow.core.contract import AckEvent, AnomalyEvent, Contributor, HourlyFeatures, RhythmDaily, ScoreDaily, StepUpEvent
from phenoflow.core.timebase import local_day_iso as local_day
from phenoflow.dashboard.view import DashboardView
from phenoflow.operators.hourly.schema import FEATURE_NAMES

D0 = date(2024, 3, 1)
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()


def _hour(pid: str, day: int, hour: int, filled: float = 0.0, offset: int | None = None, **feats: float) -> HourlyFeatures:
    values = {n: 0.0 for n in FEATURE_NAMES} | feats
    return HourlyFeatures(participant=pid, hour_start=T0 + 86400 * day + 3600 * hour, local_hour=hour % 24,
                          weekday=0, features=values, filled=filled, utc_offset_min=offset)


def _day(i: int) -> str:
    return (D0 + timedelta(days=i)).isoformat()


def _anomaly(pid: str, day: int, eid: str, feature: str = "call_n", z: float = 2.0) -> AnomalyEvent:
    return AnomalyEvent(participant=pid, event_id=eid, day=_day(day), score=3.0, threshold=2.0,
                        contributors=[Contributor(feature=feature, z=z)], model="m")


def test_local_day_uses_the_offset() -> None:
    assert local_day(T0 - 1800, 60) == "2024-03-01"  # 23:30 UTC on Feb 29 is 00:30 at UTC+1
    assert local_day(T0 - 1800, None) == "2024-02-29"


def test_daily_trajectories_use_hours_with_data_and_leave_thin_days_empty() -> None:
    v = DashboardView()
    # Day 0: 12 hours with data (1 call, 500 m, 0.5 screen h each), 12 imputed hours with other values.
    for h in range(12):
        v.apply("features.hourly", _hour("p1", 0, h, call_n=1.0, distance_m=500.0, screen_on_s=1800.0,
                                         accel_mean=9.8, sleep_duration_h=7.0))
    for h in range(12, 24):
        v.apply("features.hourly", _hour("p1", 0, h, filled=1.0, call_n=9.0, distance_m=9e4))
    # Day 1: 11 hours with data: below the 12-hour minimum, so no values (a gap, not a zero).
    for h in range(11):
        v.apply("features.hourly", _hour("p1", 1, h, call_n=1.0, accel_mean=9.8))
    p = v.participant("p1")
    assert p["days"] == [_day(0), _day(1)]
    t = p["trajectories"]
    assert t["social"] == [pytest.approx(24.0), None]  # 1 call per hour with data × 24 h
    assert t["distance"] == [pytest.approx(12.0), None]  # 500 m × 24 / 1000
    assert t["screen"] == [pytest.approx(12.0), None]  # 1800 s × 24 / 3600
    assert t["sleep"] == [pytest.approx(7.0), None]
    assert t["home"] == [0.0, None]


def test_coverage_counts_observed_hours_over_the_last_7_days_and_ignores_resent_hours() -> None:
    v = DashboardView()
    for day in range(7):
        for h in range(24):
            if h < 12:  # accelerometer and light seen
                rec = _hour("p1", day, h, accel_mean=9.8, light_lux_mean=5.0)
            elif h < 18:  # data, but only a screen event
                rec = _hour("p1", day, h, screen_unlocks=1.0)
            else:  # nothing at all: type 2, imputed
                rec = _hour("p1", day, h, filled=1.0, accel_mean=9.8)
            v.apply("features.hourly", rec)
            v.apply("features.hourly", rec)  # at-least-once delivery: a repeat changes nothing
    (row,) = v.cohort(v.data_now)
    cov = row["coverage"]
    assert cov["any"] == pytest.approx(18 / 24)
    assert cov["accel"] == pytest.approx(12 / 24) and cov["light"] == pytest.approx(12 / 24)
    assert cov["screen"] == pytest.approx(6 / 24) and cov["location"] == 0.0
    assert row["hours_since_data"] == pytest.approx(6.0)  # last hour with data ends at 18:00, now = 24:00
    assert not row["stale"]
    # An explicit `observed` list (the contract) wins over the derivation.
    w = DashboardView()
    w.apply("features.hourly", _hour("p2", 0, 0, accel_mean=9.8), observed=["accel", "location"])
    assert w.cohort(w.data_now)[0]["coverage"]["location"] == pytest.approx(1 / 168)


def test_counts_state_staleness_and_newest_alert_first() -> None:
    v = DashboardView(stale_hours=24)
    for pid, last_day in (("p1", 30), ("p2", 30), ("p3", 2)):
        for d in range(last_day + 1):
            v.apply("features.hourly", _hour(pid, d, 12, accel_mean=9.8))
    for d in range(31):
        v.apply("scores.daily", ScoreDaily(participant="p1", day=_day(d), score=1.0 if d > 27 else None,
                                           threshold=2.0 if d > 27 else None, calibrating=d <= 27, model="m"))
    v.apply("scores.daily", ScoreDaily(participant="p2", day=_day(5), score=None, threshold=None, calibrating=True, model="m"))
    for eid, day in (("a", 30), ("b", 25), ("c", 10), ("d", 0)):
        v.apply("events.anomaly", _anomaly("p1", day, eid))
    assert v.apply("events.anomaly", _anomaly("p1", 30, "a")) == []  # re-sent: same event_id
    v.apply("events.stepup", StepUpEvent(participant="p2", event_id="s", from_level="regular", to_level="low",
                                         source="survey", evidence={"score": 5}, ts=T0 + 86400 * 29.5))
    now = T0 + 86400 * 31  # end of day 30
    rows = {r["participant"]: r for r in v.cohort(now)}
    assert (rows["p1"]["anomalies_7"], rows["p1"]["anomalies_30"]) == (2, 3)  # days 30, 25 | +10 (day 0 is 31 d ago)
    assert (rows["p2"]["stepups_7"], rows["p2"]["stepups_30"]) == (1, 1)
    assert rows["p1"]["state"] == "scored" and rows["p1"]["threshold"] == 2.0 and rows["p1"]["last_day"] == _day(30)
    assert rows["p2"]["state"] == "calibrating" and rows["p3"]["state"] == "no score yet"
    assert rows["p3"]["stale"] and rows["p3"]["hours_since_data"] == pytest.approx(28 * 24 - 1 + 12)
    assert [r["participant"] for r in v.cohort(now)] == ["p1", "p2", "p3"]  # newest alert day first: 30, 29, none
    assert [a["event_id"] for a in v.inbox()] == ["a", "s", "b", "c", "d"]
    assert [a["event_id"] for a in v.inbox(kind="stepup")] == ["s"]
    assert [a["event_id"] for a in v.inbox(participant="p1", limit=2)] == ["a", "b"]


def test_state_is_bounded_to_the_last_n_days() -> None:
    v = DashboardView(days=10)
    for d in range(30):
        v.apply("scores.daily", ScoreDaily(participant="p1", day=_day(d), score=float(d), threshold=5.0,
                                           calibrating=False, model="m"))
        v.apply("events.anomaly", _anomaly("p1", d, f"e{d}"))
    p = v.participant("p1")
    assert p["days"] == [_day(d) for d in range(20, 30)]
    assert p["score"] == [float(d) for d in range(20, 30)]
    assert sorted(a["event_id"] for a in p["alerts"]) == sorted(f"e{d}" for d in range(20, 30))
    # A late record for a day already out of the window is not resurrected.
    v.apply("scores.daily", ScoreDaily(participant="p1", day=_day(3), score=1.0, threshold=1.0, calibrating=False, model="m"))
    assert v.participant("p1")["days"][0] == _day(20)


def test_acknowledgements_attach_to_their_event_even_when_read_first() -> None:
    v = DashboardView()
    ack = AckEvent(participant="p1", event_id="e1", ts=T0, by="dr", note="called")
    assert v.apply("events.ack", ack)[0]["kind"] == "ack"
    notes = v.apply("events.anomaly", _anomaly("p1", 0, "e1"))
    assert notes[0]["alert"]["ack"]["note"] == "called"
    newer = AckEvent(participant="p1", event_id="e1", ts=T0 + 60, by="dr", note="seen in clinic")
    v.apply("events.ack", newer)
    v.apply("events.ack", ack)  # an older ack re-read does not overwrite the newer one
    assert v.inbox()[0]["ack"]["note"] == "seen in clinic"
    assert v.cohort(T0)[0]["unacked"] == 0


@pytest.mark.parametrize("anomaly_first", [False, True])
def test_rhythm_contributors_get_value_baseline_and_direction(anomaly_first: bool) -> None:
    v = DashboardView()
    days = [(_day(0), 1.0), (_day(1), 3.0), (_day(2), 10.0)]
    event = _anomaly("p1", 2, "e1", feature="call_n.m10.w14")
    if anomaly_first:  # catch-up order of the follower: events before rhythm
        v.apply("events.anomaly", event)
    for day, x in days:
        v.apply("rhythm.daily", RhythmDaily(participant="p1", day=day, features={"call_n.m10.w14": x, "other.w2": None},
                                            coverage={}))
    v.apply("rhythm.daily", RhythmDaily(participant="p1", day=_day(1), features={"call_n.m10.w14": 99.0}, coverage={}))
    if not anomaly_first:  # live order: the day's rhythm arrives before its score and event
        v.apply("events.anomaly", event)
    (c,) = v.inbox()[0]["contributors"]
    assert c["value"] == 10.0 and c["baseline"] == pytest.approx(2.0)  # mean of days 0 and 1; the repeat is ignored
    assert c["words"] == "calls in the busiest 10 h of the day: more (14-day window)"


def test_hourly_contributors_compare_the_day_with_the_median_of_earlier_days() -> None:
    v = DashboardView()
    for d, calls in enumerate((2.0, 3.0, 4.0, 0.5)):
        for h in range(24):
            v.apply("features.hourly", _hour("p1", d, h, call_n=calls, accel_mean=9.8))
    v.apply("events.anomaly", _anomaly("p1", 3, "e1", feature="call_n"))
    (c,) = v.participant("p1")["alerts"][0]["contributors"]
    assert c["value"] == 0.5 and c["baseline"] == 3.0 and c["words"] == "fewer calls"
    detail = v.day_detail("p1", _day(3))
    assert detail["hourly_means"]["call_n"] == 0.5 and detail["data_hours"] == 24
    assert v.day_detail("p1", _day(9)) is None and v.participant("nobody") is None
