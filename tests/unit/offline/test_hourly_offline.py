"""Offline driver: cohort directory → hourly records, same as feeding the aggregators directly."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from phenoflow.core.contract import (
    Accelerometer,
    Ambient,
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
