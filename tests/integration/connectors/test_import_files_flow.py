"""AWARE and Beiwe exports → readers → cohort → replay → `phenoflow run` (real broker).

The features.hourly values of every participant-hour that has data must equal
an independent computation straight from the CSV rows (csv module, the
platforms' documented codes, a plain haversine): screen unlocks, calls and
call seconds per direction, SMS per direction, mean ‖a‖, mean lux and the
jitter-filtered distance. Raw participant ids, device ids and phone hashes must
appear in no cohort file, report, topic or log line.

Until the `phenoflow import` command lands (another branch), the test writes
the cohort itself the way the importer's writer will: one JSON-lines file per
topic, sorted by event time, plus participants.csv.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import msgspec
import pytest

from phenoflow.connectors.importers.aware import read_aware
from phenoflow.connectors.importers.beiwe import read_beiwe
from phenoflow.connectors.importers.report import ImportReport
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, settings_env
from phenoflow.core.pseudonym import pseudonymize

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data"
KEY = b"integration-key-0123456789abcdef"
G = 9.80665
R = 6_371_008.8  # m, IUGG mean Earth radius
DIRS = ("incoming", "outgoing", "missed", "rejected", "blocked")


def pseudo(project: str, user: str) -> str:
    return pseudonymize(project, user, KEY)


def write_cohort(events: list[tuple[str, dict]], out: Path) -> None:
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for topic, value in events:
        by_topic[topic].append(value)
    out.mkdir(parents=True)
    for topic, values in by_topic.items():
        values.sort(key=lambda v: v["ts"][0] if isinstance(v["ts"], list) else v["ts"])
        with open(out / f"{topic.removeprefix('raw.')}.jsonl", "wb") as fh:
            for v in values:
                fh.write(msgspec.json.encode(v) + b"\n")
    pids = sorted({v["participant"] for _, v in events})
    (out / "participants.csv").write_text("participant\n" + "".join(p + "\n" for p in pids))


# --- the independent computation, from the CSV rows -----------------------------------

Fact = tuple[str, float, str, object]  # participant, ts (s), kind, value


def _csv(path: Path) -> Iterator[dict[str, str]]:
    with open(path, newline="") as fh:
        yield from csv.DictReader(fh)


def aware_facts(folder: Path) -> Iterator[Fact]:
    for path in sorted(folder.glob("*.csv")):
        name = path.stem.lower().removeprefix("multiuser_").removeprefix("aware")
        for r in _csv(path):
            ts = int(r["timestamp"]) / 1000 if "timestamp" in r else float(r["time"])
            pid = pseudo("aware", r.get("device_id") or r["user"])
            if name == "screen":
                yield pid, ts, "screen", r["screen_status"] == "3"
            elif name == "calls":
                kind = {"1": "incoming", "2": "outgoing", "3": "missed"}.get(r["call_type"], r["call_type"])
                yield pid, ts, "call", (kind, float(r["call_duration"]))
            elif name == "messages":
                yield pid, ts, "sms", {"1": "incoming", "2": "outgoing"}.get(r["message_type"], r["message_type"])
            elif name == "accelerometer":
                yield pid, ts, "accel", math.sqrt(sum(float(r[f"double_values_{i}"]) ** 2 for i in range(3)))
            elif name in ("locations", "gps"):
                yield pid, ts, "fix", (float(r["double_latitude"]), float(r["double_longitude"]))
            elif name == "light":
                yield pid, ts, "light", float(r["double_light_lux"])


def beiwe_facts(root: Path) -> Iterator[Fact]:
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        pid = pseudo("beiwe", person.name)
        ios = any(r["device_os"] == "iOS" for f in (person / "identifiers").glob("*.csv") for r in _csv(f)) \
            if (person / "identifiers").is_dir() else False
        for stream in sorted(p for p in person.iterdir() if p.is_dir()):
            for f in sorted(stream.glob("*.csv")):
                for r in _csv(f):
                    ts = int(r["timestamp"]) / 1000
                    if stream.name == "accelerometer":
                        a = [float(r[k]) * (G if ios else 1.0) for k in "xyz"]
                        yield pid, ts, "accel", math.sqrt(sum(v * v for v in a))
                    elif stream.name == "gps":
                        yield pid, ts, "fix", (float(r["latitude"]), float(r["longitude"]))
                    elif stream.name == "power_state" and r["event"] in (
                            "Screen turned on", "Screen turned off", "Unlocked", "Locked"):
                        yield pid, ts, "screen", r["event"] == "Unlocked"
                    elif stream.name == "calls":
                        kind = r["call type"].split()[0].lower()
                        yield pid, ts, "call", (kind, float(r["duration in seconds"] or 0))
                    elif stream.name == "texts":
                        yield pid, ts, "sms", "outgoing" if r["sent vs received"].startswith("sent") else "incoming"


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def expected(facts: list[Fact]) -> dict[tuple[str, float], dict[str, float]]:
    """(participant, hour_start) → checked features, for every hour with at least one row."""
    out: dict[tuple[str, float], dict[str, float]] = {}
    accel: dict[tuple[str, float], list[float]] = defaultdict(list)
    light: dict[tuple[str, float], list[float]] = defaultdict(list)
    fixes: dict[str, list[tuple[float, tuple[float, float]]]] = defaultdict(list)
    for pid, ts, kind, val in facts:
        key = (pid, math.floor(ts / 3600) * 3600.0)
        f = out.setdefault(key, {"screen_unlocks": 0.0, "call_n": 0.0, "call_s": 0.0, "sms_n": 0.0,
                                 "sms_incoming_n": 0.0, "sms_outgoing_n": 0.0, "distance_m": 0.0,
                                 **{f"call_{d}_{u}": 0.0 for d in DIRS for u in "ns"}})
        if kind == "screen":
            f["screen_unlocks"] += bool(val)
        elif kind == "call":
            d, s = val  # type: ignore[misc]
            f[f"call_{d}_n"] += 1
            f[f"call_{d}_s"] += s
            f["call_n"] += 1
            f["call_s"] += s
        elif kind == "sms":
            f[f"sms_{val}_n"] += 1
            f["sms_n"] += 1
        elif kind == "accel":
            accel[key].append(val)  # type: ignore[arg-type]
        elif kind == "light":
            light[key].append(val)  # type: ignore[arg-type]
        else:
            fixes[pid].append((ts, val))  # type: ignore[arg-type]
    for key, mags in accel.items():
        out[key]["accel_mean"] = math.fsum(mags) / len(mags)
    for key, lux in light.items():
        out[key]["light_lux_mean"] = math.fsum(lux) / len(lux)
    for pid, track in fixes.items():  # jitter filter: moves ≥ 50 m from the anchor count
        track.sort(key=lambda t: t[0])
        anchor = track[0][1]
        for ts, p in track[1:]:
            d = _haversine(anchor, p)
            if d >= 50.0:
                out[(pid, math.floor(ts / 3600) * 3600.0)]["distance_m"] += d
                anchor = p
    return out


def _dump(settings: Settings, topic: str) -> list[dict]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.0)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_imported_exports_give_features_equal_to_the_csv_rows(tmp_path: Path, kafka: Settings) -> None:
    reports, events = [], []
    sources = [(read_aware, DATA / "aware" / "niimpy"), (read_aware, DATA / "aware" / "synthetic"),
               (read_beiwe, DATA / "beiwe")]
    for reader, src in sources:
        report = ImportReport(reader.__name__.removeprefix("read_"))
        events += list(reader(src, pseudonym=pseudo, report=report, participant=None))
        reports.append(report.to_json())
        assert all(s["balanced"] for s in report.to_json()["streams"].values())
    cohort = tmp_path / "cohort"
    write_cohort(events, cohort)
    (tmp_path / "reports.json").write_text(json.dumps(reports))

    summary = replay(cohort, kafka)
    assert not summary.malformed and summary.total == len(events)
    env = {**os.environ, **settings_env(kafka)}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--until-end"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    hourly = _dump(kafka, "features.hourly")
    dead = _dump(kafka, "deadletter")
    assert dead == []

    facts = list(aware_facts(DATA / "aware" / "niimpy")) + list(aware_facts(DATA / "aware" / "synthetic")) \
        + list(beiwe_facts(DATA / "beiwe"))
    want = expected(facts)
    got = {(r["participant"], r["hour_start"]): r for r in hourly}
    assert len({p for p, _ in want}) == 10 == len({p for p, _ in got})
    checked = 0
    for key, feats in want.items():
        rec = got[key]
        assert rec["filled"] < 1.0, key  # an hour with data is never wholly imputed
        for name, value in feats.items():
            assert rec["features"][name] == pytest.approx(value, rel=1e-9, abs=1e-6), (key, name)
            checked += 1
    assert checked > 9_000  # 9,396 feature values in ≈ 450 participant-hours
    assert all(r["filled"] == 1.0 for k, r in got.items() if k not in want)  # hours without rows: imputed
    assert sum(f["screen_unlocks"] for f in want.values()) > 50 and sum(f["call_n"] for f in want.values()) > 50
    assert sum(f["sms_n"] for f in want.values()) > 50 and sum(f["distance_m"] for f in want.values()) > 1e5

    # Privacy: no raw id, device id or phone hash in the cohort, the reports, the topics or the logs.
    secret: set[str] = {"idr8gqdh", "synandr1", "synios02"}
    for path in (DATA / "aware").rglob("*.csv"):
        for r in _csv(path):
            secret |= {r[c] for c in ("user", "device", "device_id", "trace") if r.get(c)}
    for stream in ("calls", "texts"):
        for f in (DATA / "beiwe" / "synandr1" / stream).glob("*.csv"):
            secret |= {r["hashed phone number"] for r in _csv(f)}
    outputs = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    outputs += json.dumps(hourly) + res.stdout + res.stderr
    assert len(secret) > 100 and not [s for s in secret if s in outputs]
