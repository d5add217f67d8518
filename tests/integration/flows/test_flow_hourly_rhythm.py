"""End to end on the real broker: simulate → replay → `phenoflow run` (hourly, rhythm) → subscribe.

The streaming output must equal the same operators applied offline to the
same files, record for record; malformed lines must reach the dead-letter
topic with a reason.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, settings_env
from phenoflow.core.contract import RhythmDaily, to_builtins
from phenoflow.core.pseudonym import study_secret
from phenoflow.offline.features import hourly_features_from_cohort
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.operators.rhythm.statistics import DEFAULT_MODALITIES
from phenoflow.simulate.simulator import simulate_cohort

pytestmark = pytest.mark.integration

BAD_LINES = [
    b'{"participant": "p001", "ts": 1704100000.0, "state": "dim"}',
    b"{not json",
]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flow") / "cohort"
    simulate_cohort(path, participants=3, days=5, seed=15)  # p003 is at UTC+05:30 (a half-hour zone)
    with open(path / "screen.jsonl", "ab") as fh:
        fh.write(b"\n".join(BAD_LINES) + b"\n")
    return path


def _dump(settings: Settings, topic: str) -> list[dict]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.0)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _local_date(hour_start: float, utc_offset_min: int | None) -> str:
    local = dt.datetime.fromtimestamp(hour_start, dt.timezone.utc) + dt.timedelta(minutes=utc_offset_min or 0)
    return local.date().isoformat()


def _canon(records: list) -> list[bytes]:
    return sorted(msgspec.json.encode(r if isinstance(r, dict) else to_builtins(r)) for r in records)


def test_hourly_and_rhythm_flow_equals_offline_operators(cohort: Path, kafka: Settings) -> None:
    replay(cohort, kafka)
    env = {**os.environ, **settings_env(kafka)}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly,rhythm", "--until-end"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]

    hourly = _dump(kafka, "features.hourly")
    # The offline reference in the flow's private place frame: keyed with the study's secret it used.
    offline = list(hourly_features_from_cohort(cohort, frame_key=study_secret(kafka)[0]))
    # One record per participant-hour from first to last hour, including imputed hours.
    by_p: dict[str, list[float]] = defaultdict(list)
    for r in hourly:
        by_p[r["participant"]].append(r["hour_start"])
    for p, hours in by_p.items():
        hours.sort()
        assert len(hours) == len(set(hours))
        assert hours == [hours[0] + 3600.0 * i for i in range(len(hours))], p
    assert sum(r["filled"] == 1.0 for r in hourly) > 0  # type-2 hours are present and imputed
    assert _canon(hourly) == _canon(offline)
    # The half-hour zone streams the same records, starting with the UTC hour 18:00 before local
    # midnight (local 23:30 the day before the cohort starts; docs/hourly.md, "Records and time").
    first = min((r for r in hourly if r["utc_offset_min"] == 330), key=lambda r: r["hour_start"])
    assert (_local_date(first["hour_start"], 330), first["local_hour"]) == ("2023-12-31", 23)

    rhythm = _dump(kafka, "rhythm.daily")
    expected: list[RhythmDaily] = []
    states: dict[str, RhythmState] = {}
    for rec in sorted(offline, key=lambda r: (r.participant, r.hour_start)):
        expected += states.setdefault(rec.participant, RhythmState(rec.participant)).update(rec)
    for st in states.values():
        expected += st.flush()
    # One record per participant and local day that had at least one measured (not imputed)
    # hour of a rhythm modality; local day computed here with datetime, not the timebase module.
    days_with_data = {
        (r["participant"], _local_date(r["hour_start"], r.get("utc_offset_min")))
        for r in hourly
        if r.get("filled", 0.0) < 1.0 and any(r["features"].get(m) is not None for m in DEFAULT_MODALITIES)
    }
    assert len({p for p, _ in days_with_data}) == 3
    assert len(days_with_data) >= 3 * 5  # 5 simulated days each, possibly split over 6 local dates
    assert len(rhythm) == len(expected) == len(days_with_data)
    assert {(r["participant"], r["day"]) for r in rhythm} == days_with_data
    assert _canon(rhythm) == _canon(expected)
    some = [v for r in rhythm for k, v in r["features"].items() if k.endswith(".w2") and v is not None]
    assert some and all(math.isfinite(v) for v in some)

    dead = _dump(kafka, "deadletter")
    bad = [d for d in dead if d["topic"] == "raw.screen"]
    assert sorted(d["value"].encode() for d in bad) == sorted(BAD_LINES)
    assert any("$.state" in d["error"] for d in bad) and any("not valid JSON" in d["error"] for d in bad)
    assert not [d for d in dead if d["error"].startswith("late")]


def test_run_rejects_bad_stage_list(kafka: Settings) -> None:
    env = {**os.environ, **settings_env(kafka)}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly,score"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "skip one" in res.stderr and "Traceback" not in res.stderr
