"""Tests for the cohort simulator (phenoflow.simulate).

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

from phenoflow.contract import DeadLetter, decode
from phenoflow.errors import UserError
from phenoflow.simulate import cohort_truth, simulate_cohort

START = date(2024, 1, 1)
N, DAYS, SEED, SHARE = 6, 80, 3, 0.5
MISSING = (0.1, 0.3)
FILES = ("accelerometer", "screen", "call", "sms", "location", "ambient", "survey")
BIN = 300  # seconds per bin of the rest detector


class _Who(msgspec.Struct):
    participant: str


@dataclass
class Person:
    """One participant's events, times in local seconds since local midnight of day 0."""

    off: int | None = None
    offsets: set = field(default_factory=set)
    cols: dict = field(default_factory=lambda: {f: [] for f in FILES})

    def arr(self, f: str, i: int) -> np.ndarray:
        return np.array([row[i] for row in self.cols[f]], dtype=float)


def load_cohort(d: Path, days: int, start: date = START) -> dict[str, Person]:
    """Decode every line with the contract (keyed by its participant) and collect columns.

    Asserts on the way that no line is dead-lettered and files are sorted by ts.
    """
    who = msgspec.json.Decoder(_Who)
    people: dict[str, Person] = {}
    midnight = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    for f in FILES:
        path = d / f"{f}.jsonl"
        opener = gzip.open if not path.exists() else open
        path = path if path.exists() else d / f"{f}.jsonl.gz"
        last = -np.inf
        with opener(path, "rb") as fh:
            for line in fh:
                line = line.rstrip(b"\n")
                pid = who.decode(line).participant
                ev = decode(f"raw.{f}", pid.encode(), line)
                assert not isinstance(ev, DeadLetter), ev.error
                p = people.setdefault(pid, Person())
                p.offsets.add(ev.utc_offset_min)
                p.off = ev.utc_offset_min
                ts0 = ev.ts[0] if f == "accelerometer" else ev.ts
                assert ts0 >= last, f"{f} not sorted by ts"
                last = ts0
                loc = ts0 + ev.utc_offset_min * 60 - midnight
                if f == "accelerometer":
                    mag = np.sqrt(np.square(ev.x) + np.square(ev.y) + np.square(ev.z))
                    p.cols[f].append((loc, mag.std(), mag.mean(), len(ev.ts)))
                elif f == "screen":
                    p.cols[f].append((loc, ("on", "off", "unlock").index(ev.state)))
                elif f == "call":
                    p.cols[f].append((loc, ev.duration_s))
                elif f == "sms":
                    p.cols[f].append((loc,))
                elif f == "location":
                    p.cols[f].append((loc, ev.lat, ev.lon))
                elif f == "ambient":
                    nan = float("nan")
                    p.cols[f].append((loc, nan if ev.light_lux is None else ev.light_lux,
                                      nan if ev.sound_db is None else ev.sound_db,
                                      -1 if ev.voice is None else int(ev.voice)))
                else:
                    p.cols[f].append((loc, ev.score))
    return people


