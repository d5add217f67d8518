"""Deterministic event ids: same input → same id (also in another process); different → different."""

from __future__ import annotations

import subprocess
import sys
import uuid

from phenoflow.core.event_ids import (
    NAMESPACE,
    anomaly_event_id,
    event_id,
    stepup_event_id,
)

CASES = [
    lambda: anomaly_event_id("p1", "2024-03-01", "default@abc"),
    lambda: anomaly_event_id("p1", "2024-03-02", "default@abc"),
    lambda: anomaly_event_id("p2", "2024-03-01", "default@abc"),
    lambda: anomaly_event_id("p1", "2024-03-01", "default@abd"),
    lambda: stepup_event_id("p1", "survey", 1_700_000_000.0, "high", "low"),
    lambda: stepup_event_id("p1", "survey", 1_700_000_000.5, "high", "low"),
    lambda: stepup_event_id("p1", "survey", 1_700_000_000.0, "high", "regular"),
    lambda: stepup_event_id("p1", "survey", 1_700_000_000.0, "regular", "low"),
    lambda: stepup_event_id("p1", "passive", "2024-03-01", "low_risk", "high_risk", "m@1"),
    lambda: stepup_event_id("p1", "passive", "2024-03-01", "low_risk", "high_risk", "m@2"),
]


def test_ids_are_uuid5_in_the_phenoflow_namespace() -> None:
    got = anomaly_event_id("p1", "2024-03-01", "default@abc")
    u = uuid.UUID(got)
    assert u.version == 5
    assert u == uuid.uuid5(NAMESPACE, "\x1f".join(["anomaly", "p1", "2024-03-01", "default@abc"]))


def test_same_input_same_id_different_input_different_id() -> None:
    first = [f() for f in CASES]
    second = [f() for f in CASES]
    assert first == second
    assert len(set(first)) == len(first)


def test_ids_are_stable_across_processes() -> None:
    code = (
        "from phenoflow.core.event_ids import anomaly_event_id, stepup_event_id;"
        "print(anomaly_event_id('p1', '2024-03-01', 'default@abc'));"
        "print(stepup_event_id('p1', 'survey', 1700000000.0, 'high', 'low'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"})
    assert out.stdout.split() == [CASES[0](), CASES[4]()]


def test_parts_cannot_collide_by_concatenation() -> None:
    assert event_id("k", "a.b", "c") != event_id("k", "a", "b.c")
    assert event_id("k", None) != event_id("k", "None")
    assert event_id("k", 1.0) != event_id("k", 1)
