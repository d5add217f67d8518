"""RADAR-base records → event-contract values: pure functions, shared by the live source and ``import radar``.

A RADAR-base record is (topic, key, value) with the key an ``ObservationKey``
(``projectId``, ``userId``, ``sourceId``) and the value one of the RADAR-Schemas
records. :func:`map_value` turns one value into a contract value dict (without
``utc_offset_min``), a :class:`TimeZoneChange`, or a :class:`Drop` with a reason;
:class:`LocalTime` then sets ``utc_offset_min`` from the participant's
``application_time_zone`` history. Tables and reasons: ``docs/real-data.md``.

* ``PhoneAcceleration`` x, y, z (g) × 9.80665 → ``raw.accelerometer`` (m/s²);
  :func:`coalesce` joins consecutive samples of a participant into chunks.
* ``PhoneUserInteraction`` UNLOCKED → ``unlock`` (the hourly stage opens a screen
  session at an unlock when no ``on`` came: RADAR has no "screen on" event),
  STANDBY and SHUTDOWN → ``off``; BOOTED and OTHER are dropped (no screen state).
* ``PhoneLight`` lux → ``raw.ambient`` ``light_lux``.
* ``PhoneRelativeLocation`` → ``raw.location``; coordinates are offsets from a
  random reference, so places and distances hold (approximately: the reference
  latitude shifts the cos φ factor by at most 4°) but are not real places.
  Longitude is wrapped into [−180, 180) (haversine is periodic in it); a latitude
  outside [−90, 90] is dropped.
* ``PhoneCall`` INCOMING/OUTGOING/MISSED → ``raw.call``; VOICEMAIL and UNKNOWN,
  and calls without a duration, are dropped (no contract direction; a missing
  duration is not 0 s). ``PhoneSms`` INCOMING/OUTGOING → ``raw.sms``.
* ``Questionnaire``: only WHO-5 (5 answers 0–5, raw score = sum) maps to
  ``raw.survey``; PHQ-8 and others are dropped — a PHQ-8 score is not a WHO-5 score.
* ``ApplicationTimeZone`` offset (s) → :class:`TimeZoneChange` (minutes); it holds
  from its ``time`` until the next one.

The participant id is ``pseudonym(projectId or "", userId)``; the raw ids go no further.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, TypeGuard
from zoneinfo import ZoneInfo

from phenoflow.core.contract import ACCEL_MAX, MAX_CHUNK, TS_MAX, TS_MIN

__all__ = ["G", "KIND_OF_SCHEMA", "TOPIC_SCHEMA", "Drop", "LocalTime", "TimeZoneChange",
           "coalesce", "map_value", "participant_of"]

#: Standard gravity, m/s² per g (CGPM 1901).
G = 9.80665

ACCELERATION = "org.radarcns.passive.phone.PhoneAcceleration"
USER_INTERACTION = "org.radarcns.passive.phone.PhoneUserInteraction"
LIGHT = "org.radarcns.passive.phone.PhoneLight"
RELATIVE_LOCATION = "org.radarcns.passive.phone.PhoneRelativeLocation"
CALL = "org.radarcns.passive.phone.PhoneCall"
SMS = "org.radarcns.passive.phone.PhoneSms"
TIME_ZONE = "org.radarcns.monitor.application.ApplicationTimeZone"
QUESTIONNAIRE = "org.radarcns.active.questionnaire.Questionnaire"
OBSERVATION_KEY = "org.radarcns.kafka.ObservationKey"

#: Default RADAR-base topic → value schema (full record name).
TOPIC_SCHEMA: dict[str, str] = {
    "android_phone_acceleration": ACCELERATION,
    "android_phone_user_interaction": USER_INTERACTION,
    "android_phone_light": LIGHT,
    "android_phone_relative_location": RELATIVE_LOCATION,
    "android_phone_call": CALL,
    "android_phone_sms": SMS,
    "application_time_zone": TIME_ZONE,
    "questionnaire_phq8": QUESTIONNAIRE,
    "questionnaire_who5": QUESTIONNAIRE,
}
#: Value schema → short kind (used in reports and docs).
KIND_OF_SCHEMA = {ACCELERATION: "acceleration", USER_INTERACTION: "user_interaction", LIGHT: "light",
                  RELATIVE_LOCATION: "relative_location", CALL: "call", SMS: "sms", TIME_ZONE: "time_zone",
                  QUESTIONNAIRE: "questionnaire"}

SCREEN = {"UNLOCKED": "unlock", "STANDBY": "off", "SHUTDOWN": "off"}
SCREEN_DROPPED = {"BOOTED", "OTHER"}
CALLS = {"INCOMING": "incoming", "OUTGOING": "outgoing", "MISSED": "missed"}
CALLS_DROPPED = {"VOICEMAIL", "UNKNOWN"}
SMSES = {"INCOMING": "incoming", "OUTGOING": "outgoing"}
SMSES_DROPPED = {"OTHER", "UNKNOWN"}
#: Longest call the contract accepts, s.
CALL_MAX_S = 2 * 86_400.0
#: Largest |offset| of a time zone, minutes (UTC−14 … UTC+14).
OFFSET_MAX_MIN = 840


@dataclass(frozen=True, slots=True)
class Drop:
    """A record that maps to no contract event; ``reason`` is person-readable and stable (report counts)."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimeZoneChange:
    """From ``time`` (UTC s) on, the participant's local time is UTC + ``offset_min``."""

    participant: str
    time: float
    offset_min: int


