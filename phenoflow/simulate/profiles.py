"""Participant profiles and ground truth for the cohort simulator.

Each simulated participant gets a pseudonymous id (``p001``), demographics, a
constant UTC offset with a home city, 2–4 significant places, behavioural
traits (circadian phase, sleep need, sociability, phone habits), a WHO-5
baseline, a share of fully missing hours and — for the relapsing share of the
cohort — relapse days and a relapse *signature*: 2–4 behaviour modalities that
drift in the 30 days before each relapse (Adler et al. 2020 call these days
"near relapse", NR30). Everything here is a pure function of the seed, so tests
can ask for the ground truth the files were generated from
(:func:`phenoflow.simulate.simulator.cohort_truth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "MODALITIES", "NR_DAYS", "RECOVERY_DAYS", "EARLIEST_RELAPSE_DAY", "MIN_RELAPSE_GAP_DAYS", "SITES",
    "AGE_BANDS", "GENDERS", "EMPLOYMENT", "Place", "ParticipantTruth", "participant_id", "signature_ramp",
    "haversine_m", "draw_participant"
]

#: Modalities a relapse signature can touch, with the direction of change:
#: sleep +1 = later and longer sleep; activity −1 = less movement; social ±1 =
#: fewer or more calls, SMS and conversations; mobility −1 = collapsed mobility,
#: more time at home; night_screen +1 = more night-time screen use.
MODALITIES: tuple[str, ...] = ("sleep", "activity", "social", "mobility", "night_screen")
_FIXED_DIRECTION = {"sleep": 1, "activity": -1, "mobility": -1, "night_screen": 1}

#: Days before a relapse that count as "near relapse" (Adler et al. 2020, NR30).
NR_DAYS = 30
#: Days after a relapse over which the signature fades back to baseline.
RECOVERY_DAYS = 7
#: Earliest relapse day index: the NR30 window then starts on day 5 at the
#: earliest, so every participant has healthy days to calibrate on first.
EARLIEST_RELAPSE_DAY = 35
#: Minimum distance between two relapses of one participant, days.
MIN_RELAPSE_GAP_DAYS = 45

#: (UTC offset min, home-city centre lat, lon, share of participants). CrossCheck
#: recruited in New York; a few other offsets (one with a half hour) exercise
#: the local-time logic downstream. Offsets are constant (no DST) per participant.
SITES: tuple[tuple[int, float, float, float], ...] = (
    (-300, 40.7128, -74.0060, 0.45),
    (-360, 41.8781, -87.6298, 0.15),
    (-480, 34.0522, -118.2437, 0.15),
    (0, 51.5074, -0.1278, 0.10),
    (60, 52.5200, 13.4050, 0.10),
    (330, 12.9716, 77.5946, 0.05),
)
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("female", "male", "nonbinary")
EMPLOYMENT = ("employed", "student", "unemployed")
_LEISURE_KINDS = ("shop", "friend", "family", "gym", "park", "clinic", "cafe")
_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Place:
    """A significant place; ``lat``/``lon`` in degrees (WGS84)."""

    kind: str
    lat: float
    lon: float


@dataclass(frozen=True)
class ParticipantTruth:
    """Everything the simulator decided about one participant (the ground truth).

    Units: hours for ``chronotype_h``/``sleep_h``/``weekend_delay_h``/``sleep_sd_h``,
    events per day for the ``*_per_day`` rates, sessions per awake hour for
    ``screen_per_h``, WHO-5 raw points (0–25) for ``who5_baseline``.
    ``relapse_days`` are day indices from the cohort start (day 0 = ``start``);
    ``signature`` maps each signature modality to its direction (+1/−1, see
    :data:`MODALITIES`); it is empty for participants who do not relapse.
    """

    participant: str
    index: int
    age_band: str
    gender: str
    employment: str
    utc_offset_min: int
    places: tuple[Place, ...]
    chronotype_h: float
    sleep_h: float
    sleep_sd_h: float
    weekend_delay_h: float
    activity_amp: float
    carry_share: float
    screen_per_h: float
    calls_per_day: float
    sms_per_day: float
    conversations_per_day: float
    outings_per_day: float
    call_direction_p: tuple[float, ...]
    contacts: tuple[str, ...]
    leisure_p: tuple[float, ...]
    who5_baseline: float
    missing_share: float
    relapse_days: tuple[int, ...]
    relapse_dates: tuple[date, ...]
    signature: Mapping[str, int] = field(default_factory=dict)

    @property
    def has_work(self) -> bool:
        """Whether place 1 is a workplace or school visited on weekdays."""
        return self.employment in ("employed", "student")


def participant_id(index: int, n: int) -> str:
    """Pseudonymous id ``p001`` … (zero-padded to at least three digits)."""
    return f"p{index + 1:0{max(3, len(str(n)))}d}"


def signature_ramp(relapse_days: Sequence[int], days: int) -> np.ndarray:
    """Per-day signature intensity r ∈ [0, 1] (float64, length ``days``).

    r rises linearly over the NR30 window, (k+1)/30 on the k-th of the 30 days
    before a relapse, and fades over the :data:`RECOVERY_DAYS` after it; 0 on
    all other days. Overlapping windows take the maximum.
    """
    d = np.arange(days, dtype=np.float64)
    r = np.zeros(days)
    for rd in relapse_days:
        before = (d >= rd - NR_DAYS) & (d < rd)
        r = np.where(before, np.maximum(r, (d - (rd - NR_DAYS) + 1) / NR_DAYS), r)
        after = (d >= rd) & (d < rd + RECOVERY_DAYS)
        r = np.where(after, np.maximum(r, 1 - (d - rd + 1) / (RECOVERY_DAYS + 1)), r)
    return r


def _relapse_days(rng: np.random.Generator, days: int) -> tuple[int, ...]:
    """1–3 relapse days in [EARLIEST_RELAPSE_DAY, days), ≥ MIN_RELAPSE_GAP_DAYS apart."""
    span = days - EARLIEST_RELAPSE_DAY  # number of admissible days
    if span <= 0:
        return ()
    feasible = 1 + (span - 1) // MIN_RELAPSE_GAP_DAYS
    k = min(int(rng.integers(1, 4)), feasible)
    # Spacing trick: k sorted draws from a range shrunk by the gaps, then re-spread.
    free = span - (k - 1) * MIN_RELAPSE_GAP_DAYS
    picks = np.sort(rng.choice(free, size=k, replace=False))
    return tuple(int(EARLIEST_RELAPSE_DAY + p + i * MIN_RELAPSE_GAP_DAYS) for i, p in enumerate(picks))


def _offset_m(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """Move a point by metres east/north (equirectangular; fine at city scale)."""
    return (lat + north_m / _M_PER_DEG_LAT,
            lon + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat))))


def _places(rng: np.random.Generator, lat0: float, lon0: float, employment: str) -> tuple[Place, ...]:
    """Home plus work/school and leisure places: 2–4 in all, each ≥ 1.5 km from the others.

    The spacing keeps places apart for DBSCAN with ε = 1 km (docs/hourly.md, "Places").
    """
    r = 12_000 * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    home = _offset_m(lat0, lon0, r * math.cos(a), r * math.sin(a))
    places = [Place("home", *home)]
    if employment != "unemployed":
        n_leisure = int(rng.choice([0, 1, 2], p=[0.3, 0.45, 0.25]))
    else:
        n_leisure = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
    wanted: list[tuple[str, float, float]] = []
    if employment != "unemployed":
        wanted.append(("work" if employment == "employed" else "school", 2_000, 15_000))
    kinds = rng.choice(_LEISURE_KINDS, size=n_leisure, replace=False)
    wanted += [(str(k), 1_500, 8_000) for k in kinds]
    for kind, lo, hi in wanted:
        for _ in range(200):
            dist, bearing = rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)
            lat, lon = _offset_m(*home, dist * math.cos(bearing), dist * math.sin(bearing))
            if all(haversine_m(lat, lon, p.lat, p.lon) >= 1_500 for p in places):
                places.append(Place(kind, lat, lon))
                break
    return tuple(places)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (mean Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


def draw_participant(
    rng: np.random.Generator,
    index: int,
    n: int,
    days: int,
    start: date,
    relapses: bool,
    missing_share: tuple[float, float],
) -> ParticipantTruth:
    """Draw one participant's profile (see :class:`ParticipantTruth`)."""
    site = int(rng.choice(len(SITES), p=[s[3] for s in SITES]))
    offset, lat0, lon0, _ = SITES[site]
    employment = str(rng.choice(EMPLOYMENT, p=[0.3, 0.2, 0.5]))
    if employment == "student":
        age_band = str(rng.choice(AGE_BANDS[:2], p=[0.75, 0.25]))
    else:
        age_band = str(rng.choice(AGE_BANDS, p=[0.15, 0.3, 0.25, 0.2, 0.1]))
    gender = str(rng.choice(GENDERS, p=[0.47, 0.47, 0.06]))
    places = _places(rng, lat0, lon0, employment)
    n_leisure = len(places) - (2 if employment != "unemployed" else 1)
    leisure_p: tuple[float, ...] = ()
    if n_leisure:
        w = 1.0 / np.arange(1, n_leisure + 1)  # Zipf: one favourite place, others rarer
        leisure_p = tuple((w / w.sum()).tolist())
    rd = _relapse_days(rng, days) if relapses else ()
    signature: dict[str, int] = {}
    if rd:
        k = int(rng.integers(2, 5))
        for m in sorted(rng.choice(MODALITIES, size=k, replace=False).tolist(), key=MODALITIES.index):
            signature[m] = _FIXED_DIRECTION.get(m) or int(rng.choice([-1, 1]))
    n_contacts = int(rng.integers(8, 31))
    contacts = tuple(f"{v:08x}" for v in rng.integers(0, 2**32, size=n_contacts + 3).tolist())
    lo, hi = missing_share
    return ParticipantTruth(
        participant=participant_id(index, n),
        index=index,
        age_band=age_band,
        gender=gender,
        employment=employment,
        utc_offset_min=offset,
        places=places,
        chronotype_h=float(np.clip(rng.normal(0, 0.75), -2.0, 2.5)),
        sleep_h=float(np.clip(rng.normal(7.6, 0.6), 5.5, 9.5)),
        sleep_sd_h=float(rng.uniform(0.25, 0.6)),
        weekend_delay_h=float(rng.uniform(0.3, 1.5)),
        activity_amp=float(rng.lognormal(0, 0.3)),
        carry_share=float(rng.uniform(0.25, 0.55)),
        screen_per_h=float(rng.lognormal(math.log(3.5), 0.35)),
        calls_per_day=float(rng.lognormal(math.log(3.0), 0.45)),
        sms_per_day=float(rng.lognormal(math.log(8.0), 0.5)),
        conversations_per_day=float(rng.lognormal(math.log(6.0), 0.35)),
        outings_per_day=float(rng.uniform(1.0, 2.2)),
        call_direction_p=tuple(rng.dirichlet([8, 7, 3.5, 1, 0.5]).tolist()),
        contacts=contacts,
        leisure_p=leisure_p,
        who5_baseline=float(np.clip(rng.normal(15, 3), 8, 22)),
        missing_share=float(rng.uniform(lo, hi)),
        relapse_days=rd,
        relapse_dates=tuple(start + timedelta(days=d) for d in rd),
        signature=signature,
    )
