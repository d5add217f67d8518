"""Phone sensor streams sampled from a participant's latent timeline.

Each function returns the columns of one raw topic as numpy arrays, with
``ts`` in UTC epoch seconds (local seconds − ``utc_offset_min``·60). Missing
data follows docs/hourly.md ("Missing data"): type 2 (hours with nothing at all, ``hour_missing``)
drops every stream, type 1 (a sensor silent in an hour while others report)
drops one sensor for that hour with probability ``dropout``. Call and SMS logs
are only lost in type-2 hours (the phone was off).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np

from phenoflow.simulate.behaviour import MIN_PER_DAY, SENSOR_NOISE, Timeline
from phenoflow.simulate.profiles import ParticipantTruth

__all__ = [
    "SCREEN_STATES", "CALL_DIRECTIONS", "SMS_DIRECTIONS", "G", "Columns", "utc_origin", "accelerometer", "screen",
    "calls", "sms", "location", "ambient", "survey"
]

SCREEN_STATES = ("on", "off", "unlock")
CALL_DIRECTIONS = ("incoming", "outgoing", "missed", "rejected", "blocked")
SMS_DIRECTIONS = ("incoming", "outgoing")
G = 9.81
Columns = dict[str, np.ndarray]


def utc_origin(start: date, utc_offset_min: int) -> float:
    """UTC epoch seconds of local midnight on ``start`` for a fixed offset."""
    midnight = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    return midnight - utc_offset_min * 60.0


def _keep(lsec: np.ndarray, missing: np.ndarray, dropped: np.ndarray | None = None) -> np.ndarray:
    """Events whose local hour is neither fully missing nor (type 1) dropped for this sensor."""
    hour = np.clip((lsec // 3600).astype(np.int64), 0, missing.size - 1)
    bad = missing[hour]
    return ~(bad | dropped[hour]) if dropped is not None else ~bad


def accelerometer(tl: Timeline, t0: float, hz: float, burst_s: float, period_s: float,
                  dropout: float, rng: np.random.Generator) -> Columns:
    """Duty-cycled accelerometer: one burst of burst_s·hz samples every period_s, one chunk each.

    Gravity (9.81 m/s²) points along the phone's orientation — near-flat and
    steady when the phone lies still, arbitrary when carried — plus Gaussian
    dynamic acceleration with SD ``tl.intensity`` (m/s²) of that minute.
    Returns 2-D ``ts``, ``x``, ``y``, ``z`` (bursts × samples).
    """
    n = max(1, int(round(burst_s * hz)))
    phase = float(rng.uniform(0, min(period_s, 60.0) / 2))
    starts = np.arange(phase, tl.asleep.size * 60.0, period_s)
    starts = starts[_keep(starts, tl.hour_missing, rng.random(tl.hour_missing.size) < dropout)]
    nb = starts.size
    sd = tl.intensity[(starts // 60).astype(np.int64)]
    still = sd < 0.05
    orient = np.where(still[:, None], np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.08, (nb, 3)),
                      rng.normal(0, 1, (nb, 3)) + np.array([0.0, 1.2, 0.0]))
    orient /= np.linalg.norm(orient, axis=1, keepdims=True)
    noise = rng.standard_normal((nb, n, 3)) * np.hypot(sd, SENSOR_NOISE)[:, None, None]
    xyz = np.round(G * orient[:, None, :] + noise, 3)
    ts = np.round(t0 + starts[:, None] + np.arange(n) / hz, 3)
    return {"ts": ts, "x": xyz[:, :, 0], "y": xyz[:, :, 1], "z": xyz[:, :, 2]}


def screen(truth: ParticipantTruth, tl: Timeline, t0: float, dropout: float,
           rng: np.random.Generator) -> Columns:
    """Screen sessions on → (unlock) → off.

    Sessions start at ``screen_per_h`` per awake hour (more in the evening, few
    while travelling), rarely during sleep; the night-screen signature adds
    sessions late in the evening and wakes with phone use during the night (at
    full strength ≈ 0.5 + 0.3·screen_per_h per hour of sleep). Session lengths are
    log-normal (median 45 s); ~80 % of sessions unlock.
    """
    M = tl.asleep.size
    h = tl.minute_hour
    ns = tl.sig["night_screen"][tl.minute_day]
    evening = (h - truth.chronotype_h) % 24 >= 19
    late = (h >= 21) | (h < 3)
    awake_rate = (truth.screen_per_h / 60 * np.where(evening, 1.4, 1.0)
                  * np.where(tl.moving, 0.3, 1.0) * (1 + 2.0 * ns * late))
    base = truth.screen_per_h / 60
    rate = np.where(tl.asleep, 0.0004 + (0.008 + 0.3 * base) * ns, awake_rate)
    start = np.flatnonzero(rng.random(M) < rate) * 60.0
    start += rng.uniform(0, 60, start.size)
    dur = np.clip(rng.lognormal(math.log(45), 1.1, start.size)
                  * np.where(evening[(start // 60).astype(np.int64)], 1.5, 1.0), 5, 7200)
    nxt = np.append(start[1:], np.inf)
    end = np.minimum(start + dur, nxt - np.minimum(1.0, 0.2 * (nxt - start)))
    unlock = rng.random(start.size) < 0.8
    t_unlock = start + np.minimum(rng.uniform(1, 5, start.size), 0.5 * (end - start))
    lsec = np.concatenate([start, t_unlock[unlock], end])
    state = np.concatenate([np.zeros(start.size, np.int8), np.full(int(unlock.sum()), 2, np.int8),
                            np.ones(start.size, np.int8)])
    keep = _keep(lsec, tl.hour_missing, rng.random(tl.hour_missing.size) < dropout)
    return {"ts": np.round(t0 + lsec[keep], 3), "state": state[keep]}


def _awake_events(tl: Timeline, per_day: float, rng: np.random.Generator) -> np.ndarray:
    """Local seconds of events at ``per_day`` × social factor, mostly 09–21 h, awake only."""
    h = tl.minute_hour
    rate = per_day * tl.social[tl.minute_day] / 950 * np.where((h >= 9) & (h < 21), 1.2, 0.5)
    m = np.flatnonzero((rng.random(h.size) < rate) & ~tl.asleep)
    return m * 60.0 + rng.uniform(0, 60, m.size)


def _peers(truth: ParticipantTruth, n: int, rng: np.random.Generator) -> np.ndarray:
    """Hashed peer ids: Zipf-weighted contacts (a few close people make most calls)."""
    contacts = np.array(truth.contacts[:-3])
    w = 1.0 / np.arange(1, contacts.size + 1)
    return contacts[rng.choice(contacts.size, size=n, p=w / w.sum())]


def calls(truth: ParticipantTruth, tl: Timeline, t0: float, rng: np.random.Generator) -> Columns:
    """Call log: direction by the participant's mix; answered calls last ~75 s median."""
    lsec = _awake_events(tl, truth.calls_per_day, rng)
    direction = rng.choice(5, size=lsec.size, p=truth.call_direction_p).astype(np.int8)
    dur = np.where(direction <= 1, np.round(np.clip(rng.lognormal(math.log(75), 1.0, lsec.size),
                                                    3, 7200)), 0.0)
    peer = _peers(truth, lsec.size, rng)
    spam = np.array(truth.contacts[-3:])
    peer = np.where(direction == 4, spam[rng.integers(0, 3, lsec.size)], peer)
    keep = _keep(lsec, tl.hour_missing)
    return {"ts": np.round(t0 + lsec[keep], 3), "direction": direction[keep],
            "duration_s": dur[keep], "peer": peer[keep]}


