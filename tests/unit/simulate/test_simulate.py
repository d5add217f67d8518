"""Tests for the cohort simulator (phenoflow.simulate.simulator).

One module-scoped cohort (6 participants × 80 days, half of them relapsing) is
written once and read back through the contract decoder; every behavioural
claim is then measured from the files with independent, simple detectors
(rest = screen off + still + dark + quiet; DBSCAN over GPS fixes; per-day
counts), never from the simulator's internal state. The ground truth
(``cohort_truth``) is only used for what the files cannot tell: which days
are near a relapse and which modalities the signature touches.
"""

from __future__ import annotations

import csv
import gzip
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import msgspec
import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from phenoflow.core.contract import DeadLetter, decode
from phenoflow.core.errors import UserError
from phenoflow.simulate.simulator import cohort_truth, simulate_cohort

START = date(2024, 1, 1)
N, DAYS, SEED, SHARE = 6, 80, 3, 0.5
MISSING = (0.1, 0.3)
FILES = ("accelerometer", "screen", "call", "sms", "location", "ambient", "survey")
BIN = 300  # seconds per bin of the rest detector
CALL_DIRS = ("incoming", "outgoing", "missed", "rejected", "blocked")


class _Who(msgspec.Struct):
    participant: str


def _mag(e) -> np.ndarray:
    return np.sqrt(np.square(e.x) + np.square(e.y) + np.square(e.z))


_NAN = float("nan")
#: Columns kept per topic after the local time (column 0).
_ROW = {
    "accelerometer": lambda e: (_mag(e).std(), _mag(e).mean(), len(e.ts)),
    "screen": lambda e: (("on", "off", "unlock").index(e.state),),
    "call": lambda e: (e.duration_s, CALL_DIRS.index(e.direction)),
    "sms": lambda e: (("incoming", "outgoing").index(e.direction),),
    "location": lambda e: (e.lat, e.lon),
    "ambient": lambda e: (_NAN if e.light_lux is None else e.light_lux,
                          _NAN if e.sound_db is None else e.sound_db, {None: -1}.get(e.voice, e.voice)),
    "survey": lambda e: (e.score,),
}


@dataclass
class Person:
    """One participant's events, times in local seconds since local midnight of day 0."""

    offsets: set = field(default_factory=set)
    cols: dict = field(default_factory=lambda: {f: [] for f in FILES})

    def arr(self, f: str, i: int) -> np.ndarray:
        return np.array([row[i] for row in self.cols[f]], dtype=float)


def load_cohort(d: Path, days: int, start: date = START) -> tuple[dict[str, Person], list[str]]:
    """Decode every line with the contract, keyed by its participant, and collect columns.

    Returns the participants and a list of problems: dead-lettered lines and
    files not sorted by ts (the contract test asserts it is empty).
    """
    who = msgspec.json.Decoder(_Who)
    people: dict[str, Person] = {}
    problems: list[str] = []
    midnight = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    for f in FILES:
        path = d / f"{f}.jsonl"
        opener = open if path.exists() else gzip.open
        last = -np.inf
        with opener(path if path.exists() else d / f"{f}.jsonl.gz", "rb") as fh:
            for n, line in enumerate(fh, start=1):
                line = line.rstrip(b"\n")
                pid = who.decode(line).participant
                ev = decode(f"raw.{f}", pid.encode(), line)
                if isinstance(ev, DeadLetter):
                    problems.append(f"{f}.jsonl line {n}: {ev.error}")
                    continue
                p = people.setdefault(pid, Person())
                p.offsets.add(ev.utc_offset_min)
                ts0 = ev.ts[0] if f == "accelerometer" else ev.ts
                if ts0 < last:
                    problems.append(f"{f}.jsonl line {n}: ts {ts0} before {last}")
                last = ts0
                p.cols[f].append((ts0 + ev.utc_offset_min * 60 - midnight, *_ROW[f](ev)))
    return people, problems


