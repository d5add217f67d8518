"""Minute-level latent behaviour of one simulated participant.

The timeline is what the participant *does* (sleeps, stays at a place,
travels, carries the phone, talks) on a grid of local minutes, minute 0 =
local midnight of day 0. The sensor layer (:mod:`phenoflow.simulate.sensors`)
then samples phone events from it. All arrays are built with numpy; Python
loops only run over nights, days and trips (a few per day), never over minutes
or samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtri

from phenoflow.simulate.life_events import LifePlan
from phenoflow.simulate.profiles import ParticipantTruth, haversine_m, signature_ramp

__all__ = ["MIN_PER_DAY", "SENSOR_NOISE", "Timeline", "build_timeline"]

MIN_PER_DAY = 1440
#: SD of the accelerometer's own noise, m/s² (a phone lying still).
SENSOR_NOISE = 0.012


@dataclass
class Timeline:
    """Latent state per local minute (length M = days·1440) and per day/hour.

    ``intensity`` is the SD of dynamic acceleration, m/s²; ``place`` indexes
    ``truth.places`` (−1 while travelling); ``lat``/``lon`` are the true
    position in degrees; ``hour_missing`` marks local hours with no data at all
    (type-2 missingness); ``sig`` holds each signature modality's per-day
    strength (signature_strength × ramp, 0 outside NR30 and recovery).
    """

    asleep: np.ndarray
    place: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    moving: np.ndarray
    carried: np.ndarray
    intensity: np.ndarray
    talking: np.ndarray
    hour_missing: np.ndarray
    sig: dict[str, np.ndarray]
    social: np.ndarray
    minute_day: np.ndarray
    minute_hour: np.ndarray


def _mask(n: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean mask of the union of half-open [start, end) intervals, clipped to [0, n)."""
    s = np.clip(starts.astype(np.int64), 0, n)
    e = np.clip(ends.astype(np.int64), 0, n)
    keep = e > s
    diff = np.zeros(n + 1, dtype=np.int32)
    np.add.at(diff, s[keep], 1)
    np.add.at(diff, e[keep], -1)
    return np.cumsum(diff[:-1]) > 0


