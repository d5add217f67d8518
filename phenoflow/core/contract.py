"""Event contract v1: typed, validated topic values (README.md, "Event contract").

Every Kafka message has key = participant id (UTF-8) and value = one JSON
object. This module owns the schema of every topic value and the single
function, :func:`decode`, that turns any ``(topic, key, bytes)`` into either a
typed event or a :class:`DeadLetter` carrying the original bytes and a reason a
person can act on. ``decode`` never raises.

Validation uses msgspec: declarative constraints are checked in C while
decoding, and the few cross-field rules (equal accelerometer array lengths,
"at least one ambient reading") are checked afterwards in :func:`_check`.
Unknown extra fields are accepted and ignored, as the contract requires.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, time, timezone
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "CONTRACT_VERSION", "MAX_MESSAGE_BYTES", "TS_MIN", "TS_MAX", "MAX_CHUNK", "ACCEL_MAX", "ParticipantId",
    "Timestamp", "UtcOffset", "Samples", "Timestamps", "Day", "Peer", "CallDirection", "SmsDirection",
    "ScreenState", "Level", "Event", "Accelerometer", "Screen", "Call", "Sms", "Location", "Ambient", "Survey",
    "RawEvent", "FeatureValue", "HourlyFeatures", "RhythmDaily", "ScoreDaily", "Contributor", "AnomalyEvent",
    "StepUpEvent", "DeadLetter", "TOPIC_TYPES", "RAW_TOPICS", "ALL_TOPICS", "dead_letter", "decode", "event_time",
    "encode", "to_builtins"
]

CONTRACT_VERSION = 1

#: Default cap on one message value, bytes (1 MiB). Larger values are dead-lettered.
MAX_MESSAGE_BYTES = 1 << 20

#: Smallest and largest accepted event time (UTC epoch s): 2000-01-01 .. 2100-01-01.
#: A phone clock outside this range is broken, not a time zone issue.
TS_MIN = 946_684_800.0
TS_MAX = 4_102_444_800.0

#: Most samples one accelerometer chunk may carry.
MAX_CHUNK = 10_000

#: Largest accepted accelerometer axis value, m/s² (≈ 51 g). Phone sensors saturate at
#: 16–32 g; a larger value is a unit or encoding error, and the bound keeps the hourly
#: stage's fixed-point sums (operators/hourly/aggregator.py) far from overflow.
ACCEL_MAX = 500.0

ParticipantId = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
]
Timestamp = Annotated[float, Meta(ge=TS_MIN, le=TS_MAX)]
#: Local offset from UTC in minutes (UTC−14:00 .. UTC+14:00).
UtcOffset = Annotated[int, Meta(ge=-840, le=840)]
Samples = Annotated[list[Annotated[float, Meta(ge=-ACCEL_MAX, le=ACCEL_MAX)]],
                    Meta(min_length=1, max_length=MAX_CHUNK)]
Timestamps = Annotated[list[Timestamp], Meta(min_length=1, max_length=MAX_CHUNK)]
Day = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Peer = Annotated[str, Meta(max_length=128)]

CallDirection = Literal["incoming", "outgoing", "missed", "rejected", "blocked"]
SmsDirection = Literal["incoming", "outgoing"]
ScreenState = Literal["on", "off", "unlock"]
#: WHO-5 well-being levels after ×4 scaling (Buda et al. 2022).
Level = Literal["low", "regular", "high"]


class Event(Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    """Fields every topic value has."""

    participant: ParticipantId
    utc_offset_min: UtcOffset | None = None


# --- raw topics (phones → phenoflow) --------------------------------------------------


class Accelerometer(Event):
    """A chunk of accelerometer samples; ``x``, ``y``, ``z`` in m/s²."""

    ts: Timestamps
    x: Samples
    y: Samples
    z: Samples


class Screen(Event):
    """raw.screen: a change of the screen state (see ``ScreenState``)."""

    ts: Timestamp
    state: ScreenState


class Call(Event):
    """raw.call: one phone call (direction, duration; the peer only as a pseudonym)."""

    ts: Timestamp
    direction: CallDirection
    duration_s: Annotated[float, Meta(ge=0, le=86_400 * 2)]
    peer: Peer | None = None


class Sms(Event):
    """raw.sms: one text message (direction; the peer only as a pseudonym)."""

    ts: Timestamp
    direction: SmsDirection
    peer: Peer | None = None


class Location(Event):
    """A GPS fix. Raw coordinates never leave the feature stage."""

    ts: Timestamp
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(ge=0)] | None = None


class Ambient(Event):
    """Ambient light (lux), sound level (dB) and speech detection."""

    ts: Timestamp
    light_lux: Annotated[float, Meta(ge=0)] | None = None
    sound_db: Annotated[float, Meta(ge=-100, le=250)] | None = None
    voice: bool | None = None


class Survey(Event):
    """A self-report; WHO-5 raw score 0–25."""

    ts: Timestamp
    instrument: Literal["who5"]
    score: Annotated[int, Meta(ge=0, le=25)]


RawEvent = Union[Accelerometer, Screen, Call, Sms, Location, Ambient, Survey]

# --- derived topics (phenoflow → subscribers) -----------------------------------------

FeatureValue = Union[float, None]


class HourlyFeatures(Event):
    """One participant-hour of behaviour features (Adler et al. 2020).

    ``features`` is the model input with Adler's missing-data rules applied
    (type-1 0-fill, type-2 hour-of-day means, location carry). ``observed`` names
    the feature groups (``FEATURE_GROUPS`` of operators/hourly/schema.py: accel,
    screen, call, sms, location, light, sound, voice, sleep) that were really
    measured in the hour — every other group's values are imputed, not data.
    Consumers other than the model (rhythm, reports) use only observed groups.
    ``None`` (absent) only in records written before the field existed.
    """

    hour_start: Timestamp
    local_hour: Annotated[int, Meta(ge=0, le=23)]
    weekday: Annotated[int, Meta(ge=0, le=6)]
    features: dict[str, FeatureValue]
    filled: Annotated[float, Meta(ge=0, le=1)]
    observed: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(max_length=32)] | None = None


class RhythmDaily(Event):
    """Rolling rhythm statistics for the windows ending on local ``day`` (Tseng et al. 2020)."""

    day: Day
    features: dict[str, FeatureValue]
    coverage: dict[str, float]


class ScoreDaily(Event):
    """scores.daily: one participant-day's anomaly score and threshold (None while calibrating)."""

    day: Day
    score: float | None
    threshold: float | None
    calibrating: bool
    model: str
    # Where τ came from: "calibration" (the participant's own calibration days) or the
    # sha256 prefix of the thresholds file; None in dumps from before the field existed.
    threshold_source: str | None = None