def _bins(t: np.ndarray, days: int) -> np.ndarray:
    return np.clip((t // BIN).astype(int), 0, days * 86400 // BIN - 1)


def rest_bins(p: Person, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, observed) per 5-min bin: observed = ≥ 2 of stillness, light, sound measured;
    rest = screen off and each measured one says rest (|a| SD < 0.1 m/s², < 10 lux, < 40 dB)."""
    nb = days * 86400 // BIN
    delta = np.zeros(nb + 1, int)
    on_t = None
    for t, s in zip(p.arr("screen", 0), p.arr("screen", 1), strict=True):  # pair each "on" with the next "off"
        if s == 0:
            on_t = t
        elif s == 1 and on_t is not None:
            if t - on_t <= 7200:  # longer: the session's "off" was lost in a gap
                delta[_bins(np.array([on_t]), days)[0]] += 1
                delta[_bins(np.array([t]), days)[0] + 1] -= 1
            on_t = None
    screen_on = np.cumsum(delta)[:-1] > 0
    votes, seen = np.zeros(nb), np.zeros(nb)
    for t, v, limit in ((p.arr("accelerometer", 0), p.arr("accelerometer", 1), 0.1),
                        (p.arr("ambient", 0), p.arr("ambient", 1), 10.0),
                        (p.arr("ambient", 0), p.arr("ambient", 2), 40.0)):
        ok = ~np.isnan(v)
        b = _bins(t[ok], days)
        n_b = np.bincount(b, minlength=nb)
        yes_b = np.bincount(b, weights=(v[ok] < limit).astype(float), minlength=nb)
        seen += n_b > 0
        votes += (n_b > 0) & (yes_b == n_b)
    return (votes == seen) & (seen >= 2) & ~screen_on, seen >= 2


def nights(p: Person, days: int) -> dict[int, tuple[float, float]]:
    """Night from day d → (midpoint, hours after day d's midnight, 18–38; duration, h) of the
    longest rest episode in 18:00–14:00, bridging breaks ≤ 15 min (a turn in bed, a glance
    at the phone); nights with < 90 % of 21:00–11:00 observed are skipped."""
    rest, obs = rest_bins(p, days)
    per_h = 3600 // BIN
    out = {}
    for d in range(days - 1):
        a, b = (24 * d + 18) * per_h, (24 * (d + 1) + 14) * per_h
        if obs[a + 3 * per_h:b - 3 * per_h].mean() < 0.9:
            continue
        edges = np.diff(np.concatenate([[0], rest[a:b].astype(int), [0]]))
        s, e = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if s.size == 0:  # no rest at all: a failed night
            out[d] = (float("nan"), 0.0)
            continue
        group = np.concatenate([[0], np.cumsum(s[1:] - e[:-1] > 3)])
        first = np.flatnonzero(np.diff(np.concatenate([[-1], group])))
        s, e = s[first], e[np.append(first[1:] - 1, group.size - 1)]
        k = int(np.argmax(e - s))
        out[d] = ((a + (s[k] + e[k]) / 2) / per_h - 24 * d, (e[k] - s[k]) / per_h)
    return out


def observed_hours(p: Person, days: int) -> np.ndarray:
    """Local hours (0 … days·24−1) in which any file has an event."""
    hours = np.concatenate([p.arr(f, 0) // 3600 for f in FILES]).astype(int)
    return np.bincount(np.clip(hours, 0, days * 24 - 1), minlength=days * 24) > 0


def home_of(p: Person) -> tuple[float, float]:
    """Median position of the fixes taken 02:00–05:00 local."""
    t, lat, lon = p.arr("location", 0), p.arr("location", 1), p.arr("location", 2)
    night = (t % 86400 >= 2 * 3600) & (t % 86400 < 5 * 3600)
    return float(np.median(lat[night])), float(np.median(lon[night]))


def haversine(lat: np.ndarray | float, lon: np.ndarray | float, lat0: float, lon0: float) -> np.ndarray:
    """Great-circle distance in m from (lat0, lon0); arrays or scalars (independent of the
    simulator's own helper)."""
    p1, p2 = np.radians(lat), np.radians(lat0)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon0 - lon) / 2) ** 2
    return 2 * 6_371_000 * np.arcsin(np.sqrt(h))


def daily_measures(p: Person, days: int) -> dict[str, np.ndarray]:
    """Per-day value of each signature modality measured from the files (NaN = too little data)."""
    def per_day(t: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(np.clip((t // 86400).astype(int), 0, days - 1), w, minlength=days)

    out = {"sleep": np.full(days, np.nan)}
    for d, (mid, _) in nights(p, days).items():  # later and longer sleep → later midpoint
        out["sleep"][d] = mid
    hours = observed_hours(p, days).reshape(days, 24)
    at, sd = p.arr("accelerometer", 0), p.arr("accelerometer", 1)
    wake = (at % 86400 >= 8 * 3600) & (at % 86400 < 22 * 3600)
    n = per_day(at[wake])
    out["activity"] = np.where(n >= 60, per_day(at[wake], sd[wake]) / n.clip(1), np.nan)
    social = np.concatenate([p.arr("call", 0), p.arr("sms", 0),
                             p.arr("ambient", 0)[p.arr("ambient", 3) == 1]])
    out["social"] = np.where(hours.sum(1) >= 12, per_day(social) / hours.sum(1).clip(1), np.nan)
    lt = p.arr("location", 0)
    home = haversine(p.arr("location", 1), p.arr("location", 2), *home_of(p)) < 300
    n = per_day(lt)
    out["mobility"] = np.where(n >= 30, per_day(lt, home.astype(float)) / n.clip(1), np.nan)
    on = p.arr("screen", 0)[p.arr("screen", 1) == 0]
    on = on[on % 86400 < 6 * 3600]
    out["night_screen"] = np.where(hours[:, :6].sum(1) >= 4,
                                   per_day(on) / hours[:, :6].sum(1).clip(1), np.nan)
    return out


#: Direction in which each modality's measure moves under the signature
#: (social comes from the participant's signature).
MEASURE_SIGN = {"sleep": 1, "activity": -1, "mobility": 1, "night_screen": 1}


def _effect(v: np.ndarray, window: np.ndarray, healthy: np.ndarray) -> float:
    """Standardised mean difference of a window against healthy days (SD of healthy days)."""
    a, b = v[window & ~np.isnan(v)], v[healthy & ~np.isnan(v)]
    return float((a.mean() - b.mean()) / b.std())


def near_relapse(t, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the 30 days before a relapse (NR30) and of the week after one, for day indices."""
    nr, after = np.zeros(day.shape, bool), np.zeros(day.shape, bool)
    for r in t.relapse_days:
        nr |= (day >= r - 30) & (day < r)
        after |= (day >= r) & (day < r + 7)
    return nr, after


def signature_effects(people: dict[str, Person], truth: list, days: int) -> dict[str, list]:
    """Signed effects in NR30 against days of relative health for each (relapser, signature
    modality), and |effects| of a random 30-day window of each non-relapser, per modality."""
    rng = np.random.default_rng(0)
    res: dict[str, list] = {"nr": [], "healthy": []}
    day = np.arange(days)
    for t in truth:
        v = daily_measures(people[t.participant], days)
        nr, after = near_relapse(t, day)
        for m, direction in t.signature.items():
            sign = direction if m == "social" else MEASURE_SIGN[m]
            res["nr"].append((t.participant, m, sign * _effect(v[m], nr, ~nr & ~after)))
        for m in v if not t.relapse_days else ():
            w0 = int(rng.integers(0, days - 30))
            win = (day >= w0) & (day < w0 + 30)
            res["healthy"].append((t.participant, m, abs(_effect(v[m], win, ~win))))
    return res


def who5_drop(people: dict[str, Person], truth: list) -> tuple[float, int]:
    """Pooled mean of (WHO-5 in NR30 − the participant's mean on days of relative health,
    i.e. outside NR30 and the week after a relapse), and its n."""
    diffs: list[float] = []
    for t in (t for t in truth if t.relapse_days):
        p = people[t.participant]
        score = p.arr("survey", 1)
        nr, after = near_relapse(t, p.arr("survey", 0) // 86400)
        diffs += (score[nr] - score[~nr & ~after].mean()).tolist()
    return float(np.mean(diffs)), len(diffs)


def place_clusters(p: Person) -> list[tuple[float, float, int]]:
    """DBSCAN (haversine, ε = 200 m) over the GPS fixes → (lat, lon, size) per cluster.

    A core point needs 1 % of the fixes within ε (≈ 13 h of dwell over 80 days): a
    significant place, not a street corner passed on many trips. Fixes are merged on a
    0.0002° grid (≈ 20 m) with counts as sample weights to keep neighbourhoods small."""
    ll = np.column_stack([p.arr("location", 1), p.arr("location", 2)])
    cells, counts = np.unique(np.round(ll / 0.0002), axis=0, return_counts=True)
    centre = cells * 0.0002
    labels = DBSCAN(eps=200 / 6_371_000, min_samples=max(10, len(ll) // 100), metric="haversine",
                    algorithm="ball_tree").fit(np.radians(centre), sample_weight=counts).labels_
    out = []
    for k in sorted(set(labels) - {-1}):
        sel = labels == k
        w = counts[sel]
        out.append((float(np.average(centre[sel, 0], weights=w)),
                    float(np.average(centre[sel, 1], weights=w)), int(w.sum())))
    return out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    """(directory, summary, people, problems, truth) of the shared test cohort."""
    d = tmp_path_factory.mktemp("sim") / "cohort"
    summary = simulate_cohort(d, N, DAYS, SEED, relapse_share=SHARE, missing_share=MISSING,
                              start=START)
    people, problems = load_cohort(d, DAYS)
    truth = cohort_truth(N, DAYS, SEED, relapse_share=SHARE, missing_share=MISSING, start=START)
    return d, summary, people, problems, truth


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_and_accelerometer_options_touch_only_its_file(tmp_path: Path) -> None:
    a = simulate_cohort(tmp_path / "a", 3, 6, 11, gzip_accelerometer=True)
    simulate_cohort(tmp_path / "b", 3, 6, 11, gzip_accelerometer=True)
    simulate_cohort(tmp_path / "c", 3, 6, 12, gzip_accelerometer=True)
    simulate_cohort(tmp_path / "plain", 3, 6, 11)
    fast = simulate_cohort(tmp_path / "fast", 3, 6, 11, accel_hz=4.0, accel_burst_s=5.0)
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    plain, quick = _files(tmp_path / "plain"), _files(tmp_path / "fast")
    assert set(fa) == {f"{f}.jsonl" for f in FILES[1:]} | {"accelerometer.jsonl.gz",
                                                           "participants.csv", "labels.csv",
                                                           "life_events.csv", "simulation.json"}
    assert fa == fb
    assert fa["screen.jsonl"] != fc["screen.jsonl"]
    assert fa["accelerometer.jsonl.gz"] != fc["accelerometer.jsonl.gz"]
    assert a.lines["screen"] == fa["screen.jsonl"].count(b"\n")
    # Each sensor has its own random stream: gzip or accelerometer settings change nothing else.
    assert gzip.decompress(fa.pop("accelerometer.jsonl.gz")) == plain.pop("accelerometer.jsonl")
    assert msgspec.json.decode(quick.pop("simulation.json"))["accel_hz"] == 4.0
    assert msgspec.json.decode(plain["simulation.json"])["accel_hz"] == 1.0
    assert fa == plain
    assert {k: v for k, v in plain.items() if k != "simulation.json"} == \
        {k: v for k, v in quick.items() if k != "accelerometer.jsonl"}
    first = msgspec.json.decode(quick["accelerometer.jsonl"].split(b"\n")[0])
    assert len(first["ts"]) == len(first["x"]) == 20
    assert np.allclose(np.diff(first["ts"]), 0.25, atol=2e-3)
    assert fast.accel_samples == 20 * fast.lines["accelerometer"]


def test_every_line_meets_the_contract_and_files_are_sorted(cohort) -> None:
    d, summary, people, problems, truth = cohort
    assert problems == []
    assert sorted(people) == [f"p{i:03d}" for i in range(1, N + 1)]
    offsets = {t.participant: t.utc_offset_min for t in truth}
    for pid, p in people.items():
        assert p.offsets == {offsets[pid]}  # constant, present in every event
    for f in FILES:
        assert summary.lines[f] == sum(len(p.cols[f]) for p in people.values()) > 0
    assert summary.accel_samples == sum(int(p.arr("accelerometer", 3).sum()) for p in people.values())


def test_accelerometer_is_gravity_plus_activity(cohort) -> None:
    _, _, people, _, _ = cohort
    for p in people.values():
        t, sd, mean = p.arr("accelerometer", 0), p.arr("accelerometer", 1), p.arr("accelerometer", 2)
        hour = (t % 86400) / 3600
        assert abs(np.median(mean) - 9.81) < 0.05
        lo, hi = np.percentile(mean, [1, 99])
        assert 9.2 < lo and hi < 11.5
        # Movement by day, stillness at night.
        assert np.mean(sd[(hour >= 10) & (hour < 18)]) > 5 * np.median(sd[(hour >= 2) & (hour < 5)])


def test_sleep_is_a_night_time_rest_episode_later_on_weekends(cohort) -> None:
    _, _, people, _, truth = cohort
    found, day_rest, weekend_shift = [], [], []
    for t in truth:
        found_p = nights(people[t.participant], DAYS)  # longest rest ≥ 3 h, midpoint 22–08 h
        found += [hours >= 3 and 22 <= mid < 32 for mid, hours in found_p.values()]
        rest, obs = rest_bins(people[t.participant], DAYS)
        hour = (np.arange(rest.size) * BIN / 3600) % 24
        day_rest += rest[(hour >= 10) & (hour < 18) & obs].tolist()
        mid = np.array([m for m, _ in found_p.values()])
        weekend = np.isin([(START.weekday() + d) % 7 for d in found_p], (4, 5))  # Fri, Sat nights
        if not t.relapse_days and weekend.sum() >= 3 and (~weekend).sum() >= 3:
            weekend_shift.append(np.nanmean(mid[weekend]) - np.nanmean(mid[~weekend]))
    assert len(found) >= 0.3 * N * DAYS
    assert np.mean(found) >= 0.8
    assert np.mean(day_rest) < 0.1  # the detector is not trivially true
    assert len(weekend_shift) >= 2 and np.mean(weekend_shift) > 0.3


def test_missing_hours_of_both_types(cohort) -> None:
    _, summary, people, _, truth = cohort
    lo, hi = MISSING
    H = DAYS * 24
    for t in truth:
        p = people[t.participant]
        seen = observed_hours(p, DAYS)
        share = 1 - seen.mean()
        assert lo - 1 / H <= share <= hi + 1 / H
        assert abs(share - t.missing_share) <= 1.5 / H
        assert (~seen.reshape(DAYS, 24)).all(axis=1).any()  # at least one whole day missing
        # Type 1: hours with data in which one sensor is silent.
        loc_hours = np.zeros(H, bool)
        loc_hours[(p.arr("location", 0) // 3600).astype(int)] = True
        silent = (seen & ~loc_hours).sum() / seen.sum()
        assert 0.02 < silent < 0.2
        light, sound = p.arr("ambient", 1), p.arr("ambient", 2)
        assert np.isnan(light).any() and np.isnan(sound).any()
        assert not (np.isnan(light) & np.isnan(sound)).any()
    assert lo <= summary.missing_hour_share <= hi


def test_locations_cluster_into_two_to_four_places(cohort) -> None:
    _, _, people, _, truth = cohort
    for t in truth:
        p = people[t.participant]
        n_fix = len(p.cols["location"])
        clusters = place_clusters(p)
        assert sum(c[2] for c in clusters) > 0.9 * n_fix
        assert 2 <= len(clusters) <= min(4, len(t.places))
        for lat, lon, _ in clusters:
            assert min(haversine(lat, lon, q.lat, q.lon) for q in t.places) < 100
        lat, lon = p.arr("location", 1), p.arr("location", 2)
        r = haversine(lat, lon, t.places[0].lat, t.places[0].lon)
        assert 15 < np.median(r[r < 200]) < 50  # GPS jitter around the true place
        far = np.min([haversine(lat, lon, q.lat, q.lon) for q in t.places], axis=0) > 300
        assert 0.002 < far.mean() < 0.15  # fixes taken on the way between places


def test_calls_sms_and_screen_sessions(cohort) -> None:
    _, _, people, _, _ = cohort
    directions = set()
    for p in people.values():
        dur, dirs = p.arr("call", 1), p.arr("call", 2).astype(int)
        directions |= set(dirs.tolist())
        assert np.all(dur[dirs <= 1] > 0) and np.all(dur[dirs > 1] == 0)
        assert set(p.arr("sms", 1).astype(int).tolist()) == {0, 1}
        states = p.arr("screen", 1).astype(int)  # 0 on, 1 off, 2 unlock
        pairs = set(zip(states[:-1].tolist(), states[1:].tolist(), strict=True))
        allowed = {(0, 2), (0, 1), (2, 1), (1, 0)}
        valid = np.mean([pr in allowed for pr in zip(states[:-1], states[1:], strict=True)])
        assert valid > 0.95 and allowed <= pairs  # on → (unlock) → off; gaps break a few
        assert np.mean(states[np.flatnonzero(states[1:] == 2)] == 0) > 0.95  # unlock after on
        sessions_per_day = (states == 0).sum() / (DAYS * (1 - 0.3))
        assert 20 < sessions_per_day < 200
    assert directions == set(range(5))


def test_relapse_signature_appears_only_near_relapse(cohort) -> None:
    _, _, people, _, truth = cohort
    res = signature_effects(people, truth, DAYS)
    nr = np.array([e for _, _, e in res["nr"]])
    healthy = np.array([e for _, _, e in res["healthy"]])
    assert len(nr) >= 6 and len(healthy) >= 10
    assert np.all(nr > 0), res["nr"]  # every signature modality moves the right way
    assert np.mean(nr > 0.5) >= 0.8, res["nr"]
    assert np.mean(healthy < 0.5) >= 0.8, res["healthy"]
    assert np.median(nr) > 1.0 > 2.5 * np.median(healthy)


def test_who5_every_two_weeks_and_lower_before_relapse(cohort) -> None:
    _, _, people, _, truth = cohort
    for p in people.values():
        sday = p.arr("survey", 0) / 86400
        assert np.all((p.arr("survey", 1) >= 0) & (p.arr("survey", 1) <= 25))
        assert 12 <= np.median(np.diff(sday)) <= 16
    drop, n = who5_drop(people, truth)
    assert n >= 4
    assert drop < -2.0


def test_csv_files_match_the_ground_truth(cohort) -> None:
    d, summary, _, _, truth = cohort
    with open(d / "participants.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["participant", "age_band", "gender", "employment"]
        rows = list(reader)
    assert [r["participant"] for r in rows] == [t.participant for t in truth]
    assert all(re.fullmatch(r"p\d{3}", r["participant"]) for r in rows)
    assert {r["employment"] for r in rows} <= {"employed", "student", "unemployed"}
    with open(d / "labels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["participant", "relapse_date"]
        labels = [(r["participant"], date.fromisoformat(r["relapse_date"])) for r in reader]
    assert labels == [(t.participant, x) for t in truth for x in t.relapse_dates]
    relapsers = [t for t in truth if t.relapse_days]
    assert len(relapsers) == round(SHARE * N) == summary.relapsing_participants
    for t in truth:
        assert list(t.relapse_days) == sorted(t.relapse_days)
        assert all(35 <= r < DAYS for r in t.relapse_days)
        assert all(b - a >= 45 for a, b in zip(t.relapse_days, t.relapse_days[1:], strict=False))
        assert [(x - START).days for x in t.relapse_dates] == list(t.relapse_days)
        assert (2 <= len(t.signature) <= 4) if t.relapse_days else not t.signature


@pytest.mark.parametrize("kwargs", [
    {"participants": 0}, {"days": 0}, {"seed": -1}, {"relapse_share": 1.5},
    {"missing_share": (0.3, 0.1)}, {"missing_share": (0.5, 0.95)}, {"accel_hz": 0.0},
    {"accel_hz": 2000.0}, {"accel_hz": 100.0, "accel_burst_s": 200.0, "accel_period_s": 300.0},
    {"accel_burst_s": 400.0}, {"signature_strength": -1.0}, {"start": date(2099, 12, 30)},
])
def test_bad_parameters_raise_user_error(tmp_path: Path, kwargs: dict) -> None:
    args = {"participants": 2, "days": 3, "seed": 0} | kwargs
    with pytest.raises(UserError) as err:
        simulate_cohort(tmp_path / "out", **args)
    msg = str(err.value)
    assert "\n" not in msg and " — " in msg
    assert not (tmp_path / "out").exists()


def test_out_directory_rules(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        simulate_cohort(tmp_path / "file", 1, 2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a cohort directory"):
        simulate_cohort(tmp_path / "other", 1, 2)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"
    # An earlier cohort is replaced, including a stale accelerometer variant.
    simulate_cohort(tmp_path / "cohort", 1, 2, gzip_accelerometer=True)
    simulate_cohort(tmp_path / "cohort", 1, 2)
    names = sorted(p.name for p in (tmp_path / "cohort").iterdir())
    assert "accelerometer.jsonl" in names and "accelerometer.jsonl.gz" not in names
    assert len(names) == 11
