"""Deterministic event ids: same input → same id (also in another process); different → different."""

from __future__ import annotations

import hashlib
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


# RFC 4122 appendix C: the URL namespace. The phenoflow namespace is the uuid5 of the
# documented URL in it (README, "Event ids").
RFC4122_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")


def _rfc4122_uuid5(namespace: bytes, name: str) -> str:
    """Name-based SHA-1 UUID written out from RFC 4122 §4.3 (independent of ``uuid.uuid5``)."""
    digest = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5 in the high nibble of time_hi
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant 10xx
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _documented_id(*fields: str) -> str:
    """The recipe of the README: uuid5(namespace, fields joined by U+001F)."""
    ns = bytes.fromhex(_rfc4122_uuid5(RFC4122_NAMESPACE_URL, "https://phenoflow.invalid/events/v1").replace("-", ""))
    return _rfc4122_uuid5(ns, "\x1f".join(fields))


def test_ids_follow_the_documented_recipe() -> None:
    assert str(NAMESPACE) == _rfc4122_uuid5(RFC4122_NAMESPACE_URL, "https://phenoflow.invalid/events/v1")
    got = anomaly_event_id("p1", "2024-03-01", "default@abc")
    assert uuid.UUID(got).version == 5
    assert got == _documented_id("anomaly", "p1", "2024-03-01", "default@abc")
    # survey step-up: float ts by its shortest repr, no model → NUL
    assert stepup_event_id("p1", "survey", 1_700_000_000.5, "high", "low") == _documented_id(
        "stepup", "p1", "survey", "1700000000.5", "high", "low", "\x00"
    )
    assert stepup_event_id("p1", "passive", "2024-03-01", "low_risk", "high_risk", "m@1") == _documented_id(
        "stepup", "p1", "passive", "2024-03-01", "low_risk", "high_risk", "m@1"
    )


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
