"""Benchmark the evidence ``phenoflow evaluate`` adds: bootstrap intervals, permutation null, whole runs.

- Bootstrap: 1,000 participant resamples, vectorised (:func:`bootstrap_intervals`)
  against a plain baseline in the same run (a Python loop over resamples that
  rebuilds :class:`Confusion` objects and takes :class:`Spread` medians).
- Streaming null: 1,000 circular label shifts on a demo-sized cohort.
- ``evaluate_dir`` end to end on demo-sized (12 × 90 days) and larger (30 × 120)
  synthetic cohorts, streaming and Adler protocol, with and without the null,
  so the null's share of the run time is visible.

    .venv/bin/python benchmarks/bench_uncertainty.py [--dir /tmp/pf-bench-unc]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from phenoflow.evaluation.detection import Confusion, Spread
from phenoflow.evaluation.evaluate import evaluate_dir
from phenoflow.evaluation.synth import write_synthetic_cohort
from phenoflow.evaluation.uncertainty import bootstrap_intervals


def plain_bootstrap(confs: list[Confusion], resamples: int, seed: int) -> tuple[float, float]:
    """Baseline: one Python pass per resample, Spread medians; 95 % interval of the median TPR/FPR."""
    rng = np.random.default_rng(seed)
    n = len(confs)
    meds = []
    for _ in range(resamples):
        pick = [confs[i] for i in rng.integers(0, n, size=n)]
        m = Spread.of([c.tpr_fpr for c in pick]).median
        meds.append(np.nan if m is None else m)
    v = np.array(meds)
    v = v[~np.isnan(v)]
    return float(np.quantile(v, 0.025, method="lower")), float(np.quantile(v, 0.975, method="higher"))


def timed(fn, repeat: int = 3) -> float:  # noqa: ANN001 - a benchmark helper
    """Best of ``repeat`` wall times in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Print the figures and ratios."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pf-bench-unc"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n in (12, 30, 120):
        counts = np.column_stack([rng.integers(0, 30, n), rng.integers(0, 30, n), rng.integers(0, 40, n), rng.integers(20, 80, n)])
        confs = [Confusion(*map(int, c)) for c in counts]
        fast = timed(lambda counts=counts: bootstrap_intervals(counts, 1000, 0))
        slow = timed(lambda confs=confs: plain_bootstrap(confs, 1000, 0), repeat=1)
        print(f"bootstrap, {n:>3} participants, 1,000 resamples: vectorised {fast * 1e3:7.1f} ms, "
              f"plain loop {slow * 1e3:7.1f} ms ({slow / fast:5.1f}× faster)")
    for parts, days in ((12, 90), (30, 120)):
        root = args.dir / f"c{parts}x{days}"
        shutil.rmtree(root, ignore_errors=True)
        write_synthetic_cohort(root, participants=parts, days=days, relapse_share=0.5, hourly_features=3, seed=1000 + parts)
        for protocol, kw in (("streaming", {}), ("adler", {"iterations": 100})):
            base = timed(lambda root=root, protocol=protocol, kw=kw: evaluate_dir(root, protocol=protocol, permutations=0, **kw), repeat=1)
            full = timed(lambda root=root, protocol=protocol, kw=kw: evaluate_dir(root, protocol=protocol, **kw), repeat=1)
            perms = 1000 if protocol == "streaming" else 100
            print(f"evaluate {protocol:9s} {parts} × {days} days: without null {base:5.2f} s, with the default null "
                  f"({perms} permutations) {full:5.2f} s (null ≈ {full - base:5.2f} s, {full / base:4.1f}×)")


if __name__ == "__main__":
    main()
