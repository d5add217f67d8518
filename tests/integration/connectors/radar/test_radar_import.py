"""`phenoflow import radar` on the shared RADAR sample, then `replay` and `run` on the real broker.

The hourly features must equal the independent computation from the CSV rows
(radar_expect.py), the report must account for every row read, damaged input
must give one clear line and lose nothing else, and no raw id may appear in any
file, report or log line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from radar_expect import EXPORT, PROJECT, SECRET, TOPICS, USER, ZONE, check_hourly, raw_ids, rows

from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, settings_env
from phenoflow.core.pseudonym import pseudonymize

pytestmark = pytest.mark.integration


def _import(src: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phenoflow", "import", "radar", str(src), "--out", str(out),
                           "--timezone", ZONE, *extra], env=env, capture_output=True, text=True, timeout=120)


def _all_text(folder: Path) -> str:
    parts = []
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
            parts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_import_replay_run_equals_csv_computation(tmp_path: Path, kafka: Settings) -> None:
    env = {**os.environ, **settings_env(kafka), "PHENOFLOW_PSEUDONYM_SECRET": SECRET}
    cohort = tmp_path / "cohort"
    res = _import(EXPORT, cohort, env)
    assert res.returncode == 0, res.stderr
    report = json.loads((cohort / "import_report.json").read_text())
    assert json.loads(res.stdout) == report
    # Every row read is mapped or dropped with a reason, and "read" is the CSV's own row count.
    for topic in TOPICS:
        s = report["streams"][topic]
        assert s["read"] == len(rows(topic)) == s["mapped"] + sum(s["dropped"].values()), topic
    assert report["streams"]["android_phone_user_interaction"]["dropped"] == {"interactionState BOOTED is no screen state": 2}
    assert report["streams"]["questionnaire_phq8"]["mapped"] == 0
    pid = pseudonymize(PROJECT, USER, SECRET.encode())
    assert report["participants"] == 1 and list(report["timezone_source"]) == [pid]
    assert report["written"]["raw.screen"] == 503 and report["written"]["raw.ambient"] == len(rows("android_phone_light"))
    for raw in raw_ids():
        assert raw not in _all_text(cohort) and raw not in res.stdout + res.stderr

    rep = subprocess.run([sys.executable, "-m", "phenoflow", "replay", str(cohort)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    run = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--until-end"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    buf = io.BytesIO()
    subscribe(kafka, "features.hourly", buf, from_beginning=True, timeout=1.0)
    hourly = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert check_hourly(hourly, pid) >= 40
    dead = io.BytesIO()
    subscribe(kafka, "deadletter", dead, from_beginning=True, timeout=1.0)
    assert dead.getvalue() == b""  # every imported line meets the contract, nothing is late


def _damage(src: Path) -> None:
    """Truncated gzip, a missing column, non-numeric values and an unknown enum value."""
    user = src / USER
    light = sorted((user / "android_phone_light").glob("*.csv.gz"))
    data = light[0].read_bytes()
    light[0].write_bytes(data[: len(data) // 2])
    with gzip.open(light[1], "rt") as fh:
        lines = fh.read().splitlines()
    header = lines[0].split(",")
    i = header.index("value.light")
    cut = [",".join(c for j, c in enumerate(line.split(",")) if j != i) for line in lines]
    with gzip.open(light[1], "wt") as fh:
        fh.write("\n".join(cut) + "\n")
    ui = sorted((user / "android_phone_user_interaction").glob("*.csv.gz"))[0]
    with gzip.open(ui, "rt") as fh:
        lines = fh.read().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",DIMMED"
    lines[2] = lines[2].replace(lines[2].split(",")[3], "soon", 1)
    with gzip.open(ui, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def test_import_damaged_input_reports_and_keeps_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "export"
    shutil.copytree(EXPORT, src)
    _damage(src)
    env = {**os.environ, "PHENOFLOW_PSEUDONYM_KEY_FILE": str(tmp_path / "key" / "pseudonym.key")}
    env.pop("PHENOFLOW_PSEUDONYM_SECRET", None)
    cohort = tmp_path / "cohort"
    res = _import(src, cohort, env)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and "Traceback" not in res.stderr
    assert any("truncated or corrupt gzip after" in e and "android_phone_light" in e for e in errors)
    assert any("missing column value.light" in e for e in errors)
    assert "generated pseudonym key in" in res.stderr and (tmp_path / "key" / "pseudonym.key").exists()
    report = json.loads((cohort / "import_report.json").read_text())
    ui = report["streams"]["android_phone_user_interaction"]
    assert ui["dropped"]["unknown enum value of interactionState"] == 1
    assert ui["dropped"]["non-numeric value.time"] == 1
    assert ui["read"] == len(rows("android_phone_user_interaction")) and ui["mapped"] == 503 - 2
    light = report["streams"]["android_phone_light"]
    assert light["dropped"]["missing column value.light"] > 0 and light["read"] == light["mapped"] + sum(light["dropped"].values())
    # Nothing else lost: the other streams are complete.
    assert report["streams"]["android_phone_acceleration"]["mapped"] == len(rows("android_phone_acceleration"))
    assert report["written"]["raw.location"] == len(rows("android_phone_relative_location"))
    for raw in raw_ids():
        assert raw not in res.stdout + res.stderr and raw not in _all_text(cohort)
    # A second import with the same generated key gives the same participant ids, and says nothing about keys.
    again = _import(src, tmp_path / "cohort2", env)
    assert "generated pseudonym key" not in again.stderr
    assert (tmp_path / "cohort2" / "participants.csv").read_text() == (cohort / "participants.csv").read_text()


def test_import_unknown_format_is_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "phenoflow", "import", "csvx", str(tmp_path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "unknown import format 'csvx'" in res.stderr


def test_import_unknown_participant_and_radar_run_without_schemas_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PHENOFLOW_PSEUDONYM_KEY_FILE": str(tmp_path / "k")}
    res = _import(EXPORT, tmp_path / "o", env, "--participant", "nobody")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no folder 'nobody'" in res.stderr
    env.pop("PHENOFLOW_RADAR_SCHEMAS_DIR", None)
    env.pop("PHENOFLOW_SCHEMA_REGISTRY_URL", None)
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--source", "radar", "--until-end"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "needs schemas" in res.stderr
    env["PHENOFLOW_RADAR_SCHEMAS_DIR"] = str(tmp_path / "none")
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--source", "radar", "--until-end"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "schema directory" in res.stderr and "Traceback" not in res.stderr
