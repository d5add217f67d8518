"""Live RADAR-base source on the real broker: Avro (Confluent wire format) in, `run --source radar`, features out.

The shared RADAR sample (tests/data/radar) is Avro-encoded with the real
RADAR-Schemas and produced to the embedded broker in RADAR-base's topic layout;
bad messages are mixed in. The flow's features.hourly must equal the
independent computation from the CSV rows (radar_expect.py) to 1e-9, every bad
message must reach deadletter with its original bytes and a reason, and no raw
userId or sourceId may appear in any output topic or log line.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import NewTopic
from radar_expect import PROJECT, SCHEMAS, SECRET, TOPICS, USER, ZONE, check_hourly, encoded_messages, framed, raw_ids

from phenoflow.connectors.kafka.clients import admin, ensure_topics, producer
from phenoflow.connectors.radar.schemas import SchemaStore
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, settings_env
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.core.pseudonym import pseudonymize

pytestmark = pytest.mark.integration


def _dump(settings: Settings, topic: str) -> list[dict]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.0)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _bad_messages(store: SchemaStore, key: bytes) -> dict[str, tuple[str, bytes | None, bytes]]:
    """reason fragment → (topic, key, value) of a message that must be dead-lettered."""
    light = "org.radarcns.passive.phone.PhoneLight"
    ui = "org.radarcns.passive.phone.PhoneUserInteraction"
    good_light = framed(store.id_of(light), store.schema(light), {"time": 1572100000.0, "timeReceived": 1572100000.0,
                                                                  "light": 5.0})
    good_ui = framed(store.id_of(ui), store.schema(ui), {"time": 1572100000.0, "timeReceived": 1572100000.0,
                                                         "interactionState": "UNLOCKED"})
    return {
        "wrong magic byte 7": ("android_phone_light", key, b"\x07" + good_light[1:]),
        "unknown schema id 424242": ("android_phone_light", key, b"\x00" + (424242).to_bytes(4, "big") + good_light[5:]),
        "truncated Avro": ("android_phone_light", key, good_light[:-2]),
        "unknown enum": ("android_phone_user_interaction", key, good_ui[:-1] + b"\x14"),  # enum index 10 of 5
        "light out of range": ("android_phone_light", key, framed(store.id_of(light), store.schema(light),
                                                                  {"time": 1572100000.0, "timeReceived": 1.0,
                                                                   "light": -3.0})),
        "key has wrong magic byte 1": ("android_phone_light", b"\x01" + key[1:], good_light),
    }


def test_radar_source_features_equal_csv_computation(kafka: Settings) -> None:
    store = SchemaStore.from_dir(SCHEMAS)
    prefix = kafka.topic_prefix
    client = admin(kafka)
    for fut in client.create_topics([NewTopic(prefix + t, num_partitions=2, replication_factor=1)
                                     for t in TOPICS]).values():
        fut.result(10)
    ensure_topics(kafka, ALL_TOPICS)
    prod = producer(kafka)
    first_key = None
    n = 0
    for _, topic, key, value in encoded_messages(store):
        prod.produce(prefix + topic, value=value, key=key)
        first_key = first_key or key
        n += 1
        if n % 20000 == 0:
            prod.flush()
    bad = _bad_messages(store, first_key)
    for topic, key, value in bad.values():
        prod.produce(prefix + topic, value=value, key=key)
    assert prod.flush(30) == 0

    env = {**os.environ, **settings_env(kafka), "PHENOFLOW_SOURCE": "radar",
           "PHENOFLOW_RADAR_SCHEMAS_DIR": str(SCHEMAS), "PHENOFLOW_PSEUDONYM_SECRET": SECRET,
           "PHENOFLOW_RADAR_TIMEZONE": ZONE, "PHENOFLOW_RADAR_TOPICS": ",".join(prefix + t for t in TOPICS)}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--until-end"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]

    pid = pseudonymize(PROJECT, USER, SECRET.encode())
    hourly = _dump(kafka, "features.hourly")
    assert {r["participant"] for r in hourly} == {pid}
    assert check_hourly(hourly, pid) >= 40
    by_hour = {r["hour_start"]: r for r in hourly}
    # 2019-10-27: the recorded offset (+60) holds past the UK's DST change until its 16:55 UTC record (0).
    assert by_hour[1572138000.0]["local_hour"] == 2 and by_hour[1572138000.0]["utc_offset_min"] == 60  # 01:00 UTC
    assert by_hour[1572195600.0]["local_hour"] == 17 and by_hour[1572195600.0]["utc_offset_min"] == 0  # 17:00 UTC

    dead = _dump(kafka, "deadletter")
    radar_dead = [d for d in dead if d["topic"].startswith(prefix)]
    for fragment, (topic, _key, value) in bad.items():
        hits = [d for d in radar_dead if fragment in d["error"]]
        assert len(hits) == 1, (fragment, [d["error"] for d in radar_dead])
        d = hits[0]
        assert d["topic"] == prefix + topic
        assert base64.b64decode(d["value"]) == value if d["value_encoding"] == "base64" else d["value"].encode() == value
    # The PHQ-8 questionnaire and the 2 BOOTED interactions are dropped with their reasons, nothing else.
    assert sum("not WHO-5" in d["error"] for d in radar_dead) == 1
    assert sum("BOOTED" in d["error"] for d in radar_dead) == 2
    assert len(radar_dead) == len(bad) + 3

    # Privacy: no raw userId or sourceId in any output topic or in the flow's log.
    outputs = json.dumps(hourly) + json.dumps(dead) + res.stdout + res.stderr
    for raw in raw_ids():
        assert raw not in outputs
    assert all(d["key"] in (None, pid) for d in radar_dead)