class Contributor(Struct):
    """A feature contributing to an anomaly, with its error z-score."""

    feature: str
    z: float


class AnomalyEvent(Event):
    """events.anomaly: a participant-day whose score exceeded the threshold."""

    event_id: str
    day: Day
    score: float
    threshold: float
    contributors: list[Contributor]
    model: str


class StepUpEvent(Event):
    """events.stepup: a care-level change proposed from a survey or from passive risk."""

    event_id: str
    from_level: str
    to_level: str
    source: Literal["survey", "passive"]
    evidence: dict[str, object]
    ts: Timestamp | None = None
    day: Day | None = None


class AckEvent(Event):
    """A clinician's acknowledgement of an anomaly or step-up event (from the dashboard)."""

    event_id: Annotated[str, Meta(min_length=1, max_length=200)]
    ts: Timestamp
    by: Annotated[str, Meta(max_length=100)]
    note: Annotated[str, Meta(max_length=2000)] = ""


class DeadLetter(Struct, kw_only=True):
    """A message that did not meet the contract, kept with its original bytes."""

    topic: str
    partition: int | None
    offset: int | None
    key: str | None
    value: str
    value_encoding: Literal["utf-8", "base64"]
    error: str


#: Short topic name → value type, for every topic of the contract.
TOPIC_TYPES: dict[str, type[Event] | type[DeadLetter]] = {
    "raw.accelerometer": Accelerometer,
    "raw.screen": Screen,
    "raw.call": Call,
    "raw.sms": Sms,
    "raw.location": Location,
    "raw.ambient": Ambient,
    "raw.survey": Survey,
    "features.hourly": HourlyFeatures,
    "rhythm.daily": RhythmDaily,
    "scores.daily": ScoreDaily,
    "events.anomaly": AnomalyEvent,
    "events.stepup": StepUpEvent,
    "events.ack": AckEvent,
    "deadletter": DeadLetter,
}
RAW_TOPICS: tuple[str, ...] = tuple(t for t in TOPIC_TYPES if t.startswith("raw."))
ALL_TOPICS: tuple[str, ...] = tuple(TOPIC_TYPES)

