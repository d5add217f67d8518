"""Offline driver: cohort directory → hourly records, same as feeding the aggregators directly."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from phenoflow.core.contract import (
    Accelerometer,
    Ambient,
    HourlyFeatures,
    Location,
    Screen,
    Sms,
    Survey,
    encode,
)
from phenoflow.core.errors import UserError
from phenoflow.offline.features import (
    OFFLINE_FRAME_KEY,
    OfflineStats,
    hourly_features_from_cohort,
    read_cohort_events,
)
from phenoflow.operators.hourly.aggregator import HourlyAggregator, HourlyConfig

T0 = 1_704_067_200.0


def cohort_events() -> dict[str, list[object]]:
    ev: dict[str, list[object]] = {k: [] for k in ("accelerometer", "screen", "sms", "location", "ambient", "survey")}
    for p, off in (("pA", 60), ("pB", -300)):
        for k in range(0, 30 * 6):  # 30 h, every 10 min
            t = T0 + 600.0 * k + (7.0 if p == "pB" else 0.0)
            ev["accelerometer"].append(Accelerometer(participant=p, utc_offset_min=off, ts=[t, t + 1],
                                                     x=[0.0, 1.0], y=[0.0, 0.0], z=[9.8, 9.7]))
            ev["location"].append(Location(participant=p, utc_offset_min=off, ts=t + 2,
                                           lat=40.0 + (k % 50) * 1e-3, lon=-3.0))
            ev["ambient"].append(Ambient(participant=p, utc_offset_min=off, ts=t + 3, light_lux=float(k % 7)))
            if k % 9 == 0:
                ev["screen"] += [Screen(participant=p, utc_offset_min=off, ts=t + 4, state="on"),
                                 Screen(participant=p, utc_offset_min=off, ts=t + 64, state="off")]
            if k % 13 == 0:
                ev["sms"].append(Sms(participant=p, utc_offset_min=off, ts=t + 5, direction="outgoing"))
        ev["survey"].append(Survey(participant=p, utc_offset_min=off, ts=T0 + 100, instrument="who5", score=12))
    for name in ev:
        ev[name].sort(key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts)
    return ev


def write_cohort(directory: Path, ev: dict[str, list[object]], gz_accel: bool = True) -> None:
    directory.mkdir()
    for name, items in ev.items():
        lines = b"".join(encode(e) + b"\n" for e in items)
        if name == "screen":
            lines = b"not json at all\n" + lines + b'{"participant": "pA", "ts": 1704067200, "state": "dim"}\n'
        if name == "accelerometer" and gz_accel:
            with gzip.open(directory / "accelerometer.jsonl.gz", "wb") as fh:
                fh.write(lines)
        else:
            (directory / f"{name}.jsonl").write_bytes(lines)


def test_offline_equals_direct_aggregation_and_counts_dead_letters(tmp_path: Path) -> None:
    ev = cohort_events()
    write_cohort(tmp_path / "c", ev)
    stats = OfflineStats()
    recs = list(hourly_features_from_cohort(tmp_path / "c", stats=stats))
    # Reference: one aggregator per participant fed that participant's events in time order.
    every = sorted((e for k, v in ev.items() if k != "survey" for e in v),
                   key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts)
    expect = []
    for p in ("pA", "pB"):
        agg = HourlyAggregator(p, frame_key=OFFLINE_FRAME_KEY)  # the offline default
        for e in every:
            if e.participant == p:
                expect += agg.update(e).records
        expect += agg.flush()
    key = lambda r: (r.participant, r.hour_start)
    assert sorted(recs, key=key) == sorted(expect, key=key)
    assert len(recs) == 2 * 30
    assert stats.dead_letters == {"raw.screen": 2}
    assert stats.events["raw.accelerometer"] == 360 and "raw.survey" not in stats.events
    assert stats.participants == 2 and stats.records == 60 and stats.late_events == 0
    for p in ("pA", "pB"):  # per participant in hour order
        hours = [r.hour_start for r in recs if r.participant == p]
        assert hours == sorted(hours)


def test_read_cohort_events_is_time_ordered(tmp_path: Path) -> None:
    write_cohort(tmp_path / "c", cohort_events(), gz_accel=False)
    ts = [e.ts[0] if isinstance(e, Accelerometer) else e.ts for e in read_cohort_events(tmp_path / "c")]
    assert ts == sorted(ts) and len(ts) == 2 * (180 * 3 + 40 + 14)


def test_config_is_passed_through(tmp_path: Path) -> None:
    write_cohort(tmp_path / "c", cohort_events())
    def on_s(cfg: HourlyConfig | None) -> float:
        return sum(r.features["screen_on_s"] for r in hourly_features_from_cohort(tmp_path / "c", cfg))

    # 60-s sessions; capping sessions at 30 s (a lost "off") halves the screen time.
    assert on_s(None) == 2 * 20 * 60.0
    assert on_s(HourlyConfig(screen_session_max_s=30.0)) == 2 * 20 * 30.0


def test_missing_directory_and_empty_directory_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        list(hourly_features_from_cohort(tmp_path / "nope"))
    (tmp_path / "only_survey").mkdir()
    (tmp_path / "only_survey" / "survey.jsonl").write_text("")
    with pytest.raises(UserError, match="no raw sensor file"):
        list(hourly_features_from_cohort(tmp_path / "only_survey"))


def test_half_hour_zone_first_record_is_the_utc_hour_before_local_midnight(tmp_path: Path) -> None:
    """UTC+05:30: records are UTC hours, i.e. local hh:30 – hh+1:30, dated by their local start.

    Data starting at local 00:05 on 2024-01-01 (18:35 UTC the day before) falls in the UTC hour
    18:00–19:00 of 2023-12-31, whose local start is 23:30 on 2023-12-31: the first record is local
    hour 23 of 2023-12-31, a one-hour first local day. Not an invented record: it holds that
    00:05 event. Every day's last hour (23:30–00:30) likewise holds the next day's first half hour.
    """
    off = 330
    local_midnight = T0 - off * 60.0  # 2024-01-01 00:00 at +05:30 = 2023-12-31 18:30 UTC
    events = {
        "sms": [Sms(participant="pI", utc_offset_min=off, ts=local_midnight + 300, direction="incoming"),  # 00:05
                Sms(participant="pI", utc_offset_min=off, ts=local_midnight + 86_400 - 600,  # 23:50
                    direction="outgoing"),
                Sms(participant="pI", utc_offset_min=off, ts=local_midnight + 86_400 + 1200,  # 01-02 00:20
                    direction="incoming")],
        "screen": [Screen(participant="pI", utc_offset_min=off, ts=local_midnight + 2400, state="on"),  # 00:40
                   Screen(participant="pI", utc_offset_min=off, ts=local_midnight + 2460, state="off")],
    }
    (tmp_path / "c").mkdir()
    for name, items in events.items():
        (tmp_path / "c" / f"{name}.jsonl").write_bytes(b"".join(encode(e) + b"\n" for e in items))
    recs = list(hourly_features_from_cohort(tmp_path / "c"))

    h0 = 1_704_045_600.0  # 2023-12-31 18:00 UTC = 23:30 local
    assert [r.hour_start for r in recs] == [h0 + 3600.0 * i for i in range(25)]
    for r in recs:  # UTC hour boundaries, i.e. hh:30 local; local hour = the one the record starts in
        local = dt.datetime.fromtimestamp(r.hour_start, dt.timezone.utc) + dt.timedelta(minutes=off)
        assert r.utc_offset_min == off and local.minute == 30 and r.local_hour == local.hour
        assert r.weekday == local.weekday()

    def local_date(r: HourlyFeatures) -> str:
        start = dt.datetime.fromtimestamp(r.hour_start, dt.timezone.utc) + dt.timedelta(minutes=off)
        return start.date().isoformat()

    first, second, last = recs[0], recs[1], recs[-1]
    assert (local_date(first), first.local_hour, first.weekday) == ("2023-12-31", 23, 6)  # Sunday
    assert (first.features["sms_incoming_n"], first.features["sms_n"]) == (1.0, 1.0)  # the 00:05 SMS
    assert first.filled < 1.0 and "sms" in first.observed
    assert (local_date(second), second.local_hour, second.weekday) == ("2024-01-01", 0, 0)  # Monday
    assert (second.features["screen_on_s"], second.features["screen_sessions"]) == (60.0, 1.0)
    assert all(r.filled == 1.0 and r.observed == [] for r in recs[2:-1])  # no data: imputed, not observed
    # The last hour, 23:30 on 01-01 to 00:30 on 01-02, holds the 23:50 SMS and the 00:20 one.
    assert (local_date(last), last.local_hour) == ("2024-01-01", 23)
    assert (last.features["sms_outgoing_n"], last.features["sms_incoming_n"]) == (1.0, 1.0)
    assert [local_date(r) for r in recs].count("2023-12-31") == 1

    # The aggregator closes the one-hour local day 2023-12-31 on its own, then the 24-hour 01-01
    # (a short idle timeout lets the silent screen log stop holding the watermark).
    agg = HourlyAggregator("pI", HourlyConfig(allowed_lateness_s=0.0, idle_timeout_s=3600.0))
    days = []
    for e in sorted(events["sms"] + events["screen"], key=lambda e: e.ts):
        if step := agg.update(e).records:
            days.append(step)
    days.append(agg.flush())
    assert [len(d) for d in days] == [1, 24]
    assert [r.hour_start for d in days for r in d] == [r.hour_start for r in recs]
