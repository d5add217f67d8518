"""participants.csv ``timezone``: DST-correct offsets for events without ``utc_offset_min``.

Expected offsets are written out by hand from the published rules (UK: BST
ends 2019-10-27 01:00 UTC; US: EDT starts 2019-03-10 07:00 UTC; Nepal +5:45),
not computed with zoneinfo.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from phenoflow.connectors.zones import (
    ZoneOffsets,
    load_zone,
    localize,
    read_participant_zones,
)
from phenoflow.core.contract import Accelerometer, Screen
from phenoflow.core.errors import UserError
from phenoflow.offline.features import hourly_features_from_cohort

DST_END = 1572138000.0  # 2019-10-27 01:00 UTC


def zone(name: str) -> ZoneOffsets:
    z = load_zone(name)
    assert z is not None
    return ZoneOffsets(z)


def test_offsets_follow_dst_at_the_events_own_time() -> None:
    london, ny, kathmandu = zone("Europe/London"), zone("America/New_York"), zone("Asia/Kathmandu")
    assert london.offset_min(DST_END - 1) == 60 and london.offset_min(DST_END) == 0
    assert london.offset_min(DST_END - 900.5) == 60 and london.offset_min(DST_END + 899) == 0
    assert ny.offset_min(1552201199.0) == -300 and ny.offset_min(1552201200.0) == -240
    assert kathmandu.offset_min(DST_END) == 345
    assert load_zone("Mars/Olympus") is None and load_zone("../etc/passwd") is None and load_zone("") is None


def test_localize_keeps_given_offsets_and_splits_chunks_at_transitions() -> None:
    london = zone("Europe/London")
    ev = Screen(participant="p1", ts=DST_END - 10, state="on")
    assert [e.utc_offset_min for e in localize(ev, london)] == [60]
    given = Screen(participant="p1", ts=DST_END - 10, state="on", utc_offset_min=-300)
    assert list(localize(given, london)) == [given]
    ts = [DST_END - 2, DST_END - 1, DST_END, DST_END + 1]
    chunk = Accelerometer(participant="p1", ts=ts, x=[1.0, 2, 3, 4], y=[0.0] * 4, z=[9.8] * 4)
    parts = list(localize(chunk, london))
    assert [(p.utc_offset_min, p.ts, p.x) for p in parts] == [(60, ts[:2], [1.0, 2]), (0, ts[2:], [3.0, 4])]


def test_participants_csv_zone_column(tmp_path: Path) -> None:
    (tmp_path / "participants.csv").write_text("participant,age_band\np1,18-25\n")
    assert read_participant_zones(tmp_path) == {}
    (tmp_path / "participants.csv").write_text("participant,timezone\np1,Europe/London\np2,\n")
    zones = read_participant_zones(tmp_path)
    assert set(zones) == {"p1"} and zones["p1"].offset_min(DST_END - 1) == 60
    (tmp_path / "participants.csv").write_text("participant,timezone\np1,Europe/London\np2,Europe/Londn\n")
    with pytest.raises(UserError) as exc:
        read_participant_zones(tmp_path)
    msg = str(exc.value)
    assert "participants.csv line 3" in msg and "Europe/Londn" in msg and "\n" not in msg
    (tmp_path / "participants.csv").write_text("id,timezone\np1,Europe/London\n")
    with pytest.raises(UserError, match="no participant column"):
        read_participant_zones(tmp_path)


def write_dst_cohort(path: Path) -> None:
    """Screen events every 20 min, 2019-10-26 00:00 – 2019-10-29 00:00 UTC, no utc_offset_min;
    pLON lives in Europe/London, pUTC has no zone."""
    path.mkdir(parents=True, exist_ok=True)
    t0 = 1572048000.0  # 2019-10-26 00:00 UTC
    lines = []
    for k in range(3 * 72):
        for pid in ("pLON", "pUTC"):
            lines.append(json.dumps({"participant": pid, "ts": t0 + 1200 * k, "state": "on" if k % 2 else "off"}))
    (path / "screen.jsonl").write_text("\n".join(lines) + "\n")
    (path / "participants.csv").write_text("participant,timezone\npLON,Europe/London\npUTC,\n")


def local_days(records: list[dict]) -> dict[str, dict[str, list[int]]]:
    """participant → local date → local hours, from the records' own offsets."""
    out: dict[str, dict[str, list[int]]] = {}
    for r in sorted(records, key=lambda r: (r["participant"], r["hour_start"])):
        local = datetime.fromtimestamp(r["hour_start"] + 60 * r.get("utc_offset_min", 0), timezone.utc)
        assert local.hour == r["local_hour"]
        out.setdefault(r["participant"], {}).setdefault(local.date().isoformat(), []).append(local.hour)
    return out


def check_dst_records(records: list[dict]) -> None:
    """What the DST cohort must give: a 25-hour local 2019-10-27 in London, 24 hours in UTC."""
    days = local_days(records)
    lon, utc = days["pLON"], days["pUTC"]
    assert len(lon["2019-10-27"]) == 25
    assert lon["2019-10-27"] == [0, 1, 1] + list(range(2, 24))  # 01:00 happens twice
    assert len(lon["2019-10-28"]) == 24 and lon["2019-10-26"] == list(range(1, 24))  # data starts 01:00 BST
    assert all(len(h) == 24 for h in utc.values()) and len(utc) == 3
    for r in records:
        if r["participant"] == "pLON":
            assert r["utc_offset_min"] == (60 if r["hour_start"] < DST_END else 0)
        else:
            assert r.get("utc_offset_min", 0) == 0


def test_offline_features_apply_participant_zone(tmp_path: Path) -> None:
    import msgspec

    write_dst_cohort(tmp_path / "c")
    records = [msgspec.to_builtins(r) for r in hourly_features_from_cohort(tmp_path / "c")]
    check_dst_records(records)
