"""Per-participant flow state at steady state: pickled size and snapshot cost.

Bytewax recovery snapshots each participant's state object with pickle (and
``OperatorLogic.snapshot`` deep-copies it first), so the state must stay small
(issue goal: ≤ 1 MiB per participant) and cheap to copy. This feeds a simulated
cohort through the same operators the flows use — one
:class:`~phenoflow.operators.hourly.aggregator.HourlyAggregator` per participant (events in
event-time order, as :mod:`phenoflow.offline.features` does) and one
:class:`~phenoflow.operators.rhythm.rolling.RhythmState` per participant fed with
that participant's hourly records — and measures every participant's state at
the end of the input, before ``flush`` (open hours still pending):

* pickled bytes (``pickle.dumps``, highest protocol, as Bytewax does),
* time of ``copy.deepcopy`` (what ``OperatorLogic.snapshot`` does) and of a
  pickle round trip (the cheaper alternative).

Run with ``--days 28`` to check the state does not grow past the 14-day windows.

Run: ``.venv/bin/python benchmarks/bench_state.py [--participants 10 --days 14]``
"""

from __future__ import annotations

import argparse
import copy
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from phenoflow.offline.features import OFFLINE_FRAME_KEY, read_cohort_events
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.rhythm.rolling import RhythmState
from phenoflow.simulate.simulator import simulate_cohort

MIB = 1 << 20


def _measure(states: dict[str, Any]) -> tuple[list[int], float, float]:
    """Pickled sizes, mean deepcopy seconds and mean pickle round-trip seconds per state."""
    sizes = [len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in states.values()]
    t0 = time.perf_counter()
    for s in states.values():
        copy.deepcopy(s)
    t_copy = (time.perf_counter() - t0) / len(states)
    t0 = time.perf_counter()
    for s in states.values():
        pickle.loads(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL))
    t_pickle = (time.perf_counter() - t0) / len(states)
    return sizes, t_copy, t_pickle


def _report(name: str, sizes: list[int], t_copy: float, t_pickle: float) -> None:
    print(f"{name:<16}{statistics.median(sizes):>12,.0f}{max(sizes):>12,}{max(sizes) / MIB:>9.3f}"
          f"{1e3 * t_copy:>12.2f}{1e3 * t_pickle:>14.2f}   {'ok' if max(sizes) <= MIB else 'OVER 1 MiB'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=10)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accel-hz", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        simulate_cohort(cohort, args.participants, args.days, seed=args.seed, accel_hz=args.accel_hz)
        aggs: dict[str, HourlyAggregator] = {}
        rhythm: dict[str, RhythmState] = {}
        t0 = time.perf_counter()
        n_events = n_records = 0
        for ev in read_cohort_events(cohort):
            pid = ev.participant  # type: ignore[attr-defined]
            agg = aggs.get(pid)
            if agg is None:
                agg = aggs[pid] = HourlyAggregator(pid, frame_key=OFFLINE_FRAME_KEY)
            n_events += 1
            for rec in agg.update(ev).records:
                n_records += 1
                state = rhythm.get(pid)
                if state is None:
                    state = rhythm[pid] = RhythmState(pid)
                state.update(rec)
        seconds = time.perf_counter() - t0
        pending = statistics.median(a.pending_hours for a in aggs.values())
        print(f"cohort: {args.participants} participants × {args.days} days, {n_events:,} events → "
              f"{n_records:,} hourly records in {seconds:.1f} s; state measured before flush "
              f"(median {pending:.0f} pending hours per participant)\n")
        print(f"{'state':<16}{'median B':>12}{'max B':>12}{'max MiB':>9}{'deepcopy ms':>12}{'pickle rt ms':>14}"
              f"   goal ≤ 1 MiB")
        _report("HourlyAggregator", *_measure(aggs))
        _report("RhythmState", *_measure(rhythm))
        place_fixes = max(len(a._places) for a in aggs.values())
        print(f"\nlargest place history: {place_fixes:,} fixes (bounded: 14 days × 288 bins = 4,032)")


if __name__ == "__main__":
    main()
