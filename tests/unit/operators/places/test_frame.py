"""The private place frame is keyed with the study's secret: the key decides R, and the key is never in state.

Pure unit tests (no Kafka, no Bytewax): the frame's derivation, and the hourly
aggregator's pickled state — what a recovery snapshot stores — holding neither
the key nor an input coordinate, while a restore that gets the key back continues
exactly where the original was.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import pickle
import struct

import msgspec
import numpy as np
import pytest

from phenoflow.core.contract import HourlyFeatures, Location, Screen
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import salt_id
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.places.frame import FRAME_DOMAIN, PrivateFrame

KEY = b"unit-test-study-secret-7f3a9c"
OTHER_KEY = b"unit-test-study-secret-7f3a9d"  # one character apart
P = "pz6s6kp6qpkscx2myledc"
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC


def matrix_from_seed(seed: int) -> np.ndarray:
    """R as frame.py documents it: the unit quaternion of four normal deviates drawn with ``seed``."""
    q = np.random.default_rng(seed).standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def points(n: int = 50, seed: int = 3) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return list(zip(rng.uniform(-80, 80, n).tolist(), rng.uniform(-180, 180, n).tolist(), strict=True))


def test_same_key_and_participant_give_the_same_frame_another_key_or_participant_another() -> None:
    frame = PrivateFrame(P, KEY)
    pts = points()
    ref = [frame.rotate(a, b) for a, b in pts]
    assert [PrivateFrame(P, KEY).rotate(a, b) for a, b in pts] == ref  # deterministic: restart, replay
    for other in (PrivateFrame(P, OTHER_KEY), PrivateFrame(P + "x", KEY)):
        moved = [other.rotate(a, b) for a, b in pts]
        assert all(abs(m[0] - r[0]) + abs(m[1] - r[1]) > 1e-3 for m, r in zip(moved, ref, strict=True))


def test_the_seed_is_the_keyed_hmac_and_the_old_unkeyed_derivation_does_not_reproduce_the_frame() -> None:
    frame = PrivateFrame(P, KEY)
    mac = hmac.new(KEY, f"{FRAME_DOMAIN}\x1f{P}".encode(), hashlib.sha256).digest()
    # Control: this test's reconstruction, given the keyed seed, is exactly the frame.
    np.testing.assert_array_equal(matrix_from_seed(int.from_bytes(mac)), frame.matrix)
    # The scheme before the key: SHA-256 of the participant id alone, which anyone reading a topic can compute.
    old = int.from_bytes(hashlib.sha256(f"phenoflow.place-frame\x1f{P}".encode()).digest()[:16])
    assert np.abs(matrix_from_seed(old) - frame.matrix).max() > 0.1
    # Nor does the same HMAC message keyed with nothing a reader of the snapshot has (empty key, or the id).
    for guess in (b"\0" * 32, P.encode()):
        seed = int.from_bytes(hmac.new(guess, f"{FRAME_DOMAIN}\x1f{P}".encode(), hashlib.sha256).digest())
        assert np.abs(matrix_from_seed(seed) - frame.matrix).max() > 0.1
    assert frame.matrix @ frame.matrix.T == pytest.approx(np.eye(3), abs=1e-12)  # still a rotation


def test_keyed_frame_keeps_great_circle_distances() -> None:
    from phenoflow.operators.places.geo import haversine_m

    pts = np.array(points(200, seed=2))
    frame = PrivateFrame(P, KEY)
    rot = np.array([frame.rotate(a, b) for a, b in pts])
    d0 = haversine_m(pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1])
    d1 = haversine_m(rot[:-1, 0], rot[:-1, 1], rot[1:, 0], rot[1:, 1])
    np.testing.assert_allclose(d1, d0, rtol=1e-9, atol=1e-6)
    assert np.abs(rot[:, 0] - pts[:, 0]).max() > 1.0


def test_a_frame_without_a_key_is_one_user_error_line_and_never_pickled() -> None:
    with pytest.raises(UserError) as info:
        PrivateFrame(P, b"")
    assert "\n" not in str(info.value) and "pseudonym_secret" in str(info.value)
    with pytest.raises(TypeError):
        pickle.dumps(PrivateFrame(P, KEY))


# --- the hourly aggregator's state -------------------------------------------------------------


def fixes(days: int = 3) -> list[object]:
    """A fix every 10 min, home at night and work by day (~20 m jitter); a late screen event keeps hours open."""
    rng = np.random.default_rng(7)
    out: list[object] = []
    for k in range(days * 144):
        t = T0 + 600.0 * k
        home = (t % 86_400) < 8 * 3600 or (t % 86_400) >= 18 * 3600
        lat, lon = (48.85837009, 2.29448113) if home else (48.87379776, 2.29504947)
        out.append(Location(participant=P, utc_offset_min=0, ts=t, lat=lat + float(rng.normal(0, 2e-4)),
                            lon=lon + float(rng.normal(0, 2e-4))))
    out.append(Screen(participant=P, utc_offset_min=0, ts=T0 + days * 86_400 - 60, state="on"))
    return out


def needles(lat: float, lon: float) -> list[bytes]:
    """How a coordinate can appear in a pickle or a text dump."""
    return [b for v in (lat, lon) for b in (struct.pack("<d", v), struct.pack(">d", v), repr(v).encode())]


def run(agg: HourlyAggregator, events: list[object]) -> list[HourlyFeatures]:
    out: list[HourlyFeatures] = []
    for i in range(0, len(events), 100):
        out += agg.update_batch(events[i:i + 100]).records
    return out + agg.flush()


def test_pickled_state_holds_neither_the_key_nor_an_input_coordinate() -> None:
    events = fixes()
    agg = HourlyAggregator(P, frame_key=KEY)
    cut = 2 * 144 + 30  # mid day 3: place history, the distance anchor and pending hours all hold fixes
    agg.update_batch(events[:cut])
    blob = pickle.dumps(agg.snapshot(), protocol=pickle.HIGHEST_PROTOCOL)
    assert KEY not in blob and KEY.hex().encode() not in blob
    locs = [e for e in events[:cut] if isinstance(e, Location)]
    assert [(e.lat, e.lon) for e in locs if any(n in blob for n in needles(e.lat, e.lon))] == []
    # Control: the same grep finds the private-frame coordinates of the fixes still pending.
    frame = PrivateFrame(P, KEY)
    assert sum(any(n in blob for n in needles(*frame.rotate(e.lat, e.lon))[:2]) for e in locs) > 10
    assert agg.frame_salt == salt_id(KEY)


def test_a_restore_with_the_key_attached_continues_exactly_another_key_is_refused() -> None:
    events = fixes()
    whole = run(HourlyAggregator(P, frame_key=KEY), events)
    assert len(whole) == 3 * 24
    assert any(r.features["distance_m"] > 0 for r in whole)  # places were computed
    assert any(r.features["place_primary_s"] == 3600.0 for r in whole)
    cut = 2 * 144 + 30
    agg = HourlyAggregator(P, frame_key=KEY)
    first = agg.update_batch(events[:cut]).records
    assert first  # closed days before the snapshot, open hours in it
    blob = pickle.dumps(agg.snapshot())

    restored = pickle.loads(blob)
    restored.attach_frame_key(KEY)  # what flows/stages.py's build(resume) does
    # identical to the uninterrupted run, bit for bit
    assert msgspec.json.encode(first + run(restored, events[cut:])) == msgspec.json.encode(whole)

    wrong = pickle.loads(blob)
    with pytest.raises(UserError) as info:
        wrong.attach_frame_key(OTHER_KEY)
    msg = str(info.value)
    assert "\n" not in msg and salt_id(KEY) in msg and salt_id(OTHER_KEY) in msg
    assert OTHER_KEY.decode() not in msg and KEY.decode() not in msg

    keyless = pickle.loads(blob)  # restored, key not attached: the next fix must not go into some other frame
    with pytest.raises(UserError, match="without the place-frame key"):
        keyless.update_batch(events[cut:cut + 5])


def test_an_aggregator_without_a_key_refuses_fixes_but_not_other_sensors() -> None:
    agg = HourlyAggregator(P)
    agg.update(Screen(participant=P, utc_offset_min=0, ts=T0, state="on"))  # no GPS: no key needed
    assert agg.frame_salt is None
    with pytest.raises(UserError) as info:
        agg.update(Location(participant=P, utc_offset_min=0, ts=T0 + 60, lat=48.0, lon=2.0))
    assert "\n" not in str(info.value) and "pseudonym" in str(info.value)
    fresh = HourlyAggregator(P)
    fresh.attach_frame_key(KEY)  # a state without fixes takes any key
    fresh.update(Location(participant=P, utc_offset_min=0, ts=T0 + 60, lat=48.0, lon=2.0))
    assert fresh.frame_salt == salt_id(KEY) and math.isfinite(fresh.watermark)
