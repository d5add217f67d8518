"""simulate → replay → subscribe round trip on the real embedded broker."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from phenoflow.connectors.cohort import cohort_files, read_lines
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings

pytestmark = pytest.mark.integration


def _write_cohort(path: Path) -> None:
    """A tiny hand-made cohort: 3 participants, interleaved in time across files, one bad line."""
    path.mkdir()
    t0 = 1_700_000_000.0
    screen, calls, acc = [], [], []
    for i in range(60):
        p = f"p{i % 3}"
        screen.append({"participant": p, "ts": t0 + 60 * i, "state": ["on", "unlock", "off"][i % 3]})
        if i % 7 == 0:
            calls.append({"participant": p, "ts": t0 + 60 * i + 30, "direction": "incoming", "duration_s": i})
        acc.append({"participant": p, "ts": [t0 + 60 * i + 5, t0 + 60 * i + 6], "x": [0, 1], "y": [9.8, 9.7],
                    "z": [0.1, 0.2]})
    (path / "screen.jsonl").write_text("\n".join(json.dumps(e) for e in screen) + "\n")
    (path / "call.jsonl").write_text("\n".join(json.dumps(e) for e in calls) + "\nnot json at all\n")
    (path / "accelerometer.jsonl").write_text("\n".join(json.dumps(e) for e in acc) + "\n")
    (path / "participants.csv").write_text("participant\np0\np1\np2\n")


def _dump(settings: Settings, topic: str) -> list[bytes]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.5)
    return buf.getvalue().splitlines()


def _check_round_trip(cohort: Path, settings: Settings) -> None:
    for f in cohort_files(cohort):
        sent = list(read_lines(f))
        got = _dump(settings, f.topic)
        # Exactly once: the same multiset of lines.
        assert sorted(got) == sorted(sent), f.topic
        # Per-participant order preserved (partitions are keyed by participant).
        by_p_sent: dict[str, list[bytes]] = defaultdict(list)
        by_p_got: dict[str, list[bytes]] = defaultdict(list)
        for line, bucket in [(x, by_p_sent) for x in sent] + [(x, by_p_got) for x in got]:
            try:
                p = json.loads(line)["participant"]
            except (ValueError, KeyError):
                p = None
            bucket[p].append(line)
        assert by_p_got == by_p_sent, f.topic


def test_hand_made_cohort_round_trip(tmp_path: Path, kafka: Settings) -> None:
    cohort = tmp_path / "cohort"
    _write_cohort(cohort)
    summary = replay(cohort, kafka)
    assert summary.sent == {"raw.accelerometer": 60, "raw.screen": 60, "raw.call": 10}
    assert summary.malformed == {"raw.call": 1}
    assert summary.accelerometer_samples == 120
    _check_round_trip(cohort, kafka)


def test_merge_is_in_event_time_order(tmp_path: Path) -> None:
    from phenoflow.connectors.replay import merged

    cohort = tmp_path / "cohort"
    _write_cohort(cohort)
    times = [item.ts for item in merged(cohort_files(cohort))]
    assert times == sorted(times)


def test_simulated_cohort_round_trip_via_cli(tmp_path: Path, kafka: Settings) -> None:
    cohort = tmp_path / "sim"
    env_cli = [sys.executable, "-m", "phenoflow"]
    subprocess.run([*env_cli, "simulate", "--participants", "3", "--days", "4", "--seed", "3", "--out", str(cohort)],
                   check=True, capture_output=True)
    run = subprocess.run([*env_cli, "replay", str(cohort), "--bootstrap", kafka.bootstrap],
                         check=True, capture_output=True, text=True,
                         env={"PHENOFLOW_TOPIC_PREFIX": kafka.topic_prefix, "PATH": ""})
    assert "total" in run.stdout
    _check_round_trip(cohort, kafka)
    # subscribe --out writes a dump that equals the file.
    dump = tmp_path / "dump" / "screen.jsonl"
    subprocess.run([*env_cli, "subscribe", "raw.screen", "--from-beginning", "--timeout", "1.5",
                    "--out", str(dump), "--bootstrap", kafka.bootstrap],
                   check=True, capture_output=True, env={"PHENOFLOW_TOPIC_PREFIX": kafka.topic_prefix})
    assert sorted(dump.read_bytes().splitlines()) == sorted((cohort / "screen.jsonl").read_bytes().splitlines())


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "phenoflow"]
    cases = [
        ([*cli, "replay", str(tmp_path / "missing")], "does not exist"),
        ([*cli, "replay", str(tmp_path)], "holds no topic files"),
        ([*cli, "subscribe", "raw.screen", "--bootstrap", "127.0.0.1:1", "--timeout", "1"], "no Kafka broker answers at 127.0.0.1:1"),
        ([*cli, "replay", str(tmp_path), "--speed", "fast"], "Invalid value for '--speed'"),
    ]
    for argv, needle in cases:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert res.returncode != 0, argv
        assert needle in res.stderr, (argv, res.stderr)
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
