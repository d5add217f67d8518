"""Issue 13: what a real Bytewax recovery directory holds, and what a restart does with an old one.

The hourly stage runs in Bytewax (``run_main``, the same ``hourly_stage`` the pipeline
wires) with recovery on, over 16 days of GPS fixes; then

* no input coordinate is anywhere in the snapshot files (as text or as float64 bytes,
  either byte order), nor the study's secret that keys the private frame, while the
  private-frame coordinates are — so the grep would find raw ones if they were kept;
* snapshots written with an older ``STATE_VERSION`` make ``phenoflow run`` stop with one
  line naming the recovery directory and the fix, no traceback, before anything starts;
* a flow aborted mid-input and restarted from its snapshots (the key re-attached from the
  settings) gives exactly the records of an uninterrupted run; snapshots under another
  key are refused with one line.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import msgspec
import numpy as np
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, run_main

from phenoflow.core.config import Settings
from phenoflow.core.contract import HourlyFeatures, Location, Screen
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import salt_id
from phenoflow.core.state import StateVersionError
from phenoflow.flows.recovery import check_state_versions
from phenoflow.flows.stages import hourly_stage
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.places.frame import PrivateFrame
from phenoflow.operators.rhythm.rolling import RhythmState

P = "p-recovery"
#: The study's pseudonym secret of these flows (the private place frame's key).
SECRET = "recovery-test-study-secret-4c1e"
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC


def fixes() -> list[Location]:
    """16 days, a fix every 10 min: home at night, work by day, with ~20 m jitter."""
    rng = np.random.default_rng(5)
    out = []
    for k in range(16 * 144):
        t = T0 + 600.0 * k
        home = (t % 86_400) < 8 * 3600 or (t % 86_400) >= 18 * 3600
        lat, lon = (51.50735212, -0.12775834) if home else (51.52019173, -0.09876452)
        out.append(Location(participant=P, utc_offset_min=0, ts=t, lat=lat + rng.normal(0, 2e-4),
                            lon=lon + rng.normal(0, 2e-4)))
    return out


def run_flow(events: list[object], recovery: Path) -> list[HourlyFeatures]:
    flow = Dataflow("recovery_test")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(events, batch_size=200)), lambda e: e.participant)
    records, _late = hourly_stage(keyed, Settings(pseudonym_secret=SECRET))
    out: list[HourlyFeatures] = []
    op.output("out", records, TestingSink(out))
    run_main(flow, epoch_interval=timedelta(seconds=0), recovery_config=RecoveryConfig(str(recovery)))
    return out


def needles(lat: float, lon: float) -> list[bytes]:
    """How a coordinate can appear in a pickle or a text dump."""
    return [b for v in (lat, lon) for b in (struct.pack("<d", v), struct.pack(">d", v), repr(v).encode())]


@pytest.fixture(scope="module")
def recovery_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Location], list[HourlyFeatures]]:
    rec = tmp_path_factory.mktemp("recovery")
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(rec), "1"], check=True)
    events = fixes()
    # a screen event late on day 16, so the last day's fixes sit in pending hours at the end of input
    events.append(Screen(participant=P, utc_offset_min=0, ts=T0 + 16 * 86_400 - 60, state="on"))
    old = HourlyAggregator.STATE_VERSION
    HourlyAggregator.STATE_VERSION = old - 1  # snapshots as an older phenoflow would have written them
    try:
        out = run_flow(events, rec)
    finally:
        HourlyAggregator.STATE_VERSION = old
    return rec, events, out


def test_no_input_coordinate_in_the_snapshot_files(recovery_dir: tuple[Path, list[Location], list]) -> None:
    rec, events, out = recovery_dir
    assert len(out) == 16 * 24 and sum(r.features["distance_m"] > 0 for r in out) > 16  # places were computed
    blob = b"".join(p.read_bytes() for p in sorted(rec.glob("part-*.sqlite3*")))
    locs = [e for e in events if isinstance(e, Location)]
    assert blob and len(locs) == 16 * 144
    found = [(e.lat, e.lon) for e in locs if any(n in blob for n in needles(e.lat, e.lon))]
    assert found == []
    assert SECRET.encode() not in blob and SECRET.encode().hex().encode() not in blob  # nor the frame's key
    # Control: the same grep finds the private-frame coordinates the place history keeps.
    frame = PrivateFrame(P, SECRET.encode())
    kept = sum(any(n in blob for n in needles(*frame.rotate(e.lat, e.lon))[:2]) for e in locs)
    assert kept > 1000


def test_private_frame_keeps_distances() -> None:
    from phenoflow.operators.places.geo import haversine_m

    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(-80, 80, 200), rng.uniform(-180, 180, 200)
    key = SECRET.encode()
    frame = PrivateFrame("p7", key)
    rot = np.array([frame.rotate(a, b) for a, b in zip(lat, lon, strict=True)])
    d0 = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    d1 = haversine_m(rot[:-1, 0], rot[:-1, 1], rot[1:, 0], rot[1:, 1])
    np.testing.assert_allclose(d1, d0, rtol=1e-9, atol=1e-6)
    assert np.abs(rot[:, 0] - lat).max() > 1.0  # the coordinates themselves moved
    assert PrivateFrame("p7", key).rotate(1.0, 2.0) == frame.rotate(1.0, 2.0)  # deterministic per key, participant
    assert PrivateFrame("p8", key).rotate(1.0, 2.0) != frame.rotate(1.0, 2.0)
    assert PrivateFrame("p7", key + b"x").rotate(1.0, 2.0) != frame.rotate(1.0, 2.0)
    with pytest.raises(TypeError):
        pickle.dumps(frame)


def test_old_state_version_is_refused_with_one_line(recovery_dir: tuple[Path, list, list]) -> None:
    rec, _, _ = recovery_dir
    with pytest.raises(UserError) as info:
        check_state_versions(rec)
    msg = str(info.value)
    v = HourlyAggregator.STATE_VERSION
    assert "\n" not in msg and str(rec) in msg and f"HourlyAggregator state version {v - 1}, expected {v}" in msg
    assert f"delete {rec}" in msg and "--recovery NEW_DIR" in msg
    # The CLI: one line on stderr, exit code 2, nothing started (the bootstrap is unreachable on purpose).
    env = {**os.environ, "PHENOFLOW_BOOTSTRAP": "127.0.0.1:9", "PHENOFLOW_PSEUDONYM_SECRET": SECRET}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--recovery", str(rec)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in res.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and str(rec) in " ".join(res.stderr.split()), lines
    # Without the CLI (the Kubernetes manifests): the flow factory checks the directory it is given.
    factory = f"phenoflow.flows.pipeline:get_flow('hourly', False, {str(rec)!r})"
    res = subprocess.run([sys.executable, "-m", "bytewax.run", factory, "-r", str(rec), "-s", "10", "-b", "0"],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error:") and f"state version {v - 1}" in lines[0], lines


def test_restart_from_snapshots_continues_in_the_same_frame_another_key_is_refused(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Abort mid-input, restart from the snapshots: the same records as an uninterrupted run."""
    events: list[object] = [e for e in fixes() if e.ts < T0 + 6 * 86_400]
    events.append(Screen(participant=P, utc_offset_min=0, ts=T0 + 6 * 86_400 - 60, state="on"))
    dirs = []
    for name in ("reference", "restarted"):
        rec = tmp_path_factory.mktemp(name)
        subprocess.run([sys.executable, "-m", "bytewax.recovery", str(rec), "1"], check=True)
        dirs.append(rec)
    reference = run_flow(events, dirs[0])
    assert len(reference) == 6 * 24 and sum(r.features["distance_m"] > 0 for r in reference) > 6

    rec = dirs[1]
    half = len(events) // 2
    aborting = [*events[:half], TestingSource.ABORT(), *events[half:]]
    first = run_flow(aborting, rec)  # stops at the ABORT: no end of input, the fixes so far only in the snapshots
    assert check_state_versions(rec, SECRET.encode()) > 0  # snapshots of the current layout, under this key
    with pytest.raises(UserError) as info:  # what `phenoflow run` says before restarting under another key
        check_state_versions(rec, b"another-study-secret")
    msg = str(info.value)
    assert "\n" not in msg and str(rec) in msg and salt_id(SECRET.encode()) in msg
    assert salt_id(b"another-study-secret") in msg and SECRET not in msg
    # The CLI says it in one line and starts nothing (the bootstrap is unreachable on purpose).
    env = {**os.environ, "PHENOFLOW_BOOTSTRAP": "127.0.0.1:9", "PHENOFLOW_PSEUDONYM_SECRET": "another-study-secret"}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "run", "--stages", "hourly", "--recovery", str(rec)],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(lines) == 1, res.stderr
    assert salt_id(b"another-study-secret") in " ".join(res.stderr.split()) and "another-study-secret" not in res.stderr

    second = run_flow(aborting, rec)  # resumes: hourly_stage re-attaches the key to the restored state
    # Records re-emitted after the last snapshot are identical duplicates; together: the reference, exactly.
    merged: dict[tuple[str, float], bytes] = {}
    for r in first + second:
        enc = msgspec.json.encode(r)
        assert merged.setdefault((r.participant, r.hour_start), enc) == enc
    assert sorted(merged.values()) == sorted(msgspec.json.encode(r) for r in reference)


def test_every_state_class_refuses_another_version() -> None:
    agg, rhythm = HourlyAggregator(), RhythmState("p1")
    for state in (agg, rhythm):
        blob = pickle.dumps(state)
        assert type(pickle.loads(blob)) is type(state)  # the current version restores
        cls = type(state)
        old = cls.STATE_VERSION
        cls.STATE_VERSION = old + 1
        try:
            with pytest.raises(StateVersionError, match=f"{cls.__name__} has state version {old}, this phenoflow "
                                                        f"needs {old + 1}"):
                pickle.loads(blob)
        finally:
            cls.STATE_VERSION = old
    # a state pickled before versions existed (no version key) counts as version 0
    legacy = {k: v for k, v in rhythm.__getstate__().items() if k != "_state_version"}
    fresh = RhythmState.__new__(RhythmState)
    with pytest.raises(StateVersionError, match="version 0"):
        fresh.__setstate__(legacy)
