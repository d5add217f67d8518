"""participants.csv ``timezone`` through replay + `phenoflow run --until-end` (real broker).

A participant in Europe/London whose events carry no ``utc_offset_min`` gets
local hours that follow the 2019-10-27 DST change: the local day has 25 hours,
local 01:00 occurs twice. A participant without a zone stays on UTC. The flow's
records equal the offline features of the same cohort.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest

from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, settings_env
from phenoflow.core.pseudonym import study_secret
from phenoflow.offline.features import hourly_features_from_cohort

pytestmark = pytest.mark.integration

T0 = 1572048000.0  # 2019-10-26 00:00 UTC
DST_END = 1572138000.0  # 2019-10-27 01:00 UTC: BST (+60) → GMT (0)


def test_participant_zone_gives_a_25_hour_local_day(tmp_path: Path, kafka: Settings) -> None:
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    lines = [json.dumps({"participant": pid, "ts": T0 + 1200 * k, "state": "on" if k % 2 else "off"})
             for k in range(3 * 72) for pid in ("pLON", "pUTC")]
    (cohort / "screen.jsonl").write_text("\n".join(lines) + "\n")
    (cohort / "participants.csv").write_text("participant,timezone\npLON,Europe/London\npUTC,\n")

    replay(cohort, kafka)
    env = {**os.environ, **settings_env(kafka)}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--until-end"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    buf = io.BytesIO()
    subscribe(kafka, "features.hourly", buf, from_beginning=True, timeout=1.0)
    hourly = [json.loads(line) for line in buf.getvalue().splitlines()]

    days: Counter[tuple[str, str]] = Counter()
    hours: dict[str, list[int]] = {"pLON": [], "pUTC": []}
    for r in sorted(hourly, key=lambda r: (r["participant"], r["hour_start"])):
        off = r.get("utc_offset_min", 0)
        assert off == (60 if r["participant"] == "pLON" and r["hour_start"] < DST_END else 0)
        local = datetime.fromtimestamp(r["hour_start"] + 60 * off, timezone.utc)
        assert local.hour == r["local_hour"]
        days[(r["participant"], local.date().isoformat())] += 1
        if local.date().isoformat() == "2019-10-27":
            hours[r["participant"]].append(local.hour)
    assert days[("pLON", "2019-10-27")] == 25 and days[("pUTC", "2019-10-27")] == 24
    assert hours["pLON"] == [0, 1, 1] + list(range(2, 24)) and hours["pUTC"] == list(range(24))

    offline = [msgspec.to_builtins(r) for r in hourly_features_from_cohort(cohort, frame_key=study_secret(kafka)[0])]
    assert sorted(msgspec.json.encode(r) for r in hourly) == sorted(msgspec.json.encode(r) for r in offline)
