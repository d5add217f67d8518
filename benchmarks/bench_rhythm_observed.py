"""Rhythm stage cost per participant-day with observed-only inputs (issue 13) against the former rule.

Both run in this process on the same hourly records (a simulated cohort, offline hourly
features): ``after`` = ``RhythmState`` as shipped (values only where the sensor group is
in ``observed``; ``accel_sd`` as activity); ``before`` = the same class with the former
input rule (every value of a non-type-2 hour, ``accel_mean`` as activity). Prints ms per
participant-day (best of ``--repeat``) and the ratio after/before. Single-threaded numpy.

Run: ``.venv/bin/python benchmarks/bench_rhythm_observed.py [--participants 4 --days 30]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from phenoflow.core.contract import HourlyFeatures  # noqa: E402
from phenoflow.offline.features import hourly_features_from_cohort  # noqa: E402
from phenoflow.operators.rhythm.rolling import RhythmState  # noqa: E402
from phenoflow.operators.rhythm.statistics import DEFAULT_MODALITIES  # noqa: E402
from phenoflow.simulate.simulator import simulate_cohort  # noqa: E402

BEFORE_MODALITIES = tuple("accel_mean" if m == "accel_sd" else m for m in DEFAULT_MODALITIES)


class FormerRule(RhythmState):
    """The pre-issue-13 input rule: every finite value of a non-type-2 hour."""

    def _values(self, record: HourlyFeatures) -> np.ndarray:
        vals = np.full(len(self.modalities), np.nan)
        if record.filled >= 1.0:
            return vals
        for i, name in enumerate(self.modalities):
            v = record.features.get(name)
            if v is not None and math.isfinite(v):
                vals[i] = v
        return vals


def run(records: list[HourlyFeatures], make) -> tuple[float, int]:  # noqa: ANN001
    """(seconds, participant-days emitted) for one pass of the rhythm stage."""
    states: dict[str, RhythmState] = {}
    n = 0
    t0 = time.perf_counter()
    for r in records:
        st = states.get(r.participant)
        if st is None:
            st = states[r.participant] = make(r.participant)
        n += len(st.update(r))
    for st in states.values():
        n += len(st.flush())
    return time.perf_counter() - t0, n


def main() -> None:
    """Print ms per participant-day before/after and their ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=4)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        simulate_cohort(Path(tmp) / "c", args.participants, args.days, 5)
        records = list(hourly_features_from_cohort(Path(tmp) / "c"))
    res = {}
    for name, make in (("before", lambda p: FormerRule(p, BEFORE_MODALITIES)), ("after", RhythmState)):
        best = min(run(records, make) for _ in range(args.repeat))
        res[name] = best[0] / best[1] * 1e3
        print(f"{name:6s}: {res[name]:.2f} ms per participant-day ({best[1]} days, {len(records)} hourly records)")
    print(f"ratio after/before: {res['after'] / res['before']:.2f}")


if __name__ == "__main__":
    main()
