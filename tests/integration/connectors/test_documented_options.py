"""Documented options on the real broker: `replay --speed X`, `subscribe --group`, `kafka_options`."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phenoflow.connectors.broker import free_port
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


def _screen_cohort(path: Path, span_s: float, n: int, start: float = T0) -> list[bytes]:
    """``n`` screen events of two participants evenly over ``span_s`` event-time seconds."""
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"participant": f"p{i % 2}", "ts": start + span_s * i / (n - 1), "state": "on"}).encode()
             for i in range(n)]
    (path / "screen.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return lines


def test_replay_speed_paces_by_event_time(tmp_path: Path, kafka: Settings) -> None:
    span_s, speed = 3600.0, 1800.0  # one event-time hour at 1800× real time → 2.0 s
    _screen_cohort(tmp_path / "fast", span_s, 40)
    _screen_cohort(tmp_path / "paced", span_s, 40, start=T0 + 10 * span_s)
    t = time.perf_counter()
    replay(tmp_path / "fast", kafka)  # topic creation and connection cost, unpaced
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    summary = replay(tmp_path / "paced", kafka, speed=speed)
    paced_s = time.perf_counter() - t
    expected_s = span_s / speed
    assert summary.sent == {"raw.screen": 40}
    # Pacing can only add time: never faster than the event-time span / X ...
    assert paced_s >= expected_s * 0.98, (paced_s, expected_s)
    # ... and adds no more than its own overhead (a wrong factor, e.g. X/2, gives ≥ 4 s).
    assert paced_s <= expected_s + fast_s + 1.5, (paced_s, expected_s, fast_s)


@pytest.mark.slow
def test_subscribe_group_reads_everything_after_the_join_and_resumes(tmp_path: Path, kafka: Settings) -> None:
    """`--group G --timeout S`: the group join (≈ 23 s on the embedded broker) is not idleness; a rerun resumes."""
    lines = _screen_cohort(tmp_path / "a", 600.0, 30)
    replay(tmp_path / "a", kafka)
    buf = io.BytesIO()
    summary = subscribe(kafka, "raw.screen", buf, from_beginning=True, timeout=2.0, group="g1")
    assert sorted(buf.getvalue().splitlines()) == sorted(lines)
    assert summary.messages == 30 and sum(summary.per_partition.values()) == 30
    # The group resumes where it stopped: exactly the events produced since, none lost, none again
    # (librdkafka's automatic offset store skipped one message per partition on this broker).
    later = _screen_cohort(tmp_path / "b", 60.0, 10, start=T0 + 3600)
    replay(tmp_path / "b", kafka)
    buf = io.BytesIO()
    summary = subscribe(kafka, "raw.screen", buf, timeout=2.0, group="g1")
    assert sorted(buf.getvalue().splitlines()) == sorted(later)
    assert summary.messages == 10


def test_kafka_options_reach_librdkafka(tmp_path: Path, kafka: Settings) -> None:
    lines = _screen_cohort(tmp_path / "c", 600.0, 10)
    # `bootstrap` names a closed port; only the pass-through option names the broker.
    dead = f"127.0.0.1:{free_port()}"
    via_option = dataclasses.replace(kafka, bootstrap=dead, kafka_options=f"bootstrap.servers={kafka.bootstrap}")
    assert replay(tmp_path / "c", via_option).sent == {"raw.screen": 10}
    buf = io.BytesIO()
    subscribe(via_option, "raw.screen", buf, from_beginning=True, timeout=1.5)
    assert sorted(buf.getvalue().splitlines()) == sorted(lines)
    # An option librdkafka does not know is passed on too, and its refusal is one clear line.
    env = {"PHENOFLOW_BOOTSTRAP": kafka.bootstrap, "PHENOFLOW_TOPIC_PREFIX": kafka.topic_prefix,
           "PHENOFLOW_KAFKA_OPTIONS": "no.such.option=1"}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "replay", str(tmp_path / "c")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "no.such.option" in res.stderr and "Traceback" not in res.stderr
