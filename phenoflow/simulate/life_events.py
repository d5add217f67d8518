"""Healthy life events, clock changes and harder relapse cases for the cohort simulator.

A simulator in which every change of routine is a relapse flatters any
anomaly detector. With ``life_events=True`` (``phenoflow simulate
--life-events``) each participant also gets, from an independent random
stream (so the rest of the cohort is drawn exactly as without them):

* ``holiday`` (p = 0.5 per 180 days, 5–14 days): no work or school, 1.5× the
  leisure outings, sleep 0.75 h later and 0.5 h longer;
* ``travel`` (p = 0.3, 4–12 days): a holiday in another city of
  :data:`~phenoflow.simulate.profiles.SITES` — the phone's ``utc_offset_min``
  changes at local noon of the first and of the last day (eastwards the skipped
  clock hours have no data, westwards the repeated hours have no data: the
  flight), GPS fixes come from the destination;
* ``illness`` (p = 0.3, 5–9 days): a week of physical illness — 1.5 h more
  sleep, half the activity, staying home (collapsed mobility), half the social
  contacts; full for all but the last two days, which recover linearly. It
  looks like a relapse signature on purpose;
* ``new_phone`` (p = 0.2): 1–3 days with no data at all, then different
  sensor rates — accelerometer bursts every 600 s instead of 300 s, GPS every
  20 min instead of 10, ambient every 10 min instead of 5 — and a light sensor
  reading 0.6× the old one;
* ``dst``: participants living in a zone with daylight saving
  (New York, Chicago, Los Angeles, London, Berlin; not Bengaluru) follow its
  clock changes (``zoneinfo``), giving 23- and 25-hour local days;
* ``seasonal_drift`` (everyone): sleep longer by a (0.25–0.75 h) and activity
  lower by b (10–25 %) in mid-January, shorter/higher in mid-July, following
  cos(2π(day of year − 15)/365.25);
* ``missing_before_relapse`` (half of the relapsing participants): in each
  NR30 window (and the recovery days after, as the signature ramp) every hour
  is additionally missing with probability 0.5·min(1, ramp·signature_strength),
  so data thins out towards the relapse;
* ``partial_signature`` (30 % of the relapsing participants): the signature is
  cut to a single modality, so it touches only part of the features.

At ``signature_strength = 0`` nothing depends on the relapse days (no
signature, no WHO-5 decline, no missingness growth): the null cohort.
Every event is listed in ``life_events.csv`` (see :func:`manifest_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Mapping
from zoneinfo import ZoneInfo

import numpy as np

from phenoflow.simulate.profiles import MODALITIES, NR_DAYS, RECOVERY_DAYS, SITES, ParticipantTruth

MIN_PER_DAY = 1440
#: IANA zone of each simulated site (by its standard UTC offset, see ``SITES``).
SITE_ZONES: dict[int, str] = {-300: "America/New_York", -360: "America/Chicago",
                              -480: "America/Los_Angeles", 0: "Europe/London", 60: "Europe/Berlin",
                              330: "Asia/Kolkata"}
#: After a new phone: keep every k-th accelerometer burst / GPS fix / ambient sample.
NEW_PHONE_THIN = {"accelerometer": 2, "location": 2, "ambient": 2}
NEW_PHONE_LIGHT_GAIN = 0.6


@dataclass(frozen=True)
class LifeEvent:
    """One manifest row: ``start``/``end`` are day indices (end inclusive)."""

    kind: str
    start: int
    end: int
    detail: str


@dataclass
class LifePlan:
    """Everything the life events change for one participant.

    Per-day arrays (length ``days``): ``off_work`` (no work/school),
    ``leisure`` (factor on leisure outings), ``sleep_delay_h``/``sleep_extra_h``
    (added to sleep onset/duration, h), ``illness`` (0–1), ``activity`` (factor
    on movement). ``offsets``/``dropped`` are per local minute: the phone's
    UTC offset and whether that local clock minute does not exist (skipped by
    a clock change). ``shift`` lists (first minute, end minute, Δlat, Δlon)
    of trips away; ``switch_day`` is the new phone's first day (or None);
    ``missing_growth`` marks participants whose data thins before a relapse.
    """

    events: list[LifeEvent]
    off_work: np.ndarray
    leisure: np.ndarray
    sleep_delay_h: np.ndarray
    sleep_extra_h: np.ndarray
    illness: np.ndarray
    activity: np.ndarray
    offsets: np.ndarray
    dropped: np.ndarray
    shift: list[tuple[int, int, float, float]] = field(default_factory=list)
    switch_day: int | None = None
    gap_days: tuple[int, ...] = ()
    missing_growth: bool = False
    signature: Mapping[str, int] = field(default_factory=dict)


def _span(rng: np.random.Generator, days: int, lo: int, hi: int) -> tuple[int, int] | None:
    """A random [start, end] day span of lo–hi days fully inside the cohort (None if it can't fit)."""
    n = int(rng.integers(lo, hi + 1))
    if days - n - 2 < 1:
        return None
    s = int(rng.integers(1, days - n - 1))
    return s, s + n - 1


def _offset_min(tz: ZoneInfo, u: float) -> int:
    """UTC offset of ``tz`` at epoch time ``u``, whole minutes (floored)."""
    off = datetime.fromtimestamp(u, tz).utcoffset()
    assert off is not None  # an aware datetime always has an offset
    return int(off.total_seconds() // 60)


def _zone_changes(zone: str, start: date, days: int, offset0: int) -> tuple[int, list[tuple[int, int]]]:
    """The zone's offset on day 0 and its clock changes in the cohort: (local minute on
    the old clock, new offset)."""
    tz = ZoneInfo(zone)
    origin = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    u0 = origin - offset0 * 60
    first = _offset_min(tz, u0)
    changes, cur = [], first
    for k in range(days * 24 + 1):
        u = u0 + k * 3600.0
        off = _offset_min(tz, u)
        if off != cur:
            changes.append((int(round((u + cur * 60 - origin) / 60)), off))
            cur = off
    return first, changes


def _offset_arrays(offset0: int, changes: list[tuple[int, int]], M: int) -> tuple[np.ndarray, np.ndarray]:
    """Per local minute offset and 'does not exist' flag from ordered clock changes.

    A change to a later clock (o_new > o_old) at local minute L skips local
    minutes [L, L + Δ); a change to an earlier clock repeats them, and the
    simulator keeps the first pass only (the second is a gap in UTC).
    """
    off = np.full(M, offset0, dtype=np.int64)
    dropped = np.zeros(M, dtype=bool)
    cur = offset0
    for L, new in changes:
        if L >= M:
            break
        off[max(L, 0):] = new
        if new > cur:
            dropped[max(L, 0):min(L + (new - cur), M)] = True
        cur = new
    return off, dropped


def draw_life_plan(rng: np.random.Generator, truth: ParticipantTruth, days: int, start: date,
                   strength: float) -> LifePlan:
    """Draw one participant's life events (see the module docstring for rates and effects)."""
    M = days * MIN_PER_DAY
    scale = days / 180.0
    ev: list[LifeEvent] = []
    off_work = np.zeros(days, dtype=bool)
    leisure = np.ones(days)
    delay = np.zeros(days)
    extra = np.zeros(days)
    illness = np.zeros(days)

    doy = np.array([(start + timedelta(days=d)).timetuple().tm_yday for d in range(days)], float)
    season = np.cos(2 * np.pi * (doy - 15) / 365.25)
    a_sleep, a_act = float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.10, 0.25))
    extra += a_sleep * season
    activity = 1 - a_act * season
    ev.append(LifeEvent("seasonal_drift", 0, days - 1,
                        f"sleep {a_sleep:+.2f} h and activity {-a_act:+.0%} at mid-January, "
                        "opposite at mid-July"))

    def holiday(s: int, e: int) -> None:
        off_work[s:e + 1] = True
        leisure[s:e + 1] = 1.5
        delay[s:e + 1] += 0.75
        extra[s:e + 1] += 0.5

    if rng.random() < min(1.0, 0.5 * scale) and (sp := _span(rng, days, 5, 14)):
        holiday(*sp)
        ev.append(LifeEvent("holiday", sp[0], sp[1], "no work, 1.5x outings, sleep +0.75 h later"))

    home = next(s for s in SITES if s[0] == truth.utc_offset_min)
    zone = SITE_ZONES[truth.utc_offset_min]
    first, home_changes = _zone_changes(zone, start, days, truth.utc_offset_min)
    travel: list[tuple[int, int]] = []
    trip = None
    if rng.random() < min(1.0, 0.3 * scale) and (sp := _span(rng, days, 4, 12)):
        others = [s for s in SITES if s[0] != truth.utc_offset_min]
        dest = others[int(rng.integers(0, len(others)))]
        trip = (sp, dest)
        holiday(*sp)
        L1, L2 = sp[0] * MIN_PER_DAY + 720, sp[1] * MIN_PER_DAY + 720
        back = first
        for L, new in home_changes:
            if L < L2:
                back = new
        # While away the destination's clock rules; home clock changes meanwhile are missed.
        home_changes = [c for c in home_changes if not L1 <= c[0] < L2]
        travel = [(L1, dest[0]), (L2, back)]
        ev.append(LifeEvent("travel", sp[0], sp[1],
                            f"utc_offset_min {dest[0]} (Δ {dest[0] - truth.utc_offset_min:+d} min) "
                            "from local noon of the first to local noon of the last day"))
    changes = sorted(home_changes + travel)
    prev = first
    for L, new in changes:
        if (L, new) in home_changes:
            ev.append(LifeEvent("dst", L // MIN_PER_DAY, L // MIN_PER_DAY,
                                f"{zone}: utc_offset_min {prev} → {new} "
                                f"({24 - (new - prev) // 60}-hour local day)"))
        prev = new
    offsets, dropped = _offset_arrays(first, changes, M)
    shift = []
    if trip is not None:
        (s, e), dest = trip
        shift.append((s * MIN_PER_DAY + 720, e * MIN_PER_DAY + 720, dest[1] - home[1], dest[2] - home[2]))

    if rng.random() < min(1.0, 0.3 * scale) and (sp := _span(rng, days, 5, 9)):
        n = sp[1] - sp[0] + 1
        curve = np.ones(n)
        curve[-2:] = (2 / 3, 1 / 3)
        illness[sp[0]:sp[1] + 1] = np.maximum(illness[sp[0]:sp[1] + 1], curve)
        ev.append(LifeEvent("illness", sp[0], sp[1], "sleep +1.5 h, activity x0.5, stays home, "
                            "social x0.5; recovers over the last 2 days"))

    switch_day: int | None = None
    gap: tuple[int, ...] = ()
    if rng.random() < min(1.0, 0.2 * scale) and days >= 30:
        switch_day = int(rng.integers(15, days - 10))
        n_gap = int(rng.integers(1, 4))
        gap = tuple(range(switch_day - n_gap, switch_day))
        ev.append(LifeEvent("new_phone", gap[0], switch_day,
                            f"{n_gap} day(s) without data, then accelerometer every 600 s, GPS every "
                            f"20 min, ambient every 10 min, light x{NEW_PHONE_LIGHT_GAIN}"))

    signature = dict(truth.signature)
    growth = False
    if truth.relapse_days:
        growth = bool(rng.random() < 0.5)
        if rng.random() < 0.3 and len(signature) > 1:
            keep = list(signature)[int(rng.integers(0, len(signature)))]
            signature = {keep: signature[keep]}
        tag = " ".join(f"{m}{d:+d}" for m, d in signature.items() if m in MODALITIES)
        for rd in truth.relapse_days:
            s = max(0, rd - NR_DAYS)
            if len(signature) < len(truth.signature):
                ev.append(LifeEvent("partial_signature", s, rd - 1,
                                    f"signature cut to {tag} at strength {strength:g}"))
            if growth:  # follows the signature ramp: up over NR30, down over the recovery days
                ev.append(LifeEvent("missing_before_relapse", s, min(days - 1, rd + RECOVERY_DAYS - 1),
                                    f"+{50 * min(1.0, strength):.0f} % of hours missing at the relapse "
                                    f"(ramp x strength {strength:g}), fading over {RECOVERY_DAYS} days after"))
    return LifePlan(events=ev, off_work=off_work, leisure=leisure, sleep_delay_h=delay,
                    sleep_extra_h=extra, illness=illness, activity=activity, offsets=offsets,
                    dropped=dropped, shift=shift, switch_day=switch_day, gap_days=gap,
                    missing_growth=growth, signature=signature)


