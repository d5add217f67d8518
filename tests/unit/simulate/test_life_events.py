"""Life events, clock changes and the null strength of the simulator (issue 14, item 7; issue 13).

Each claim in ``life_events.csv`` (the manifest) is checked against the
written event files with simple measurements — offsets and local hours from
the one local-time rule (``phenoflow.core.timebase``), GPS distances, counts
per hour — never against the simulator's internal state, except where the
files cannot tell (the null strength: relapse days must not touch behaviour).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

import msgspec
import numpy as np
import pytest

from phenoflow.core.timebase import local_day_hour, local_day_iso
from phenoflow.offline.features import hourly_features_from_cohort
from phenoflow.simulate.behaviour import build_timeline
from phenoflow.simulate.profiles import haversine_m
from phenoflow.simulate.simulator import _rng, cohort_truth, life_plans, simulate_cohort

FILES = ("accelerometer", "screen", "call", "sms", "location", "ambient", "survey")
#: Starts late enough in January that both the US (10 March) and the EU (31 March)
#: spring-forward fall inside the cohort; seed 0 draws every kind of life event.
START = date(2024, 1, 20)
N, DAYS, SEED = 10, 75, 0


class _Row(msgspec.Struct):
    participant: str
    utc_offset_min: int
    ts: float | list[float]
    lat: float | None = None
    lon: float | None = None
    score: int | None = None


def _load(d: Path) -> dict[str, dict[str, list[tuple[float, int, float, float]]]]:
    """{participant: {file: [(ts, utc_offset_min, lat, lon)]}} (accelerometer: first sample's ts)."""
    dec = msgspec.json.Decoder(_Row)
    out: dict[str, dict[str, list]] = defaultdict(lambda: {f: [] for f in FILES})
    for f in FILES:
        for line in (d / f"{f}.jsonl").read_bytes().splitlines():
            r = dec.decode(line)
            ts = r.ts[0] if isinstance(r.ts, list) else r.ts
            out[r.participant][f].append((ts, r.utc_offset_min, r.lat, r.lon))
    return out


def _manifest(d: Path) -> list[dict[str, str]]:
    with open(d / "life_events.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["participant", "kind", "start", "end", "detail"]
        return list(reader)


def _day(d: str, start: date = START) -> int:
    return (date.fromisoformat(d) - start).days


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    """(dir, events, manifest, truth, plans) of a 10 × 75-day cohort with life events."""
    d = tmp_path_factory.mktemp("life") / "cohort"
    simulate_cohort(d, N, DAYS, SEED, relapse_share=0.5, life_events=True, start=START)
    base = cohort_truth(N, DAYS, SEED, relapse_share=0.5, start=START)
    return (d, _load(d), _manifest(d),
            cohort_truth(N, DAYS, SEED, relapse_share=0.5, life_events=True, start=START),
            life_plans(base, DAYS, SEED, START))


def test_manifest_lists_every_kind_within_the_cohort(cohort) -> None:
    d, _, rows, truth, _ = cohort
    kinds = {r["kind"] for r in rows}
    assert kinds >= {"holiday", "travel", "illness", "new_phone", "dst", "seasonal_drift",
                     "missing_before_relapse", "partial_signature"}
    assert all(0 <= _day(r["start"]) <= _day(r["end"]) < DAYS for r in rows)
    assert {r["participant"] for r in rows if r["kind"] == "seasonal_drift"} == {t.participant for t in truth}
    params = json.loads((d / "simulation.json").read_text())
    assert params["life_events"] is True and params["signature_strength"] == 1.0
    assert params["null_cohort"] is False and params["benchmark_seed"] is False


def test_dst_follows_the_home_zone(cohort) -> None:
    _, ev, rows, truth, _ = cohort
    expected = {-300: "2024-03-10", -360: "2024-03-10", -480: "2024-03-10", 0: "2024-03-31",
                60: "2024-03-31"}
    travellers = {r["participant"] for r in rows if r["kind"] == "travel"}
    for t in truth:
        dst = [r for r in rows if r["participant"] == t.participant and r["kind"] == "dst"]
        if t.utc_offset_min == 330:  # Bengaluru keeps its clock
            assert dst == []
            assert {o for f in FILES for _, o, _, _ in ev[t.participant][f]} == {330}
            continue
        if t.participant in travellers:
            continue  # a trip may span the change; checked in test_travel
        assert [r["start"] for r in dst] == [expected[t.utc_offset_min]]
        assert "23-hour local day" in dst[0]["detail"]
        change = _day(expected[t.utc_offset_min])
        for f in FILES:
            for ts, off, _, _ in ev[t.participant][f]:
                day, _ = local_day_hour(ts, off)
                local_index = day - (START - date(1970, 1, 1)).days
                if local_index < change:
                    assert off == t.utc_offset_min
                elif local_index > change:
                    assert off == t.utc_offset_min + 60


def test_travel_moves_the_clock_and_the_gps(cohort) -> None:
    _, ev, rows, truth, _ = cohort
    by_id = {t.participant: t for t in truth}
    trips = [r for r in rows if r["kind"] == "travel"]
    assert trips
    for r in trips:
        t = by_id[r["participant"]]
        dest = int(r["detail"].split()[1])
        s, e = _day(r["start"]), _day(r["end"])
        home = t.places[0]
        away = near = 0
        for ts, off, lat, lon in ev[t.participant]["location"]:
            day, hour = local_day_hour(ts, off)
            i = day - (START - date(1970, 1, 1)).days
            inside = (s, 12) <= (i, hour) < (e, 12)
            assert (off == dest) == inside or (not inside and off != t.utc_offset_min), (i, hour, off)
            dist = haversine_m(lat, lon, home.lat, home.lon)
            if inside:
                assert dist > 300_000  # the destination is another city
                away += 1
            elif s - 5 <= i <= e + 5:
                assert dist < 100_000
                near += 1
        assert away > 0 and near > 0


def test_holiday_skips_work_and_illness_keeps_people_home(cohort) -> None:
    _, ev, rows, truth, _ = cohort
    by_id = {t.participant: t for t in truth}
    epoch0 = (START - date(1970, 1, 1)).days
    checked = {"holiday": 0, "illness": 0}
    for r in rows:
        if r["kind"] not in checked:
            continue
        t = by_id[r["participant"]]
        s, e = _day(r["start"]), _day(r["end"])
        fixes = [(local_day_hour(ts, off)[0] - epoch0, lat, lon)
                 for ts, off, lat, lon in ev[t.participant]["location"]]
        if r["kind"] == "holiday" and t.has_work:
            work = t.places[1]
            during = [haversine_m(la, lo, work.lat, work.lon) for i, la, lo in fixes if s <= i <= e]
            assert during and min(during) > 300  # never at work during the holiday
            checked["holiday"] += 1
        if r["kind"] == "illness":
            home = t.places[0]

            def at_home(sel: list, home=home) -> float:
                return float(np.mean([haversine_m(la, lo, home.lat, home.lon) < 300 for la, lo in sel]))

            ill = at_home([(la, lo) for i, la, lo in fixes if s <= i <= e - 2])
            other = at_home([(la, lo) for i, la, lo in fixes if not s - 1 <= i <= e + 1])
            assert ill >= 0.9 and ill > other + 0.05, (ill, other)
            checked["illness"] += 1
    assert checked["holiday"] >= 1 and checked["illness"] >= 1


def test_new_phone_gap_then_different_rates(cohort) -> None:
    _, ev, rows, _, _ = cohort
    epoch0 = (START - date(1970, 1, 1)).days
    phones = [r for r in rows if r["kind"] == "new_phone"]
    assert phones
    for r in phones:
        gap0, switch = _day(r["start"]), _day(r["end"])
        n_gap = int(r["detail"].split()[0])
        assert switch - gap0 == n_gap
        per_hour: dict[str, dict[tuple[int, int], int]] = {}
        for f in FILES:
            hours: dict[tuple[int, int], int] = defaultdict(int)
            for ts, off, _, _ in ev[r["participant"]][f]:
                day, hour = local_day_hour(ts, off)
                assert not gap0 <= day - epoch0 < switch, f  # nothing at all in the gap
                hours[(day - epoch0, hour)] += 1
            per_hour[f] = hours
        for f, before_n, after_n in (("accelerometer", 12, 6), ("location", 6, 3), ("ambient", 12, 6)):
            before = [n for (d, _), n in per_hour[f].items() if d < gap0]
            after = [n for (d, _), n in per_hour[f].items() if d >= switch]
            assert np.median(before) == before_n and np.median(after) == after_n, f


def test_missing_data_grows_before_relapse_where_the_manifest_says(cohort) -> None:
    _, ev, rows, truth, _ = cohort
    epoch0 = (START - date(1970, 1, 1)).days
    growing = {r["participant"] for r in rows if r["kind"] == "missing_before_relapse"}
    relapsing = {t.participant for t in truth if t.relapse_days}
    assert growing and growing < relapsing
    for t in truth:
        if t.participant not in relapsing:
            continue
        seen = {(local_day_hour(ts, off)[0] - epoch0) * 24 + local_day_hour(ts, off)[1]
                for f in FILES for ts, off, _, _ in ev[t.participant][f]}
        missing = np.array([h not in seen for h in range(DAYS * 24)])
        late = np.zeros(DAYS * 24, bool)
        nr = np.zeros(DAYS * 24, bool)
        for rd in t.relapse_days:
            late[(rd - 10) * 24:rd * 24] = True
            nr[(rd - 30) * 24:(rd + 7) * 24] = True
        gain = missing[late].mean() - missing[~nr].mean()
        if t.participant in growing:
            assert gain > 0.2, gain
        else:
            assert gain < 0.2, gain


def test_partial_signatures_touch_one_modality(cohort) -> None:
    _, _, rows, truth, plans = cohort
    by_id = {t.participant: t for t in truth}
    base = {t.participant: t for t in cohort_truth(N, DAYS, SEED, relapse_share=0.5, start=START)}
    partial = {r["participant"]: r["detail"] for r in rows if r["kind"] == "partial_signature"}
    assert partial
    for pid, t in by_id.items():
        if pid in partial:
            assert len(t.signature) == 1 < len(base[pid].signature)
            (m, sign), = t.signature.items()
            assert f"{m}{sign:+d}" in partial[pid] and base[pid].signature[m] == sign
        else:
            assert t.signature == base[pid].signature


def _day_span(ev: dict, pid: str, local_index: int, start: date) -> tuple[float, set[int]]:
    """UTC seconds between first and last event on a local day, and the local hours seen."""
    epoch0 = (start - date(1970, 1, 1)).days
    ts_seen, hours = [], set()
    for f in FILES:
        for ts, off, _, _ in ev[pid][f]:
            day, hour = local_day_hour(ts, off)
            if day - epoch0 == local_index:
                ts_seen.append(ts)
                hours.add(hour)
    return max(ts_seen) - min(ts_seen), hours


@pytest.mark.parametrize(("start", "hours"), [(date(2024, 3, 5), 23), (date(2024, 10, 24), 25)])
def test_clock_changes_make_23_and_25_hour_local_days(tmp_path: Path, start: date, hours: int) -> None:
    d = tmp_path / "c"
    # Seed 5: one New Yorker and two Berliners, no trips (US and EU changes on different days).
    simulate_cohort(d, 3, 12, 5, start=start, missing_share=(0.0, 0.0), life_events=True)
    ev = _load(d)
    dst = [r for r in _manifest(d) if r["kind"] == "dst"]
    assert dst and all(f"{hours}-hour local day" in r["detail"] for r in dst)
    for r in dst:
        i = _day(r["start"], start)
        span, seen = _day_span(ev, r["participant"], i, start)
        offs = {o for f in FILES for ts, o, _, _ in ev[r["participant"]][f]}
        assert len(offs) == 2
        if hours == 23:  # the skipped clock hour has no events; the day lasts < 23 h
            assert len(seen) == 23 and span < 23 * 3600
        else:  # the repeated hour is one UTC hour longer: the day lasts > 24 h
            assert len(seen) == 24 and 24 * 3600 < span < 25 * 3600
        _, normal = _day_span(ev, r["participant"], i - 1, start)
        assert len(normal) == 24
    # The offline hourly features (the one local-time rule) give the day 23 or 25 hour records.
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    for rec in hourly_features_from_cohort(d):
        per_day[(rec.participant, local_day_iso(rec.hour_start, rec.utc_offset_min))] += 1
    last = max(day for _, day in per_day)
    # First and last days may be partial (a half-hour zone's first hour starts the day before).
    odd = {k: v for k, v in per_day.items() if v != 24 and start.isoformat() < k[1] < last}
    assert odd == {(r["participant"], r["start"]): hours for r in dst}


def test_null_strength_relapse_days_change_nothing(tmp_path: Path) -> None:
    n, days, seed = 6, 60, 8
    simulate_cohort(tmp_path / "null", n, days, seed, relapse_share=0.5, signature_strength=0.0,
                    life_events=True, start=START)
    simulate_cohort(tmp_path / "one", n, days, seed, relapse_share=0.5, life_events=True, start=START)
    params = json.loads((tmp_path / "null" / "simulation.json").read_text())
    assert params["null_cohort"] is True and params["signature_strength"] == 0.0
    labels = (tmp_path / "null" / "labels.csv").read_text()
    assert labels == (tmp_path / "one" / "labels.csv").read_text() and labels.count("\n") > 1
    null, one = _load(tmp_path / "null"), _load(tmp_path / "one")
    truth = cohort_truth(n, days, seed, relapse_share=0.5, life_events=True, start=START)
    plans = life_plans(cohort_truth(n, days, seed, relapse_share=0.5, start=START), days, seed, START, 0.0)
    for t, plan in zip(truth, plans, strict=True):
        if not t.relapse_days:  # healthy participants: the strength is irrelevant
            assert null[t.participant] == one[t.participant]
            continue
        assert null[t.participant] != one[t.participant]
        # Relapsing participants at strength 0 behave exactly as without relapse days.
        a = build_timeline(t, days, START.weekday(), 0.0, _rng(seed, 1, t.index, 0), plan)
        b = build_timeline(replace(t, relapse_days=(), relapse_dates=(), signature={}), days,
                           START.weekday(), 1.0, _rng(seed, 1, t.index, 0), plan)
        for field in ("asleep", "place", "intensity", "talking", "carried"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    # WHO-5 declines near a relapse at strength 1 (up to −10 points) and not at strength 0.
    drops = {}
    for name in ("null", "one"):
        near, far = [], []
        for t in truth:
            for ts, score in _scores(tmp_path / name, t.participant):
                i = int((ts - 86_400 * (START - date(1970, 1, 1)).days) // 86_400)
                (near if any(rd - 14 <= i < rd for rd in t.relapse_days) else far).append(score)
        drops[name] = np.mean(far) - np.mean(near)
    assert drops["null"] < 2.0 < 4.0 < drops["one"], drops


def _scores(d: Path, pid: str) -> list[tuple[float, int]]:
    dec = msgspec.json.Decoder(_Row)
    return [(r.ts, r.score) for r in map(dec.decode, (d / "survey.jsonl").read_bytes().splitlines())
            if r.participant == pid]
