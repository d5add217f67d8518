"""RADAR-base pieces without a broker: schema directory, Confluent wire format, mapping, local time, writer."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import pytest
from fastavro import schemaless_writer

from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.importers.writer import CohortWriter
from phenoflow.connectors.radar import mapping as m
from phenoflow.connectors.radar.schemas import SchemaStore, derived_id
from phenoflow.connectors.radar.wire import WireError, decode, encode
from phenoflow.core.errors import UserError

SCHEMAS = Path(__file__).resolve().parents[3] / "data" / "radar" / "schemas"


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore.from_dir(SCHEMAS)


def _frame(sid: int, schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, record)
    return b"\x00" + struct.pack(">I", sid) + buf.getvalue()


def test_schema_dir_resolves_all_radar_records_and_ids_follow_the_fixed_rule(store: SchemaStore) -> None:
    assert m.OBSERVATION_KEY in store.by_name and m.ACCELERATION in store.by_name and m.QUESTIONNAIRE in store.by_name
    for name, schema in store.by_name.items():
        assert store.id_of(name) == derived_id(schema) and 0 <= store.id_of(name) < 2**31
        assert store.get(store.id_of(name)) is schema
    assert len({store.id_of(n) for n in store.by_name}) == len(store.by_name)


def test_schema_dir_ids_json_maps_registry_ids(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SCHEMAS, tmp_path / "s")
    (tmp_path / "s" / "ids.json").write_text(json.dumps({"17": m.LIGHT, "3": m.OBSERVATION_KEY}))
    st = SchemaStore.from_dir(tmp_path / "s")
    assert st.get(17)["name"] == m.LIGHT and st.get(3)["name"] == m.OBSERVATION_KEY and st.get(4) is None
    (tmp_path / "s" / "ids.json").write_text(json.dumps({"1": "org.example.Nope"}))
    with pytest.raises(UserError, match="org.example.Nope"):
        SchemaStore.from_dir(tmp_path / "s")
    with pytest.raises(UserError, match="not found"):
        SchemaStore.from_dir(tmp_path / "missing")


def test_wire_round_trip_and_each_failure_reason(store: SchemaStore) -> None:
    schema, sid = store.schema(m.USER_INTERACTION), store.id_of(m.USER_INTERACTION)
    rec = {"time": 1572019488.29, "timeReceived": 1572019488.5, "interactionState": "UNLOCKED"}
    data = _frame(sid, schema, rec)
    assert encode(sid, schema, rec) == data
    assert decode(data, store) == (m.USER_INTERACTION, rec)
    # Avro binary by hand: two little-endian doubles, then the enum index 1 as a zigzag varint (2).
    assert data[5:] == struct.pack("<dd", 1572019488.29, 1572019488.5) + b"\x02"
    cases = {
        b"\x01" + data[1:]: "wrong magic byte 1",
        b"\x00" + struct.pack(">I", 99) + data[5:]: "unknown schema id 99",
        data[:-2]: "truncated Avro",
        data[:-1] + b"\x12": "unknown enum",  # index 9 of 5 symbols
        data + b"\x00": "1 trailing bytes",
        data[:3]: "shorter than the 5-byte Confluent header",
        None: "null",
    }
    for bad, reason in cases.items():
        with pytest.raises(WireError, match=reason):
            decode(bad, store)


def test_acceleration_g_to_metres_per_second_squared() -> None:
    ev = m.map_value(m.ACCELERATION, "p1", {"time": 1572017970.926, "x": -0.5, "y": 0.25, "z": 1.0})
    assert ev == ("raw.accelerometer", {"participant": "p1", "ts": [1572017970.926], "x": [-4.903325],
                                        "y": [2.4516625], "z": [9.80665]})
    assert m.map_value(m.ACCELERATION, "p1", {"time": 1572017970.9, "x": 60.0, "y": 0.0, "z": 0.0}) == \
        m.Drop("acceleration out of range (|axis| > 500 m/s²)")
    assert isinstance(m.map_value(m.ACCELERATION, "p1", {"time": 1e12, "x": 0.0, "y": 0.0, "z": 0.0}), m.Drop)


def test_screen_call_sms_questionnaire_and_time_zone_maps() -> None:
    t = 1572019488.0
    ui = {s: m.map_value(m.USER_INTERACTION, "p", {"time": t, "interactionState": s})
          for s in ("UNLOCKED", "STANDBY", "SHUTDOWN", "BOOTED", "OTHER", "DIMMED")}
    assert ui["UNLOCKED"][1]["state"] == "unlock" and ui["STANDBY"][1]["state"] == "off" == ui["SHUTDOWN"][1]["state"]
    assert ui["BOOTED"] == m.Drop("interactionState BOOTED is no screen state")
    assert ui["DIMMED"] == m.Drop("unknown enum value of interactionState")
    call = m.map_value(m.CALL, "p", {"time": t, "type": "MISSED", "duration": 0.0})
    assert call == ("raw.call", {"participant": "p", "ts": t, "direction": "missed", "duration_s": 0.0})
    assert m.map_value(m.CALL, "p", {"time": t, "type": "INCOMING", "duration": None}) == m.Drop("call without duration")
    assert "VOICEMAIL" in m.map_value(m.CALL, "p", {"time": t, "type": "VOICEMAIL", "duration": 3.0}).reason
    assert m.map_value(m.SMS, "p", {"time": t, "type": "OUTGOING"})[1]["direction"] == "outgoing"
    phq8 = m.map_value(m.QUESTIONNAIRE, "p", {"time": t, "name": "PHQ8", "answers": [{"value": 1}] * 8})
    assert isinstance(phq8, m.Drop) and "not WHO-5" in phq8.reason
    who5 = m.map_value(m.QUESTIONNAIRE, "p", {"time": t, "timeCompleted": t + 60, "name": "WHO-5",
                                             "answers": [{"value": v} for v in (3, 4, 2, 5, 1)]})
    assert who5 == ("raw.survey", {"participant": "p", "ts": t + 60, "instrument": "who5", "score": 15})
    assert m.map_value(m.TIME_ZONE, "p", {"time": t, "offset": 3600}) == m.TimeZoneChange("p", t, 60)
    assert isinstance(m.map_value(m.TIME_ZONE, "p", {"time": t, "offset": 3601}), m.Drop)
    loc = m.map_value(m.RELATIVE_LOCATION, "p", {"time": t, "latitude": 1.5, "longitude": 200.0, "accuracy": 20.0})
    assert loc[1]["lon"] == pytest.approx(-160.0) and loc[1]["accuracy_m"] == 20.0
    assert m.map_value(m.RELATIVE_LOCATION, "p", {"time": t, "latitude": 95.0, "longitude": 0.0}) == \
        m.Drop("latitude out of range [-90, 90]")


def test_local_time_step_function_zone_fallback_and_chunk_split() -> None:
    lt = m.LocalTime("Europe/London")
    assert lt.offset_at(1571000000.0) == 60  # 2019-10-13, BST, before any record: the configured zone
    assert lt.offset_at(1572300000.0) == 0  # 2019-10-28, GMT
    lt.add(1572195300.0, 0)
    lt.add(1572043525.0, 60)  # out of order on purpose
    assert lt.offset_at(1572043524.0) == 60 and lt.offset_at(1572150000.0) == 60  # after the DST instant, still +60
    assert lt.offset_at(1572195300.0) == 0
    chunk = {"participant": "p", "ts": [1572195299.0, 1572195300.0, 1572195301.0], "x": [1.0, 2.0, 3.0],
             "y": [0.0] * 3, "z": [0.0] * 3}
    pieces = lt.apply("raw.accelerometer", chunk)
    assert [(p["ts"], p["x"], p["utc_offset_min"]) for p in pieces] == [
        ([1572195299.0], [1.0], 60), ([1572195300.0, 1572195301.0], [2.0, 3.0], 0)]
    assert m.LocalTime().offset_at(1572150000.0) == 0  # no zone configured: UTC


def test_coalesce_joins_runs_per_participant_up_to_the_limit() -> None:
    def s(p: str, t: float) -> tuple[str, dict]:
        return "raw.accelerometer", {"participant": p, "ts": [t], "x": [t], "y": [0.0], "z": [0.0]}

    items = [s("a", 1), s("a", 2), s("a", 3), s("b", 4), ("raw.screen", {"participant": "a", "ts": 5.0}), s("a", 6),
             s("a", 5.5)]
    out = list(m.coalesce(items, limit=2))
    assert [(v["participant"], v["ts"]) for _, v in out] == [
        ("a", [1, 2]), ("a", [3]), ("b", [4]), ("a", 5.0), ("a", [6]), ("a", [5.5])]


def test_writer_sorts_across_spilled_runs_and_validates(tmp_path: Path) -> None:
    report = ImportReport(format="test")
    w = CohortWriter(tmp_path, report, spill_bytes=200)  # spills every few events
    times = [5.0, 1.0, 3.0, 2.0, 9.0, 4.0, 4.0, 8.0]
    for i, t in enumerate(times):
        w.add("raw.screen", {"participant": f"p{i % 2}", "ts": 1572000000.0 + t, "state": "on"})
    w.add("raw.accelerometer", {"participant": "p0", "ts": [1572000000.0], "x": [1.0], "y": [0.0], "z": [9.8]})
    with pytest.raises(ValueError, match="invalid raw.screen"):
        w.add("raw.screen", {"participant": "p0", "ts": 1572000000.0, "state": "dim"})
    w.close()
    lines = [json.loads(line) for line in (tmp_path / "screen.jsonl").read_text().splitlines()]
    assert [r["ts"] - 1572000000.0 for r in lines] == sorted(times)
    assert [r["participant"] for r in lines if r["ts"] == 1572000004.0] == ["p1", "p0"]  # ties keep arrival order
    assert len(gzip.decompress((tmp_path / "accelerometer.jsonl.gz").read_bytes()).splitlines()) == 1
    assert (tmp_path / "participants.csv").read_text().split() == ["participant", "p0", "p1"]
    assert json.loads((tmp_path / "import_report.json").read_text())["written"] == {"raw.screen": 8, "raw.accelerometer": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".import-")]


def test_default_radar_topics_are_known_and_none_is_read_only_to_be_dropped() -> None:
    from phenoflow.core.config import Settings

    topics = Settings().radar_topics.split(",")
    assert topics and all(t in m.TOPIC_SCHEMA for t in topics), topics
    # PHQ-8 is not WHO-5: reading it by default would dead-letter every record (and trip the
    # dead-letter-rate alert); docs/real-data.md says how to add it.
    assert "questionnaire_phq8" not in topics
