"""Beiwe reader: real GPS sample, synthetic Android/iOS streams (units, power_state, calls,
texts), platform detection, drops, privacy and clear errors.

Expected values are recomputed here from the CSV rows with the csv module.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from phenoflow.connectors.importers.beiwe import read_beiwe
from phenoflow.connectors.importers.report import ImportReport
from phenoflow.core.contract import DeadLetter, decode
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import pseudonymize

DATA = Path(__file__).resolve().parents[3] / "data" / "beiwe"
KEY = b"b" * 32
G = 9.80665


def pseudo(project: str, user: str) -> str:
    return pseudonymize(project, user, KEY)


def run(src: Path, participant: str | None = None) -> tuple[list[tuple[str, dict]], ImportReport]:
    report = ImportReport("beiwe")
    return list(read_beiwe(src, pseudonym=pseudo, report=report, participant=participant)), report


def rows(folder: Path) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="") as fh:
            out += list(csv.DictReader(fh))
    return out


def test_real_gps_sample() -> None:
    events, report = run(DATA / "idr8gqdh")
    gps = rows(DATA / "idr8gqdh" / "gps")
    assert len(gps) == 33
    assert [(t, v["ts"], v["lat"], v["lon"], v["accuracy_m"]) for t, v in events] == [
        ("raw.location", int(r["timestamp"]) / 1000, float(r["latitude"]), float(r["longitude"]),
         float(r["accuracy"])) for r in gps]
    assert {v["participant"] for _, v in events} == {pseudo("beiwe", "idr8gqdh")}
    assert report.to_json()["streams"] == {"gps": {"read": 33, "mapped": 33, "dropped": {}, "balanced": True}}
    for t, v in events:
        assert not isinstance(decode(t, None, msgspec.json.encode(v)), DeadLetter)


def test_whole_export_units_and_mappings() -> None:
    events, report = run(DATA)
    for t, v in events:
        ev = decode(t, v["participant"].encode(), msgspec.json.encode(v))
        assert not isinstance(ev, DeadLetter), ev.error
    assert report.participants == 3
    andr, ios = pseudo("beiwe", "synandr1"), pseudo("beiwe", "synios02")
    # Accelerometer: Android m/s² unchanged, iOS g × 9.80665.
    for raw, pid, factor in (("synandr1", andr, 1.0), ("synios02", ios, G)):
        want = [(int(r["timestamp"]) / 1000, float(r["x"]) * factor, float(r["z"]) * factor)
                for r in rows(DATA / raw / "accelerometer")]
        got = [(t, x, z) for tp, c in events if tp == "raw.accelerometer" and c["participant"] == pid
               for t, x, z in zip(c["ts"], c["x"], c["z"], strict=True)]
        assert got == want
        mags = [math.hypot(*xyz) for tp, c in events if tp == "raw.accelerometer" and c["participant"] == pid
                for xyz in zip(c["x"], c["y"], c["z"], strict=True)]
        assert 8.0 < sorted(mags)[len(mags) // 2] < 12.0  # both ≈ 1 g once in m/s²
    assert "identifiers device_os" in report.conversions["accelerometer"]
    # power_state: Android on/off; iOS Unlocked → unlock, Locked → off; battery events dropped.
    for raw, pid, table in (("synandr1", andr, {"Screen turned on": "on", "Screen turned off": "off"}),
                            ("synios02", ios, {"Unlocked": "unlock", "Locked": "off"})):
        want = [table[r["event"]] for r in rows(DATA / raw / "power_state") if r["event"] in table]
        assert [v["state"] for t, v in events if t == "raw.screen" and v["participant"] == pid] == want
    ps = report.streams["power_state"]
    assert ps.dropped == Counter({"not a screen event (charging, power save, doze, …)": 12})
    calls = rows(DATA / "synandr1" / "calls")
    assert [(v["direction"], v["duration_s"]) for t, v in events if t == "raw.call"] == [
        ({"Incoming Call": "incoming", "Outgoing Call": "outgoing", "Missed Call": "missed"}[r["call type"]],
         float(r["duration in seconds"] or 0)) for r in calls]
    assert any(r["call type"] == "Missed Call" and r["duration in seconds"] == "" for r in calls)
    texts = rows(DATA / "synandr1" / "texts")
    assert [v["direction"] for t, v in events if t == "raw.sms"] == [
        "outgoing" if r["sent vs received"].startswith("sent") else "incoming" for r in texts]
    assert all(c.balanced() for c in report.streams.values())
    assert report.streams["identifiers"].read == 2 and report.streams["identifiers"].mapped == 0


def test_raw_ids_and_phone_hashes_never_leave_the_reader() -> None:
    events, report = run(DATA)
    out = msgspec.json.encode([v for _, v in events]).decode() + json.dumps(report.to_json())
    secret = {"idr8gqdh", "synandr1", "synios02"}
    for stream in ("calls", "texts"):
        secret |= {r["hashed phone number"] for r in rows(DATA / "synandr1" / stream)}
    secret |= {r["device_id"] for r in rows(DATA / "synios02" / "identifiers")}
    assert len(secret) > 10
    assert not [s for s in secret if s in out]
    peers = {v["peer"] for t, v in events if t in ("raw.call", "raw.sms")}
    assert peers and all(p.startswith("p") and len(p) == 21 for p in peers)


def _participant_copy(tmp_path: Path, raw: str, *drop: str) -> Path:
    dst = tmp_path / "export" / raw
    shutil.copytree(DATA / raw, dst)
    for d in drop:
        shutil.rmtree(dst / d)
    return dst


def test_platform_falls_back_to_power_state_then_magnitude(tmp_path: Path) -> None:
    src = _participant_copy(tmp_path, "synios02", "identifiers")
    _, report = run(src)
    assert "power_state event names" in report.conversions["accelerometer"]
    shutil.rmtree(src / "power_state")
    events, report = run(src)
    assert "inferred from median |a|" in report.conversions["accelerometer"]
    want = [float(r["x"]) * G for r in rows(DATA / "synios02" / "accelerometer")]
    assert [x for _, c in events for x in c["x"]] == want


def test_bad_rows_are_counted_drops_and_bad_files_clear_errors(tmp_path: Path) -> None:
    src = _participant_copy(tmp_path, "synandr1", "accelerometer", "texts", "power_state")
    calls = src / "calls" / "2021-12-15 09_00_00+00_00.csv"
    calls.write_text("timestamp,UTC time,hashed phone number,call type,duration in seconds\n"
                     "1639558800000,x,h1,Video Call,10\n1639558801000,x,h1,Incoming Call,ten\n"
                     "nan,x,h1,Incoming Call,10\n1639558802000,x,h1,Outgoing Call,12\n")
    events, report = run(src)
    c = report.streams["calls"]
    n_before = len(rows(DATA / "synandr1" / "calls"))
    assert c.read == n_before + 4 and c.mapped == n_before + 1 and c.balanced()
    assert c.dropped == Counter({"unknown call type (expected Incoming/Outgoing/Missed Call)": 1,
                                 "duration in seconds not a number in 0–172800": 1,
                                 "timestamp not a number of ms in 2000–2100": 1})
    assert events[-1][1]["duration_s"] == 12.0
    gz = src / "gps" / "2021-12-15 10_00_00+00_00.csv.gz"
    gz.parent.mkdir()
    data = gzip.compress(b"timestamp,UTC time,latitude,longitude,altitude,accuracy\n"
                         + b"1639562400000,x,42.3,-71.1,1,5\n" * 200)
    gz.write_bytes(data[:-30])
    with pytest.raises(UserError) as exc:
        run(src)
    assert "10_00_00+00_00.csv.gz" in str(exc.value) and "gzip" in str(exc.value) and "\n" not in str(exc.value)
    gz.write_bytes(gzip.compress(b"timestamp,UTC time,lat,lon\n1639562400000,x,42.3,-71.1\n"))
    with pytest.raises(UserError, match=r"missing column\(s\) latitude, longitude"):
        run(src)


def test_folder_errors_and_participant_selection(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a folder"):
        run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no Beiwe participant folder"):
        run(tmp_path / "empty")
    events, report = run(DATA, participant="idr8gqdh")
    assert report.participants == 1 and {v["participant"] for _, v in events} == {pseudo("beiwe", "idr8gqdh")}
    with pytest.raises(UserError, match="--participant"):
        run(DATA, participant="someone-else")
