"""Issue 13 on real data: a RADAR-base recording (tests/data/radar13, see its README).

The RADAR importer is not on this branch, so the test turns the CSV rows into contract
events itself: acceleration (g → m/s², one chunk per minute), light → Ambient,
``interactionState`` UNLOCKED → screen ``unlock``, STANDBY → ``off``; the
``application_time_zone`` stream's offset applies from its time on (the first one also
before it). The participant gets a pseudonym, never the raw RADAR user id.

Checked: per-modality rhythm coverage equals an independent count — the local
(day, hour) slots that hold at least one row of that sensor, from plain datetime
arithmetic on the CSV rows — and the local day of the daylight-saving change has the
repeated hour (the phone reported the change at 16:55 UTC, so local 16:00 occurs twice).
"""

from __future__ import annotations

import csv
import gzip
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from phenoflow.core.contract import Accelerometer, Ambient, HourlyFeatures, Screen
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.rhythm.rolling import RhythmState

DATA = Path(__file__).parents[3] / "data" / "radar13"
P = "pradar13"  # pseudonym; the raw user id stays in the CSV files
G = 9.80665


def rows(topic: str) -> list[dict[str, str]]:
    with gzip.open(DATA / f"{topic}.csv.gz", "rt") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sample() -> dict[str, object]:
    tz = sorted((float(r["value.time"]), int(r["value.offset"]) // 60) for r in rows("application_time_zone"))
    times = [t for t, _ in tz]

    def offset(t: float) -> int:
        return tz[max(bisect_right(times, t) - 1, 0)][1]

    events: list[object] = []
    seen: dict[str, list[float]] = defaultdict(list)  # sensor → row times, for the independent count
    minute: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    for r in rows("android_phone_acceleration"):
        t = float(r["value.time"])
        minute[int(t // 60)].append((t, float(r["value.x"]) * G, float(r["value.y"]) * G, float(r["value.z"]) * G))
        seen["accel"].append(t)
    for samples in minute.values():
        samples.sort()
        ts, x, y, z = (list(c) for c in zip(*samples, strict=True))
        events.append(Accelerometer(participant=P, utc_offset_min=offset(ts[-1]), ts=ts, x=x, y=y, z=z))
    for r in rows("android_phone_light"):
        t = float(r["value.time"])
        events.append(Ambient(participant=P, utc_offset_min=offset(t), ts=t, light_lux=float(r["value.light"])))
        seen["light"].append(t)
    for r in rows("android_phone_user_interaction"):
        state = {"UNLOCKED": "unlock", "STANDBY": "off"}.get(r["value.interactionState"])
        if state is not None:
            t = float(r["value.time"])
            events.append(Screen(participant=P, utc_offset_min=offset(t), ts=t, state=state))
            seen["screen"].append(t)
    events.sort(key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts)
    agg = HourlyAggregator(P)
    records: list[HourlyFeatures] = []
    for i in range(0, len(events), 250):
        records += agg.update_batch(events[i:i + 250]).records
    records += agg.flush()
    rhythm = RhythmState(P)
    days = [d for r in records for d in rhythm.update(r)] + rhythm.flush()
    return {"records": records, "days": days, "seen": seen, "offset": offset, "events": events}


def local_slot(utc_hour: int, offset_min: int) -> tuple[str, int]:
    local = datetime.fromtimestamp(utc_hour * 3600, timezone.utc) + timedelta(minutes=offset_min)
    return local.date().isoformat(), local.hour


def test_per_modality_coverage_matches_an_independent_count(sample: dict) -> None:
    records, days, seen = sample["records"], sample["days"], sample["seen"]
    # The hour's offset is the offset of its newest event (the contract's rule), recomputed from the events.
    newest: dict[int, tuple[float, int]] = {}
    for e in sample["events"]:
        t = e.ts[-1] if isinstance(e, Accelerometer) else e.ts
        h = int(t // 3600)
        newest[h] = max(newest.get(h, (t, e.utc_offset_min)), (t, e.utc_offset_min))
    assert [r.hour_start for r in records] == [3600.0 * h for h in range(min(newest), max(newest) + 1)]
    last = days[-1]
    assert last.day == "2019-10-27"
    window = {"2019-10-26", "2019-10-27"}
    counts = {}
    for sensor in ("accel", "light", "screen"):
        slots = {local_slot(int(t // 3600), newest[int(t // 3600)][1]) for t in seen[sensor]}
        counts[sensor] = sum(1 for d, _ in slots if d in window)
    assert last.coverage["accel_sd.w2"] == counts["accel"] / 48
    assert last.coverage["light_lux_mean.w2"] == counts["light"] / 48
    assert counts["light"] < counts["accel"]  # the light sensor was off in some hours
    # The screen log's silence is a measured 0 while it runs, so it covers at least its event hours.
    assert last.coverage["screen_on_s.w2"] >= counts["screen"] / 48
    # Modalities this phone never recorded have no coverage at all (formerly: full, as 0s).
    for mod in ("sound_db_mean", "call_n", "sms_n", "distance_m", "conversation_s"):
        assert last.coverage[f"{mod}.w2"] == 0.0 and last.features[f"{mod}.m10.w2"] is None
    assert last.coverage["w2"] >= last.coverage["accel_sd.w2"]


def test_the_daylight_saving_day_repeats_a_local_hour(sample: dict) -> None:
    records = sample["records"]
    by_day: dict[str, list[HourlyFeatures]] = defaultdict(list)
    for r in records:
        by_day[local_slot(int(r.hour_start // 3600), r.utc_offset_min or 0)[0]].append(r)
    assert {r.utc_offset_min for r in by_day["2019-10-26"]} == {60}
    day = by_day["2019-10-27"]
    # 23:00 UTC on the 26th … 22:00 UTC on the 27th, the recording's last hour: 24 UTC hours on
    # 23 local clock hours — local 16:00 twice (UTC+1 until the phone reported UTC+0 at 16:55 UTC).
    # The full day would have 25 hours; the recording stops one hour short of its end.
    assert len(day) == 24
    assert [r.local_hour for r in day] == list(range(17)) + [16] + list(range(17, 23))
    assert sum(len(v) for v in by_day.values()) == len(records)  # every UTC hour in exactly one local day