Mapped = tuple[str, dict[str, Any]]


def participant_of(key: dict[str, Any], pseudonym: Callable[[str, str], str]) -> str:
    """The pseudonymous participant id of an ``ObservationKey`` (raises KeyError/TypeError if malformed)."""
    user = key["userId"]
    if not isinstance(user, str) or not user:
        raise TypeError("userId missing")
    return pseudonym(key.get("projectId") or "", user)


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _time(value: dict[str, Any]) -> float | Drop:
    t = value.get("time")
    if not _finite(t):
        return Drop("time is missing or not a number")
    if not TS_MIN <= t <= TS_MAX:
        return Drop("time out of range (before 2000 or after 2100)")
    return float(t)


def map_value(schema: str, participant: str, value: dict[str, Any]) -> Mapped | TimeZoneChange | Drop:
    """One RADAR value (record of schema ``schema``) → contract value, time-zone change or drop."""
    t = _time(value)
    if isinstance(t, Drop):
        return t
    p = participant
    if schema == ACCELERATION:
        x, y, z = value.get("x"), value.get("y"), value.get("z")
        if not (_finite(x) and _finite(y) and _finite(z)):
            return Drop("acceleration x, y or z is missing or not a finite number")
        x, y, z = x * G, y * G, z * G
        if max(abs(x), abs(y), abs(z)) > ACCEL_MAX:
            return Drop(f"acceleration out of range (|axis| > {ACCEL_MAX:.0f} m/s²)")
        return "raw.accelerometer", {"participant": p, "ts": [t], "x": [x], "y": [y], "z": [z]}
    if schema == USER_INTERACTION:
        state = value.get("interactionState")
        if state in SCREEN:
            return "raw.screen", {"participant": p, "ts": t, "state": SCREEN[state]}
        if state in SCREEN_DROPPED:
            return Drop(f"interactionState {state} is no screen state")
        return Drop("unknown enum value of interactionState")
    if schema == LIGHT:
        lux = value.get("light")
        if not _finite(lux) or lux < 0:
            return Drop("light out of range (not a number ≥ 0 lux)")
        return "raw.ambient", {"participant": p, "ts": t, "light_lux": float(lux)}
    if schema == RELATIVE_LOCATION:
        lat, lon, acc = value.get("latitude"), value.get("longitude"), value.get("accuracy")
        if lat is None or lon is None:
            return Drop("location without latitude/longitude")
        if not (_finite(lat) and _finite(lon)) or not -90.0 <= lat <= 90.0:
            return Drop("latitude out of range [-90, 90]")
        out = {"participant": p, "ts": t, "lat": float(lat), "lon": (float(lon) + 180.0) % 360.0 - 180.0}
        if acc is not None:
            if not _finite(acc) or acc < 0:
                return Drop("accuracy out of range (not a number ≥ 0 m)")
            out["accuracy_m"] = float(acc)
        return "raw.location", out
    if schema == CALL:
        kind, duration = value.get("type"), value.get("duration")
        if kind in CALLS_DROPPED:
            return Drop(f"call type {kind} has no contract direction")
        if kind not in CALLS:
            return Drop("unknown enum value of call type")
        if duration is None:
            return Drop("call without duration")
        if not _finite(duration) or not 0 <= duration <= CALL_MAX_S:
            return Drop("call duration out of range [0, 2 days]")
        # ``target`` (an HMAC of the number) is not carried: exports hold no usable form of it.
        return "raw.call", {"participant": p, "ts": t, "direction": CALLS[kind], "duration_s": float(duration)}
    if schema == SMS:
        kind = value.get("type")
        if kind in SMSES_DROPPED:
            return Drop(f"sms type {kind} has no contract direction")
        if kind not in SMSES:
            return Drop("unknown enum value of sms type")
        return "raw.sms", {"participant": p, "ts": t, "direction": SMSES[kind]}
    if schema == TIME_ZONE:
        off = value.get("offset")
        if not isinstance(off, int) or isinstance(off, bool) or off % 60 or abs(off) > OFFSET_MAX_MIN * 60:
            return Drop("time zone offset out of range (whole minutes within ±14 h)")
        return TimeZoneChange(p, t, off // 60)
    if schema == QUESTIONNAIRE:
        return _questionnaire(p, t, value)
    return Drop(f"no mapping for schema {schema}")


def _questionnaire(p: str, t: float, value: dict[str, Any]) -> Mapped | Drop:
    name = str(value.get("name", ""))
    if "".join(c for c in name.lower() if c.isalnum()) != "who5":
        return Drop(f"questionnaire {name[:32]} is not WHO-5 (raw.survey carries WHO-5 only)")
    answers = [a.get("value") if isinstance(a, dict) else None for a in value.get("answers") or []]
    if len(answers) != 5 or not all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a <= 5 for a in answers):
        return Drop("WHO-5 needs 5 whole-number answers 0–5")
    done = value.get("timeCompleted")
    ts = float(done) if _finite(done) and TS_MIN <= done <= TS_MAX else t
    return "raw.survey", {"participant": p, "ts": ts, "instrument": "who5", "score": sum(answers)}