def _bins(t: np.ndarray, days: int) -> np.ndarray:
    return np.clip((t // BIN).astype(int), 0, days * 86400 // BIN - 1)


def rest_bins(p: Person, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, observed) per 5-min bin.

    A bin is observed when at least two of stillness (accelerometer), light and
    sound were measured in it; it is rest when the screen is off and every
    measured one says rest: magnitude SD < 0.1 m/s², light < 10 lux, sound < 40 dB.
    """
    nb = days * 86400 // BIN
    delta = np.zeros(nb + 1, int)
    on_t = None
    for t, s in zip(p.arr("screen", 0), p.arr("screen", 1)):  # pair each "on" with the next "off"
        if s == 0:
            on_t = t
        elif s == 1 and on_t is not None:
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
    """Night starting on day d → (midpoint in hours after midnight starting day d, i.e.
    18–38, and duration in hours) of the longest rest episode
    between 18:00 and 14:00 next day; nights with < 90 % observed bins in 21:00–11:00
    are skipped.

    An episode is a run of rest bins in which breaks of ≤ 15 min (a turn in bed,
    a glance at the phone) are bridged, as sleep scoring does.
    """
    rest, obs = rest_bins(p, days)
    per_h = 3600 // BIN
    out = {}
    for d in range(days - 1):
        a, b = (24 * d + 18) * per_h, (24 * (d + 1) + 14) * per_h
        if obs[a + 3 * per_h:b - 3 * per_h].mean() < 0.9:
            continue
        edges = np.diff(np.concatenate([[0], rest[a:b].astype(int), [0]]))
        s, e = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if s.size == 0:
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
    seen = np.zeros(days * 24, bool)
    for f in FILES:
        t = p.arr(f, 0)
        seen[np.clip((t // 3600).astype(int), 0, days * 24 - 1)] = True
    return seen


def home_of(p: Person) -> tuple[float, float]:
    """Median position of the fixes taken 02:00–05:00 local."""
    t, lat, lon = p.arr("location", 0), p.arr("location", 1), p.arr("location", 2)
    night = (t % 86400 >= 2 * 3600) & (t % 86400 < 5 * 3600)
    return float(np.median(lat[night])), float(np.median(lon[night]))


def haversine(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(lat0)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon0 - lon) / 2) ** 2
    return 2 * 6_371_000 * np.arcsin(np.sqrt(h))


def daily_measures(p: Person, days: int) -> dict[str, np.ndarray]:
    """Per-day value of each signature modality measured from the files (NaN = too little data)."""
    nan = np.full(days, np.nan)
    out = {m: nan.copy() for m in ("sleep", "activity", "social", "mobility", "night_screen")}
    for d, (mid, _) in nights(p, days).items():  # later and longer sleep → later midpoint
        out["sleep"][d] = mid
    hours_seen = observed_hours(p, days).reshape(days, 24)
    at, sd = p.arr("accelerometer", 0), p.arr("accelerometer", 1)
    day_a, hour_a = (at // 86400).astype(int), (at % 86400) / 3600
    lt = p.arr("location", 0)
    near_home = haversine(p.arr("location", 1), p.arr("location", 2), *home_of(p)) < 300
    social_t = np.concatenate([p.arr("call", 0), p.arr("sms", 0),
                               p.arr("ambient", 0)[p.arr("ambient", 3) == 1]])
    st = p.arr("screen", 0)[p.arr("screen", 1) == 0]
    for d in range(days):
        sel = (day_a == d) & (hour_a >= 8) & (hour_a < 22)
        if sel.sum() >= 60:
            out["activity"][d] = sd[sel].mean()
        if hours_seen[d].sum() >= 12:
            n_social = ((social_t >= d * 86400) & (social_t < (d + 1) * 86400)).sum()
            out["social"][d] = n_social / hours_seen[d].sum()
        fixes = (lt >= d * 86400) & (lt < (d + 1) * 86400)
        if fixes.sum() >= 30:
            out["mobility"][d] = near_home[fixes].mean()
        if hours_seen[d, :6].sum() >= 4:
            n_on = ((st >= d * 86400) & (st < d * 86400 + 6 * 3600)).sum()
            out["night_screen"][d] = n_on / hours_seen[d, :6].sum()
    return out


#: Direction in which each modality's measure moves under the signature
#: (social comes from the participant's signature).
MEASURE_SIGN = {"sleep": 1, "activity": -1, "mobility": 1, "night_screen": 1}


def _effect(v: np.ndarray, window: np.ndarray, healthy: np.ndarray) -> float:
    """Standardised mean difference of a window against healthy days (SD of healthy days)."""
    a, b = v[window & ~np.isnan(v)], v[healthy & ~np.isnan(v)]
    return float((a.mean() - b.mean()) / b.std())


def signature_effects(people: dict[str, Person], truth: list, days: int) -> dict[str, list]:
    """Signed effects in NR30 for each (relapser, signature modality), and |effects| of a
    random 30-day window of each participant who never relapses, per modality."""
    rng = np.random.default_rng(0)
    res: dict[str, list] = {"nr": [], "healthy": []}
    day = np.arange(days)
    for t in truth:
        v = daily_measures(people[t.participant], days)
        if t.relapse_days:
            nr = np.zeros(days, bool)
            after = np.zeros(days, bool)
            for r in t.relapse_days:
                nr |= (day >= r - 30) & (day < r)
                after |= (day >= r) & (day < r + 7)
            for m, direction in t.signature.items():
                sign = direction if m == "social" else MEASURE_SIGN[m]
                res["nr"].append((t.participant, m, sign * _effect(v[m], nr, ~nr & ~after)))
        else:
            for m in v:
                w0 = int(rng.integers(0, days - 30))
                win = (day >= w0) & (day < w0 + 30)
                res["healthy"].append((t.participant, m, abs(_effect(v[m], win, ~win))))
    return res


def who5_drop(people: dict[str, Person], truth: list) -> tuple[float, int]:
    """Pooled mean of (WHO-5 in NR30 − the participant's mean outside NR30), and its n."""
    diffs = []
    for t in truth:
        if not t.relapse_days:
            continue
        p = people[t.participant]
        sday, score = p.arr("survey", 0) // 86400, p.arr("survey", 1)
        nr = np.zeros(sday.size, bool)
        for r in t.relapse_days:
            nr |= (sday >= r - 30) & (sday < r)
        diffs += (score[nr] - score[~nr].mean()).tolist()
    return float(np.mean(diffs)), len(diffs)


def missing_shares(people: dict[str, Person], days: int) -> list[float]:
    return [1 - observed_hours(p, days).mean() for p in people.values()]


def place_clusters(p: Person) -> list[tuple[float, float, int]]:
    """DBSCAN (haversine, ε = 200 m, 10 samples) over the GPS fixes → (lat, lon, size) per cluster.

    Fixes are first merged on a 0.0002° grid (≈ 20 m) with their counts as
    sample weights, which keeps DBSCAN's neighbourhoods small.
    """
    ll = np.column_stack([p.arr("location", 1), p.arr("location", 2)])
    cells, inverse, counts = np.unique(np.round(ll / 0.0002), axis=0, return_inverse=True,
                                       return_counts=True)
    centre = np.zeros_like(cells, dtype=float)
    np.add.at(centre, inverse.ravel(), ll)
    centre /= counts[:, None]
    labels = DBSCAN(eps=200 / 6_371_000, min_samples=10, metric="haversine",
                    algorithm="ball_tree").fit(np.radians(centre), sample_weight=counts).labels_
    out = []
    for k in sorted(set(labels) - {-1}):
        sel = labels == k
        w = counts[sel]
        out.append((float(np.average(centre[sel, 0], weights=w)),
                    float(np.average(centre[sel, 1], weights=w)), int(w.sum())))
    return out


def night_summary(people: dict[str, Person], days: int) -> tuple[float, int, float]:
    """(share of observed nights whose longest rest run lasts ≥ 3 h with its midpoint
    in 22:00–08:00 local, nights evaluated, share of daytime 10–18 h bins that are rest)."""
    good = total = 0
    day_rest, day_obs = 0, 0
    for p in people.values():
        for mid, hours in nights(p, days).values():
            total += 1
            good += hours >= 3 and 22 <= mid < 32
        rest, obs = rest_bins(p, days)
        hour = (np.arange(rest.size) * BIN / 3600) % 24
        daytime = (hour >= 10) & (hour < 18) & obs
        day_rest += int(rest[daytime].sum())
        day_obs += int(daytime.sum())
    return good / total, total, day_rest / day_obs