def extra_missing(plan: LifePlan, ramp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hours (bool, days·24) that a plan adds to type-2 missingness: new-phone gap days and,
    for ``missing_growth``, each hour with probability 0.5·min(1, ramp) (``ramp`` already × strength)."""
    days = ramp.size
    miss = np.zeros(days * 24, dtype=bool)
    for d in plan.gap_days:
        miss[d * 24:(d + 1) * 24] = True
    if plan.missing_growth:
        p = 0.5 * np.minimum(1.0, np.repeat(ramp, 24))
        miss |= rng.random(days * 24) < p
    return miss


def apply_clock(cols: dict[str, np.ndarray], t0: float, offset0: int, plan: LifePlan) -> dict[str, np.ndarray]:
    """Re-time one stream for the plan's clock changes; add a per-row ``utc_offset_min`` column.

    The simulator's time axis is local clock time (``ts − t0`` are local seconds
    under ``offset0``). Each row takes the offset of its local minute
    (accelerometer: of its first sample), rows in skipped local minutes are
    dropped, and ts = t0 + local − (offset − offset0)·60.
    """
    ts = cols["ts"]
    first = ts[:, 0] if ts.ndim == 2 else ts
    minute = np.clip(((first - t0) // 60).astype(np.int64), 0, plan.offsets.size - 1)
    keep = ~plan.dropped[minute]
    off = plan.offsets[minute][keep]
    shift = (off - offset0) * 60.0
    out = {k: v[keep] for k, v in cols.items()}
    out["ts"] = np.round(out["ts"] - (shift[:, None] if ts.ndim == 2 else shift), 3)
    out["utc_offset_min"] = off
    return out


def new_phone(name: str, cols: dict[str, np.ndarray], t0: float, plan: LifePlan) -> dict[str, np.ndarray]:
    """From ``switch_day`` on keep every k-th row of thinned streams and rescale light."""
    if plan.switch_day is None:
        return cols
    ts = cols["ts"]
    first = ts[:, 0] if ts.ndim == 2 else ts
    after = first - t0 >= plan.switch_day * 86_400.0
    k = NEW_PHONE_THIN.get(name)
    out = cols
    if k:
        keep = ~after | (np.cumsum(after) % k == 1)
        out = {c: v[keep] for c, v in cols.items()}
        after = after[keep]
    if name == "ambient":
        out = dict(out)
        out["light_lux"] = np.round(np.where(after, out["light_lux"] * NEW_PHONE_LIGHT_GAIN,
                                             out["light_lux"]), 1)
    return out


def manifest_rows(participant: str, plan: LifePlan, start: date) -> list[str]:
    """``life_events.csv`` rows: participant,kind,start,end,detail (ISO dates, end inclusive)."""
    rows = []
    for e in plan.events:
        s, t = start + timedelta(days=e.start), start + timedelta(days=e.end)
        rows.append(f"{participant},{e.kind},{s.isoformat()},{t.isoformat()},"
                    f"\"{e.detail.replace(chr(34), chr(39))}\"")
    return rows


__all__ = ["LifeEvent", "LifePlan", "draw_life_plan", "extra_missing", "apply_clock", "new_phone",
           "manifest_rows", "SITE_ZONES"]