def _event_ts(value: dict[str, Any]) -> float:
    ts = value["ts"]
    return ts[0] if isinstance(ts, list) else ts


class LocalTime:
    """One participant's UTC offsets: ``application_time_zone`` changes, the configured zone before the first.

    Each change holds from its ``time`` until the next one (in event time, so
    changes may arrive in any order). Before the first change the configured IANA
    zone gives the offset (with its own DST rules); no zone means UTC.
    """

    __slots__ = ("zone", "times", "offsets")

    def __init__(self, zone: str | None = None) -> None:
        self.zone = zone or None
        self.times: list[float] = []
        self.offsets: list[int] = []

    def add(self, time: float, offset_min: int) -> None:
        """Record that ``offset_min`` holds from ``time`` (UTC s) until the next change."""
        i = bisect_right(self.times, time)
        if i and self.times[i - 1] == time:
            self.offsets[i - 1] = offset_min
            return
        insort(self.times, time)
        self.offsets.insert(i, offset_min)

    def offset_at(self, ts: float) -> int:
        """Offset (minutes) in force at UTC time ``ts``."""
        i = bisect_right(self.times, ts)
        if i:
            return self.offsets[i - 1]
        if self.zone is None:
            return 0
        off = datetime.fromtimestamp(ts, timezone.utc).astimezone(ZoneInfo(self.zone)).utcoffset()
        return int(off.total_seconds() // 60) if off is not None else 0

    def apply(self, short: str, value: dict[str, Any]) -> list[dict[str, Any]]:
        """``value`` with ``utc_offset_min`` set; an accelerometer chunk is split where the offset changes."""
        if short != "raw.accelerometer":
            value["utc_offset_min"] = self.offset_at(value["ts"])
            return [value]
        ts = value["ts"]
        lo = bisect_right(self.times, ts[0])
        hi = bisect_right(self.times, ts[-1])
        if lo == hi:
            first = self.offset_at(ts[0])
            # No recorded change inside the chunk; a configured zone changes at most once in it.
            if lo or self.zone is None or first == self.offset_at(ts[-1]):
                value["utc_offset_min"] = first
                return [value]
        out: list[dict[str, Any]] = []
        start = 0
        for i in range(1, len(ts) + 1):
            if i == len(ts) or self.offset_at(ts[i]) != self.offset_at(ts[start]):
                piece = {k: (v[start:i] if isinstance(v, list) else v) for k, v in value.items()}
                piece["utc_offset_min"] = self.offset_at(ts[start])
                out.append(piece)
                start = i
        return out


def coalesce(items: Iterable[tuple[str, dict[str, Any]]], limit: int = MAX_CHUNK) -> Iterator[tuple[str, dict[str, Any]]]:
    """Join runs of single-sample accelerometer values of one participant into chunks of ≤ ``limit``.

    Other values pass unchanged and in order; a run ends at any other value, another
    participant, a sample older than the previous one, or the limit.
    """
    run: dict[str, Any] | None = None
    for short, value in items:
        if short == "raw.accelerometer":
            if (run is not None and run["participant"] == value["participant"] and len(run["ts"]) < limit
                    and value["ts"][0] >= run["ts"][-1]):
                run["ts"].extend(value["ts"])
                run["x"].extend(value["x"])
                run["y"].extend(value["y"])
                run["z"].extend(value["z"])
                continue
            if run is not None:
                yield "raw.accelerometer", run
            run = value
            continue
        if run is not None:
            yield "raw.accelerometer", run
            run = None
        yield short, value
    if run is not None:
        yield "raw.accelerometer", run
