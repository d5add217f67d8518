"""Test helpers for the RADAR-base tests: the CSV rows, their Avro encoding, and features computed independently.

The expected hourly values are computed here straight from the CSV rows with
plain Python (csv, gzip, math, zoneinfo), not through phenoflow's mapping:
mean ‖a‖ per UTC hour in m/s² (the CSV's g values as the 32-bit Avro floats
they are on the cluster, × 9.80665), UNLOCKED counts, mean lux, and the local
hour from the application_time_zone rows (each offset from its time until the
next; Europe/London before the first).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import struct
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from fastavro import schemaless_writer

DATA = Path(__file__).resolve().parent.parent / "data" / "radar"
EXPORT = DATA / "export"
SCHEMAS = DATA / "schemas"
USER = "072ddb22-82ef-4b81-8460-41ab096b54bb"
PROJECT = "STAGING_PROJECT"
ZONE = "Europe/London"
SECRET = "radar-test-secret"
TOPICS = ["application_time_zone", "android_phone_acceleration", "android_phone_user_interaction",
          "android_phone_light", "android_phone_relative_location", "questionnaire_phq8"]
VALUE_SCHEMA = {
    "application_time_zone": "org.radarcns.monitor.application.ApplicationTimeZone",
    "android_phone_acceleration": "org.radarcns.passive.phone.PhoneAcceleration",
    "android_phone_user_interaction": "org.radarcns.passive.phone.PhoneUserInteraction",
    "android_phone_light": "org.radarcns.passive.phone.PhoneLight",
    "android_phone_relative_location": "org.radarcns.passive.phone.PhoneRelativeLocation",
    "questionnaire_phq8": "org.radarcns.active.questionnaire.Questionnaire",
}
G = 9.80665
_F32 = struct.Struct("<f")


def f32(v: float) -> float:
    return _F32.unpack(_F32.pack(v))[0]


def rows(topic: str, export: Path = EXPORT) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for f in sorted((export / USER / topic).glob("*.csv.gz")):
        with gzip.open(f, "rt", newline="") as fh:
            out.extend(csv.DictReader(fh))
    return out


def raw_ids(export: Path = EXPORT) -> set[str]:
    """Every userId and sourceId in the sample (must appear in no output)."""
    ids = {USER}
    for t in TOPICS:
        ids.update(r["key.sourceId"] for r in rows(t, export))
    return ids


def _avro_value(schema: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the Avro record of ``schema`` (parsed by fastavro)."""
    out: dict[str, Any] = {}
    for field in schema["fields"]:
        name, typ = field["name"], field["type"]
        if isinstance(typ, dict) and typ.get("type") == "array":
            answers = []
            i = 0
            while f"value.{name}.{i}.value" in row:
                pre = f"value.{name}.{i}."
                answers.append({"questionId": row[pre + "questionId"] or None, "value": int(row[pre + "value"]),
                                "startTime": float(row[pre + "startTime"]), "endTime": float(row[pre + "endTime"])})
                i += 1
            out[name] = answers
            continue
        text = row.get(f"value.{name}", "")
        branches = typ if isinstance(typ, list) else [typ]
        if text == "" and "null" in branches:
            out[name] = None
            continue
        kind = next(b for b in branches if b != "null")
        kind = kind if isinstance(kind, str) else kind.get("type")
        out[name] = (float(text) if kind in ("double", "float") else int(text) if kind in ("int", "long")
                     else text)
    return out


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Confluent wire format written out by hand: magic 0, id (4 bytes BE), Avro binary."""
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(buf, schema, record)
    return buf.getvalue()


def encoded_messages(store: Any) -> Iterator[tuple[float, str, bytes, bytes]]:
    """(time, topic, key bytes, value bytes) of every row of the sample, in time order."""
    key_name = "org.radarcns.kafka.ObservationKey"
    key_schema, key_id = store.schema(key_name), store.id_of(key_name)
    out = []
    for topic in TOPICS:
        name = VALUE_SCHEMA[topic]
        schema, sid = store.schema(name), store.id_of(name)
        for r in rows(topic):
            key = framed(key_id, key_schema, {"projectId": r["key.projectId"] or None, "userId": r["key.userId"],
                                              "sourceId": r["key.sourceId"]})
            out.append((float(r["value.time"]), topic, key, framed(sid, schema, _avro_value(schema, r))))
    out.sort(key=lambda m: m[0])
    return iter(out)


def _offset(ts: float, changes: list[tuple[float, int]]) -> int:
    before = [off for t, off in changes if t <= ts]
    if before:
        return before[-1] // 60
    off = datetime.fromtimestamp(ts, timezone.utc).astimezone(ZoneInfo(ZONE)).utcoffset()
    return int(off.total_seconds() // 60)


def expected_hours(export: Path = EXPORT) -> dict[float, dict[str, float]]:
    """hour_start → accel_mean (if samples), light_lux_mean (if readings), screen_unlocks, local_hour,
    for every UTC hour that has data of a mapped stream."""
    changes = sorted((float(r["value.time"]), int(r["value.offset"])) for r in rows("application_time_zone", export))
    mags: dict[float, list[float]] = defaultdict(list)
    lux: dict[float, list[float]] = defaultdict(list)
    unlocks: dict[float, int] = defaultdict(int)
    newest: dict[float, float] = {}

    def seen(t: float) -> float:
        h = math.floor(t / 3600.0) * 3600.0
        newest[h] = max(newest.get(h, t), t)
        return h

    for r in rows("android_phone_acceleration", export):
        x, y, z = (f32(float(r[f"value.{a}"])) * G for a in "xyz")
        mags[seen(float(r["value.time"]))].append(math.sqrt(x * x + y * y + z * z))
    for r in rows("android_phone_light", export):
        lux[seen(float(r["value.time"]))].append(f32(float(r["value.light"])))
    for r in rows("android_phone_user_interaction", export):
        state = r["value.interactionState"]
        if state in ("UNLOCKED", "STANDBY", "SHUTDOWN"):
            h = seen(float(r["value.time"]))
            unlocks[h] += state == "UNLOCKED"
    for r in rows("android_phone_relative_location", export):
        seen(float(r["value.time"]))
    out: dict[float, dict[str, float]] = {}
    for h, t in newest.items():
        off = _offset(t, changes)
        rec: dict[str, float] = {"screen_unlocks": float(unlocks.get(h, 0)),
                                 "local_hour": float(int((h + off * 60) // 3600) % 24), "utc_offset_min": off}
        if mags.get(h):
            rec["accel_mean"] = sum(mags[h]) / len(mags[h])
        if lux.get(h):
            rec["light_lux_mean"] = sum(lux[h]) / len(lux[h])
        out[h] = rec
    return out


def check_hourly(records: list[dict], pid: str, export: Path = EXPORT) -> int:
    """Assert the features.hourly records equal the independent computation; return hours checked."""
    expected = expected_hours(export)
    got = {r["hour_start"]: r for r in records if r["participant"] == pid}
    assert set(expected) <= set(got), sorted(set(expected) - set(got))[:5]
    for h, exp in expected.items():
        rec = got[h]
        assert rec["filled"] < 1.0, h  # an hour with data is never a type-2 (imputed) hour
        assert rec["local_hour"] == exp["local_hour"] and rec["utc_offset_min"] == exp["utc_offset_min"], (h, rec)
        assert rec["features"]["screen_unlocks"] == exp["screen_unlocks"], h
        for name in ("accel_mean", "light_lux_mean"):
            if name in exp:
                assert abs(rec["features"][name] - exp[name]) <= 1e-9, (h, name, rec["features"][name], exp[name])
    return len(expected)