_DECODERS = {t: msgspec.json.Decoder(tp) for t, tp in TOPIC_TYPES.items()}
_ENCODER = msgspec.json.Encoder()


def _check(event: Struct) -> str | None:
    """Cross-field rules msgspec constraints cannot express; return a reason or None."""
    if isinstance(event, Accelerometer):
        n = len(event.ts)
        if not (len(event.x) == len(event.y) == len(event.z) == n):
            return (
                f"ts, x, y, z must have equal lengths, got {n}, {len(event.x)}, "
                f"{len(event.y)}, {len(event.z)}"
            )
        # Non-finite samples cannot occur: msgspec rejects NaN, Infinity and numbers
        # out of float range while decoding JSON.
    elif isinstance(event, Ambient):
        if event.light_lux is None and event.sound_db is None and event.voice is None:
            return "needs at least one of light_lux, sound_db, voice"
    elif isinstance(event, StepUpEvent):
        # A survey step-up carries its ts, a passive one its day; one without either
        # cannot be placed on anyone's timeline (the dashboard could not show it).
        if event.ts is None and event.day is None:
            return "needs at least one of ts, day"
    return None


def dead_letter(
    topic: str,
    value: bytes,
    error: str,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """Build a dead-letter record keeping the original bytes (base64 if not UTF-8)."""
    enc: Literal["utf-8", "base64"]
    try:
        text, enc = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, enc = base64.b64encode(value).decode("ascii"), "base64"
    key_text = None if key is None else key.decode("utf-8", errors="backslashreplace")
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key_text,
        value=text,
        value_encoding=enc,
        error=error,
    )


def decode(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    *,
    partition: int | None = None,
    offset: int | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Event | DeadLetter:
    """Decode one message of short topic ``topic`` into an event or a :class:`DeadLetter`.

    Never raises. The dead-letter ``error`` names the topic, the field and what
    was wrong, e.g. ``raw.call: Expected `float` >= 0 - at `$.duration_s```.
    A key that is present but differs from the value's ``participant`` is a
    contract violation: partitions are keyed by participant, so a wrong key
    would put the participant's events out of order.
    """
    raw = b"" if value is None else bytes(value)

    def fail(reason: str) -> DeadLetter:
        return dead_letter(
            topic, raw, f"{topic}: {reason}", key=key, partition=partition, offset=offset
        )

    decoder = _DECODERS.get(topic)
    if decoder is None:
        return fail(f"unknown topic; expected one of {', '.join(ALL_TOPICS)}")
    if value is None:
        return fail("empty message (null value)")
    if len(raw) > max_bytes:
        return fail(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte cap")
    try:
        event = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return fail(str(exc))
    except msgspec.DecodeError as exc:
        return fail(f"not valid JSON ({exc})")
    except Exception as exc:  # decode() must never raise
        return fail(f"could not decode ({type(exc).__name__}: {exc})")
    reason = _check(event)
    if reason is not None:
        return fail(reason)
    if key is not None and isinstance(event, Event):
        if key != event.participant.encode("utf-8"):
            shown = key.decode("utf-8", errors="backslashreplace")[:80]
            return fail(
                f"message key {shown!r} differs from participant {event.participant!r}; "
                "key every message by its participant id"
            )
    return event


def event_time(value: object) -> float | None:
    """Event time (UTC epoch s) of a topic value: ``ts`` (first sample of a chunk),
    ``hour_start``, or the start of ``day`` (UTC midnight); None if it has none."""
    ts = getattr(value, "ts", None)
    if isinstance(ts, list):
        return ts[0] if ts else None
    if ts is not None:
        return ts
    hour_start = getattr(value, "hour_start", None)
    if hour_start is not None:
        return hour_start
    day = getattr(value, "day", None)
    if day is not None:
        try:
            return datetime.combine(date.fromisoformat(day), time(0), timezone.utc).timestamp()
        except (TypeError, ValueError):
            return None
    return None


def encode(event: Struct) -> bytes:
    """Encode a contract value as compact JSON."""
    return _ENCODER.encode(event)


def to_builtins(event: Struct) -> dict:
    """The value as plain Python objects (dicts, lists, numbers, strings)."""
    return msgspec.to_builtins(event)
