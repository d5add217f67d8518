"""AWARE reader: counts, mapping, units, time zones, drops, privacy, clear errors.

Real niimpy sample (tests/data/aware/niimpy) and a SYNTHETIC AWARE database
export (tests/data/aware/synthetic, written by tests/data/make_synthetic_exports.py).
Expected values are recomputed here from the CSV rows with the csv module.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from phenoflow.connectors.importers.aware import read_aware
from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.importers.rows import AccelChunker
from phenoflow.core.contract import MAX_CHUNK, MAX_MESSAGE_BYTES, DeadLetter, decode
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import pseudonymize

DATA = Path(__file__).resolve().parents[3] / "data" / "aware"
NIIMPY, SYNTH = DATA / "niimpy", DATA / "synthetic"
KEY = b"k" * 32
DST_END = 1572138000.0  # 2019-10-27 01:00 UTC: Europe/London goes from BST (+60) to GMT (0)


def pseudo(project: str, user: str) -> str:
    return pseudonymize(project, user, KEY)


def run(src: Path, participant: str | None = None) -> tuple[list[tuple[str, dict]], ImportReport]:
    report = ImportReport("aware")
    events = list(read_aware(src, pseudonym=pseudo, report=report, participant=participant))
    return events, report


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def valid(topic: str, value: dict) -> None:
    ev = decode(topic, value["participant"].encode(), msgspec.json.encode(value))
    assert not isinstance(ev, DeadLetter), ev.error


def test_niimpy_sample_maps_every_row_and_counts_add_up() -> None:
    events, report = run(NIIMPY)
    for topic, value in events:
        valid(topic, value)
    screen, calls = rows(NIIMPY / "multiuser_AwareScreen.csv"), rows(NIIMPY / "multiuser_AwareCalls.csv")
    msgs, gps = rows(NIIMPY / "multiuser_AwareMessages.csv"), rows(NIIMPY / "gps.csv")
    battery = rows(NIIMPY / "multiuser_AwareBattery.csv")
    j = report.to_json()["streams"]
    assert {k: v["read"] for k, v in j.items()} == {
        "screen": len(screen), "calls": len(calls), "messages": len(msgs), "gps": len(gps), "battery": len(battery)}
    assert all(v["balanced"] for v in j.values())
    assert j["battery"]["dropped"] == {"stream not used by phenoflow": len(battery)}
    by_topic = Counter(t for t, _ in events)
    assert by_topic == {"raw.screen": len(screen), "raw.call": len(calls), "raw.sms": len(msgs),
                        "raw.location": len(gps)}
    # screen_status 0 off, 1 on, 2 locked → off, 3 unlocked → unlock
    want = Counter({"0": "off", "1": "on", "2": "off", "3": "unlock"}[r["screen_status"]] for r in screen)
    assert Counter(v["state"] for t, v in events if t == "raw.screen") == want
    # Calls keep file order: directions, durations (s) and times (s) row by row.
    got = [(v["ts"], v["direction"], v["duration_s"]) for t, v in events if t == "raw.call"]
    assert got == [(float(r["time"]), r["call_type"], float(r["call_duration"])) for r in calls]
    assert [v["direction"] for t, v in events if t == "raw.sms"] == [r["message_type"] for r in msgs]
    fixes = [(v["ts"], v["lat"], v["lon"]) for t, v in events if t == "raw.location"]
    assert fixes == [(float(r["time"]), float(r["double_latitude"]), float(r["double_longitude"])) for r in gps]
    # Participants are niimpy users (one user, two devices → one participant) and GPS users.
    users = {r["user"] for r in screen + calls + msgs + gps}
    assert report.participants == len(users) == 5
    assert {v["participant"] for _, v in events} == {pseudo("aware", u) for u in users}
    assert all("utc_offset_min" not in v for _, v in events)
    assert set(report.timezone_source.values()) == {"none in export: participants.csv timezone if set, else UTC"}


def test_database_export_units_chunks_and_time_zone() -> None:
    events, report = run(SYNTH)
    for topic, value in events:
        valid(topic, value)
    acc_rows = rows(SYNTH / "accelerometer.csv")
    chunks = [v for t, v in events if t == "raw.accelerometer"]
    assert all(1 <= len(c["ts"]) <= MAX_CHUNK for c in chunks)
    assert all(len({int(t // 3600) for t in c["ts"]}) == 1 for c in chunks)  # one UTC hour each
    samples = [(t, x, y, z, c["participant"]) for c in chunks for t, x, y, z in zip(c["ts"], c["x"], c["y"], c["z"], strict=True)]
    assert samples == [(int(r["timestamp"]) / 1000, float(r["double_values_0"]), float(r["double_values_1"]),
                        float(r["double_values_2"]), pseudo("aware", r["device_id"])) for r in acc_rows]
    dev_a, dev_b = (pseudo("aware", d) for d in ("6c0ffee0-aaaa-4bcd-9ef0-device0aware1",
                                                  "6c0ffee0-bbbb-4bcd-9ef0-device0aware2"))
    # Device A has a timezone table (Europe/London): BST (+60) until 01:00 UTC on 2019-10-27, then GMT.
    for _, v in events:
        ts = v["ts"][0] if isinstance(v["ts"], list) else v["ts"]
        if v["participant"] == dev_a:
            assert v["utc_offset_min"] == (60 if ts < DST_END else 0), v
        else:
            assert "utc_offset_min" not in v
    assert report.timezone_source == {dev_a: "AWARE timezone table",
                                      dev_b: "none in export: participants.csv timezone if set, else UTC"}
    j = report.to_json()["streams"]
    assert all(v["balanced"] for v in j.values()) and j["accelerometer"]["read"] == len(acc_rows)
    assert j["timezone"]["mapped"] == len(rows(SYNTH / "timezone.csv"))
    assert "ms ÷ 1000" in report.conversions["calls"] and "m/s²" in report.conversions["accelerometer"]
    lux = [v["light_lux"] for t, v in events if t == "raw.ambient"]
    assert lux == [float(r["double_light_lux"]) for r in rows(SYNTH / "light.csv")]
    acc_m = [v.get("accuracy_m") for t, v in events if t == "raw.location"]
    assert acc_m == [float(r["accuracy"]) for r in rows(SYNTH / "locations.csv")]
    calls = rows(SYNTH / "calls.csv")
    assert [v["direction"] for t, v in events if t == "raw.call"] == [
        {"1": "incoming", "2": "outgoing", "3": "missed"}[r["call_type"]] for r in calls]


def test_raw_ids_never_leave_the_reader() -> None:
    raw: set[str] = set()
    for folder in (NIIMPY, SYNTH):
        for path in folder.glob("*.csv"):
            for r in rows(path):
                raw |= {r[c] for c in ("user", "device", "device_id", "trace") if r.get(c)}
    out = ""
    for folder in (NIIMPY, SYNTH):
        events, report = run(folder)
        out += msgspec.json.encode([v for _, v in events]).decode() + json.dumps(report.to_json())
    assert len(raw) > 100
    leaked = [r for r in raw if r in out]
    assert not leaked


def _copy(tmp_path: Path, *names: str) -> Path:
    dst = tmp_path / "src"
    dst.mkdir()
    for n in names:
        shutil.copy(SYNTH / n, dst / n)
    return dst


def test_truncated_gzip_is_one_clear_line(tmp_path: Path) -> None:
    src = _copy(tmp_path, "calls.csv")
    data = gzip.compress((SYNTH / "screen.csv").read_bytes())
    (src / "screen.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as exc:
        run(src)
    msg = str(exc.value)
    assert "screen.csv.gz" in msg and "gzip" in msg and "—" in msg and "\n" not in msg
    # The intact gzip reads the same rows as the plain file.
    (src / "screen.csv.gz").write_bytes(data)
    events, _ = run(src)
    assert sum(t == "raw.screen" for t, _ in events) == len(rows(SYNTH / "screen.csv"))


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "calls.csv").write_text("_id,timestamp,device_id,call_duration\n1,1572048000000,d1,30\n")
    with pytest.raises(UserError, match=r"calls\.csv: missing column\(s\) call_type"):
        run(src)


def test_non_numeric_and_unknown_values_are_counted_drops(tmp_path: Path) -> None:
    src = _copy(tmp_path, "messages.csv")
    good = "1,1572048000000,d1,1\n2,1572048001000,d1,0\n"
    (src / "screen.csv").write_text("_id,timestamp,device_id,screen_status\n" + good
                                    + "3,1572048002000,d1,7\n4,soon,d1,1\n5,1572048003000,d1\n")
    (src / "accelerometer.csv").write_text(
        "_id,timestamp,device_id,double_values_0,double_values_1,double_values_2\n"
        "1,1572048000000,d1,0.1,0.2,9.8\n2,1572048000200,d1,abc,0.2,9.8\n3,1572048000400,d1,0.1,0.2,9999\n"
        "4,1572048000600,d1,0.1,0.2,9.7\n")
    (src / "calls.csv").write_text("_id,timestamp,device_id,call_type,call_duration\n"
                                   "1,1572048000000,d1,9,10\n2,1572048000000,d1,2,-4\n3,1572048000000,d1,2,4\n")
    events, report = run(src)
    s = report.streams
    assert s["screen"].read == 5 and s["screen"].mapped == 2
    assert s["screen"].dropped == Counter({"unknown screen_status (expected 0, 1, 2, 3)": 1,
                                           "timestamp not a number": 1,
                                           "row has a different number of fields than the header": 1})
    assert s["accelerometer"].read == 4 and s["accelerometer"].mapped == 2
    assert sum(s["accelerometer"].dropped.values()) == 2
    assert [c["x"] for t, c in events if t == "raw.accelerometer"] == [[0.1, 0.1]]
    assert s["calls"].mapped == 1 and set(s["calls"].dropped) == {
        "unknown call_type (expected 1 incoming, 2 outgoing, 3 missed, 5, 6)",
        "call_duration not a number of seconds in 0–172800"}
    assert s["messages"].mapped == len(rows(SYNTH / "messages.csv"))  # other files lose nothing
    assert all(c.balanced() for c in s.values())


def test_every_row_non_numeric_drops_every_row(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "light.csv").write_text("_id,timestamp,device_id,double_light_lux\n"
                                   + "".join(f"{i},{1572048000000 + i},d1,dark\n" for i in range(5)))
    events, report = run(src)
    assert events == [] and report.streams["light"].dropped == Counter({"double_light_lux not a number ≥ 0": 5})


def test_single_device_export_needs_participant(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "screen.csv").write_text("_id,timestamp,screen_status\n1,1572048000000,1\n2,1572048060000,0\n")
    with pytest.raises(UserError, match="--participant"):
        run(src)
    events, report = run(src, participant="study-42")
    assert {v["participant"] for _, v in events} == {pseudo("aware", "study-42")}
    assert "study-42" not in json.dumps(report.to_json())


def test_bad_zone_rows_are_dropped_and_folder_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "timezone.csv").write_text("_id,timestamp,device_id,timezone\n1,1572048000000,d1,Mars/Olympus\n"
                                      "2,1572048000000,d1,America/New_York\n")
    (src / "messages.csv").write_text("_id,timestamp,device_id,message_type\n1,1572048000000,d1,2\n")
    events, report = run(src)
    assert report.streams["timezone"].dropped == Counter({"timezone is not an IANA zone name": 1})
    assert events[0][1]["utc_offset_min"] == -240  # New York, EDT on 2019-10-26
    with pytest.raises(UserError, match="not a folder"):
        run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no CSV tables"):
        run(tmp_path / "empty")


def test_a_full_chunk_with_longest_float_texts_fits_one_message() -> None:
    """10,000 samples whose numbers print as long as floats get stay under the 1-MiB cap."""
    chunker = AccelChunker()
    t0 = 1572048000.0199999
    out = [chunker.add("p" * 21, -720, t0 + 0.02 * i, -1.2345678901234567e-05, -9.806650000000001,
                       -123.45678901234567) for i in range(MAX_CHUNK + 1)]
    chunk = next(c for c in out if c is not None)
    assert len(chunk["ts"]) == MAX_CHUNK
    data = msgspec.json.encode(chunk)
    assert len(data) < MAX_MESSAGE_BYTES
    assert not isinstance(decode("raw.accelerometer", None, data), DeadLetter)
