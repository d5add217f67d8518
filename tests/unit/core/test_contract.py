"""Event contract: table-driven valid/invalid examples per topic, and property tests."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phenoflow.core import contract as c

TS = 1_700_000_000.0

VALID: dict[str, dict] = {
    "raw.accelerometer": {"participant": "p1", "ts": [TS, TS + 1], "x": [0.1, 0.2], "y": [9.8, 9.7], "z": [0.0, 0.3]},
    "raw.screen": {"participant": "p1", "ts": TS, "state": "unlock", "utc_offset_min": -300},
    "raw.call": {"participant": "p1", "ts": TS, "direction": "missed", "duration_s": 0, "peer": "ab12"},
    "raw.sms": {"participant": "p1", "ts": TS, "direction": "outgoing"},
    "raw.location": {"participant": "p1", "ts": TS, "lat": 40.7, "lon": -74.0, "accuracy_m": 12.5},
    "raw.ambient": {"participant": "p1", "ts": TS, "voice": True},
    "raw.survey": {"participant": "p1", "ts": TS, "instrument": "who5", "score": 25},
    "features.hourly": {"participant": "p1", "hour_start": 1_699_999_200.0, "local_hour": 3, "weekday": 1,
                        "features": {"accel_mean": 9.8, "sleep_onset_h": None}, "filled": 0.25,
                        "observed": ["accel", "screen"]},
    "rhythm.daily": {"participant": "p1", "day": "2023-11-14", "features": {"accel_mean.m10.w2": 10.2,
                     "accel_mean.sampen.tau1.w2": None}, "coverage": {"w2": 0.9}},
    "scores.daily": {"participant": "p1", "day": "2023-11-14", "score": 3.2, "threshold": None,
                     "calibrating": True, "model": "default"},
    "events.anomaly": {"participant": "p1", "event_id": "abc", "day": "2023-11-14", "score": 9.0,
                       "threshold": 4.0, "contributors": [{"feature": "accel_mean.m10.w14", "z": 3.1}],
                       "model": "default"},
    "events.stepup": {"participant": "p1", "event_id": "x", "day": "2023-11-14", "from_level": "regular",
                      "to_level": "low", "source": "passive", "evidence": {"rate": 0.5}},
    "events.ack": {"participant": "p1", "event_id": "x", "ts": 1700000000.0, "by": "dr-a", "note": "called"},
    "deadletter": {"topic": "raw.screen", "partition": 0, "offset": 4, "key": "p1", "value": "{}",
                   "value_encoding": "utf-8", "error": "raw.screen: Object missing required field `ts`"},
}

# (topic, change to the valid example, text the reason must contain)
INVALID: list[tuple[str, dict, str]] = [
    ("raw.accelerometer", {"y": [9.8]}, "equal lengths"),
    ("raw.accelerometer", {"ts": [], "x": [], "y": [], "z": []}, "length >= 1"),
    ("raw.accelerometer", {"x": ["a", 0.2]}, "$.x[0]"),
    ("raw.accelerometer", {"z": [0.0, -500.5]}, "Expected `float` >= -500.0 - at `$.z[1]`"),  # > 51 g: unit error
    ("raw.screen", {"state": "dim"}, "$.state"),
    ("raw.screen", {"ts": 12.0}, "$.ts"),
    ("raw.screen", {"participant": ""}, "$.participant"),
    ("raw.screen", {"participant": "a b"}, "$.participant"),
    ("raw.screen", {"participant": "x" * 65}, "$.participant"),
    ("raw.screen", {"utc_offset_min": 900}, "$.utc_offset_min"),
    ("raw.screen", {"utc_offset_min": 1.5}, "$.utc_offset_min"),
    ("raw.call", {"duration_s": -1}, "$.duration_s"),
    ("raw.call", {"direction": "voicemail"}, "$.direction"),
    ("raw.sms", {"direction": "missed"}, "$.direction"),
    ("raw.location", {"lat": 91}, "$.lat"),
    ("raw.location", {"lon": -180.5}, "$.lon"),
    ("raw.ambient", {"voice": None}, "at least one"),
    ("raw.ambient", {"light_lux": -1}, "$.light_lux"),
    ("raw.survey", {"score": 26}, "$.score"),
    ("raw.survey", {"instrument": "phq9"}, "$.instrument"),
    ("features.hourly", {"local_hour": 24}, "$.local_hour"),
    ("features.hourly", {"filled": 1.5}, "$.filled"),
    ("rhythm.daily", {"day": "14/11/2023"}, "$.day"),
    ("events.stepup", {"source": "guess"}, "$.source"),
    ("events.stepup", {"day": None}, "at least one of ts, day"),  # undatable: no timeline to put it on
    ("events.ack", {"event_id": ""}, "$.event_id"),
]


def _bytes(obj: dict) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("topic", sorted(VALID))
def test_valid_examples_decode_to_their_type(topic: str) -> None:
    value = VALID[topic]
    event = c.decode(topic, value.get("participant", "p1").encode() if "participant" in value else None,
                     _bytes(value))
    assert isinstance(event, c.TOPIC_TYPES[topic]), event
    # Encoding and decoding again gives the same event (the contract round-trips).
    assert c.decode(topic, None, c.encode(event)) == event


@pytest.mark.parametrize(("topic", "change", "needle"), INVALID)
def test_invalid_examples_become_dead_letters_with_a_reason(topic: str, change: dict, needle: str) -> None:
    value = {**VALID[topic], **change}
    if change.get("voice", 0) is None:
        value.pop("voice")
    raw = _bytes(value)
    dl = c.decode(topic, None, raw, partition=2, offset=17)
    assert isinstance(dl, c.DeadLetter), dl
    assert needle in dl.error and dl.error.startswith(topic)
    assert (dl.topic, dl.partition, dl.offset) == (topic, 2, 17)
    assert dl.value.encode() == raw and dl.value_encoding == "utf-8"


def test_unknown_fields_are_ignored_not_errors() -> None:
    ev = c.decode("raw.screen", None, _bytes({**VALID["raw.screen"], "battery": 0.5}))
    assert isinstance(ev, c.Screen) and not hasattr(ev, "battery")


def test_key_must_match_participant() -> None:
    dl = c.decode("raw.screen", b"p2", _bytes(VALID["raw.screen"]))
    assert isinstance(dl, c.DeadLetter) and "differs from participant" in dl.error and dl.key == "p2"


def test_size_cap() -> None:
    big = {**VALID["raw.screen"], "pad": "x" * 2000}
    assert isinstance(c.decode("raw.screen", None, _bytes(big), max_bytes=1000), c.DeadLetter)
    assert isinstance(c.decode("raw.screen", None, _bytes(big), max_bytes=4000), c.Screen)


@pytest.mark.parametrize("raw", [b"", b"null", b"[1,2]", b"{", b'{"participant": "p1"}', b"\xff\xfe\x00"])
def test_garbage_is_dead_lettered(raw: bytes) -> None:
    dl = c.decode("raw.screen", None, raw)
    assert isinstance(dl, c.DeadLetter) and dl.error


def test_non_utf8_value_is_kept_as_base64() -> None:
    raw = b"\xff\x00\x81garbage"
    dl = c.decode("raw.call", b"p1", raw)
    assert isinstance(dl, c.DeadLetter)
    assert dl.value_encoding == "base64" and base64.b64decode(dl.value) == raw


def test_unknown_topic_and_null_value() -> None:
    assert "unknown topic" in c.decode("raw.gyro", None, b"{}").error
    assert "null value" in c.decode("raw.screen", None, None).error


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(sorted(c.TOPIC_TYPES)), key=st.none() | st.binary(max_size=70),
       raw=st.binary(max_size=300))
def test_decode_never_raises_on_arbitrary_bytes(topic: str, key: bytes | None, raw: bytes) -> None:
    out = c.decode(topic, key, raw)
    assert isinstance(out, (c.DeadLetter, c.TOPIC_TYPES[topic]))
    if isinstance(out, c.DeadLetter):
        restored = base64.b64decode(out.value) if out.value_encoding == "base64" else out.value.encode()
        assert restored == raw


_json_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(topic=st.sampled_from(sorted(t for t in VALID if t != "deadletter")), data=st.data())
def test_mutated_valid_events_never_raise_and_stay_typed(topic: str, data: st.DataObject) -> None:
    value = dict(VALID[topic])
    field = data.draw(st.sampled_from(sorted(value) + ["extra"]))
    action = data.draw(st.sampled_from(["drop", "replace"]))
    if action == "drop":
        value.pop(field, None)
    else:
        value[field] = data.draw(_json_scalars | st.lists(_json_scalars, max_size=3))
    raw = msgspec.json.encode(value)
    out = c.decode(topic, None, raw)
    assert isinstance(out, (c.DeadLetter, c.TOPIC_TYPES[topic]))
    if isinstance(out, c.DeadLetter):
        assert out.value.encode() == raw and out.error.startswith(topic)


def test_hourly_observed_is_optional_and_checked() -> None:
    """``observed`` (issue 13) round-trips; records written before it decode with None."""
    value = dict(VALID["features.hourly"])
    ev = c.decode("features.hourly", None, _bytes(value))
    assert ev.observed == ["accel", "screen"]
    del value["observed"]
    assert c.decode("features.hourly", None, _bytes(value)).observed is None
    bad = c.decode("features.hourly", None, _bytes({**value, "observed": "accel"}))
    assert isinstance(bad, c.DeadLetter) and "$.observed" in bad.error