def _sleep(truth: ParticipantTruth, days: int, weekday0: int, sleep_sig: np.ndarray,
           rng: np.random.Generator, plan: LifePlan | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sleep onset and wake minute for nights −1 … days−1 (night n starts on day n).

    Fri/Sat nights start later (social jet lag) and last longer; the relapse
    signature "sleep" delays onset and lengthens sleep by up to 2 h each; a
    life-event ``plan`` adds its per-night delay and extra sleep (illness: +1.5 h).
    """
    nights = np.arange(-1, days)
    weekend = np.isin((weekday0 + nights) % 7, (4, 5))
    s = np.minimum(sleep_sig[np.clip(nights, 0, days - 1)], 2.0)  # cap: ≤ 4 h later at any strength
    onset_h = (23.0 + truth.chronotype_h + truth.weekend_delay_h * weekend
               + rng.normal(0, truth.sleep_sd_h, nights.size) + 2.0 * s)
    dur_h = truth.sleep_h + 0.6 * weekend + rng.normal(0, 0.45, nights.size) + 2.0 * s
    if plan is not None:
        n = np.clip(nights, 0, days - 1)
        onset_h = onset_h + plan.sleep_delay_h[n]
        dur_h = dur_h + plan.sleep_extra_h[n] + 1.5 * plan.illness[n]
    dur_h = np.clip(dur_h, 4.0, 13.0)
    onset = (nights * MIN_PER_DAY + onset_h * 60).astype(np.int64)
    return onset, onset + (dur_h * 60).astype(np.int64)


def _mobility(truth: ParticipantTruth, days: int, weekday0: int, onset: np.ndarray,
              wake: np.ndarray, mob_sig: np.ndarray, rng: np.random.Generator,
              M: int, plan: LifePlan | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stays and trips → per-minute place index, lat, lon and travelling flag.

    Each day starts at home; a workday outing goes to place 1 (work/school);
    leisure outings go to the leisure places (Zipf-weighted). Every outing
    returns home. Trips take distance / (18–30 km/h) + 4 min and bend sideways
    so repeated trips do not trace one line. Collapsed mobility (signature)
    cuts the chance and the length of each outing; so does illness in a
    life-event ``plan``, whose holidays also skip work and add outings.
    """
    places = truth.places
    place = np.zeros(M, dtype=np.int8)
    lat = np.full(M, places[0].lat)
    lon = np.full(M, places[0].lon)
    moving = np.zeros(M, dtype=bool)
    first_leisure = 2 if truth.has_work else 1
    leisure = list(range(first_leisure, len(places)))
    dist_km = [haversine_m(places[0].lat, places[0].lon, p.lat, p.lon) / 1000 for p in places]

    def trip(t0: int, t1: int, a: int, b: int) -> None:
        t0, t1 = max(t0, 0), min(t1, M)
        if t1 <= t0:
            return
        f = (np.arange(t1 - t0) + 0.5) / (t1 - t0)
        pa, pb = places[a], places[b]
        bend = rng.normal(0, 0.4) * np.sin(np.pi * f)  # sideways, as a share of the distance
        c = math.cos(math.radians(pa.lat))  # perpendicular in metric (east, north) space
        lat[t0:t1] = pa.lat + f * (pb.lat - pa.lat) - bend * (pb.lon - pa.lon) * c
        lon[t0:t1] = pa.lon + f * (pb.lon - pa.lon) + bend * (pb.lat - pa.lat) / c
        place[t0:t1] = -1
        moving[t0:t1] = True

    for d in range(days):
        weekday = (weekday0 + d) % 7
        up, bed = int(wake[d]), int(onset[d + 1]) - 30
        t = up + int(rng.uniform(30, 100))
        s = mob_sig[d] if plan is None else max(mob_sig[d], plan.illness[d])
        working = plan is None or not plan.off_work[d]
        outings: list[tuple[int, float]] = []
        if truth.has_work and weekday < 5 and working and rng.random() < 0.92 * max(0.05, 1 - 0.9 * s):
            hours = rng.normal(8.5, 0.6) if truth.employment == "employed" else rng.normal(6.0, 1.2)
            outings.append((1, max(2.0, hours) * 60))
        if leisure:
            lam = truth.outings_per_day * (0.5 if outings else 1.0) * (1.2 if weekday >= 5 else 1.0)
            if plan is not None:
                lam *= plan.leisure[d]
            for _ in range(int(rng.poisson(lam * max(0.02, 1 - 0.95 * s)))):
                p = leisure[int(rng.choice(len(leisure), p=truth.leisure_p))]
                outings.append((p, rng.uniform(30, 240)))
        for p, stay in outings:
            travel = int(dist_km[p] / rng.uniform(18, 30) * 60) + 4
            t += int(rng.uniform(0, 90)) if p != 1 else 0
            if t + 2 * travel + 30 > bed:
                break
            stay_min = int(min(stay * max(0.3, 1 - 0.6 * s), bed - t - 2 * travel))
            arrive, leave = t + travel, t + travel + stay_min
            trip(t, arrive, 0, p)
            a, b = max(arrive, 0), min(leave, M)
            if b > a:
                place[a:b] = p
                lat[a:b], lon[a:b] = places[p].lat, places[p].lon
            trip(leave, leave + travel, p, 0)
            t = leave + travel + int(rng.uniform(20, 60))
    return place, lat, lon, moving


def _missing_hours(truth: ParticipantTruth, days: int, rng: np.random.Generator) -> np.ndarray:
    """Type-2 missingness: exactly round(share·hours) local hours with no data.

    About a third of the budget goes to whole days (phone off or left behind),
    the rest to runs of 1–8 hours (battery, app killed); the last run is cut so
    the share is exact.
    """
    H = days * 24
    target = int(round(truth.missing_share * H))
    miss = np.zeros(H, dtype=bool)
    n_days = min(int(0.3 * target) // 24, days)
    if n_days:
        for d in rng.choice(days, size=n_days, replace=False).tolist():
            miss[d * 24:(d + 1) * 24] = True
    count = int(miss.sum())
    while count < target:
        s = int(rng.integers(0, H))
        run = np.flatnonzero(~miss[s:s + int(rng.integers(1, 9))]) + s
        run = run[:target - count]
        miss[run] = True
        count += run.size
    return miss


def build_timeline(truth: ParticipantTruth, days: int, weekday0: int, strength: float,
                   rng: np.random.Generator, plan: LifePlan | None = None) -> Timeline:
    """Simulate one participant's latent minute-level behaviour for ``days`` days.

    ``weekday0`` is the weekday of day 0 (Monday = 0); ``strength`` is the
    cohort's ``signature_strength``; ``plan`` adds life events
    (:mod:`phenoflow.simulate.life_events`; None = none, the original stream of draws).
    """
    M = days * MIN_PER_DAY
    ramp = signature_ramp(truth.relapse_days, days) * strength
    sig = {m: (ramp if m in truth.signature else np.zeros(days)) for m in
           ("sleep", "activity", "social", "mobility", "night_screen")}
    if truth.signature.get("social", -1) < 0:
        social = np.maximum(0.05, 1 - 0.85 * sig["social"])
    else:
        social = 1 + 2.0 * sig["social"]
    if plan is not None:
        social = social * (1 - 0.5 * plan.illness)

    onset, wake = _sleep(truth, days, weekday0, sig["sleep"], rng, plan)
    asleep = _mask(M, onset, wake)
    place, lat, lon, moving = _mobility(truth, days, weekday0, onset, wake, sig["mobility"], rng, M,
                                        plan)
    for a, b, dlat, dlon in plan.shift if plan is not None else ():
        lat[a:b] += dlat  # away: the same routine around the destination city
        lon[a:b] += dlon
    minute = np.arange(M)
    minute_day = minute // MIN_PER_DAY
    minute_hour = (minute % MIN_PER_DAY) / 60.0
    circ = 0.5 + 0.5 * np.cos(2 * np.pi * (minute_hour - (15.0 + truth.chronotype_h)) / 24)

    # Carrying the phone switches on and off in bouts: an AR(1) latent (φ = 0.9 per
    # minute, ≈10-min bouts) thresholded at the probit of the carrying probability.
    phi = 0.9
    z = lfilter([math.sqrt(1 - phi * phi)], [1, -phi], rng.standard_normal(M))
    act = np.maximum(0.2, 1 - 0.5 * sig["activity"])[minute_day]
    if plan is not None:
        act = act * (plan.activity * (1 - 0.5 * plan.illness))[minute_day]
    carry_p = np.clip(truth.carry_share * (0.6 + 0.8 * circ) * np.maximum(0.3, act), 0.01, 0.95)
    carried = ((z < ndtri(carry_p)) | moving) & ~asleep
    intensity = np.full(M, SENSOR_NOISE, dtype=np.float64)
    handled = rng.lognormal(math.log(0.35), 0.6, M) * truth.activity_amp * act * (0.5 + circ)
    intensity = np.where(carried, handled, intensity)
    walking = rng.random(M) < 0.4
    travel = np.where(walking, rng.lognormal(math.log(2.2), 0.25, M), rng.lognormal(math.log(0.6), 0.3, M))
    intensity = np.where(moving, travel * np.sqrt(act), intensity)
    # Rare turns in bed: a short burst of movement during sleep.
    intensity = np.where(asleep & (rng.random(M) < 0.004), 0.4, intensity)

    # Conversations start more often at work and leisure places than at home.
    place_factor = np.select([moving, place == 0, place == 1], [0.3, 0.7, 1.6], 2.0)
    conv_rate = truth.conversations_per_day * social[minute_day] / 950 * place_factor
    starts = np.flatnonzero((rng.random(M) < conv_rate) & ~asleep)
    length = np.clip(rng.lognormal(math.log(6), 0.8, starts.size), 1, 90)
    talking = _mask(M, starts, starts + length) & ~asleep

    return Timeline(
        asleep=asleep, place=place, lat=lat, lon=lon, moving=moving, carried=carried,
        intensity=intensity, talking=talking, hour_missing=_missing_hours(truth, days, rng),
        sig=sig, social=social, minute_day=minute_day, minute_hour=minute_hour,
    )