def sms(truth: ParticipantTruth, tl: Timeline, t0: float, rng: np.random.Generator) -> Columns:
    """SMS threads of 1 + Poisson(2) messages, ~90 s apart, directions alternating."""
    starts = _awake_events(tl, truth.sms_per_day / 3, rng)
    n_msgs = 1 + rng.poisson(2, starts.size)
    thread = np.repeat(np.arange(starts.size), n_msgs)
    first = np.cumsum(n_msgs) - n_msgs
    pos = np.arange(thread.size) - first[thread]
    gaps = rng.exponential(90, thread.size)
    gaps[first] = 0.0
    csum = np.cumsum(gaps)
    lsec = starts[thread] + csum - csum[first][thread]
    direction = ((rng.integers(0, 2, starts.size)[thread] + pos) % 2).astype(np.int8)
    peer = _peers(truth, starts.size, rng)[thread]
    keep = _keep(lsec, tl.hour_missing) & (lsec < tl.asleep.size * 60.0)
    return {"ts": np.round(t0 + lsec[keep], 3), "direction": direction[keep], "peer": peer[keep]}


def location(tl: Timeline, t0: float, dropout: float, rng: np.random.Generator) -> Columns:
    """A GPS fix every 10 min; jitter N(0, accuracy/√2) per axis, accuracy ~30 m median."""
    lsec = np.arange(0, tl.asleep.size * 60.0, 600.0) + rng.uniform(0, 60, tl.asleep.size // 10)
    lsec = lsec[_keep(lsec, tl.hour_missing, rng.random(tl.hour_missing.size) < dropout)]
    m = (lsec // 60).astype(np.int64)
    acc = np.round(np.clip(rng.lognormal(math.log(30), 0.4, m.size), 5, 100), 1)
    north = rng.normal(0, 1, m.size) * acc / math.sqrt(2)
    east = rng.normal(0, 1, m.size) * acc / math.sqrt(2)
    lat = tl.lat[m] + north / 111_320.0
    lon = tl.lon[m] + east / (111_320.0 * np.cos(np.radians(tl.lat[m])))
    return {"ts": np.round(t0 + lsec, 3), "lat": np.round(lat, 6), "lon": np.round(lon, 6),
            "accuracy_m": acc}


def ambient(tl: Timeline, t0: float, dropout: float, rng: np.random.Generator) -> Columns:
    """Light (lux), sound (dB) and speech detection every 5 min.

    Light follows day/night and place (dark in bed or in a pocket, bright
    outdoors by day); sound is quiet (≈30 dB) in sleep and louder at work, out
    and in transit, +7 dB while talking. ``voice`` is true in 90 % of samples
    during a conversation and 2 % otherwise (TV, bystanders). The light sensor
    and the audio pipeline drop out (type 1) independently.
    """
    M = tl.asleep.size
    lsec = np.arange(150.0, M * 60.0, 300.0) + rng.uniform(-20, 20, M // 5)
    m = (lsec // 60).astype(np.int64)
    n = m.size
    asleep, place, moving, talking = tl.asleep[m], tl.place[m], tl.moving[m], tl.talking[m]
    h = tl.minute_hour[m]
    day = (h >= 7.5) & (h < 17.0)

    def ln(median: float | np.ndarray, sigma: float) -> np.ndarray:
        return rng.lognormal(np.log(median), sigma, n)

    light = np.select(
        [asleep, moving, place == 0, place == 1],
        [np.minimum(ln(0.5, 0.8), 5.0), np.where(day, ln(4000, 1.0), ln(15, 0.7)),
         np.where(day, ln(150, 0.6), ln(70, 0.5)), ln(400, 0.35)],
        np.where(day, ln(1500, 1.2), ln(60, 0.6)),
    )
    pocket = tl.carried[m] & ~asleep & (rng.random(n) < 0.35)
    light = np.round(np.where(pocket, ln(2, 1.0), light), 1)
    sound: np.ndarray = np.select([asleep, moving, place == 0, place == 1],
                      [rng.normal(30, 2.5, n), rng.normal(68, 5, n), rng.normal(46, 5, n),
                       rng.normal(56, 5, n)], rng.normal(60, 6, n))
    sound = np.round(np.clip(sound + 7.0 * talking, 20, 110), 1)
    voice = np.where(talking, rng.random(n) < 0.9, ~asleep & (rng.random(n) < 0.02)).astype(np.int8)

    H = tl.hour_missing.size
    hour = np.clip((lsec // 3600).astype(np.int64), 0, H - 1)
    light_off = (rng.random(H) < dropout)[hour]
    audio_off = (rng.random(H) < dropout)[hour]
    light = np.where(light_off, np.nan, light)
    sound = np.where(audio_off, np.nan, sound)
    voice = np.where(audio_off, -1, voice).astype(np.int8)
    keep = _keep(lsec, tl.hour_missing) & ~(light_off & audio_off)
    return {"ts": np.round(t0 + lsec[keep], 3), "light_lux": light[keep], "sound_db": sound[keep],
            "voice": voice[keep]}


def survey(truth: ParticipantTruth, tl: Timeline, t0: float, ramp: np.ndarray,
           rng: np.random.Generator) -> Columns:
    """WHO-5 every 14 ± 1 days, answered 19–22 h local (or when the phone is back on).

    Score = baseline + N(0, 1.5) − 10·(strength × ramp) on the survey day,
    rounded and clipped to 0–25 (near a relapse well-being drifts down).
    """
    days = ramp.size
    ok = np.flatnonzero(~tl.hour_missing)
    if ok.size == 0:
        return {"ts": np.zeros(0), "score": np.zeros(0, np.int64)}
    sched = []
    d = int(rng.integers(0, 4))
    while d < days:
        sched.append(d)
        d += 14 + int(rng.integers(-1, 2))
    sd = np.array(sched, dtype=np.int64)
    lsec = sd * MIN_PER_DAY * 60.0 + 19 * 3600.0 + rng.uniform(0, 3 * 3600, sd.size)
    # A survey due while the phone is off is answered in the next hour with data.
    hour = (lsec // 3600).astype(np.int64)
    nxt = np.searchsorted(ok, hour)
    keep = nxt < ok.size
    new_hour = ok[np.minimum(nxt, ok.size - 1)]
    moved = keep & (new_hour != hour)
    lsec = np.where(moved, new_hour * 3600.0 + rng.uniform(60, 900, sd.size), lsec)
    score = np.clip(np.round(truth.who5_baseline + rng.normal(0, 1.5, sd.size) - 10.0 * ramp[sd]),
                    0, 25).astype(np.int64)
    return {"ts": np.round(t0 + lsec[keep], 3), "score": score[keep]}
