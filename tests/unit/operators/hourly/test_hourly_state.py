"""State size: a pickled HourlyAggregator after 14 days stays under 1 MiB."""

from __future__ import annotations

import pickle
import time

import numpy as np

from phenoflow.core.contract import Accelerometer, Ambient, Location, Screen
from phenoflow.operators.hourly.aggregator import HourlyAggregator

P = "p3"
T0 = 1_704_067_200.0


def test_pickled_state_after_14_days_is_small() -> None:
    rng = np.random.default_rng(0)
    agg = HourlyAggregator(P, frame_key=b"unit-test-frame-key")
    n_records = 0
    t_start = time.perf_counter()
    for m in range(0, 14 * 24 * 60, 1):  # minute by minute
        t = T0 + 60.0 * m
        if m % 5 == 0:  # a fix every 5 min at one of three places, 20-m jitter
            base = [(52.0, 13.0), (52.1, 13.05), (52.3, 13.2)][(m // 180) % 3]
            n_records += len(agg.update(Location(participant=P, utc_offset_min=60, ts=t,
                                                 lat=base[0] + rng.normal(0, 2e-4),
                                                 lon=base[1] + rng.normal(0, 2e-4))).records)
            n_records += len(agg.update(Ambient(participant=P, utc_offset_min=60, ts=t + 1,
                                                light_lux=float(rng.uniform(0, 300)),
                                                sound_db=float(rng.uniform(25, 70)),
                                                voice=bool(rng.random() < 0.2))).records)
        if m % 30 == 0:
            for dt, s in ((2.0, "on"), (3.0, "unlock"), (90.0, "off")):
                n_records += len(agg.update(Screen(participant=P, utc_offset_min=60, ts=t + dt,
                                                   state=s)).records)
        ts = (t + np.arange(50) / 50.0).tolist()  # a 1-s burst of 50 samples every minute
        xyz = rng.normal(0, 1, (3, 50)) + np.array([[0.0], [0.0], [9.81]])
        n_records += len(agg.update(Accelerometer(participant=P, utc_offset_min=60, ts=ts, x=xyz[0].tolist(),
                                                  y=xyz[1].tolist(), z=xyz[2].tolist())).records)
    seconds = time.perf_counter() - t_start
    size = len(pickle.dumps(agg))
    print(f"\nHourlyAggregator after 14 days: {size:,} bytes pickled ({size / 2**20:.3f} MiB), "
          f"{len(agg._places):,} history fixes, {agg.pending_hours} pending hours, "
          f"{seconds:.2f} s for {14 * 24 * 60:,} minutes of input")
    assert size <= 1 << 20
    assert len(agg._places) <= 14 * 288  # bounded history
    # Local days (UTC+1) closed so far: the first (01:00–23:00 local, 23 h) and 12 full ones.
    assert n_records == 23 + 12 * 24
    clone = pickle.loads(pickle.dumps(agg))
    assert clone.flush() == agg.flush()  # the snapshot resumes identically
